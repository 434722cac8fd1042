// The MLP maps (docs/theory.md §9): the scalar activations and their derivatives, then for every
// activation, gated (SwiGLU, GeGLU) or not, with and without biases: forward against a direct loop,
// jvp against finite differences, the adjoint identity, the dense Jacobian's SVD against Lanczos,
// second_order against finite differences, float32 against float64, and shape validation.
#include <fmt/core.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/mlp.h"
#include "common/error.h"
#include "spectral/spectral_norm.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;

namespace {

const std::vector<Activation> kActivations = {Activation::GeluErf, Activation::GeluTanh,  Activation::Relu,
                                              Activation::Silu,    Activation::QuickGelu, Activation::Tanh};

// ---- Scalar activations ----------------------------------------------------------------------

// Values at x = −3, −1, −0.5, 0.5, 1, 2.5 from Python's math module (erfc, tanh, exp), an
// implementation independent of this one.
TEST(ScalarActivation, ValuesMatchAnIndependentImplementation) {
  const std::vector<double> xs = {-3.0, -1.0, -0.5, 0.5, 1.0, 2.5};
  const std::vector<std::pair<Activation, std::vector<double>>> table = {
      {Activation::GeluErf,
       {-0.004049694094890287, -0.15865525393145707, -0.15426876936299344, 0.34573123063700656, 0.8413447460685429,
        2.4844758366855597}},
      {Activation::GeluTanh,
       {-0.0036373920817729943, -0.15880800939172324, -0.15428599017485606, 0.34571400982514394, 0.8411919906082768,
        2.484915733910001}},
      {Activation::Relu, {0.0, 0.0, 0.0, 0.5, 1.0, 2.5}},
      {Activation::Silu,
       {-0.14227761953270035, -0.2689414213699951, -0.1887703343990727, 0.3112296656009273, 0.7310585786300049,
        2.3103545499468914}},
      {Activation::QuickGelu,
       {-0.01807130970778597, -0.1542042340671787, -0.1496115633936199, 0.35038843660638014, 0.8457957659328212,
        2.46501383495143}},
      {Activation::Tanh,
       {-0.9950547536867305, -0.7615941559557649, -0.46211715726000974, 0.46211715726000974, 0.7615941559557649,
        0.9866142981514303}},
  };
  for (const auto& [activation, values] : table)
    for (size_t i = 0; i < xs.size(); ++i)
      EXPECT_NEAR(apply_activation(xs[i], activation), values[i], 4e-16 * std::max(1.0, std::abs(values[i])))
          << to_string(activation) << " x=" << xs[i];
}

// Central differences of the value give the first derivative, of the first the second, on a grid
// over [−10, 10] and at |x| = 15, 30, 100, 1000.
TEST(ScalarActivation, DerivativesMatchFiniteDifferences) {
  std::vector<double> xs = {-1000, -100, -30, -15, 15, 30, 100, 1000};
  for (int k = 0; k <= 54; ++k) xs.push_back(-10.0 + 0.37 * k + 0.013);
  const double h = 1e-5;
  for (Activation a : kActivations) {
    int checked = 0;
    for (double x : xs) {
      if (a == Activation::Relu && std::abs(x) < 1e-3) continue;  // the kink
      const double d1 = (apply_activation(x + h, a) - apply_activation(x - h, a)) / (2 * h);
      const double d2 = (activation_derivative(x + h, a) - activation_derivative(x - h, a)) / (2 * h);
      EXPECT_NEAR(activation_derivative(x, a), d1, 1e-8 * (1 + std::abs(x))) << to_string(a) << " x=" << x;
      EXPECT_NEAR(activation_second_derivative(x, a), d2, 1e-8 * (1 + std::abs(x))) << to_string(a) << " x=" << x;
      ++checked;
    }
    EXPECT_GE(checked, 62) << to_string(a);
  }
}

// Far out the exponentials underflow or would overflow: every value and derivative stays finite
// and takes its limit (value x or 0, slope 1 or 0, curvature 0; tanh: ±1, 0, 0), in both precisions.
template <class T>
void expect_limits(T x, Activation a) {
  const bool is_tanh = a == Activation::Tanh;
  const T value = apply_activation(x, a), slope = activation_derivative(x, a),
          curve = activation_second_derivative(x, a);
  ASSERT_TRUE(std::isfinite(value) && std::isfinite(slope) && std::isfinite(curve)) << to_string(a) << " x=" << x;
  const T value_limit = is_tanh ? (x > 0 ? T(1) : T(-1)) : (x > 0 ? x : T(0));
  const T slope_limit = (is_tanh || x < 0) ? T(0) : T(1);
  EXPECT_EQ(value, value_limit) << to_string(a) << " x=" << x;
  EXPECT_EQ(slope, slope_limit) << to_string(a) << " x=" << x;
  EXPECT_EQ(curve, T(0)) << to_string(a) << " x=" << x;
}

TEST(ScalarActivation, LargeArgumentsStayFiniteAndTakeTheirLimits) {
  for (Activation a : kActivations)
    for (double x : {-1e4, -1000.0, 1000.0, 1e4}) {
      expect_limits<double>(x, a);
      expect_limits<float>(static_cast<float>(x), a);
    }
  // Where x² and x³ overflow: the guards against 0·∞.
  for (Activation a : kActivations) {
    for (double x : {-1e300, -1e120, 1e120, 1e300}) expect_limits<double>(x, a);
    for (float x : {-1e30f, -1e13f, 1e13f, 1e30f}) expect_limits<float>(x, a);
  }
}

// ---- The map ---------------------------------------------------------------------------------

struct Case {
  std::string name;
  MlpWeights weights;
};

// Every activation ungated, and SwiGLU (silu gate) and GeGLU (gelu_new gate), each with and
// without biases, the output width equal to d or not.
std::vector<Case> all_cases(std::mt19937_64& rng) {
  std::vector<Case> cases;
  for (bool biases : {false, true}) {
    MlpOptions o;
    o.biases = biases;
    o.d_out = biases ? 4 : 0;
    for (Activation a : kActivations) {
      o.activation = a;
      cases.push_back({fmt::format("{} biases={}", to_string(a), biases), random_mlp(rng, o)});
    }
    o.gated = true;
    for (Activation a : {Activation::Silu, Activation::GeluTanh}) {
      o.activation = a;
      cases.push_back({fmt::format("gated {} biases={}", to_string(a), biases), random_mlp(rng, o)});
    }
  }
  return cases;
}

// y_i = Σ_j W_out[·, j] H_ij + b_out, H_ij = act(⟨W_gate[j], x_i⟩ + b_gate_j) (⟨W_in[j], x_i⟩ + b_in_j) or
// act(⟨W_in[j], x_i⟩ + b_in_j), entry by entry.
MatrixD direct_mlp(const MlpWeights& w, const MatrixD& X) {
  const Index n = X.rows(), h = w.w_in.rows();
  MatrixD Y = MatrixD::Zero(n, w.w_out.rows());
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < h; ++j) {
      const double a = w.w_in.row(j).dot(X.row(i)) + (w.b_in.size() ? w.b_in(j) : 0.0);
      double hidden = apply_activation(a, w.activation);
      if (w.gated()) {
        const double g = w.w_gate.row(j).dot(X.row(i)) + (w.b_gate.size() ? w.b_gate(j) : 0.0);
        hidden = apply_activation(g, w.activation) * a;
      }
      for (Index c = 0; c < Y.cols(); ++c) Y(i, c) += w.w_out(c, j) * hidden;
    }
  if (w.b_out.size()) Y.rowwise() += w.b_out.transpose();
  return Y;
}

