// Reductions over the n keys of a row (softmax sums, rowsum(P ⊙ G)) accumulate in float64 even in a
// float32 map: they are O(n²) of the O(n²k) work, and their rounding is what grows with n
// (docs/theory.md §4.4). For double they are the plain operations.
//
// For float the row is cut into chunks of kFloatChunk entries; each chunk is reduced in float on
// Eigen's packet path (16 lanes with AVX-512) and the chunk sums are added in double. A float chunk
// adds at most about kFloatChunk/16 + 4 roundings of 6e-8 to its own sum, independent of n, and
// only the double part grows with n. Casting every entry to double instead (the first version)
// cost more than the float64 reduction itself: 7.4% of a float32 solve at n = 1024 (perf).
#pragma once

#include <algorithm>
#include <type_traits>

#include <Eigen/Core>

namespace lipattn {

inline constexpr Eigen::Index kFloatChunk = 256;

template <class A, class B>
double dot64(const Eigen::MatrixBase<A>& a, const Eigen::MatrixBase<B>& b) {
  using Scalar = typename A::Scalar;
  if constexpr (std::is_same_v<Scalar, double>) {
    return a.dot(b);
  } else {
    const Eigen::Index n = a.size();
    double s = 0;
    for (Eigen::Index i = 0; i < n; i += kFloatChunk) {
      const Eigen::Index m = std::min(kFloatChunk, n - i);
      s += static_cast<double>(a.derived().segment(i, m).dot(b.derived().segment(i, m)));
    }
    return s;
  }
}

template <class A>
double sum64(const Eigen::DenseBase<A>& a) {
  using Scalar = typename A::Scalar;
  if constexpr (std::is_same_v<Scalar, double>) {
    return a.sum();
  } else {
    const Eigen::Index n = a.size();
    double s = 0;
    for (Eigen::Index i = 0; i < n; i += kFloatChunk) {
      const Eigen::Index m = std::min(kFloatChunk, n - i);
      s += static_cast<double>(a.derived().segment(i, m).sum());
    }
    return s;
  }
}

// One row of the softmax Jacobian applied to a row g of scores' tangents, in place (§2.2):
// g ← p ⊙ (g − ⟨p, g⟩), with ⟨p, g⟩ accumulated as above. Masked entries carry p = 0.
template <class P, class G>
void softmax_jacobian_row(const Eigen::MatrixBase<P>& p, Eigen::MatrixBase<G>& g) {
  using Scalar = typename G::Scalar;
  const Scalar c = static_cast<Scalar>(dot64(p, g));
  g.derived() = p.cwiseProduct((g.array() - c).matrix());
}

template <class P, class G>
void softmax_jacobian_row(const Eigen::MatrixBase<P>& p, Eigen::MatrixBase<G>&& g) {
  softmax_jacobian_row(p, g);
}

}  // namespace lipattn
