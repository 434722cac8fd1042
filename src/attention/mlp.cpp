// The MLP sub-block, token by token (docs/theory.md §9). With z = X W_stackᵀ + b_stack the
// pre-activations (z = a, or z = [g a] when gated) and H the hidden layer (act(a), or act(g) ⊙ a):
//   jvp: dz = dX W_stackᵀ, dH = S ⊙ dz (gated: S_g ⊙ dg + S_a ⊙ da), dY = dH W_outᵀ;
//   vjp: dH = dY W_out, dz = S ⊙ dH (gated: [S_g ⊙ dH, S_a ⊙ dH]), dX = dz W_stack;
// where S = ∂H/∂z is cached: act′(a), or S_g = act′(g) ⊙ a and S_a = act(g).
#include "attention/mlp.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/error.h"
#include "common/parallel.h"

namespace lipattn {

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::GeluErf:
      return "gelu";
    case Activation::GeluTanh:
      return "gelu_new";
    case Activation::Relu:
      return "relu";
    case Activation::Silu:
      return "silu";
    case Activation::QuickGelu:
      return "quick_gelu";
    case Activation::Tanh:
      return "tanh";
  }
  return "gelu_new";
}

namespace {
void check_bias(const VectorD& bias, Index rows, const char* bias_name, const char* weight_name) {
  if (bias.size() != 0 && bias.size() != rows)
    throw InputError(
        fmt::format("{} has {} entries, expected {} (the rows of {})", bias_name, bias.size(), rows, weight_name));
}
}  // namespace

void MlpWeights::validate() const {
  if (w_in.size() == 0) throw InputError("mlp.in.weight is empty: the MLP needs its input projection");
  if (w_out.size() == 0) throw InputError("mlp.out.weight is empty: the MLP needs its output projection");
  check_bias(b_in, w_in.rows(), "mlp.in.bias", "mlp.in.weight");
  if (gated() && (w_gate.rows() != w_in.rows() || w_gate.cols() != w_in.cols()))
    throw InputError(fmt::format("mlp.gate.weight is {}×{}, expected {}×{} like mlp.in.weight", w_gate.rows(),
                                 w_gate.cols(), w_in.rows(), w_in.cols()));
  if (!gated() && b_gate.size() != 0) throw InputError("mlp.gate.bias is given without mlp.gate.weight");
  check_bias(b_gate, w_in.rows(), "mlp.gate.bias", "mlp.gate.weight");
  if (w_out.cols() != w_in.rows())
    throw InputError(
        fmt::format("mlp.out.weight has {} columns, expected the hidden width {} (the rows of mlp.in.weight)",
                    w_out.cols(), w_in.rows()));
  check_bias(b_out, w_out.rows(), "mlp.out.bias", "mlp.out.weight");
}

namespace {
template <class T>
struct MlpCache : Cache<T> {
  Matrix<T> pre;    // z: a (n × h), or [g a] (n × 2h) when gated
  Matrix<T> slope;  // S = ∂H/∂z: act′(a), or [act′(g) ⊙ a, act(g)]
};

// dH = S ⊙ dz, summed over the gate and in halves when gated.
template <class T>
Matrix<T> hidden_tangent(const Matrix<T>& slope, const Matrix<T>& dz, bool gated) {
  if (!gated) return slope.cwiseProduct(dz);
  const Index h = slope.cols() / 2;
  Matrix<T> dH = slope.leftCols(h).cwiseProduct(dz.leftCols(h));
  dH += slope.rightCols(h).cwiseProduct(dz.rightCols(h));
  return dH;
}

// Its transpose: dz = S ⊙ [dH dH] when gated.
template <class T>
Matrix<T> pre_cotangent(const Matrix<T>& slope, const Matrix<T>& dH, bool gated) {
  if (!gated) return slope.cwiseProduct(dH);
  const Index h = dH.cols();
  Matrix<T> dz(dH.rows(), 2 * h);
  dz.leftCols(h) = slope.leftCols(h).cwiseProduct(dH);
  dz.rightCols(h) = slope.rightCols(h).cwiseProduct(dH);
  return dz;
}
}  // namespace

template <class T>
Mlp<T>::Mlp(const MlpWeights& w) : activation_(w.activation), gated_(w.gated()) {
  w.validate();
  const Index h = w.hidden_dim();
  w_stack_.resize(gated_ ? 2 * h : h, w.input_dim());
  if (gated_) {
    convert_rows(w_stack_.topRows(h), w.w_gate);
    convert_rows(w_stack_.bottomRows(h), w.w_in);
    if (w.b_gate.size() || w.b_in.size()) {
      b_stack_ = Vector<T>::Zero(2 * h);
      if (w.b_gate.size()) b_stack_.head(h) = w.b_gate.cast<T>();
      if (w.b_in.size()) b_stack_.tail(h) = w.b_in.cast<T>();
    }
  } else {
    convert_rows(w_stack_, w.w_in);
    if (w.b_in.size()) b_stack_ = w.b_in.cast<T>();
  }
  w_out_.resize(w.w_out.rows(), w.w_out.cols());
  convert_rows(w_out_, w.w_out);
  if (w.b_out.size()) b_out_ = w.b_out.cast<T>();
}

