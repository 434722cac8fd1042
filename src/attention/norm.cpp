// LayerNorm and RMSNorm, token by token. Formulas: docs/theory.md §3.
//   LayerNorm: ẑ = (x − mean x)/s, s = √(var x + ε), y = γ ⊙ ẑ + β
//     jvp: dy = γ ⊙ (dx − mean(dx) − ẑ mean(ẑ ⊙ dx)) / s; the bracket is symmetric in dx, so
//     vjp: dx = (g − mean(g) − ẑ mean(ẑ ⊙ g)) / s with g = γ ⊙ dy.
//   RMSNorm: r = √(mean(x²) + ε), y = γ ⊙ x / r (+ β)
//     jvp: dy = γ ⊙ (dx − x mean(x ⊙ dx)/r²) / r;  vjp: dx = (g − x mean(x ⊙ g)/r²) / r.
#include "attention/norm.h"

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

NormWeights NormWeights::identity(NormKind kind, Index d, double eps) {
  NormWeights w;
  w.kind = kind;
  w.gamma = VectorD::Ones(d);
  w.eps = eps;
  return w;
}

namespace {
template <class T>
struct NormCache : Cache<T> {
  Matrix<T> z;      // LayerNorm: ẑ; RMSNorm: x (n × d)
  Vector<T> scale;  // LayerNorm: s; RMSNorm: r (n)
};
}  // namespace

template <class T>
Norm<T>::Norm(const NormWeights& w) : kind_(w.kind), gamma_(w.gamma.cast<T>()), eps_(static_cast<T>(w.eps)) {
  if (w.gamma.size() == 0) throw InputError("norm weight (γ) is empty");
  if (w.beta.size() != 0 && w.beta.size() != w.gamma.size())
    throw InputError(fmt::format("norm bias (β) has {} entries, expected {} like the weight (γ)", w.beta.size(),
                                 w.gamma.size()));
  if (!(w.eps >= 0)) throw InputError(fmt::format("norm eps must be ≥ 0, got {}", w.eps), "norm_eps");
  if (w.beta.size()) beta_ = w.beta.cast<T>();
}

template <class T>
std::string Norm<T>::describe() const {
  return fmt::format("{}(d={}, eps={:g})", kind_ == NormKind::LayerNorm ? "layernorm" : "rmsnorm", gamma_.size(),
                     static_cast<double>(eps_));
}

template <class T>
NormStatistics<T> norm_statistics(NormKind kind, const MatrixView<std::type_identity_t<T>>& X, T eps) {
  const Index n = X.rows(), d = X.cols();
  NormStatistics<T> stats;
  stats.centred.resize(n, d);
  stats.scale.resize(n);
  for (Index i = 0; i < n; ++i) {
    if (kind == NormKind::LayerNorm) {
      stats.centred.row(i) = X.row(i).array() - X.row(i).mean();
      stats.scale(i) = std::sqrt(stats.centred.row(i).array().square().mean() + eps);
    } else {
      stats.centred.row(i) = X.row(i);
      stats.scale(i) = std::sqrt(X.row(i).squaredNorm() / T(d) + eps);
    }
  }
  return stats;
}

template <class T>
std::unique_ptr<Cache<T>> Norm<T>::forward(const MatrixView<T>& X) const {
  if (X.cols() != gamma_.size())
    throw InputError(fmt::format("norm expects {} features per token, the input has {}", gamma_.size(), X.cols()));
  auto cache = std::make_unique<NormCache<T>>();
  NormStatistics<T> stats = norm_statistics(kind_, X, eps_);
  // The cache keeps what §3's derivatives read: ẑ for LayerNorm, x itself for RMSNorm.
  cache->z = std::move(stats.centred);
  cache->scale = std::move(stats.scale);
  if (kind_ == NormKind::LayerNorm) {
    cache->z.array().colwise() /= cache->scale.array();
    cache->output = cache->z.array().rowwise() * gamma_.transpose().array();
  } else {
    cache->output = (cache->z.array().colwise() / cache->scale.array()).rowwise() * gamma_.transpose().array();
  }
  if (beta_.size()) cache->output.rowwise() += beta_.transpose();
  return cache;
}

