#include "models/blocks.h"

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn::models {

std::string to_string(Block block) {
  switch (block) {
    case Block::Attn: return "attn";
    case Block::BertAttention: return "attention";
    case Block::Self: return "self";
  }
  return "?";
}

Block parse_block(const std::string& name, ModelType type) {
  if (type == ModelType::Gpt2) {
    if (name.empty() || name == "attn") return Block::Attn;
    throw InputError(fmt::format("--block '{}' does not exist in GPT-2; its attention block is 'attn'", name));
  }
  if (type == ModelType::Llama) {
    if (name.empty() || name == "attn") return Block::Attn;
    if (name == "self") return Block::Self;
    throw InputError(fmt::format("--block '{}' does not exist in LLaMA; choose 'attn' (self_attn with o_proj) or "
                                 "'self' (the heads without o_proj)",
                                 name));
  }
  if (name.empty() || name == "attention") return Block::BertAttention;
  if (name == "self") return Block::Self;
  throw InputError(
      fmt::format("--block '{}' does not exist in BERT; choose 'attention' (BertAttention) or 'self' "
                  "(BertSelfAttention)",
                  name));
}

LayerSpec block_spec(const ModelWeights& model, int layer, Block block, std::optional<int> head) {
  const ModelConfig& c = model.config;
  if (layer < 0 || layer >= c.num_layers)
    throw InputError(fmt::format("--layer {} is out of range: the model has {} layers (0..{})", layer, c.num_layers,
                                 c.num_layers - 1));
  if (layer >= static_cast<int>(model.layers.size()))
    throw InputError(fmt::format("--layer {}: only {} layers were loaded", layer, model.layers.size()));
  (void)parse_block(to_string(block), c.type);  // the block must belong to this model type
  const LayerWeights& L = model.layers[layer];
  LayerSpec spec;
  spec.attention = L.attention;
  if (block == Block::Self) {
    spec.attention.w_o.resize(0, 0);
    spec.attention.b_o.resize(0);
  }
  if (head) {
    if (*head < 0 || *head >= c.num_heads)
      throw InputError(fmt::format("--head {} is out of range: the layer has {} heads (0..{})", *head, c.num_heads,
                                   c.num_heads - 1));
    spec.attention = spec.attention.head(*head);
  }
  if (block == Block::BertAttention) {
    spec.residual = true;
    spec.post_norm = L.attention_norm;
  }
  return spec;
}

const MatrixD& block_input(const LayerTaps& taps, Block) { return taps.attn_in; }

MlpWeights mlp_weights(const LayerWeights& layer, Activation activation) {
  MlpWeights w;
  w.activation = activation;
  w.w_in = layer.mlp_in.weight;
  w.b_in = layer.mlp_in.bias;
  w.w_gate = layer.mlp_gate.weight;
  w.b_gate = layer.mlp_gate.bias;
  w.w_out = layer.mlp_out.weight;
  w.b_out = layer.mlp_out.bias;
  return w;
}

template <class T>
LayerMaps<T> layer_maps(const ModelWeights& model, int layer, const AttentionMemory& memory) {
  const LayerWeights& L = model.layers.at(layer);
  return {std::make_shared<Norm<T>>(L.attention_norm), std::make_shared<MultiHeadAttention<T>>(L.attention, memory),
          std::make_shared<Norm<T>>(L.mlp_norm),
          std::make_shared<Mlp<T>>(mlp_weights(L, model.config.activation))};
}

template LayerMaps<double> layer_maps<double>(const ModelWeights&, int, const AttentionMemory&);
template LayerMaps<float> layer_maps<float>(const ModelWeights&, int, const AttentionMemory&);

}  // namespace lipattn::models
