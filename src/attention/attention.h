// Multi-head softmax self-attention with analytic jvp and vjp (docs/theory.md §2).
#pragma once

#include <limits>
#include <optional>

#include "attention/map.h"
#include "attention/memory.h"

namespace lipattn {

// Parameters in float64, in nn.Linear layout (out, in). Empty vectors/matrices mean "absent".
// Head h uses rows h·k..(h+1)·k of w_q and w_k and rows h·k_v..(h+1)·k_v of w_v, and columns
// h·k_v..(h+1)·k_v of w_o.
struct AttentionWeights {
  Index heads = 1;
  MatrixD w_q, w_k;  // (H·k) × d
  MatrixD w_v;       // (H·k_v) × d
  MatrixD w_o;       // d_out × (H·k_v), or empty: the heads' outputs are concatenated
  VectorD b_q, b_k, b_v, b_o;
  bool causal = false;
  // Scores are scale·⟨q_i, k_j⟩. NaN means the default 1/√k.
  double scale = std::numeric_limits<double>::quiet_NaN();

  // The paper's single head f(X)_i = Σ_j softmax_j(⟨A x_i, x_j⟩) V x_j: W_Q = A, W_K = I, scale 1.
  static AttentionWeights paper_form(const MatrixD& A, const MatrixD& V, bool causal = false);

  Index input_dim() const { return w_q.cols(); }
  Index key_dim() const { return w_q.rows() / heads; }    // k
  Index value_dim() const { return w_v.rows() / heads; }  // k_v
  Index output_dim() const { return w_o.size() ? w_o.rows() : w_v.rows(); }
  double effective_scale() const;

  // Throws InputError naming the tensor (q.weight, k.weight, ...) whose shape does not fit.
  void validate() const;
  // The map of head h alone: its Q, K, V slices and, when W_O is present, its W_O column block.
  AttentionWeights head(Index h) const;
};

template <class T>
class MultiHeadAttention final : public Map<T> {
 public:
  // `memory` decides, per forward pass, whether the n × n attention matrices are stored or
  // streamed (docs/theory.md §8); both give the same derivatives to rounding.
  explicit MultiHeadAttention(const AttentionWeights& weights, const AttentionMemory& memory = {});
  Index input_dim() const override { return d_; }
  Index output_dim() const override { return d_out_; }
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
  Matrix<T> streaming_jvp(const Cache<T>& cache, const Matrix<T>& dX) const;
  Matrix<T> streaming_vjp(const Cache<T>& cache, const Matrix<T>& dO) const;

  Index heads_, d_, k_, kv_, d_out_;
  AttentionMemory memory_;
  bool causal_;
  T scale_;
  Matrix<T> w_qkv_;  // [W_Q; W_K; W_V], (2H·k + H·k_v) × d: one GEMM gives Q, K and V
  Vector<T> b_qkv_;
  Matrix<T> w_o_;
  Vector<T> b_o_;
  // W_OᵀW_O (H·k_v × H·k_v) when it makes normal_product cheaper (H·k_v < 2·d_out), else empty.
  Matrix<T> w_o_gram_;
};

}  // namespace lipattn
