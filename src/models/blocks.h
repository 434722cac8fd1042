// The measurable blocks of a layer, as lipattn LayerSpecs (docs/formats.md, "Model folders").
#pragma once

#include <optional>
#include <string>

#include "attention/layer.h"
#include "models/forward.h"

namespace lipattn::models {

enum class Block {
  Gpt2Attn,       // "attn": GPT-2 h[L].attn on ln_1's output: causal attention with c_proj, no norms
  BertAttention,  // "attention": BertAttention = LayerNorm(x + dense(BertSelfAttention(x)))
  BertSelf,       // "self": BertSelfAttention alone (no W_O, no residual, no norm)
};
std::string to_string(Block block);  // "attn" | "attention" | "self"
// "" gives the model's default (GPT-2 "attn", BERT "attention"); InputError (field "block") naming the block and the
// blocks the model has otherwise.
Block parse_block(const std::string& name, ModelType type);

// The LayerSpec of `block` at layer `layer`; with `head`, that head's map alone (its Q, K, V slice
// and, when W_O is part of the block, its W_O column block). InputError (field "layer" / "head")
// when out of range.
LayerSpec block_spec(const ModelWeights& model, int layer, Block block, std::optional<int> head = std::nullopt);

// The block's input at a layer: attn_in (GPT-2 ln_1's output; BERT the block input).
const MatrixD& block_input(const LayerTaps& taps, Block block);

}  // namespace lipattn::models
