#include "models/blocks.h"

#include <fmt/core.h>

#include <stdexcept>
#include <utility>

#include "common/error.h"

namespace lipattn::models {

std::string to_string(Block block) {
  switch (block) {
    case Block::Attn: return "attn";
    case Block::BertAttention: return "attention";
    case Block::Self: return "self";
    case Block::Mlp: return "mlp";
    case Block::Layer: return "layer";
    case Block::Stack: return "stack";
    case Block::Model: return "model";
  }
  return "?";
}

bool is_attention_block(Block block) {
  return block == Block::Attn || block == Block::BertAttention || block == Block::Self;
}

Block parse_block(const std::string& name, ModelType type) {
  for (Block whole : {Block::Mlp, Block::Layer, Block::Stack, Block::Model})
    if (name == to_string(whole)) return whole;
  constexpr const char* kWhole = "; or a whole block: 'mlp', 'layer', 'stack' (with layers A:B) or 'model'";
  if (type == ModelType::Gpt2) {
    if (name.empty() || name == "attn") return Block::Attn;
    throw InputError(fmt::format("block '{}' does not exist in GPT-2; its attention block is 'attn'{}", name, kWhole),
                     "block");
  }
  if (type == ModelType::Llama) {
    if (name.empty() || name == "attn") return Block::Attn;
    if (name == "self") return Block::Self;
    throw InputError(fmt::format("block '{}' does not exist in LLaMA; choose 'attn' (self_attn with o_proj) or "
                                 "'self' (the heads without o_proj){}",
                                 name, kWhole),
                     "block");
  }
  if (name.empty() || name == "attention") return Block::BertAttention;
  if (name == "self") return Block::Self;
  throw InputError(fmt::format("block '{}' does not exist in BERT; choose 'attention' (BertAttention) or 'self' "
                               "(BertSelfAttention){}",
                               name, kWhole),
                   "block");
}

std::string to_string(const LayerRange& range) { return fmt::format("{}:{}", range.first, range.last); }

LayerRange parse_layer_range(const std::string& text, const std::string& field) {
  const auto colon = text.find(':');
  const auto fail = [&] {
    return InputError(fmt::format("layers must be A:B (layers A..B−1, integers), got '{}'", text), field);
  };
  if (colon == std::string::npos) throw fail();
  LayerRange range;
  for (auto [part, out] : {std::pair{text.substr(0, colon), &range.first}, {text.substr(colon + 1), &range.last}}) {
    std::size_t used = 0;
    try {
      *out = std::stoi(part, &used);
    } catch (const std::exception&) {
      throw fail();
    }
    if (used != part.size() || part.empty()) throw fail();
  }
  return range;
}

void check_block_request(const ModelConfig& config, Block block, int layer, std::optional<int> head,
                         std::optional<LayerRange> layers) {
  const int count = static_cast<int>(config.num_layers);
  if (head && !is_attention_block(block))
    throw InputError(fmt::format("head {}: the block '{}' has no single head (heads are for the attention blocks)",
                                 *head, to_string(block)),
                     "head");
  if (layers && block != Block::Stack)
    throw InputError(fmt::format("layers {} is for the block 'stack', not '{}'", to_string(*layers), to_string(block)),
                     "layers");
  if (block == Block::Stack) {
    if (!layers) throw InputError("the block 'stack' needs a layer range A:B (layers A..B−1)", "layers");
    if (layers->first < 0 || layers->last > count || layers->first >= layers->last)
      throw InputError(fmt::format("layers {} is not a non-empty range of the model's {} layers: need 0 ≤ A < B ≤ {}",
                                   to_string(*layers), count, count),
                       "layers");
    return;
  }
  if (block != Block::Model && (layer < 0 || layer >= count))
    throw InputError(fmt::format("layer {} is out of range: the model has {} layers (0..{})", layer, count, count - 1),
                     "layer");
  if (head && (*head < 0 || *head >= config.num_heads))
    throw InputError(
        fmt::format("head {} is out of range: the layer has {} heads (0..{})", *head, config.num_heads,
                    config.num_heads - 1),
        "head");
}

LayerRange block_layers(const ModelConfig& config, Block block, int layer, std::optional<LayerRange> layers) {
  if (block == Block::Stack) return *layers;
  if (block == Block::Model) return {0, static_cast<int>(config.num_layers)};
  return {layer, layer + 1};
}

LayerSpec block_spec(const ModelWeights& model, int layer, Block block, std::optional<int> head) {
  const ModelConfig& c = model.config;
  if (layer < 0 || layer >= c.num_layers)
    throw InputError(
        fmt::format("layer {} is out of range: the model has {} layers (0..{})", layer, c.num_layers, c.num_layers - 1),
        "layer");
  if (layer >= static_cast<int>(model.layers.size()))
    throw InputError(fmt::format("layer {}: only {} layers were loaded", layer, model.layers.size()), "layer");
  if (!is_attention_block(block))
    throw InputError(fmt::format("the block '{}' is a whole block, not one attention layer", to_string(block)),
                     "block");
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
      throw InputError(
          fmt::format("head {} is out of range: the layer has {} heads (0..{})", *head, c.num_heads, c.num_heads - 1),
          "head");
    spec.attention = spec.attention.head(*head);
  }
  if (block == Block::BertAttention) {
    spec.residual = true;
    spec.post_norm = L.attention_norm;
  }
  return spec;
}

const MatrixD& block_input(const LayerTaps& taps, Block block) {
  if (is_attention_block(block)) return taps.attn_in;
  return block == Block::Mlp ? taps.mlp_in : taps.block_in;
}

