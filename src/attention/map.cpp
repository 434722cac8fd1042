#include "attention/map.h"

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

// ---- Chain ---------------------------------------------------------------------------------

namespace {
template <class T>
struct ChainCache : Cache<T> {
  std::vector<std::unique_ptr<Cache<T>>> stages;  // one per map, in order
};
}  // namespace

template <class T>
Chain<T>::Chain(std::vector<MapPtr<T>> maps) : maps_(std::move(maps)) {
  if (maps_.empty()) throw std::invalid_argument("Chain: no maps");
  for (size_t i = 1; i < maps_.size(); ++i)
    if (maps_[i]->input_dim() != maps_[i - 1]->output_dim())
      throw InputError(fmt::format("cannot compose {} (output width {}) with {} (input width {})",
                                   maps_[i - 1]->describe(), maps_[i - 1]->output_dim(),
                                   maps_[i]->describe(), maps_[i]->input_dim()));
}

template <class T>
Index Chain<T>::input_dim() const { return maps_.front()->input_dim(); }
template <class T>
Index Chain<T>::output_dim() const { return maps_.back()->output_dim(); }

template <class T>
std::string Chain<T>::describe() const {
  std::string s;
  for (size_t i = 0; i < maps_.size(); ++i) s += (i ? " → " : "") + maps_[i]->describe();
  return s;
}

template <class T>
std::unique_ptr<Cache<T>> Chain<T>::forward(const MatrixView<T>& X) const {
  auto cache = std::make_unique<ChainCache<T>>();
  for (const auto& map : maps_)
    cache->stages.push_back(map->forward(cache->stages.empty() ? X : MatrixView<T>(cache->stages.back()->output)));
  cache->output = cache->stages.empty() ? Matrix<T>(X) : cache->stages.back()->output;
  return cache;
}

template <class T>
Matrix<T> Chain<T>::jvp(const Cache<T>& cache, const Matrix<T>& dX) const {
  const auto& stages = static_cast<const ChainCache<T>&>(cache).stages;
  Matrix<T> d = maps_[0]->jvp(*stages[0], dX);
  for (size_t i = 1; i < maps_.size(); ++i) d = maps_[i]->jvp(*stages[i], d);
  return d;
}

template <class T>
Matrix<T> Chain<T>::vjp(const Cache<T>& cache, const Matrix<T>& dY) const {
  const auto& stages = static_cast<const ChainCache<T>&>(cache).stages;
  Matrix<T> d = maps_.back()->vjp(*stages.back(), dY);
  for (size_t i = maps_.size() - 1; i-- > 0;) d = maps_[i]->vjp(*stages[i], d);
  return d;
}

// Second order of g_k ∘ … ∘ g_1 (docs/theory.md, attack §2.4). With X_1 = X, X_{i+1} = g_i(X_i),
// J_i = Dg_i(X_i), forward directions w_1 = v, w_{i+1} = J_i w_i and backward weights u_k = u,
// u_{i−1} = J_iᵀ u_i, the product rule gives
//   ∇_X ⟨u, J_k ⋯ J_1 v⟩ = Σ_i J_1ᵀ ⋯ J_{i−1}ᵀ ∇_{X_i} ⟨u_i, J_i w_i⟩,
// summed back to front like Horner: acc = so_k; acc = J_iᵀ acc + so_i for i = k−1 … 1.
template <class T>
Matrix<T> Chain<T>::second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const {
  const auto& stages = static_cast<const ChainCache<T>&>(cache).stages;
  const size_t k = maps_.size();
  std::vector<Matrix<T>> w(k);  // w[i]: the direction entering map i (n × d_in of map i)
  w[0] = v;
  for (size_t i = 1; i < k; ++i) w[i] = maps_[i - 1]->jvp(*stages[i - 1], w[i - 1]);
  Matrix<T> weight = u;  // u_i: the output weight of map i (n × d_out of map i)
  Matrix<T> acc = maps_[k - 1]->second_order(*stages[k - 1], w[k - 1], weight);
  for (size_t i = k - 1; i-- > 0;) {
    weight = maps_[i + 1]->vjp(*stages[i + 1], weight);
    acc = maps_[i]->vjp(*stages[i], acc);
    acc += maps_[i]->second_order(*stages[i], w[i], weight);
  }
  return acc;
}

// ---- Residual ------------------------------------------------------------------------------

namespace {
template <class T>
struct ResidualCache : Cache<T> {
  std::unique_ptr<Cache<T>> inner;
};
}  // namespace

template <class T>
Residual<T>::Residual(MapPtr<T> inner) : inner_(std::move(inner)) {
  if (inner_->input_dim() != inner_->output_dim())
    throw InputError(fmt::format("the residual needs the attention output width ({}) to equal the input width ({})",
                                 inner_->output_dim(), inner_->input_dim()));
}

template <class T>
std::string Residual<T>::describe() const { return "residual(" + inner_->describe() + ")"; }

template <class T>
std::unique_ptr<Cache<T>> Residual<T>::forward(const MatrixView<T>& X) const {
  auto cache = std::make_unique<ResidualCache<T>>();
  cache->inner = inner_->forward(X);
  cache->output = X + cache->inner->output;
  return cache;
}

template <class T>
Matrix<T> Residual<T>::jvp(const Cache<T>& cache, const Matrix<T>& dX) const {
  Matrix<T> d = inner_->jvp(*static_cast<const ResidualCache<T>&>(cache).inner, dX);
  d += dX;
  return d;
}

template <class T>
Matrix<T> Residual<T>::vjp(const Cache<T>& cache, const Matrix<T>& dY) const {
  Matrix<T> d = inner_->vjp(*static_cast<const ResidualCache<T>&>(cache).inner, dY);
  d += dY;
  return d;
}

// X + g(X): the identity has no second derivative, so ∇_X ⟨u, (I + Dg) v⟩ = ∇_X ⟨u, Dg v⟩.
template <class T>
Matrix<T> Residual<T>::second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const {
  return inner_->second_order(*static_cast<const ResidualCache<T>&>(cache).inner, v, u);
}

template class Chain<double>;
template class Chain<float>;
template class Residual<double>;
template class Residual<float>;

}  // namespace lipattn
