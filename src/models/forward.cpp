// GPT2Model (pre-LN), BertModel (post-LN) and LlamaModel (pre-RMSNorm, RoPE, GQA, SwiGLU) forward
// passes through the maps `measure` measures (models/blocks.h). Dropout is absent by construction:
// these are the eval-mode computations.
#include "models/forward.h"


#include <fmt/core.h>

#include "common/error.h"
#include "common/stop.h"
#include "models/blocks.h"

namespace lipattn::models {

namespace {

template <class T>
Matrix<T> run_map(const MapPtr<T>& map, const Matrix<T>& X) {
  return map->forward(X)->output;
}

// Token embeddings, plus GPT-2's and BERT's learned positions and BERT's token type 0 and LayerNorm.
// LLaMA adds nothing: its positions enter through RoPE in every attention.
template <class T>
Matrix<T> embed(const ModelWeights& model, const std::vector<int>& ids) {
  const Index n = static_cast<Index>(ids.size());
  Matrix<T> x(n, model.config.hidden_size);
  for (Index i = 0; i < n; ++i) {
    x.row(i) = model.token_embeddings.row(ids[i]).template cast<T>();
    if (model.position_embeddings.size()) x.row(i) += model.position_embeddings.row(i).template cast<T>();
    if (model.token_type_embedding.size()) x.row(i) += model.token_type_embedding.transpose().cast<T>();
  }
  if (model.embedding_norm) x = run_map<T>(std::make_shared<Norm<T>>(*model.embedding_norm), x);
  return x;
}

// One layer through the same maps `measure` uses (models/blocks.h), tapping its inputs and outputs.
template <class T>
LayerTaps run_layer(const ModelWeights& model, int layer, Matrix<T>& x) {
  const LayerMaps<T> maps = layer_maps<T>(model, layer);
  LayerTaps taps;
  taps.block_in = x.template cast<double>();
  if (model.config.type == ModelType::Bert) {  // post-norm: LayerNorm(x + attention(x)), LayerNorm(a + mlp(a))
    taps.attn_in = taps.block_in;
    const Matrix<T> a = run_map(maps.attention_norm, Matrix<T>(x + run_map(maps.attention, x)));
    taps.attn_out = a.template cast<double>();
    taps.mlp_in = taps.attn_out;
    x = run_map(maps.mlp_norm, Matrix<T>(a + run_map(maps.mlp, a)));
    return taps;
  }
  const Matrix<T> a = run_map(maps.attention_norm, x);  // GPT-2, LLaMA: pre-norm
  const Matrix<T> o = run_map(maps.attention, a);
  taps.attn_in = a.template cast<double>();
  taps.attn_out = o.template cast<double>();
  x += o;
  taps.mlp_in = x.template cast<double>();
  x += run_map(maps.mlp, run_map(maps.mlp_norm, x));
  return taps;
}

template <class T>
ForwardResult forward_impl(const ModelWeights& model, const std::vector<int>& ids, const ForwardOptions& options) {
  const ModelConfig& c = model.config;
  Matrix<T> x = embed<T>(model, ids);
  const int loaded = static_cast<int>(model.layers.size());
  const int last = options.last_layer < 0 ? loaded - 1 : options.last_layer;
  if (last >= loaded)
    throw InputError(fmt::format("layer {} is out of range: {} layers are loaded (the model has {})", last, loaded,
                                 c.num_layers),
                     "layer");
  ForwardResult result;
  for (int l = 0; l <= last; ++l) {
    stop::throw_if_requested();  // common/stop.h: between two layers
    result.layers.push_back(run_layer<T>(model, l, x));
  }
  if (last == loaded - 1 && model.complete()) {
    if (model.final_norm) result.final_norm_in = x.template cast<double>();
    if (model.final_norm) x = run_map<T>(std::make_shared<Norm<T>>(*model.final_norm), x);
    result.hidden = x.template cast<double>();
    if (options.logits && c.type != ModelType::Bert) {
      // GPT-2 ties its head to wte; LLaMA has lm_head unless tie_word_embeddings.
      const MatrixD& head = model.lm_head.size() ? model.lm_head : model.token_embeddings;
      result.logits = (x * head.cast<T>().transpose()).template cast<double>();
    }
  }
  return result;
}

}  // namespace

void check_ids(const ModelConfig& config, const std::vector<int>& ids) {
  if (ids.empty()) throw InputError("no tokens to run: the window is empty");
  if (static_cast<Index>(ids.size()) > config.max_positions)
    throw InputError(fmt::format("a window of n = {} tokens is longer than the model's limit of {} positions ({})",
                                 ids.size(), config.max_positions, config.positions_key()));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= config.vocab_size)
      throw InputError(fmt::format("token id {} (position {}) is outside the model's vocabulary of {} ids", ids[i], i,
                                   config.vocab_size));
  }
}

ForwardResult run_forward(const ModelWeights& model, const std::vector<int>& ids, const ForwardOptions& options) {
  check_ids(model.config, ids);
  if (options.precision == Precision::F32) return forward_impl<float>(model, ids, options);
  return forward_impl<double>(model, ids, options);
}

}  // namespace lipattn::models
