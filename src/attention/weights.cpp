// An attention layer's parameters: validation, head slicing, and their packing in the working
// precision (docs/theory.md §2.1).
#include "attention/weights.h"

#include <cmath>

#include <fmt/core.h>

#include "common/error.h"
#include "common/parallel.h"

namespace lipattn {

AttentionWeights AttentionWeights::paper_form(const MatrixD& A, const MatrixD& V, bool causal) {
  if (A.rows() != A.cols())
    throw InputError(fmt::format("tensor 'A' must be square (d × d), got {} × {}", A.rows(), A.cols()));
  if (V.cols() != A.cols())
    throw InputError(fmt::format("tensor 'V' must be (d_v × d) with d = {} (from 'A'), got {} × {}",
                                 A.cols(), V.rows(), V.cols()));
  AttentionWeights w;
  w.heads = 1;
  w.w_q = A;  // q_i = A x_i
  w.w_k = MatrixD::Identity(A.rows(), A.cols());  // k_j = x_j, so S_ij = ⟨A x_i, x_j⟩
  w.w_v = V;
  w.causal = causal;
  w.scale = 1.0;  // the paper's A already holds the temperature
  return w;
}

double AttentionWeights::effective_scale() const {
  return std::isnan(scale) ? 1.0 / std::sqrt(static_cast<double>(key_dim())) : scale;
}

std::string to_string(RopeStyle style) {
  switch (style) {
    case RopeStyle::None: return "none";
    case RopeStyle::Interleaved: return "interleaved";
    case RopeStyle::RotateHalf: return "rotate_half";
  }
  return "none";
}

RopeStyle parse_rope_style(const std::string& name) {
  if (name == "none") return RopeStyle::None;
  if (name == "interleaved") return RopeStyle::Interleaved;
  if (name == "rotate_half") return RopeStyle::RotateHalf;
  throw InputError(fmt::format("rotary style must be none, interleaved or rotate_half, got '{}'", name));
}

void AttentionWeights::validate() const {
  if (heads < 1) throw InputError(fmt::format("heads must be at least 1, got {}", heads), "heads");
  if (kv_heads < 0 || (kv_heads > 0 && heads % kv_heads != 0))
    throw InputError(fmt::format("kv_heads = {} must divide the {} query heads", kv_heads, heads), "kv_heads");
  const Index groups = kv_head_count();
  if (w_q.size() == 0) throw InputError("tensor 'q.weight' is empty or missing");
  const Index d = w_q.cols();
  if (w_q.rows() % heads != 0)
    throw InputError(fmt::format("tensor 'q.weight' has {} rows, not a multiple of heads = {}", w_q.rows(), heads),
                     "heads");
  const Index k = w_q.rows() / heads;
  if (w_k.rows() != groups * k || w_k.cols() != d)
    throw InputError(fmt::format("tensor 'k.weight' must be ({} × {}): {} K/V heads of width {}, got {} × {}",
                                 groups * k, d, groups, k, w_k.rows(), w_k.cols()));
  if (w_v.cols() != d || w_v.rows() == 0 || w_v.rows() % groups != 0)
    throw InputError(fmt::format("tensor 'v.weight' must be (H_kv·k_v × {}) with H_kv = {}, got {} × {}", d, groups,
                                 w_v.rows(), w_v.cols()));
  auto check_bias = [](const VectorD& b, Index size, const char* name) {
    if (b.size() != 0 && b.size() != size)
      throw InputError(fmt::format("tensor '{}' must have {} entries, got {}", name, size, b.size()));
  };
  check_bias(b_q, w_q.rows(), "q.bias");
  check_bias(b_k, w_k.rows(), "k.bias");
  check_bias(b_v, w_v.rows(), "v.bias");
  if (w_o.size() != 0) {
    if (w_o.cols() != heads * value_dim())
      throw InputError(fmt::format("tensor 'o.weight' must be (d_out × {}): H·k_v columns, got {} × {}",
                                   heads * value_dim(), w_o.rows(), w_o.cols()));
    check_bias(b_o, w_o.rows(), "o.bias");
  } else if (b_o.size() != 0) {
    throw InputError("tensor 'o.bias' is given without 'o.weight'");
  }
  if (!(effective_scale() > 0) || !std::isfinite(effective_scale()))
    throw InputError(fmt::format("attention scale must be positive and finite, got {}", effective_scale()));
  if (rope.enabled() && (k % 2 != 0 || !(rope.theta > 1) || !std::isfinite(rope.theta)))
    throw InputError(fmt::format("rotary embeddings need an even head width and theta > 1, got k = {}, theta = {}", k,
                                 rope.theta));
  if (q_norm.has_value() != k_norm.has_value())
    throw InputError("QK-norm needs both tensors 'q_norm.weight' and 'k_norm.weight'");
  if (q_norm && (q_norm->gamma.size() != k || k_norm->gamma.size() != k))
    throw InputError(fmt::format("tensors 'q_norm.weight' and 'k_norm.weight' must have k = {} entries, got {} and {}",
                                 k, q_norm->gamma.size(), k_norm->gamma.size()));
}

AttentionWeights AttentionWeights::head(Index h) const {
  if (h < 0 || h >= heads)
    throw InputError(fmt::format("head {} is out of range: the layer has {} heads (0..{})", h, heads, heads - 1),
                     "head");
  const Index k = key_dim(), kv = value_dim();
  const Index g = h / (heads / kv_head_count());  // the K/V head query head h reads
  AttentionWeights one;
  one.heads = 1;
  one.w_q = w_q.middleRows(h * k, k);
  one.w_k = w_k.middleRows(g * k, k);
  one.w_v = w_v.middleRows(g * kv, kv);
  if (b_q.size()) one.b_q = b_q.segment(h * k, k);
  if (b_k.size()) one.b_k = b_k.segment(g * k, k);
  if (b_v.size()) one.b_v = b_v.segment(g * kv, kv);
  one.rope = rope;
  one.q_norm = q_norm;
  one.k_norm = k_norm;
  if (w_o.size()) one.w_o = w_o.middleCols(h * kv, kv);
  one.b_o = b_o;  // a constant shift: it does not change the Jacobian
  one.causal = causal;
  one.scale = effective_scale();  // 1/√k of the full layer's k, which is the head's k too
  return one;
}

template <class T>
Projections<T>::Projections(const AttentionWeights& w) {
  w.validate();
  heads = w.heads;
  groups = w.kv_head_count();
  d = w.input_dim();
  k = w.key_dim();
  kv = w.value_dim();
  d_out = w.output_dim();
  scale = static_cast<T>(w.effective_scale());
  w_qkv.resize(heads * k + groups * (k + kv), d);
  convert_rows(w_qkv.topRows(heads * k), w.w_q);
  convert_rows(w_qkv.middleRows(heads * k, groups * k), w.w_k);
  convert_rows(w_qkv.bottomRows(groups * kv), w.w_v);
  if (w.b_q.size() || w.b_k.size() || w.b_v.size()) {
    b_qkv = Vector<T>::Zero(w_qkv.rows());
    if (w.b_q.size()) b_qkv.segment(0, heads * k) = w.b_q.cast<T>();
    if (w.b_k.size()) b_qkv.segment(heads * k, groups * k) = w.b_k.cast<T>();
    if (w.b_v.size()) b_qkv.segment((heads + groups) * k, groups * kv) = w.b_v.cast<T>();
  }
  if (w.w_o.size()) {
    w_o.resize(w.w_o.rows(), w.w_o.cols());
    convert_rows(w_o, w.w_o);
  }
  if (w.b_o.size()) b_o = w.b_o.cast<T>();
}

template struct Projections<double>;
template struct Projections<float>;

}  // namespace lipattn