template <class T>
std::string Mlp<T>::describe() const {
  return fmt::format("mlp({}{}, d={}, hidden={}, out={})", gated_ ? "gated " : "", to_string(activation_), input_dim(),
                     hidden_dim(), output_dim());
}

// H and S from z, token by token over row chunks in parallel: gelu_new's tanh costs about 12 ns an
// element, a sixth of a whole GPT-2's float64 forward pass at n = 128 (docs/performance.md, "Session
// 11"). Elementwise, so any number of threads gives the same bits.
template <class T>
void Mlp<T>::activate(const Matrix<T>& pre, Matrix<T>& hidden, Matrix<T>& slope) const {
  const Index n = pre.rows(), h = hidden_dim();
  hidden.resize(n, h);
  slope.resize(n, pre.cols());
  const Index chunk_rows = std::max<Index>(1, kActivationChunk / std::max<Index>(h, 1));
  for_fixed_chunks(n, chunk_rows, [&](Index r0, Index len, Index) {
    for (Index i = r0; i < r0 + len; ++i)
      for (Index j = 0; j < h; ++j) {
        if (!gated_) {
          const ActivationPoint<T> p = activation_with_slope(pre(i, j), activation_);
          hidden(i, j) = p.value;
          slope(i, j) = p.slope;
        } else {  // S_g = act′(g) ⊙ a, S_a = act(g), H = act(g) ⊙ a
          const T a = pre(i, h + j);
          const ActivationPoint<T> p = activation_with_slope(pre(i, j), activation_);
          slope(i, j) = p.slope * a;
          slope(i, h + j) = p.value;
          hidden(i, j) = p.value * a;
        }
      }
  });
}

template <class T>
std::unique_ptr<Cache<T>> Mlp<T>::forward(const MatrixView<T>& X) const {
  if (X.cols() != input_dim())
    throw InputError(fmt::format("the MLP expects {} features per token, the input has {}", input_dim(), X.cols()));
  auto cache = std::make_unique<MlpCache<T>>();
  cache->pre.noalias() = X * w_stack_.transpose();
  if (b_stack_.size()) cache->pre.rowwise() += b_stack_.transpose();
  Matrix<T> hidden;
  activate(cache->pre, hidden, cache->slope);
  cache->output.noalias() = hidden * w_out_.transpose();
  if (b_out_.size()) cache->output.rowwise() += b_out_.transpose();
  return cache;
}

template <class T>
Matrix<T> Mlp<T>::jvp(const Cache<T>& cache_base, const Matrix<T>& dX) const {
  const auto& cache = static_cast<const MlpCache<T>&>(cache_base);
  Matrix<T> dz;
  dz.noalias() = dX * w_stack_.transpose();
  Matrix<T> dY;
  dY.noalias() = hidden_tangent(cache.slope, dz, gated_) * w_out_.transpose();
  return dY;
}

template <class T>
Matrix<T> Mlp<T>::vjp(const Cache<T>& cache_base, const Matrix<T>& dY) const {
  const auto& cache = static_cast<const MlpCache<T>&>(cache_base);
  Matrix<T> dH;
  dH.noalias() = dY * w_out_;
  Matrix<T> dX;
  dX.noalias() = pre_cotangent(cache.slope, dH, gated_) * w_stack_;
  return dX;
}

// φ = ⟨u, Df(X) v⟩ = ⟨Ū, dH⟩ with Ū = u W_out and dz = v W_stackᵀ fixed; its gradient in z, pulled
// back through W_stack (docs/theory.md §9.3):
//   ungated: ∂φ/∂a = Ū ⊙ act″(a) ⊙ da;
//   gated:   ∂φ/∂g = Ū ⊙ (act″(g) ⊙ a ⊙ dg + act′(g) ⊙ da),  ∂φ/∂a = Ū ⊙ act′(g) ⊙ dg.
template <class T>
Matrix<T> Mlp<T>::second_order(const Cache<T>& cache_base, const Matrix<T>& v, const Matrix<T>& u) const {
  const auto& cache = static_cast<const MlpCache<T>&>(cache_base);
  Matrix<T> dz, U;
  dz.noalias() = v * w_stack_.transpose();
  U.noalias() = u * w_out_;
  const Index h = hidden_dim();
  const auto curvature = [this](T x) { return activation_second_derivative(x, activation_); };
  Matrix<T> grad(v.rows(), w_stack_.rows());
  if (!gated_) {
    grad = U.cwiseProduct(cache.pre.unaryExpr(curvature)).cwiseProduct(dz);
  } else {
    const auto g = cache.pre.leftCols(h), a = cache.pre.rightCols(h);
    const auto dg = dz.leftCols(h), da = dz.rightCols(h);
    const Matrix<T> slope = g.unaryExpr([this](T x) { return activation_derivative(x, activation_); });
    grad.leftCols(h) = U.cwiseProduct(g.unaryExpr(curvature).cwiseProduct(a).cwiseProduct(dg) + slope.cwiseProduct(da));
    grad.rightCols(h) = U.cwiseProduct(slope).cwiseProduct(dg);
  }
  Matrix<T> out;
  out.noalias() = grad * w_stack_;
  return out;
}

template class Mlp<double>;
template class Mlp<float>;

}  // namespace lipattn
