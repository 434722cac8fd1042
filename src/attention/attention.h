// Multi-head softmax self-attention with analytic jvp, vjp and second order (docs/theory.md §2):
// THE attention of lipattn. Its options cover every variant the project measures:
//   - masks and score biases as one additive score tensor (ScoreOptions: causal, the mean-field
//     log-masses and position mask, §2.7);
//   - grouped K/V heads (AttentionWeights::kv_heads; MQA is one K/V head, §2.8);
//   - QK-norm and rotary position embeddings between the projections and the scores (§2.6);
//   - stored or streaming attention matrices (AttentionMemory, §8), float64 or float32.
#pragma once

#include <memory>
#include <mutex>

#include "attention/map.h"
#include "attention/memory.h"
#include "attention/qk_transform.h"
#include "attention/scores.h"
#include "attention/weights.h"

namespace lipattn {

template <class T>
class MultiHeadAttention final : public Map<T> {
 public:
  // `memory` decides, per forward pass, whether the n × n attention matrices are stored or
  // streamed (docs/theory.md §8); both give the same derivatives to rounding. With a key bias or
  // positions in `scores`, the map takes inputs of exactly that many tokens.
  explicit MultiHeadAttention(const AttentionWeights& weights, const AttentionMemory& memory = {},
                              const ScoreOptions& scores = {});
  Index input_dim() const override { return proj_.d; }
  Index output_dim() const override { return proj_.d_out; }
  std::string describe() const override;
  std::unique_ptr<Cache<T>> forward(const MatrixView<T>& X) const override;
  Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const override;
  Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const override;
  Matrix<T> second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const override;
  // JᵀJ dX with W_OᵀW_O applied once (docs/theory.md §2.5).
  Matrix<T> normal_product(const Cache<T>& cache, const Matrix<T>& dX) const override;

  // The attention matrix of query head h at the cached input (n × n, rows sum to 1): the stored
  // one, or recomputed from the streaming pass's log-sum-exps.
  Matrix<T> attention_matrix(const Cache<T>& cache, Index h) const;
  // Whether the forward pass that made this cache streams.
  bool is_streaming(const Cache<T>& cache) const;
  Index heads() const { return proj_.heads; }
  // The number of tokens the score options fix, or 0 when any n is accepted.
  Index fixed_tokens() const { return std::max(scores_.key_bias.size(), scores_.positions.size()); }

 private:
  // The heads' part of the derivatives, between the transformed [Q K V] and the heads' outputs O
  // (n × H·k_v), without the projections: d[QKV] ↦ dO and dO ↦ d[QKV].
  Matrix<T> head_jvp(const Cache<T>& cache, const Matrix<T>& dqkv) const;
  Matrix<T> head_vjp(const Cache<T>& cache, const Matrix<T>& dO) const;
  // dX ↦ d[QKV] after the projections and the QK transform, and its adjoint.
  Matrix<T> qkv_tangent(const Cache<T>& cache, const Matrix<T>& dX) const;
  Matrix<T> qkv_cotangent(const Cache<T>& cache, Matrix<T> dqkv) const;
  // Streaming halves of head_jvp / head_vjp (docs/theory.md §8).
  Matrix<T> streaming_jvp(const Cache<T>& cache, const Matrix<T>& dqkv) const;
  Matrix<T> streaming_vjp(const Cache<T>& cache, const Matrix<T>& dO) const;

  Projections<T> proj_;
  QkTransform<T> transform_;
  AttentionMemory memory_;
  ScoreOptions scores_;
  bool causal_;
  // W_OᵀW_O (H·k_v × H·k_v), used when it makes normal_product cheaper (H·k_v < 2·d_out). Computed on
  // the first normal_product: an attention inside a composed map is never asked for one (§2.5).
  // Shared, so that copies of the map share it too.
  struct LazyGram {
    std::once_flag once;
    Matrix<T> value;
  };
  bool use_w_o_gram_ = false;
  std::shared_ptr<LazyGram> w_o_gram_ = std::make_shared<LazyGram>();
};

}  // namespace lipattn
