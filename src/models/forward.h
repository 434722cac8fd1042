// The forward pass of transformers' GPT2Model, BertModel and LlamaModel in inference mode (no
// dropout, ever), tapping the input of every attention block (docs/formats.md, "Model folders").
#pragma once

#include <vector>

#include "models/weights.h"
#include "spectral/measure.h"

namespace lipattn::models {

// What one layer saw and produced (n × d, float64 whatever the compute precision).
struct LayerTaps {
  MatrixD block_in;  // the layer's input (the residual stream)
  MatrixD attn_in;   // the attention block's input: GPT-2 ln_1(block_in); BERT block_in
  // The attention block's output, as the default block measures it: GPT-2 attn(ln_1(x)) after
  // c_proj, before the residual; BERT BertAttention = LayerNorm(x + dense(self-attention(x))).
  MatrixD attn_out;
  // The MLP sub-block's input, as the model places that block (models/blocks.h, Block::Mlp): GPT-2 /
  // LLaMA the residual stream after attention, block_in + attn_out; BERT attn_out.
  MatrixD mlp_in;
};

struct ForwardOptions {
  Precision precision = Precision::F64;  // F32 computes in float as a float32 torch model does
  int last_layer = -1;  // stop after this layer (no final hidden state); -1 runs every loaded layer
  bool logits = false;  // also the LM head's logits (n × vocab), for models that have one
};

struct ForwardResult {
  std::vector<LayerTaps> layers;
  MatrixD hidden;  // GPT-2: ln_f of the last block's output; BERT: the last block's output.
                   // LLaMA: the final RMSNorm's output. Empty when the pass stopped early or the
                   // model was loaded partially.
  MatrixD final_norm_in;  // the last layer's output, the final norm's input (GPT-2, LLaMA), when hidden is set
  MatrixD logits;  // n × vocab: hidden · W_headᵀ (GPT-2's tied wte, LLaMA's lm_head), when asked
};

// Runs the model on token ids (token type 0, positions 0..n-1, no padding mask). InputError when
// ids is empty, an id is outside the vocabulary, or n exceeds the model's positions (naming both).
ForwardResult run_forward(const ModelWeights& model, const std::vector<int>& ids, const ForwardOptions& options = {});

// The checks run_forward makes on ids, for callers that want them before heavier work.
void check_ids(const ModelConfig& config, const std::vector<int>& ids);

}  // namespace lipattn::models
