#include "spectral/operator.h"

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

template <class T>
Linearization<T>::Linearization(MapPtr<T> map, const MatrixD& X) : map_(std::move(map)), n_(X.rows()) {
  if (X.cols() != map_->input_dim())
    throw InputError(fmt::format("the input has {} features per token, the layer expects {}", X.cols(),
                                 map_->input_dim()));
  cache_ = map_->forward(X.cast<T>());
}

template <class T>
VectorD Linearization<T>::apply(const VectorD& v) const {
  Eigen::Map<const MatrixD> dX(v.data(), n_, map_->input_dim());
  Matrix<T> dY = map_->jvp(*cache_, dX.cast<T>());
  return Eigen::Map<const Vector<T>>(dY.data(), dY.size()).template cast<double>();
}

template <class T>
VectorD Linearization<T>::apply_transpose(const VectorD& w) const {
  Eigen::Map<const MatrixD> dY(w.data(), n_, map_->output_dim());
  Matrix<T> dX = map_->vjp(*cache_, dY.cast<T>());
  return Eigen::Map<const Vector<T>>(dX.data(), dX.size()).template cast<double>();
}

template <class T>
VectorD Linearization<T>::apply_normal(const VectorD& v) const {
  Eigen::Map<const MatrixD> dX(v.data(), n_, map_->input_dim());
  const Matrix<T> g = map_->normal_product(*cache_, dX.cast<T>());
  return Eigen::Map<const Vector<T>>(g.data(), g.size()).template cast<double>();
}

template class Linearization<double>;
template class Linearization<float>;

}  // namespace lipattn
