// Reductions over the n keys of a row (softmax sums, rowsum(P ⊙ G)) accumulate in float64 even in a
// float32 map: they are O(n²) of the O(n²k) work, and their rounding is what grows with n
// (docs/theory.md §4.4). For double they are the plain operations.
#pragma once

#include <Eigen/Core>

namespace lipattn {

template <class A, class B>
double dot64(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
  return a.template cast<double>().dot(b.template cast<double>());
}

template <class A>
double sum64(const Eigen::DenseBase<A>& a) {
  return a.template cast<double>().sum();
}

}  // namespace lipattn