TEST(MlpForward, MatchesDirectComputation) {
  std::mt19937_64 rng(1);
  const auto cases = all_cases(rng);
  ASSERT_EQ(cases.size(), 16u);
  for (const auto& c : cases) {
    const MatrixD X = random_matrix(rng, 4, c.weights.input_dim());
    EXPECT_LT(relative_error(Mlp<double>(c.weights).forward(X)->output, direct_mlp(c.weights, X)), 1e-14) << c.name;
  }
}

TEST(MlpDerivatives, JvpMatchesCentralFiniteDifferences) {
  std::mt19937_64 rng(2);
  for (const auto& c : all_cases(rng))
    for (Index n : {1, 3, 6}) {
      const Mlp<double> map(c.weights);
      const MatrixD X = random_matrix(rng, n, map.input_dim()), dX = random_matrix(rng, n, map.input_dim());
      const MatrixD jvp = map.jvp(*map.forward(X), dX);
      EXPECT_LT(relative_error(jvp, finite_difference<double>(map, X, dX, 1e-5)), 1e-8) << c.name << " n=" << n;
    }
}

TEST(MlpDerivatives, AdjointIdentity) {
  std::mt19937_64 rng(3);
  for (const auto& c : all_cases(rng))
    for (Index n : {1, 3, 8}) {
      const Mlp<double> map(c.weights);
      const MatrixD X = random_matrix(rng, n, map.input_dim());
      const MatrixD v = random_matrix(rng, n, map.input_dim()), u = random_matrix(rng, n, map.output_dim());
      const auto cache = map.forward(X);
      const MatrixD Jv = map.jvp(*cache, v), Jtu = map.vjp(*cache, u);
      const double lhs = (Jv.array() * u.array()).sum(), rhs = (v.array() * Jtu.array()).sum();
      EXPECT_LE(std::abs(lhs - rhs), 1e-12 * Jv.norm() * u.norm()) << c.name << " n=" << n;
    }
}

