// An attention layer's parameters: as read (float64, nn.Linear layout) and as computed with
// (Projections<T>, packed, in the working precision).
#pragma once

#include <limits>

#include <optional>

#include "attention/norm.h"
#include "common/types.h"

namespace lipattn {

// Rotary position embeddings (docs/theory.md §2.6): q_i and k_i are rotated pair by pair by the
// angles i·θ_j, θ_j = theta^(−2j/k). The two conventions pair different coordinates of a head:
enum class RopeStyle {
  None,
  Interleaved,  // llama2.c / Meta: pairs (2j, 2j+1)
  RotateHalf,   // Hugging Face: pairs (j, j + k/2)
};
std::string to_string(RopeStyle style);  // "none" | "interleaved" | "rotate_half"
RopeStyle parse_rope_style(const std::string& name);  // throws InputError

struct Rotary {
  RopeStyle style = RopeStyle::None;
  double theta = 10000.0;
  bool enabled() const { return style != RopeStyle::None; }
};

// Parameters in float64, in nn.Linear layout (out, in). Empty vectors/matrices mean "absent".
// Query head h uses rows h·k..(h+1)·k of w_q and columns h·k_v..(h+1)·k_v of w_o; it reads the
// K/V head g = ⌊h / (H / H_kv)⌋: rows g·k..(g+1)·k of w_k and g·k_v..(g+1)·k_v of w_v.
struct AttentionWeights {
  Index heads = 1;
  Index kv_heads = 0;  // H_kv, grouped K/V heads (GQA; 1 is MQA); 0 means H_kv = H
  MatrixD w_q;       // (H·k) × d
  MatrixD w_k;       // (H_kv·k) × d
  MatrixD w_v;       // (H_kv·k_v) × d
  MatrixD w_o;       // d_out × (H·k_v), or empty: the heads' outputs are concatenated
  VectorD b_q, b_k, b_v, b_o;
  bool causal = false;
  // Scores are scale·⟨q_i, k_j⟩. NaN means the default 1/√k.
  double scale = std::numeric_limits<double>::quiet_NaN();
  Rotary rope;  // applied to q and k after the projection (and after QK-norm)
  // QK-norm (OLMo-2, Qwen3): an RMSNorm of each head's q and of each K/V head's k, γ of width k,
  // shared by the heads, before RoPE. Absent: no QK-norm.
  std::optional<NormWeights> q_norm, k_norm;

  // The paper's single head f(X)_i = Σ_j softmax_j(⟨A x_i, x_j⟩) V x_j: W_Q = A, W_K = I, scale 1.
  static AttentionWeights paper_form(const MatrixD& A, const MatrixD& V, bool causal = false);

  Index input_dim() const { return w_q.cols(); }
  Index kv_head_count() const { return kv_heads > 0 ? kv_heads : heads; }  // H_kv
  Index key_dim() const { return w_q.rows() / heads; }              // k
  Index value_dim() const { return w_v.rows() / kv_head_count(); }  // k_v
  Index output_dim() const { return w_o.size() ? w_o.rows() : heads * value_dim(); }
  double effective_scale() const;

  // Throws InputError naming the tensor (q.weight, k.weight, ...) whose shape does not fit.
  void validate() const;
  // The map of head h alone: its Q, K, V slices and, when W_O is present, its W_O column block.
  AttentionWeights head(Index h) const;
};

// The linear parts of a multi-head attention layer in the working precision T (docs/theory.md
// §2.1): W_Q, W_K and W_V packed into one (H·k + H_kv·k + H_kv·k_v) × d matrix, so one GEMM gives
// Q, K and V of every head, and W_O.
template <class T>
struct Projections {
  Index heads, groups, d, k, kv, d_out;  // groups = H_kv; k: key width, kv: value width per head
  T scale;                               // scores are scale·⟨q_i, k_j⟩
  Matrix<T> w_qkv;                       // [W_Q; W_K; W_V], (H·k + H_kv·k + H_kv·k_v) × d
  Vector<T> b_qkv;                       // empty: no biases
  Matrix<T> w_o;                         // d_out × H·k_v, or empty: the heads' outputs are concatenated
  Vector<T> b_o;

  explicit Projections(const AttentionWeights& w);

  // The K/V head that query head h reads (GQA: H / H_kv consecutive query heads share one).
  Index group_of(Index h) const { return h / (heads / groups); }
  Index qkv_width() const { return w_qkv.rows(); }

  // qkv = X W_qkvᵀ + b_qkv, n × (H·k + H_kv·k + H_kv·k_v): [Q_1..Q_H K_1..K_Hkv V_1..V_Hkv].
  Matrix<T> qkv(const MatrixView<T>& X) const {
    Matrix<T> m = qkv_tangent(X);
    if (b_qkv.size()) m.rowwise() += b_qkv.transpose();
    return m;
  }
  // The linear maps' own derivatives (§2.2, §2.3): [dQ dK dV] = dX W_qkvᵀ and back, dX = [..] W_qkv.
  Matrix<T> qkv_tangent(const MatrixView<T>& dX) const {
    Matrix<T> m;
    m.noalias() = dX * w_qkv.transpose();
    return m;
  }
  Matrix<T> qkv_cotangent(const Matrix<T>& dqkv) const {
    Matrix<T> m;
    m.noalias() = dqkv * w_qkv;
    return m;
  }

  // Columns of qkv or of any of its tangents (a view, const if m is): query head h's Q, and K/V
  // head g's K and V (g = group_of(h) for the K and V that query head h reads).
  template <class M>
  auto q_of(M& m, Index h) const { return m.middleCols(h * k, k); }
  template <class M>
  auto k_of(M& m, Index g) const { return m.middleCols((heads + g) * k, k); }
  template <class M>
  auto v_of(M& m, Index g) const { return m.middleCols((heads + groups) * k + g * kv, kv); }
  template <class M>
  auto queries(M& m) const { return m.leftCols(heads * k); }
  template <class M>
  auto keys(M& m) const { return m.middleCols(heads * k, groups * k); }

  // The layer's output from the heads' outputs O (n × H·k_v): O W_Oᵀ + b_o, or O without W_O.
  Matrix<T> output(Matrix<T> O) const {
    if (!w_o.size()) return O;
    Matrix<T> Y = output_tangent(O);
    if (b_o.size()) Y.rowwise() += b_o.transpose();
    return Y;
  }
  // Its derivatives: dY = dO W_Oᵀ and dO = dY W_O (each the identity without W_O).
  Matrix<T> output_tangent(Matrix<T> dO) const {
    if (!w_o.size()) return dO;
    Matrix<T> dY;
    dY.noalias() = dO * w_o.transpose();
    return dY;
  }
  Matrix<T> output_cotangent(Matrix<T> dY) const {
    if (!w_o.size()) return dY;
    Matrix<T> dO;
    dO.noalias() = dY * w_o;
    return dO;
  }
};

}  // namespace lipattn