// A layer's MLP norm and MLP as maps: the one place both are built (layer_maps, mlp_block_map).
template <class T>
std::pair<MapPtr<T>, MapPtr<T>> mlp_maps(const LayerWeights& L) {
  return {std::make_shared<Norm<T>>(L.mlp_norm), std::make_shared<Mlp<T>>(L.mlp)};
}

template <class T>
LayerMaps<T> layer_maps(const ModelWeights& model, int layer, const AttentionMemory& memory) {
  const LayerWeights& L = model.layers.at(layer);
  auto [mlp_norm, mlp] = mlp_maps<T>(L);
  return {std::make_shared<Norm<T>>(L.attention_norm), std::make_shared<MultiHeadAttention<T>>(L.attention, memory),
          std::move(mlp_norm), std::move(mlp)};
}

// The MLP sub-block from its two maps: BERT a ↦ LN(a + mlp(a)); GPT-2 / LLaMA x ↦ x + mlp(norm(x)).
template <class T>
MapPtr<T> mlp_block(ModelType type, MapPtr<T> norm, MapPtr<T> mlp) {
  if (type == ModelType::Bert)
    return std::make_shared<Chain<T>>(std::vector<MapPtr<T>>{std::make_shared<Residual<T>>(mlp), norm});
  return std::make_shared<Residual<T>>(std::make_shared<Chain<T>>(std::vector<MapPtr<T>>{norm, mlp}));
}

template <class T>
MapPtr<T> mlp_block_map(const ModelWeights& model, int layer) {
  auto [norm, mlp] = mlp_maps<T>(model.layers.at(layer));
  return mlp_block<T>(model.config.type, std::move(norm), std::move(mlp));
}

template <class T>
MapPtr<T> layer_map(const ModelWeights& model, int layer, const AttentionMemory& memory) {
  const LayerMaps<T> m = layer_maps<T>(model, layer, memory);
  auto chain = [](std::vector<MapPtr<T>> maps) { return std::make_shared<Chain<T>>(std::move(maps)); };
  auto residual = [](MapPtr<T> inner) { return std::make_shared<Residual<T>>(std::move(inner)); };
  const MapPtr<T> mlp = mlp_block<T>(model.config.type, m.mlp_norm, m.mlp);
  if (model.config.type == ModelType::Bert) return chain({residual(m.attention), m.attention_norm, mlp});
  return chain({residual(chain({m.attention_norm, m.attention})), mlp});
}

template <class T>
MapPtr<T> stack_map(const ModelWeights& model, int first, int last, const AttentionMemory& memory) {
  const int loaded = static_cast<int>(model.layers.size());
  if (first < 0 || last > loaded || first >= last)
    throw InputError(fmt::format("layers {}:{} is not a non-empty range of the {} loaded layers (0:{})", first, last,
                                 loaded, loaded),
                     "layers");
  std::vector<MapPtr<T>> maps;
  for (int l = first; l < last; ++l) maps.push_back(layer_map<T>(model, l, memory));
  return maps.size() == 1 ? maps[0] : std::make_shared<Chain<T>>(std::move(maps));
}

template <class T>
MapPtr<T> model_map(const ModelWeights& model, const AttentionMemory& memory) {
  if (!model.complete())
    throw InputError(fmt::format("the whole model needs all {} layers loaded, {} are", model.config.num_layers,
                                 model.layers.size()),
                     "layers");
  MapPtr<T> stack = stack_map<T>(model, 0, static_cast<int>(model.layers.size()), memory);
  if (!model.final_norm) return stack;
  return std::make_shared<Chain<T>>(std::vector<MapPtr<T>>{stack, std::make_shared<Norm<T>>(*model.final_norm)});
}

MapBuilder whole_block_builder(const ModelWeights& model, Block block, int layer, std::optional<LayerRange> layers) {
  const LayerRange span = block_layers(model.config, block, layer, layers);
  MapBuilder builder;
  builder.attention_heads = block == Block::Mlp ? 0 : (span.last - span.first) * model.config.num_heads;
  const ModelWeights* m = &model;
  auto make = [m, block, layer, span](auto tag, const AttentionMemory& memory) {
    using T = decltype(tag);
    switch (block) {
      case Block::Mlp: return mlp_block_map<T>(*m, layer);
      case Block::Layer: return layer_map<T>(*m, layer, memory);
      case Block::Stack: return stack_map<T>(*m, span.first, span.last, memory);
      case Block::Model: return model_map<T>(*m, memory);
      default: throw std::logic_error("whole_block_builder: '" + to_string(block) + "' is an attention block");
    }
  };
  builder.f64 = [make](const AttentionMemory& memory) { return make(double{}, memory); };
  builder.f32 = [make](const AttentionMemory& memory) { return make(float{}, memory); };
  return builder;
}

template MapPtr<double> mlp_block_map<double>(const ModelWeights&, int);
template MapPtr<float> mlp_block_map<float>(const ModelWeights&, int);
template MapPtr<double> layer_map<double>(const ModelWeights&, int, const AttentionMemory&);
template MapPtr<float> layer_map<float>(const ModelWeights&, int, const AttentionMemory&);
template MapPtr<double> stack_map<double>(const ModelWeights&, int, int, const AttentionMemory&);
template MapPtr<float> stack_map<float>(const ModelWeights&, int, int, const AttentionMemory&);
template MapPtr<double> model_map<double>(const ModelWeights&, const AttentionMemory&);
template MapPtr<float> model_map<float>(const ModelWeights&, const AttentionMemory&);
template LayerMaps<double> layer_maps<double>(const ModelWeights&, int, const AttentionMemory&);
template LayerMaps<float> layer_maps<float>(const ModelWeights&, int, const AttentionMemory&);

}  // namespace lipattn::models
