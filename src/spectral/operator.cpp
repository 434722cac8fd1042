#include "spectral/operator.h"

#include <fmt/core.h>

#include "common/error.h"
#include "common/threads.h"

namespace lipattn {

template <class T>
Linearization<T>::Linearization(MapPtr<T> map, const MatrixView<double>& X) : map_(std::move(map)), n_(X.rows()) {
  if (X.cols() != map_->input_dim())
    throw InputError(fmt::format("the input has {} features per token, the layer expects {}", X.cols(),
                                 map_->input_dim()));
  adapt_threads_to_load();  // products run on the cores other processes leave free (common/threads.h)
  cache_ = map_->forward(X.cast<T>());
}

namespace {
// Vectors are the row-major flattening of n × cols matrices (operator.h).
template <class T>
Matrix<T> as_matrix(const VectorD& v, Index n, Index cols) {
  return Eigen::Map<const MatrixD>(v.data(), n, cols).template cast<T>();
}
template <class T>
VectorD as_vector(const Matrix<T>& m) {
  return Eigen::Map<const Vector<T>>(m.data(), m.size()).template cast<double>();
}
}  // namespace

template <class T>
VectorD Linearization<T>::apply(const VectorD& v) const {
  adapt_threads_to_load();
  return as_vector<T>(map_->jvp(*cache_, as_matrix<T>(v, n_, map_->input_dim())));
}

template <class T>
VectorD Linearization<T>::apply_transpose(const VectorD& w) const {
  adapt_threads_to_load();
  return as_vector<T>(map_->vjp(*cache_, as_matrix<T>(w, n_, map_->output_dim())));
}

template <class T>
VectorD Linearization<T>::apply_normal(const VectorD& v) const {
  adapt_threads_to_load();
  return as_vector<T>(map_->normal_product(*cache_, as_matrix<T>(v, n_, map_->input_dim())));
}

template class Linearization<double>;
template class Linearization<float>;

}  // namespace lipattn
