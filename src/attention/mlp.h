// The transformer's MLP sub-block as a map (docs/theory.md §9): y = act(x W_inᵀ + b_in) W_outᵀ + b_out, or
// gated (SwiGLU and kin) y = (act(x W_gateᵀ + b_gate) ⊙ (x W_inᵀ + b_in)) W_outᵀ + b_out, token by token.
#pragma once

#include <cmath>
#include <numbers>
#include <string>

#include "attention/map.h"

namespace lipattn {

// The MLP activations transformers' ACT2FN offers that the supported models use.
enum class Activation {
  GeluErf,    // "gelu": x·Φ(x), the erf form (BERT)
  GeluTanh,   // "gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation (GPT-2)
  Relu,       // "relu"
  Silu,       // "silu", "swish": x·σ(x) (LLaMA's SwiGLU gate)
  QuickGelu,  // "quick_gelu": x·σ(1.702x)
  Tanh,       // "tanh"
};
std::string to_string(Activation activation);  // transformers' name: "gelu", "gelu_new", "relu", ...

// ---- The scalar activations and their first two derivatives (docs/theory.md §9.1) -------------
// One place for each formula: the Mlp map and the models' forward pass both call these. Every
// exponential has a non-positive argument and the products that could meet 0·∞ far out are cut
// short, so every finite x (up to |x| ≈ 1e308/1.702 for quick_gelu) gives finite values.

namespace activation_detail {
template <class T>
T sigmoid(T x) {  // σ(x) = 1/(1 + e^{−x}), evaluated on the side where the exponential is ≤ 1
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}
template <class T>
T normal_cdf(T x) {  // Φ(x) = ½ erfc(−x/√2): no cancellation in 1 + erf for negative x
  return T(0.5) * std::erfc(-x * static_cast<T>(std::numbers::sqrt2 / 2));
}
template <class T>
T normal_pdf(T x) {  // φ(x) = e^{−x²/2}/√(2π)
  return std::exp(T(-0.5) * x * x) * static_cast<T>(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
}
// gelu_new's inner argument u(x) = c (x + κ x³), c = √(2/π), κ = 0.044715.
inline constexpr double kGeluC = 0.7978845608028654;  // √(2/π)
inline constexpr double kGeluKappa = 0.044715;
inline constexpr double kQuickGeluBeta = 1.702;
template <class T>
T silu_slope(T x, T s) {  // silu′(x) = σ(x)(1 + x(1 − σ(x))), given s = σ(x)
  return s * (T(1) + x * (T(1) - s));
}
template <class T>
T silu_second_derivative(T x) {  // σ(x)(1 − σ(x))(2 + x(1 − 2σ(x)))
  const T s = sigmoid(x);
  return s * (T(1) - s) * (T(2) + x * (T(1) - T(2) * s));
}
}  // namespace activation_detail

// The activation and its slope at one point, sharing what both need (tanh(u) for gelu_new, σ for
// silu, Φ for gelu): the MLP's forward pass caches both at every pre-activation.
template <class T>
struct ActivationPoint {
  T value;  // act(x)
  T slope;  // act′(x)
};

template <class T>
ActivationPoint<T> activation_with_slope(T x, Activation activation) {
  namespace ad = activation_detail;
  switch (activation) {
    case Activation::GeluErf: {
      const T cdf = ad::normal_cdf(x);
      return {x * cdf, cdf + x * ad::normal_pdf(x)};
    }
    case Activation::GeluTanh: {  // ½x(1 + t) and ½(1 + t) + ½ x (1 − t²) u′, t = tanh(u)
      const T c = static_cast<T>(ad::kGeluC), kappa = static_cast<T>(ad::kGeluKappa);
      const T t = std::tanh(c * (x + kappa * x * x * x));
      const T value = T(0.5) * x * (T(1) + t);
      const T sech2 = T(1) - t * t;
      if (sech2 == T(0)) return {value, T(0.5) * (T(1) + t)};  // |u| past ~19: skip 0·∞ when x² overflows
      return {value, T(0.5) * (T(1) + t) + T(0.5) * x * sech2 * c * (T(1) + T(3) * kappa * x * x)};
    }
    case Activation::Relu:
      return {x > T(0) ? x : T(0), x > T(0) ? T(1) : T(0)};  // slope 0 at the kink, as autograd
    case Activation::Silu: {
      const T s = ad::sigmoid(x);
      return {x * s, ad::silu_slope(x, s)};
    }
    case Activation::QuickGelu: {  // q(x) = silu(βx)/β
      const T beta_x = static_cast<T>(ad::kQuickGeluBeta) * x, s = ad::sigmoid(beta_x);
      return {x * s, ad::silu_slope(beta_x, s)};
    }
    case Activation::Tanh: {
      const T t = std::tanh(x);
      return {t, T(1) - t * t};
    }
  }
  return {x, T(1)};
}

template <class T>
T apply_activation(T x, Activation activation) {
  return activation_with_slope(x, activation).value;
}

template <class T>
T activation_derivative(T x, Activation activation) {
  return activation_with_slope(x, activation).slope;
}

template <class T>
T activation_second_derivative(T x, Activation activation) {
  namespace ad = activation_detail;
  switch (activation) {
    case Activation::GeluErf: {  // φ(x)(2 − x²); φ underflows to 0 before x² overflows
      const T p = ad::normal_pdf(x);
      return p == T(0) ? T(0) : p * (T(2) - x * x);
    }
    case Activation::GeluTanh: {  // (1 − t²)(u′ − x t u′² + ½ x u″), u″ = 6cκx
      const T c = static_cast<T>(ad::kGeluC), kappa = static_cast<T>(ad::kGeluKappa);
      const T t = std::tanh(c * (x + kappa * x * x * x));
      const T sech2 = T(1) - t * t;
      if (sech2 == T(0)) return T(0);  // as in the first derivative: no 0·∞
      const T du = c * (T(1) + T(3) * kappa * x * x);
      return sech2 * (du - x * t * du * du + T(3) * c * kappa * x * x);
    }
    case Activation::Relu:
      return T(0);
    case Activation::Silu:
      return ad::silu_second_derivative(x);
    case Activation::QuickGelu: {
      const T beta = static_cast<T>(ad::kQuickGeluBeta);
      return beta * ad::silu_second_derivative(beta * x);
    }
    case Activation::Tanh: {
      const T t = std::tanh(x);
      return T(-2) * t * (T(1) - t * t);
    }
  }
  return T(0);
}

// ---- The map ---------------------------------------------------------------------------------

// Parameters in float64, nn.Linear layout (out, in). Empty means absent. With w_gate the MLP is
// gated: the activation applies to the gate and multiplies the "in" (LLaMA's up) projection.
struct MlpWeights {
  Activation activation = Activation::GeluTanh;
  MatrixD w_in;    // h × d: GPT-2 mlp.c_fc, BERT intermediate.dense, LLaMA up_proj (w3)
  VectorD b_in;    // h
  MatrixD w_gate;  // h × d: LLaMA gate_proj (w1), or empty: not gated
  VectorD b_gate;  // h
  MatrixD w_out;   // d_out × h: GPT-2 mlp.c_proj, BERT output.dense, LLaMA down_proj (w2)
  VectorD b_out;   // d_out

