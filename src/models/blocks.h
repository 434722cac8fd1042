// The measurable blocks of a layer, as lipattn LayerSpecs (docs/formats.md, "Model folders").
#pragma once

#include <optional>
#include <string>

#include "attention/layer.h"
#include "attention/mlp.h"
#include "models/forward.h"
#include "spectral/measure.h"

namespace lipattn::models {

enum class Block {
  Attn,           // "attn": GPT-2 h[L].attn / LLaMA self_attn on the pre-norm's output: causal attention
                  // with W_O (c_proj, o_proj), no norms; LLaMA's with RoPE and grouped K/V heads
  BertAttention,  // "attention": BertAttention = LayerNorm(x + dense(BertSelfAttention(x)))
  Self,           // "self": the attention without W_O (BertSelfAttention; LLaMA's heads alone)
  // Whole blocks (maps composed from LayerMaps; no single head):
  Mlp,    // "mlp": the MLP sub-block with its norm as the model places it: GPT-2 / LLaMA
          // y ↦ y + mlp(norm₂(y)) on the stream after attention; BERT a ↦ LN(a + mlp(a))
  Layer,  // "layer": the whole transformer layer (layer_map)
  Stack,  // "stack": layers first..last−1 composed (stack_map)
  Model,  // "model": the embedding output (layer 0's block_in) to `hidden`, final norm included
};
std::string to_string(Block block);  // "attn" | "attention" | "self" | "mlp" | "layer" | "stack" | "model"
// "" gives the model's default (GPT-2 and LLaMA "attn", BERT "attention"); InputError (field
// "block") naming the block and the blocks the model has otherwise.
Block parse_block(const std::string& name, ModelType type);
// Attn, BertAttention and Self: one attention LayerSpec, with heads. The others are whole blocks.
bool is_attention_block(Block block);

// Layers first..last−1 ("A:B" on the command line).
struct LayerRange {
  int first = 0, last = 0;
  bool operator==(const LayerRange&) const = default;
};
std::string to_string(const LayerRange& range);  // "A:B"
// "A:B" with integers A, B; InputError (field) for anything else. The range is checked against a
// model by check_block_request.
LayerRange parse_layer_range(const std::string& text, const std::string& field = "layers");

// What the request names, checked against the model: `layer` in range for one-layer blocks (field
// "layer"); `head` only for attention blocks ("head"); `layers` given for stack and only for stack,
// non-empty and within the model's layers ("layers"). Throws InputError naming the field.
void check_block_request(const ModelConfig& config, Block block, int layer, std::optional<int> head,
                         std::optional<LayerRange> layers);
// The layers the block spans: [layer, layer + 1) for one layer's blocks, the range for stack, every
// layer for model. Assumes check_block_request passed.
LayerRange block_layers(const ModelConfig& config, Block block, int layer, std::optional<LayerRange> layers);

// The LayerSpec of `block` at layer `layer`; with `head`, that head's map alone (its Q, K, V slice
// and, when W_O is part of the block, its W_O column block). InputError (field "layer" / "head")
// when out of range.
LayerSpec block_spec(const ModelWeights& model, int layer, Block block, std::optional<int> head = std::nullopt);

// The maps of layer `layer` as the model applies them (docs/formats.md, "Model folders"): the forward
// pass and `measure` run these same maps. GPT-2 and LLaMA: x + attention(attention_norm(x)), then
// + mlp(mlp_norm(·)); BERT: attention_norm(x + attention(x)), then mlp_norm(· + mlp(·)).
template <class T>
struct LayerMaps {
  MapPtr<T> attention_norm;  // GPT-2 ln_1, LLaMA input_layernorm (before); BERT attention.output.LayerNorm (after)
  MapPtr<T> attention;       // every head, with W_O (GPT-2 c_proj, BERT attention.output.dense, LLaMA o_proj)
  MapPtr<T> mlp_norm;        // GPT-2 ln_2, LLaMA post_attention_layernorm (before); BERT output.LayerNorm (after)
  MapPtr<T> mlp;
};
template <class T>
LayerMaps<T> layer_maps(const ModelWeights& model, int layer, const AttentionMemory& memory = {});

// Whole blocks as one map each, composed from the same LayerMaps (docs/theory.md §1, chain rule):
//   layer_map: GPT-2 / LLaMA x ↦ x + attn(norm₁(x)) ↦ · + mlp(norm₂(·));
//              BERT  x ↦ a = LN(x + attn(x)) ↦ LN(a + mlp(a))
//   stack_map: layers first..last−1 composed;  model_map: every layer, then the final norm (GPT-2
//   ln_f, LLaMA norm; BERT has none), from the embedding output (layer 0's block_in) to `hidden`.
// InputError naming "layers" for an empty or out-of-range range.
template <class T>
MapPtr<T> layer_map(const ModelWeights& model, int layer, const AttentionMemory& memory = {});
template <class T>
MapPtr<T> stack_map(const ModelWeights& model, int first, int last, const AttentionMemory& memory = {});
template <class T>
MapPtr<T> model_map(const ModelWeights& model, const AttentionMemory& memory = {});

// The MLP sub-block (Block::Mlp): GPT-2 / LLaMA y ↦ y + mlp(norm₂(y)); BERT a ↦ LN(a + mlp(a)).
template <class T>
MapPtr<T> mlp_block_map(const ModelWeights& model, int layer);

// A whole block (Mlp, Layer, Stack over `layers`, Model) as the builder measure_local_lipschitz takes,
// in both precisions, for the attention storage the measurement resolves. `model` must outlive it.
MapBuilder whole_block_builder(const ModelWeights& model, Block block, int layer, std::optional<LayerRange> layers);

// The block's input at its (first) layer, from that layer's taps: attn_in for the attention blocks
// (GPT-2 ln_1's output; BERT the block input), mlp_in for Mlp, block_in for Layer, Stack and Model.
const MatrixD& block_input(const LayerTaps& taps, Block block);

}  // namespace lipattn::models
