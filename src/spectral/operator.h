// What a spectral solver sees: a linear operator J: R^{N_in} → R^{N_out} that can apply J and Jᵀ
// (docs/theory.md §4). Solvers work on JᵀJ in float64; the operator may compute in float32 inside.
#pragma once

#include <memory>

#include "attention/map.h"

namespace lipattn {

// Jv and JᵀJv at one vector v, in float64: what a product computes on its way, and what the
// certificate needs (docs/theory.md §4.7).
struct ImageAndNormal {
  VectorD image;   // J v
  VectorD normal;  // JᵀJ v
};

class LinearOperator {
 public:
  virtual ~LinearOperator() = default;
  virtual Index input_size() const = 0;   // N_in
  virtual Index output_size() const = 0;  // N_out
  virtual VectorD apply(const VectorD& v) const = 0;            // J v
  virtual VectorD apply_transpose(const VectorD& w) const = 0;  // Jᵀ w
  virtual VectorD apply_normal(const VectorD& v) const { return apply_transpose(apply(v)); }  // JᵀJ v
  // JᵀJ v as Jᵀ(Jv), keeping Jv: the cost of a product (apply_normal may fuse the two and lose Jv,
  // docs/theory.md §2.5), and a certificate at v needs nothing more.
  ImageAndNormal apply_keeping_image(const VectorD& v) const {
    ImageAndNormal p;
    p.image = apply(v);
    p.normal = apply_transpose(p.image);
    return p;
  }
  // The same J with its products computed in float32, or null: the float32 phase of a mixed-precision
  // solve runs on it (SpectralOptions::mixed_tol, docs/theory.md §4.5).
  virtual const LinearOperator* float32_twin() const { return nullptr; }
};

// Df(X) of a map at X: runs forward once and keeps the cache, so every product reuses it.
// Vectors are the row-major flattening of n × d matrices.
template <class T>
class Linearization final : public LinearOperator {
 public:
  Linearization(MapPtr<T> map, const MatrixView<double>& X);
  Index input_size() const override { return n_ * map_->input_dim(); }
  Index output_size() const override { return n_ * map_->output_dim(); }
  VectorD apply(const VectorD& v) const override;
  VectorD apply_transpose(const VectorD& w) const override;
  VectorD apply_normal(const VectorD& v) const override;  // the map's normal_product, in T throughout

  Index tokens() const { return n_; }
  const Map<T>& map() const { return *map_; }
  const Cache<T>& cache() const { return *cache_; }
  MatrixD output() const { return cache_->output.template cast<double>(); }

 private:
  MapPtr<T> map_;
  Index n_;
  std::unique_ptr<Cache<T>> cache_;
};

// Df(X) in float64 with its float32 twin, the same map built in float: a solve with
// SpectralOptions::mixed_tol runs its float32 phase on the twin (docs/theory.md §4.5). Two forward
// passes, one per precision.
class TwinLinearization final : public LinearOperator {
 public:
  TwinLinearization(MapPtr<double> map64, MapPtr<float> map32, const MatrixView<double>& X)
      : f64_(std::move(map64), X), f32_(std::move(map32), X) {}
  Index input_size() const override { return f64_.input_size(); }
  Index output_size() const override { return f64_.output_size(); }
  VectorD apply(const VectorD& v) const override { return f64_.apply(v); }
  VectorD apply_transpose(const VectorD& w) const override { return f64_.apply_transpose(w); }
  VectorD apply_normal(const VectorD& v) const override { return f64_.apply_normal(v); }
  const LinearOperator* float32_twin() const override { return &f32_; }
  const Linearization<double>& float64() const { return f64_; }

 private:
  Linearization<double> f64_;
  Linearization<float> f32_;
};

}  // namespace lipattn
