// QK-norm and RoPE on the Q and K columns of qkv. Formulas: docs/theory.md §2.6.
//   forward:   q ← R_i · norm_q(q) per query head, k ← R_i · norm_k(k) per K/V head
//   tangent:   dq ← R_i · Dnorm_q · dq           cotangent: g ← Dnorm_qᵀ · R_iᵀ · g
//   second order: ∇_raw ⟨c, R N′(raw) t⟩ = N.second_order(t, Rᵀc) (R does not depend on X)
#include "attention/qk_transform.h"

#include <cmath>

#include <fmt/core.h>

namespace lipattn {

template <class T>
QkTransform<T>::QkTransform(const AttentionWeights& w)
    : heads_(w.heads), groups_(w.kv_head_count()), k_(w.key_dim()), rope_(w.rope) {
  if (w.q_norm) q_norm_.emplace(*w.q_norm);
  if (w.k_norm) k_norm_.emplace(*w.k_norm);
}

template <class T>
std::string QkTransform<T>::describe() const {
  std::string s;
  if (q_norm_) s += ", QK-norm";
  if (rope_.enabled()) s += fmt::format(", RoPE({}, θ={:g})", to_string(rope_.style), rope_.theta);
  return s;
}

template <class T>
Matrix<T> QkTransform<T>::stack_heads(const Matrix<T>& m, Index first_col, Index count) const {
  Matrix<T> block = m.middleCols(first_col, count * k_);  // row-major: token i's heads are contiguous
  return Eigen::Map<const Matrix<T>>(block.data(), m.rows() * count, k_);
}

template <class T>
void QkTransform<T>::unstack_heads(const Matrix<T>& stacked, Matrix<T>& m, Index first_col, Index count) const {
  m.middleCols(first_col, count * k_) = Eigen::Map<const Matrix<T>>(stacked.data(), m.rows(), count * k_);
}

// Pair j of a head is (2j, 2j+1) interleaved (llama2.c) or (j, j + k/2) rotate-half (Hugging Face);
// both turn by the angle i·θ_j, θ_j = theta^(−2j/k) (§2.6).
template <class T>
template <class Cols>
void QkTransform<T>::rotate(Cols&& m, const State& state, bool inverse) const {
  const Index n = m.rows(), half = k_ / 2, count = m.cols() / k_;
  const bool interleaved = rope_.style == RopeStyle::Interleaved;
  for (Index i = 0; i < n; ++i) {
    for (Index h = 0; h < count; ++h) {
      for (Index j = 0; j < half; ++j) {
        const Index a = h * k_ + (interleaved ? 2 * j : j), b = h * k_ + (interleaved ? 2 * j + 1 : j + half);
        const T c = state.cos(i, j), s = inverse ? -state.sin(i, j) : state.sin(i, j);
        const T x = m(i, a), y = m(i, b);
        m(i, a) = x * c - y * s;
        m(i, b) = x * s + y * c;
      }
    }
  }
}

template <class T>
void QkTransform<T>::forward(Matrix<T>& qkv, State& state) const {
  const Index n = qkv.rows();
  if (q_norm_) {
    state.q_norm = q_norm_->forward(stack_heads(qkv, 0, heads_));
    state.k_norm = k_norm_->forward(stack_heads(qkv, heads_ * k_, groups_));
    unstack_heads(state.q_norm->output, qkv, 0, heads_);
    unstack_heads(state.k_norm->output, qkv, heads_ * k_, groups_);
  }
  if (!rope_.enabled()) return;
  const Index half = k_ / 2;
  state.cos.resize(n, half);
  state.sin.resize(n, half);
  for (Index j = 0; j < half; ++j) {
    const double theta_j = std::pow(rope_.theta, -2.0 * static_cast<double>(j) / static_cast<double>(k_));
    for (Index i = 0; i < n; ++i) {
      const double angle = static_cast<double>(i) * theta_j;
      state.cos(i, j) = static_cast<T>(std::cos(angle));
      state.sin(i, j) = static_cast<T>(std::sin(angle));
    }
  }
  rotate(qkv.leftCols((heads_ + groups_) * k_), state, false);
}

template <class T>
void QkTransform<T>::tangent(Matrix<T>& dqkv, const State& state) const {
  if (q_norm_) {
    unstack_heads(q_norm_->jvp(*state.q_norm, stack_heads(dqkv, 0, heads_)), dqkv, 0, heads_);
    unstack_heads(k_norm_->jvp(*state.k_norm, stack_heads(dqkv, heads_ * k_, groups_)), dqkv, heads_ * k_, groups_);
  }
  if (rope_.enabled()) rotate(dqkv.leftCols((heads_ + groups_) * k_), state, false);
}

template <class T>
void QkTransform<T>::cotangent(Matrix<T>& dqkv, const State& state) const {
  if (rope_.enabled()) rotate(dqkv.leftCols((heads_ + groups_) * k_), state, true);
  if (q_norm_) {
    unstack_heads(q_norm_->vjp(*state.q_norm, stack_heads(dqkv, 0, heads_)), dqkv, 0, heads_);
    unstack_heads(k_norm_->vjp(*state.k_norm, stack_heads(dqkv, heads_ * k_, groups_)), dqkv, heads_ * k_, groups_);
  }
}

template <class T>
Matrix<T> QkTransform<T>::second_order(const State& state, const Matrix<T>& t, const Matrix<T>& c) const {
  Matrix<T> grad = Matrix<T>::Zero(t.rows(), t.cols());
  if (!q_norm_) return grad;
  Matrix<T> back = c;  // Rᵀ c
  if (rope_.enabled()) rotate(back.leftCols((heads_ + groups_) * k_), state, true);
  unstack_heads(q_norm_->second_order(*state.q_norm, stack_heads(t, 0, heads_), stack_heads(back, 0, heads_)), grad,
                0, heads_);
  const Index k0 = heads_ * k_;
  unstack_heads(
      k_norm_->second_order(*state.k_norm, stack_heads(t, k0, groups_), stack_heads(back, k0, groups_)), grad, k0,
      groups_);
  return grad;
}

template class QkTransform<double>;
template class QkTransform<float>;

}  // namespace lipattn
