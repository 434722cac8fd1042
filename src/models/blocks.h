// The measurable blocks of a layer, as lipattn LayerSpecs (docs/formats.md, "Model folders").
#pragma once

#include <optional>
#include <string>

#include "attention/layer.h"
#include "attention/mlp.h"
#include "models/forward.h"

namespace lipattn::models {

enum class Block {
  Attn,           // "attn": GPT-2 h[L].attn / LLaMA self_attn on the pre-norm's output: causal attention
                  // with W_O (c_proj, o_proj), no norms; LLaMA's with RoPE and grouped K/V heads
  BertAttention,  // "attention": BertAttention = LayerNorm(x + dense(BertSelfAttention(x)))
  Self,           // "self": the attention without W_O (BertSelfAttention; LLaMA's heads alone)
};
std::string to_string(Block block);  // "attn" | "attention" | "self"
// "" gives the model's default (GPT-2 and LLaMA "attn", BERT "attention"); InputError naming the
// block field and the blocks the model has otherwise.
Block parse_block(const std::string& name, ModelType type);

// The LayerSpec of `block` at layer `layer`; with `head`, that head's map alone (its Q, K, V slice
// and, when W_O is part of the block, its W_O column block). InputError naming --layer / --head
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

// The MLP of a layer as the MLP map's weights (gated for the LLaMA family).
MlpWeights mlp_weights(const LayerWeights& layer, Activation activation);

// The block's input at a layer: attn_in (GPT-2 ln_1's output; BERT the block input).
const MatrixD& block_input(const LayerTaps& taps, Block block);

}  // namespace lipattn::models
