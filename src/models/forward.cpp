// GPT2Model (pre-LN) and BertModel (post-LN) forward passes. Dropout is absent by construction: these
// are the eval-mode computations.
#include "models/forward.h"

#include <cmath>
#include <numbers>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn::models {

namespace {

template <class T>
Matrix<T> layer_norm(const Matrix<T>& X, const NormWeights& norm) {
  // Biased variance, ε inside the square root: torch.nn.LayerNorm (docs/theory.md §3).
  const Vector<T> gamma = norm.gamma.cast<T>();
  const Vector<T> beta = norm.beta.size() ? Vector<T>(norm.beta.cast<T>()) : Vector<T>::Zero(gamma.size());
  const T eps = static_cast<T>(norm.eps);
  Matrix<T> Y(X.rows(), X.cols());
  for (Index i = 0; i < X.rows(); ++i) {
    const T mean = X.row(i).mean();
    const RowVector<T> centred = X.row(i).array() - mean;
    const T var = centred.squaredNorm() / static_cast<T>(X.cols());
    const T inv = T(1) / std::sqrt(var + eps);
    Y.row(i) = (centred * inv).cwiseProduct(gamma.transpose()) + beta.transpose();
  }
  return Y;
}

template <class T>
Matrix<T> linear(const Matrix<T>& X, const MatrixD& weight, const VectorD& bias) {
  Matrix<T> Y = X * weight.cast<T>().transpose();
  if (bias.size()) Y.rowwise() += bias.cast<T>().transpose();
  return Y;
}

template <class T>
T activate(T x, Activation activation) {
  switch (activation) {
    case Activation::GeluErf:
      return T(0.5) * x * (T(1) + std::erf(x / std::sqrt(T(2))));
    case Activation::GeluTanh: {
      const T c = static_cast<T>(std::sqrt(2.0 / std::numbers::pi));
      return T(0.5) * x * (T(1) + std::tanh(c * (x + T(0.044715) * x * x * x)));
    }
    case Activation::Relu:
      return x > T(0) ? x : T(0);
    case Activation::Silu:
      return x / (T(1) + std::exp(-x));
    case Activation::QuickGelu:
      return x / (T(1) + std::exp(T(-1.702) * x));
    case Activation::Tanh:
      return std::tanh(x);
  }
  return x;
}

// Multi-head attention: per head h, P_h = softmax(scale·Q_h K_hᵀ, causal mask) and O_h = P_h V_h;
// the heads are concatenated and projected by W_O when present (docs/theory.md §2).
template <class T>
Matrix<T> attention(const Matrix<T>& X, const AttentionWeights& w) {
  const Index n = X.rows(), H = w.heads, k = w.key_dim(), kv = w.value_dim();
  const Matrix<T> Q = linear<T>(X, w.w_q, w.b_q), K = linear<T>(X, w.w_k, w.b_k), V = linear<T>(X, w.w_v, w.b_v);
  const T scale = static_cast<T>(w.effective_scale());
  Matrix<T> O(n, H * kv);
  for (Index h = 0; h < H; ++h) {
    Matrix<T> S = scale * (Q.middleCols(h * k, k) * K.middleCols(h * k, k).transpose());
    for (Index i = 0; i < n; ++i) {
      const Index visible = w.causal ? i + 1 : n;  // the causal mask hides keys j > i
      const T top = S.row(i).head(visible).maxCoeff();
      T total = 0;
      for (Index j = 0; j < visible; ++j) total += (S(i, j) = std::exp(S(i, j) - top));
      for (Index j = 0; j < visible; ++j) S(i, j) /= total;
      for (Index j = visible; j < n; ++j) S(i, j) = 0;
    }
    O.middleCols(h * kv, kv) = S * V.middleCols(h * kv, kv);
  }
  if (w.w_o.size() == 0) return O;
  return linear<T>(O, w.w_o, w.b_o);
}

template <class T>
Matrix<T> mlp(const Matrix<T>& X, const LayerWeights& L, Activation activation) {
  Matrix<T> hidden = linear<T>(X, L.mlp_in.weight, L.mlp_in.bias);
  hidden = hidden.unaryExpr([&](T x) { return activate(x, activation); });
  return linear<T>(hidden, L.mlp_out.weight, L.mlp_out.bias);
}

template <class T>
ForwardResult forward_impl(const ModelWeights& model, const std::vector<int>& ids, const ForwardOptions& options) {
  const ModelConfig& c = model.config;
  const Index n = static_cast<Index>(ids.size()), d = c.hidden_size;
  Matrix<T> x(n, d);
  for (Index i = 0; i < n; ++i) {
    x.row(i) = (model.token_embeddings.row(ids[i]) + model.position_embeddings.row(i)).template cast<T>();
    if (c.type == ModelType::Bert) x.row(i) += model.token_type_embedding.transpose().cast<T>();
  }
  if (model.embedding_norm) x = layer_norm<T>(x, *model.embedding_norm);

  const int loaded = static_cast<int>(model.layers.size());
  const int last = options.last_layer < 0 ? loaded - 1 : options.last_layer;
  if (last >= loaded)
    throw InputError(fmt::format("layer {} is out of range: {} layers are loaded (the model has {})", last, loaded,
                                 c.num_layers));
  ForwardResult result;
  for (int l = 0; l <= last; ++l) {
    const LayerWeights& L = model.layers[l];
    LayerTaps taps;
    taps.block_in = x.template cast<double>();
    if (c.type == ModelType::Gpt2) {
      const Matrix<T> a = layer_norm<T>(x, L.attention_norm);
      const Matrix<T> o = attention<T>(a, L.attention);
      taps.attn_in = a.template cast<double>();
      taps.attn_out = o.template cast<double>();
      x += o;
      x += mlp<T>(layer_norm<T>(x, L.mlp_norm), L, c.activation);
    } else {
      taps.attn_in = taps.block_in;
      Matrix<T> a = attention<T>(x, L.attention);  // BertSelfAttention + BertSelfOutput.dense
      a = layer_norm<T>(Matrix<T>(a + x), L.attention_norm);
      taps.attn_out = a.template cast<double>();
      x = layer_norm<T>(Matrix<T>(mlp<T>(a, L, c.activation) + a), L.mlp_norm);
    }
    result.layers.push_back(std::move(taps));
  }
  if (last == loaded - 1 && model.complete()) {
    if (model.final_norm) x = layer_norm<T>(x, *model.final_norm);
    result.hidden = x.template cast<double>();
  }
  return result;
}

}  // namespace

void check_ids(const ModelConfig& config, const std::vector<int>& ids) {
  if (ids.empty()) throw InputError("no tokens to run: the window is empty");
  if (static_cast<Index>(ids.size()) > config.max_positions)
    throw InputError(fmt::format("a window of n = {} tokens is longer than the model's {} positions ({})",
                                 ids.size(), config.max_positions,
                                 config.type == ModelType::Gpt2 ? "n_positions" : "max_position_embeddings"));
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
