// Helpers shared by the tests: seeded random weights and inputs, finite differences.
#pragma once

#include <random>

#include "attention/layer.h"

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

}  // namespace lipattn::testing