namespace {
// The symmetric per-token operator shared by jvp and vjp (§3): M u for each row u.
template <class T>
Matrix<T> apply_norm_operator(NormKind kind, const Matrix<T>& z, const Vector<T>& scale, const Matrix<T>& U) {
  const Index n = U.rows(), d = U.cols();
  Matrix<T> out(n, d);
  for (Index i = 0; i < n; ++i) {
    auto u = U.row(i);
    if (kind == NormKind::LayerNorm) {
      const T mean_u = u.mean();
      const T mean_zu = z.row(i).dot(u) / T(d);
      out.row(i) = ((u.array() - mean_u) - z.row(i).array() * mean_zu) / scale(i);
    } else {
      const T r = scale(i);
      const T mean_xu = z.row(i).dot(u) / T(d);
      out.row(i) = (u.array() - z.row(i).array() * (mean_xu / (r * r))) / r;
    }
  }
  return out;
}
}  // namespace

template <class T>
Matrix<T> Norm<T>::jvp(const Cache<T>& cache_base, const Matrix<T>& dX) const {
  const auto& cache = static_cast<const NormCache<T>&>(cache_base);
  Matrix<T> out = apply_norm_operator(kind_, cache.z, cache.scale, dX);
  out.array().rowwise() *= gamma_.transpose().array();
  return out;
}

template <class T>
Matrix<T> Norm<T>::vjp(const Cache<T>& cache_base, const Matrix<T>& dY) const {
  const auto& cache = static_cast<const NormCache<T>&>(cache_base);
  Matrix<T> g = dY.array().rowwise() * gamma_.transpose().array();
  return apply_norm_operator(kind_, cache.z, cache.scale, g);
}

// Second order, token by token (docs/theory.md, attack §2.3), with g = γ ⊙ u, φ = ⟨u, dy⟩:
//   LayerNorm: φ = (a − b c / d)/s with a = ⟨g − mean g, v⟩, b = ⟨g, ẑ⟩, c = ⟨ẑ, v⟩; ∇s = ẑ/d and
//     ∇_x ⟨w, ẑ⟩ = N w := (w − mean w − ẑ ⟨ẑ, w⟩/d)/s, so
//     ∇φ = −(ẑ φ + c N g + b N v) / (d s).
//   RMSNorm: φ = ⟨g, v⟩/r − ⟨g, x⟩⟨x, v⟩/(d r³) with ∇r = x/(d r), so
//     ∇φ = −(⟨g, v⟩ x + ⟨x, v⟩ g + ⟨g, x⟩ v)/(d r³) + 3 ⟨g, x⟩⟨x, v⟩ x/(d² r⁵).
// β shifts the output only and drops out.
template <class T>
Matrix<T> Norm<T>::second_order(const Cache<T>& cache_base, const Matrix<T>& v, const Matrix<T>& u) const {
  const auto& cache = static_cast<const NormCache<T>&>(cache_base);
  const Matrix<T> g = u.array().rowwise() * gamma_.transpose().array();  // n × d
  const Index n = v.rows(), d = v.cols();
  const T dd = T(d);
  Matrix<T> out(n, d);
  if (kind_ == NormKind::LayerNorm) {
    const Matrix<T> Ng = apply_norm_operator(kind_, cache.z, cache.scale, g);
    const Matrix<T> Nv = apply_norm_operator(kind_, cache.z, cache.scale, v);
    for (Index i = 0; i < n; ++i) {
      const T s = cache.scale(i);
      auto z = cache.z.row(i);
      const T a = g.row(i).dot(v.row(i)) - g.row(i).mean() * v.row(i).sum();
      const T b = g.row(i).dot(z);
      const T c = z.dot(v.row(i));
      const T phi = (a - b * c / dd) / s;
      out.row(i) = -(phi * z + c * Ng.row(i) + b * Nv.row(i)) / (dd * s);
    }
  } else {
    for (Index i = 0; i < n; ++i) {
      const T r = cache.scale(i);
      auto x = cache.z.row(i);
      const T gv = g.row(i).dot(v.row(i)), xv = x.dot(v.row(i)), gx = g.row(i).dot(x);
      const T r3 = r * r * r;
      out.row(i) = -(gv * x + xv * g.row(i) + gx * v.row(i)) / (dd * r3) + (T(3) * gx * xv / (dd * dd * r3 * r * r)) * x;
    }
  }
  return out;
}

template NormStatistics<double> norm_statistics(NormKind, const MatrixView<double>&, double);
template NormStatistics<float> norm_statistics(NormKind, const MatrixView<float>&, float);
template class Norm<double>;
template class Norm<float>;

}  // namespace lipattn