// σ_max of the Jacobian assembled column by column from jvps, by Eigen's SVD, against Lanczos on JᵀJ.
TEST(MlpDerivatives, DenseJacobianSvdMatchesLanczos) {
  std::mt19937_64 rng(4);
  for (const auto& c : all_cases(rng)) {
    const auto map = std::make_shared<const Mlp<double>>(c.weights);
    Linearization<double> lin(map, random_matrix(rng, 8, map->input_dim()));
    const double sigma = Eigen::JacobiSVD<MatrixD>(assemble_dense(lin)).singularValues()(0);
    SpectralOptions o;
    o.method = SpectralMethod::Lanczos;
    o.seed = 7;
    const SpectralResult r = spectral_norm(lin, o);
    EXPECT_TRUE(r.converged) << c.name;
    EXPECT_NEAR(r.lipschitz, sigma, 1e-9 * sigma) << c.name;
    EXPECT_LE(r.lower, sigma * (1 + 1e-12)) << c.name;
    EXPECT_GT(sigma, 0) << c.name;
  }
}

TEST(MlpDerivatives, SecondOrderMatchesFiniteDifferences) {
  std::mt19937_64 rng(5);
  for (const auto& c : all_cases(rng))
    for (Index n : {1, 4}) {
      const Mlp<double> map(c.weights);
      EXPECT_LE(second_order_error(map, random_matrix(rng, n, map.input_dim(), 1.3), rng), 1e-6)
          << c.name << " n=" << n;
    }
}

// Keeps the finite-difference comparison above from passing vacuously: for a smooth activation the
// second-order product is not zero.
TEST(MlpDerivatives, SecondOrderIsNonzeroForSmoothActivations) {
  std::mt19937_64 rng(6);
  for (const auto& c : all_cases(rng)) {
    if (c.weights.activation == Activation::Relu) continue;
    const Mlp<double> map(c.weights);
    const MatrixD X = random_matrix(rng, 3, map.input_dim());
    const MatrixD v = random_matrix(rng, 3, map.input_dim()), u = random_matrix(rng, 3, map.output_dim());
    EXPECT_GT(map.second_order(*map.forward(X), v, u).norm(), 1e-3) << c.name;
  }
}

TEST(MlpFloat32, ProductsAgreeWithFloat64) {
  std::mt19937_64 rng(7);
  for (const auto& c : all_cases(rng)) {
    const Mlp<double> m64(c.weights);
    const Mlp<float> m32(c.weights);
    const Index n = 6, d = m64.input_dim(), d_out = m64.output_dim();
    const MatrixD X = random_matrix(rng, n, d), v = random_matrix(rng, n, d), u = random_matrix(rng, n, d_out);
    const auto c64 = m64.forward(X);
    const auto c32 = m32.forward(X.cast<float>());
    const auto f = [](const MatrixF& m) { return MatrixD(m.cast<double>()); };
    EXPECT_LT(relative_error(c64->output, f(c32->output)), 1e-5) << c.name;
    EXPECT_LT(relative_error(m64.jvp(*c64, v), f(m32.jvp(*c32, v.cast<float>()))), 1e-5) << c.name;
    EXPECT_LT(relative_error(m64.vjp(*c64, u), f(m32.vjp(*c32, u.cast<float>()))), 1e-5) << c.name;
    EXPECT_LT(relative_error(m64.second_order(*c64, v, u), f(m32.second_order(*c32, v.cast<float>(), u.cast<float>()))),
              1e-5)
        << c.name;
  }
}

// ---- Validation ------------------------------------------------------------------------------

void expect_names(const MlpWeights& w, const std::string& tensor) {
  try {
    Mlp<double> map(w);
    ADD_FAILURE() << "no error for a bad " << tensor;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(tensor), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << "names a CLI flag: " << e.what();
  }
}

TEST(MlpValidation, ShapeMismatchesNameTheTensor) {
  std::mt19937_64 rng(8);
  MlpOptions o;
  o.gated = true;
  o.biases = true;
  const MlpWeights good = random_mlp(rng, o);  // d = 5, hidden = 7
  EXPECT_NO_THROW(Mlp<double>{good});
  MlpWeights w = good;
  w.w_in.resize(0, 0);
  expect_names(w, "mlp.in.weight");
  w = good;
  w.b_in = random_vector(rng, 6);
  expect_names(w, "mlp.in.bias");
  w = good;
  w.w_gate = random_matrix(rng, 7, 4);
  expect_names(w, "mlp.gate.weight");
  w = good;
  w.b_gate = random_vector(rng, 8);
  expect_names(w, "mlp.gate.bias");
  w = good;
  w.w_gate.resize(0, 0);  // a gate bias without a gate
  expect_names(w, "mlp.gate.bias");
  w = good;
  w.w_out = random_matrix(rng, 5, 6);
  expect_names(w, "mlp.out.weight");
  w = good;
  w.w_out.resize(0, 0);
  expect_names(w, "mlp.out.weight");
  w = good;
  w.b_out = random_vector(rng, 3);
  expect_names(w, "mlp.out.bias");
  // An input of the wrong width is refused at forward.
  EXPECT_THROW(Mlp<double>(good).forward(random_matrix(rng, 2, 4)), InputError);
}

}  // namespace
