// Float32 corrections, float64 Rayleigh–Ritz: the float64 phase of a mixed-precision solve
// (docs/theory.md §4.7).
#include "spectral/correction.h"

#include <cmath>
#include <limits>

#include <Eigen/Eigenvalues>

namespace lipattn {

namespace {

// At most this many correction steps (one float64 product each); past them the phase gives up and the
// caller solves afresh.
constexpr int kMaxCorrections = 4;
// A step must cut the float64 residual at least this much, or the phase gives up.
constexpr double kMinProgress = 0.5;
// The float32 solve of a step aims at this fraction of the tolerance (a little below it: the float64
// residual after the step lands near the target), but no lower than this fraction of the residual
// it corrects: products carry relative rounding of about 1e-7·κ on the correction equation (§4.7).
constexpr double kInnerTarget = 0.9, kInnerFloor = 1e-3;

// The products of both precisions, counted together (ProductCounter), the float32 ones also apart.
class Products {
 public:
  Products(const LinearOperator& op, const LinearOperator& twin, const SpectralOptions& o)
      : op_(op), twin_(twin), counter_(o) {}
  ImageAndNormal f64(const VectorD& v) {  // Jv kept for the certificate (§4.7)
    ImageAndNormal p = op_.apply_keeping_image(v);
    counter_.count();
    return p;
  }
  VectorD f32(const VectorD& v) {
    ++f32_;
    VectorD w = twin_.apply_normal(v);
    counter_.count();
    return w;
  }
  long total() const { return counter_.total(); }
  long f32_total() const { return f32_; }

 private:
  const LinearOperator& op_;
  const LinearOperator& twin_;
  ProductCounter counter_;
  long f32_ = 0;
};

// x − u(uᵀx) for unit u.
VectorD project_out(const VectorD& u, VectorD x) {
  x -= u.dot(x) * u;
  return x;
}

// The preconditioner of the correction equation (§4.7): on the span of the float32 phase's Ritz
// vectors z_i below the top, (θ − λ_i)⁻¹ (they approximate A's eigenpairs there, where θ − A is
// smallest and the equation hardest); elsewhere 1/θ. Projected on u⟂. Without Ritz vectors: (I − uuᵀ).
class Preconditioner {
 public:
  Preconditioner(const RitzBlock* ritz, const VectorD& u, double theta) : ritz_(ritz), u_(u), theta_(theta) {
    if (!ritz_) return;
    scale_ = VectorD::Zero(ritz_->values.size());
    for (Index i = 0; i < scale_.size(); ++i)  // only pairs below θ: the operator stays positive
      if (ritz_->values(i) < theta) scale_(i) = 1.0 / (theta - ritz_->values(i)) - 1.0 / theta;
  }
  VectorD operator()(const VectorD& res) const {
    if (!ritz_ || scale_.size() == 0) return project_out(u_, res);
    const VectorD c = ritz_->vectors.transpose() * res;
    return project_out(u_, res / theta_ + ritz_->vectors * scale_.cwiseProduct(c));
  }

 private:
  const RitzBlock* ritz_;
  const VectorD& u_;
  double theta_;
  VectorD scale_;  // (θ − λ_i)⁻¹ − θ⁻¹, 0 for a pair not below θ
};

// Preconditioned conjugate gradients on A = (I − uuᵀ)(θ − JᵀJ)(I − uuᵀ) with the twin's products, for
// A t = r (r ⟂ u). A is positive definite on u⟂ when θ lies above the rest of JᵀJ's spectrum (u near
// the top vector); pᵀAp ≤ 0 says it does not (a cluster, a lower eigenvector) and ends the solve with
// what it has. Stops when the recurrence's residual is at most target, or after max_steps products.
VectorD solve_correction(Products& products, const VectorD& u, double theta, const VectorD& r,
                         const Preconditioner& precondition, double target, int max_steps) {
  VectorD t = VectorD::Zero(r.size()), res = project_out(u, r), z = precondition(res), p = z;
  double rz = res.dot(z);
  for (int step = 0; step < max_steps && res.norm() > target && rz > 0; ++step) {
    const double scale = p.norm();  // products of unit vectors: no float32 under- or overflow
    const VectorD q = project_out(u, theta * p - scale * products.f32(p / scale));
    const double pq = p.dot(q);
    if (!(pq > 0)) break;
    const double alpha = rz / pq;
    t += alpha * p;
    res -= alpha * q;
    z = precondition(res);
    const double rz_next = res.dot(z);
    p = z + (rz_next / rz) * p;
    rz = rz_next;
  }
  return t;
}

// The subspace U (orthonormal columns, at most `capacity`) with G = J·U and W = JᵀJ·U in float64,
// and its top Ritz pair.
struct Subspace {
  Subspace(Index size, Index image_size, Index capacity) : U(size, capacity), G(image_size, capacity), W(size, capacity) {}
  MatrixD U, G, W;
  Index k = 0;
  double theta = 0;
  VectorD u, residual;  // the Ritz vector u = U y and its residual W y − θ u
  ImageAndNormal at_u;  // Ju = G y and JᵀJu = W y

