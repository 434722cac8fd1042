// Matrix types shared by every folder. Sequences are n × d, row-major: one token per row.
#pragma once

#include <Eigen/Dense>

namespace lipattn {

using Index = Eigen::Index;

template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
template <class T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

// A read-only view of an n × d matrix: a Matrix<T>, a block of one with unit inner stride, or a
// caller's row-major buffer (Eigen::Map over a NumPy array) binds to it without a copy.
template <class T>
using MatrixView = Eigen::Ref<const Matrix<T>>;

using MatrixD = Matrix<double>;
using MatrixF = Matrix<float>;
using VectorD = Vector<double>;

}  // namespace lipattn
