// Per-token LayerNorm and RMSNorm with analytic jvp and vjp (docs/theory.md §3).
#pragma once

#include <type_traits>

#include "attention/map.h"

namespace lipattn {

enum class NormKind { LayerNorm, RmsNorm };

struct NormWeights {
  NormKind kind = NormKind::LayerNorm;
  VectorD gamma;  // d
  VectorD beta;   // d, or empty
  double eps = 1e-5;
  static NormWeights identity(NormKind kind, Index d, double eps);  // γ = 1, β = 0
};

// The per-token statistics of a norm (docs/theory.md §3), computed here only: Norm<T> builds its
// cache from them and the bounds (src/bounds) read the normalised tokens and 1/s from them.
//   LayerNorm: centred x_i − mean(x_i), scale s_i = √(var(x_i) + ε);
//   RMSNorm:   centred x_i itself (nothing is subtracted), scale r_i = √(mean(x_i²) + ε).
// The normalised token is centred_i / scale_i (ẑ_i, or x_i/r_i).
template <class T>
struct NormStatistics {
  Matrix<T> centred;  // n × d
  Vector<T> scale;    // n
};
template <class T>
NormStatistics<T> norm_statistics(NormKind kind, const MatrixView<std::type_identity_t<T>>& X, T eps);

template <class T>
class Norm final : public Map<T> {
 public:
  explicit Norm(const NormWeights& weights);
  Index input_dim() const override { return gamma_.size(); }
  Index output_dim() const override { return gamma_.size(); }
  std::string describe() const override;
  std::unique_ptr<Cache<T>> forward(const MatrixView<T>& X) const override;
  Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const override;
  Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const override;
  Matrix<T> second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const override;

 private:
  NormKind kind_;
  Vector<T> gamma_, beta_;
  T eps_;
};

}  // namespace lipattn
