// Multi-head softmax self-attention with analytic jvp and vjp (docs/theory.md §2).
#pragma once

#include "attention/map.h"
#include "attention/memory.h"
#include "attention/weights.h"

namespace lipattn {

template <class T>
class MultiHeadAttention final : public Map<T> {
 public:
  // `memory` decides, per forward pass, whether the n × n attention matrices are stored or
  // streamed (docs/theory.md §8); both give the same derivatives to rounding.
  explicit MultiHeadAttention(const AttentionWeights& weights, const AttentionMemory& memory = {});
  Index input_dim() const override { return proj_.d; }
  Index output_dim() const override { return proj_.d_out; }
  std::string describe() const override;
  std::unique_ptr<Cache<T>> forward(const Matrix<T>& X) const override;
  Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const override;
  Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const override;
  Matrix<T> second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const override;
  // JᵀJ dX with W_OᵀW_O applied once (docs/theory.md §2.5).
  Matrix<T> normal_product(const Cache<T>& cache, const Matrix<T>& dX) const override;

  // The attention matrix of head h at the cached input (n × n, rows sum to 1). Stored mode only:
  // a streaming cache throws InputError.
  const Matrix<T>& attention_matrix(const Cache<T>& cache, Index h) const;
  // Whether the forward pass that made this cache streams.
  bool is_streaming(const Cache<T>& cache) const;

 private:
  // The heads' part of the derivatives, without W_O: dX ↦ dO (n × H·k_v) and dO ↦ dX.
  Matrix<T> head_jvp(const Cache<T>& cache, const Matrix<T>& dX) const;
  Matrix<T> head_vjp(const Cache<T>& cache, const Matrix<T>& dO) const;
  // Streaming halves of those: [dQ dK dV] ↦ dO and dO ↦ [dQ dK dV] (docs/theory.md §8).
  Matrix<T> streaming_jvp(const Cache<T>& cache, const Matrix<T>& dqkv) const;
  Matrix<T> streaming_vjp(const Cache<T>& cache, const Matrix<T>& dO) const;

  Projections<T> proj_;
  AttentionMemory memory_;
  bool causal_;
  // W_OᵀW_O (H·k_v × H·k_v) when it makes normal_product cheaper (H·k_v < 2·d_out), else empty.
  Matrix<T> w_o_gram_;
};

}  // namespace lipattn