  bool gated() const { return w_gate.size() != 0; }
  Index input_dim() const { return w_in.cols(); }    // d
  Index hidden_dim() const { return w_in.rows(); }   // h
  Index output_dim() const { return w_out.rows(); }  // d_out
  // Throws InputError naming the tensor (mlp.in.weight, mlp.gate.bias, ...) whose shape does not fit.
  void validate() const;
};

template <class T>
class Mlp final : public Map<T> {
 public:
  explicit Mlp(const MlpWeights& weights);
  Index input_dim() const override { return w_stack_.cols(); }
  Index output_dim() const override { return w_out_.rows(); }
  std::string describe() const override;
  std::unique_ptr<Cache<T>> forward(const MatrixView<T>& X) const override;
  Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const override;
  Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const override;
  Matrix<T> second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const override;

 private:
  Index hidden_dim() const { return w_out_.cols(); }
  // Elements per chunk of the activation sweep: big enough to outweigh a thread's start.
  static constexpr Index kActivationChunk = 16384;
  // H (n × h) and the cached slope S (n × h, or n × 2h gated) from the pre-activations z.
  void activate(const Matrix<T>& pre, Matrix<T>& hidden, Matrix<T>& slope) const;

  Activation activation_;
  bool gated_;
  // Like Projections: the gate and in projections stacked, [W_gate; W_in] (2h × d) when gated, so
  // one GEMM gives both pre-activations; W_in alone otherwise.
  Matrix<T> w_stack_;
  Vector<T> b_stack_;  // empty: no biases
  Matrix<T> w_out_;
  Vector<T> b_out_;
};

}  // namespace lipattn