  void add(const VectorD& v, Products& products) {
    U.col(k) = v;
    ImageAndNormal p = products.f64(v);
    G.col(k) = p.image;
    W.col(k) = p.normal;
    ++k;
    const MatrixD H = U.leftCols(k).transpose() * W.leftCols(k);
    Eigen::SelfAdjointEigenSolver<MatrixD> eig(0.5 * (H + H.transpose()));
    const VectorD y = eig.eigenvectors().col(k - 1);
    theta = eig.eigenvalues()(k - 1);
    u = U.leftCols(k) * y;
    at_u.image = G.leftCols(k) * y;
    at_u.normal = W.leftCols(k) * y;
    residual = at_u.normal - theta * u;
  }
  double relative_residual() const {
    return theta > 0 ? residual.norm() / theta : std::numeric_limits<double>::infinity();
  }
};

// t orthogonalised against U's columns (two classical Gram–Schmidt passes) and normalised; empty when
// nothing of it is left.
VectorD orthonormal_to(const Subspace& s, VectorD t) {
  const double before = t.norm();
  for (int pass = 0; pass < 2; ++pass) t -= s.U.leftCols(s.k) * (s.U.leftCols(s.k).transpose() * t);
  const double after = t.norm();
  if (!(after > 1e-8 * before)) return VectorD();
  return t / after;
}

}  // namespace

SpectralResult correction_method(const LinearOperator& op, const LinearOperator& twin, const SpectralOptions& o,
                                 const VectorD& x, const StartCheck& check, const RitzBlock* ritz,
                                 ImageAndNormal* known) {
  SpectralResult r;
  r.method = SpectralMethod::Lanczos;
  Products products(op, twin, o);
  const double eps23 = std::pow(std::numeric_limits<double>::epsilon(), 2.0 / 3.0);
  Subspace s(x.size(), op.output_size(), kMaxCorrections + 1);
  s.add(x / x.norm(), products);
  if (!check || check(s.theta, s.relative_residual())) {
    double previous = std::numeric_limits<double>::infinity();
    for (int step = 0;; ++step) {
      const double residual = s.residual.norm();
      if (residual < o.tol * std::max(std::abs(s.theta), eps23)) {
        r.converged = true;
        break;
      }
      if (step == kMaxCorrections || !(residual <= kMinProgress * previous)) break;
      previous = residual;
      const double target = std::max(kInnerTarget * o.tol * s.theta, kInnerFloor * residual);
      const Preconditioner precondition(ritz, s.u, s.theta);
      const VectorD t = orthonormal_to(s, solve_correction(products, s.u, s.theta, s.residual, precondition,
                                                           target, 2 * std::max(o.krylov_dim, 3)));
      if (t.size() == 0) break;
      s.add(t, products);
    }
  }
  r.lipschitz = std::sqrt(std::max(0.0, s.theta));
  r.right_vector = s.u;
  if (known) *known = s.at_u;
  r.matvecs = products.total();
  r.f32_matvecs = products.f32_total();
  return r;
}

}  // namespace lipattn
