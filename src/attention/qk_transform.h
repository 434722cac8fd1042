// The per-token maps between the projections and the scores (docs/theory.md §2.6): QK-norm (an
// RMSNorm of each query head's q and each K/V head's k, OLMo-2 / Qwen3), then rotary position
// embeddings (q_i and k_i rotated by the angles i·θ_j). They act on the Q and K columns of qkv; the V
// columns pass through. RoPE is linear and orthogonal per token, so its jvp rotates by i·θ_j and its
// vjp by −i·θ_j; QK-norm's derivatives are the norm's (§3).
#pragma once

#include <memory>
#include <optional>

#include "attention/norm.h"
#include "attention/weights.h"

namespace lipattn {

template <class T>
class QkTransform {
 public:
  explicit QkTransform(const AttentionWeights& w);
  bool identity() const { return !rope_.enabled() && !q_norm_; }
  std::string describe() const;  // "", or ", RoPE(interleaved, θ=10000)", ", QK-norm" …

  // What forward leaves for the derivatives: the norms' caches and the rotation table.
  struct State {
    std::unique_ptr<Cache<T>> q_norm, k_norm;
    Matrix<T> cos, sin;  // n × k/2: cos(i·θ_j), sin(i·θ_j)
  };

  // In place on qkv (n × qkv_width): the Q and K columns are replaced by their transform.
  void forward(Matrix<T>& qkv, State& state) const;
  // In place on a tangent [dQ dK dV] of the raw qkv: J·, then on a cotangent of the transformed
  // qkv: Jᵀ· (docs/theory.md §2.6).
  void tangent(Matrix<T>& dqkv, const State& state) const;
  void cotangent(Matrix<T>& dqkv, const State& state) const;
  // ∇_raw ⟨c, J(raw) t⟩ for a raw tangent t and a cotangent c of the transformed qkv: the QK-norm's
  // second order (RoPE is linear and contributes nothing). Zero without QK-norm.
  Matrix<T> second_order(const State& state, const Matrix<T>& t, const Matrix<T>& c) const;

 private:
  // Rotates the head slices (width k) of `cols` columns of m by +angle (forward) or −angle.
  template <class Cols>
  void rotate(Cols&& cols, const State& state, bool inverse) const;
  // Each head's slice of Q (or K) as rows of an (n·heads) × k matrix, and back.
  Matrix<T> stack_heads(const Matrix<T>& m, Index first_col, Index count) const;
  void unstack_heads(const Matrix<T>& stacked, Matrix<T>& m, Index first_col, Index count) const;

  Index heads_, groups_, k_;
  Rotary rope_;
  std::optional<Norm<T>> q_norm_, k_norm_;
};

}  // namespace lipattn
