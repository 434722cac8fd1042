// The map protocol that carries the design (docs/theory.md §1).
//
// A differentiable map f: R^{n×d_in} → R^{n×d_out} acting on sequences (one token per row) offers
//   cache = forward(X)        Y = f(X) plus whatever its derivatives need
//   dY    = jvp(cache, dX)    J·dX with J = Df(X)
//   dX    = vjp(cache, dY)    Jᵀ·dY
// Maps compose (Chain, Residual), so the Jacobian of a composition comes for free, and a solver
// only ever sees v ↦ vjp(cache, jvp(cache, v)) = JᵀJ v.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/types.h"

namespace lipattn {

// What forward() leaves behind. Every map extends it with its own fields.
template <class T>
struct Cache {
  virtual ~Cache() = default;
  Matrix<T> output;  // Y = f(X), n × d_out
};

template <class T>
class Map {
 public:
  using Scalar = T;
  virtual ~Map() = default;

  virtual Index input_dim() const = 0;   // d_in: columns of X
  virtual Index output_dim() const = 0;  // d_out: columns of Y
  virtual std::string describe() const = 0;

  virtual std::unique_ptr<Cache<T>> forward(const MatrixView<T>& X) const = 0;
  virtual Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const = 0;  // n×d_in → n×d_out
  virtual Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const = 0;  // n×d_out → n×d_in

  // The second-order product ∇_X ⟨u, Df(X) v⟩ at the cached X (docs/theory.md, attack §2):
  // v is n × d_in, u is n × d_out, the result n × d_in. With (u, v) the top singular pair of Df(X)
  // it is the gradient of σ_max(Df(X)), which the attack ascends. Every map of this folder
  // implements it; the default throws std::logic_error for a map that does not.
  virtual Matrix<T> second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const;

  // JᵀJ dX = vjp(cache, jvp(cache, dX)), what a spectral solver applies. A map may override it
  // with a cheaper order of the same products (MultiHeadAttention: docs/theory.md §2.5).
  virtual Matrix<T> normal_product(const Cache<T>& cache, const Matrix<T>& dX) const {
    return vjp(cache, jvp(cache, dX));
  }
};

template <class T>
Matrix<T> Map<T>::second_order(const Cache<T>&, const Matrix<T>&, const Matrix<T>&) const {
  throw std::logic_error(describe() + ": second_order is not implemented for this map");
}

template <class T>
using MapPtr = std::shared_ptr<const Map<T>>;

// g_k ∘ … ∘ g_1: jvp runs front to back, vjp back to front.
template <class T>
class Chain final : public Map<T> {
 public:
  explicit Chain(std::vector<MapPtr<T>> maps);
  Index input_dim() const override;
  Index output_dim() const override;
  std::string describe() const override;
  std::unique_ptr<Cache<T>> forward(const MatrixView<T>& X) const override;
  Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const override;
  Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const override;
  Matrix<T> second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const override;

 private:
  std::vector<MapPtr<T>> maps_;
};

// X ↦ X + g(X); needs d_out(g) = d_in(g).
template <class T>
class Residual final : public Map<T> {
 public:
  explicit Residual(MapPtr<T> inner);
  Index input_dim() const override { return inner_->input_dim(); }
  Index output_dim() const override { return inner_->output_dim(); }
  std::string describe() const override;
  std::unique_ptr<Cache<T>> forward(const MatrixView<T>& X) const override;
  Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const override;
  Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const override;
  Matrix<T> second_order(const Cache<T>& cache, const Matrix<T>& v, const Matrix<T>& u) const override;

 private:
  MapPtr<T> inner_;
};

}  // namespace lipattn
