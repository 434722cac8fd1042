// Helpers shared by the tests: seeded random weights and inputs, finite differences (first and second order).
#pragma once

#include <random>

#include <gtest/gtest.h>

#include "attention/layer.h"
#include "attention/mlp.h"

namespace lipattn::testing {

inline MatrixD random_matrix(std::mt19937_64& rng, Index rows, Index cols, double sd = 1.0) {
  std::normal_distribution<double> normal(0.0, sd);
  MatrixD m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

inline VectorD random_vector(std::mt19937_64& rng, Index size, double sd = 1.0) {
  return random_matrix(rng, size, 1, sd).col(0);
}

struct AttentionOptions {
  Index heads = 2, d = 6, k = 3, kv = 3;
  bool causal = false, biases = false, w_o = false;
  Index d_out = 0;  // 0: d
  double sd = 0.5;
};

inline AttentionWeights random_attention(std::mt19937_64& rng, const AttentionOptions& o) {
  AttentionWeights w;
  w.heads = o.heads;
  w.causal = o.causal;
  w.w_q = random_matrix(rng, o.heads * o.k, o.d, o.sd);
  w.w_k = random_matrix(rng, o.heads * o.k, o.d, o.sd);
  w.w_v = random_matrix(rng, o.heads * o.kv, o.d, o.sd);
  if (o.w_o) w.w_o = random_matrix(rng, o.d_out ? o.d_out : o.d, o.heads * o.kv, o.sd);
  if (o.biases) {
    w.b_q = random_vector(rng, o.heads * o.k, o.sd);
    w.b_k = random_vector(rng, o.heads * o.k, o.sd);
    w.b_v = random_vector(rng, o.heads * o.kv, o.sd);
    if (o.w_o) w.b_o = random_vector(rng, w.w_o.rows(), o.sd);
  }
  return w;
}

inline NormWeights random_norm(std::mt19937_64& rng, NormKind kind, Index d, bool bias) {
  NormWeights w;
  w.kind = kind;
  w.gamma = (VectorD::Ones(d) + random_vector(rng, d, 0.3));
  if (bias) w.beta = random_vector(rng, d, 0.3);
  w.eps = 1e-5;
  return w;
}

struct MlpOptions {
  Activation activation = Activation::GeluTanh;
  bool gated = false, biases = false;
  Index d = 5, hidden = 7;
  Index d_out = 0;  // 0: d
  double sd = 0.6;
};

inline MlpWeights random_mlp(std::mt19937_64& rng, const MlpOptions& o) {
  MlpWeights w;
  w.activation = o.activation;
  const Index d_out = o.d_out ? o.d_out : o.d;
  w.w_in = random_matrix(rng, o.hidden, o.d, o.sd);
  if (o.gated) w.w_gate = random_matrix(rng, o.hidden, o.d, o.sd);
  w.w_out = random_matrix(rng, d_out, o.hidden, o.sd);
  if (o.biases) {
    w.b_in = random_vector(rng, o.hidden, o.sd);
    if (o.gated) w.b_gate = random_vector(rng, o.hidden, o.sd);
    w.b_out = random_vector(rng, d_out, o.sd);
  }
  return w;
}

// Central differences of the map at X in direction dX: (f(X + h dX) − f(X − h dX)) / 2h.
template <class T>
Matrix<T> finite_difference(const Map<T>& map, const Matrix<T>& X, const Matrix<T>& dX, T h) {
  const Matrix<T> plus = map.forward(X + h * dX)->output;
  const Matrix<T> minus = map.forward(X - h * dX)->output;
  return (plus - minus) / (2 * h);
}

inline double relative_error(const MatrixD& a, const MatrixD& b) {
  const double scale = std::max(a.norm(), b.norm());
  return scale == 0 ? 0.0 : (a - b).norm() / scale;
}

// φ(X) = ⟨u, Df(X) v⟩ through the first-order protocol only.
inline double inner_jvp(const Map<double>& map, const MatrixD& X, const MatrixD& v, const MatrixD& u) {
  auto cache = map.forward(X);
  return (u.array() * map.jvp(*cache, v).array()).sum();
}

// ∂φ/∂X_ab by central differences, every coordinate; step relative to the entry's size.
inline MatrixD finite_difference_gradient(const Map<double>& map, const MatrixD& X, const MatrixD& v, const MatrixD& u) {
  MatrixD grad(X.rows(), X.cols());
  for (Index a = 0; a < X.rows(); ++a)
    for (Index b = 0; b < X.cols(); ++b) {
      const double h = 1e-5 * std::max(1.0, std::abs(X(a, b)));
      MatrixD plus = X, minus = X;
      plus(a, b) += h;
      minus(a, b) -= h;
      grad(a, b) = (inner_jvp(map, plus, v, u) - inner_jvp(map, minus, v, u)) / (2 * h);
    }
  return grad;
}

// The relative error of second_order(v, u) at X, for random v and u, against finite_difference_gradient.
inline double second_order_error(const Map<double>& map, const MatrixD& X, std::mt19937_64& rng) {
  const MatrixD v = random_matrix(rng, X.rows(), map.input_dim());
  const MatrixD u = random_matrix(rng, X.rows(), map.output_dim());
  auto cache = map.forward(X);
  const MatrixD analytic = map.second_order(*cache, v, u);
  EXPECT_EQ(analytic.rows(), X.rows());
  EXPECT_EQ(analytic.cols(), map.input_dim());
  return relative_error(analytic, finite_difference_gradient(map, X, v, u));
}

}  // namespace lipattn::testing
