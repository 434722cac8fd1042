// σ_max(J) three ways (docs/theory.md §4). Every method ends with certify(): lower = ‖Jv‖ for the
// unit vector v it found is a certified lower bound of ‖J‖₂ whatever the iteration did.
#include "spectral/spectral_norm.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include <Spectra/SymEigsSolver.h>
#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

SpectralMethod parse_spectral_method(const std::string& name) {
  if (name == "auto") return SpectralMethod::Auto;
  if (name == "dense") return SpectralMethod::Dense;
  if (name == "lanczos") return SpectralMethod::Lanczos;
  if (name == "power") return SpectralMethod::Power;
  throw InputError(fmt::format("--method must be auto, dense, lanczos or power, got '{}'", name));
}

std::string to_string(SpectralMethod method) {
  switch (method) {
    case SpectralMethod::Auto: return "auto";
    case SpectralMethod::Dense: return "dense";
    case SpectralMethod::Lanczos: return "lanczos";
    case SpectralMethod::Power: return "power";
  }
  return "?";
}

MatrixD assemble_dense(const LinearOperator& op) {
  MatrixD J(op.output_size(), op.input_size());
  VectorD e = VectorD::Zero(op.input_size());
  for (Index j = 0; j < op.input_size(); ++j) {
    e(j) = 1;
    J.col(j) = op.apply(e);
    e(j) = 0;
  }
  return J;
}

Certificate certify(const LinearOperator& op, const VectorD& v_in) {
  Certificate c;
  const double norm = v_in.norm();
  if (!(norm > 0)) return c;
  const VectorD v = v_in / norm;
  const VectorD Jv = op.apply(v);
  c.lower = Jv.norm();
  const double theta = c.lower * c.lower;
  c.normal_product = op.apply_transpose(Jv);
  const VectorD r = c.normal_product - theta * v;
  c.relative_residual = theta > 0 ? r.norm() / theta : (r.norm() == 0 ? 0.0 : std::numeric_limits<double>::infinity());
  return c;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

VectorD random_unit_vector(Index size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  VectorD v(size);
  for (Index i = 0; i < size; ++i) v(i) = normal(rng);
  return v / v.norm();
}

// Spectra's operator concept: anything with rows(), cols() and perform_op(x, y) = JᵀJ x.
class NormalOperator {
 public:
  using Scalar = double;
  NormalOperator(const LinearOperator& op, const SpectralOptions& o) : op_(op), options_(o) {}
  Index rows() const { return op_.input_size(); }
  Index cols() const { return op_.input_size(); }
  void perform_op(const double* x, double* y) const {
    Eigen::Map<VectorD>(y, rows()) = op_.apply_normal(Eigen::Map<const VectorD>(x, rows()));
    if (options_.on_product) options_.on_product(++products_, seconds_since(start_));
  }

 private:
  const LinearOperator& op_;
  const SpectralOptions& options_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  mutable long products_ = 0;
};

SpectralResult dense_method(const LinearOperator& op) {
  SpectralResult r;
  r.method = SpectralMethod::Dense;
  const MatrixD J = assemble_dense(op);
  // σ_max² is the top eigenvalue of the Gram matrix of the smaller side. Eigen's BDCSVD crashed on
  // Jacobians with many equal singular values (the paper's construction), and for the largest
  // singular value the Gram route loses nothing: its relative error stays at machine precision.
  if (J.rows() < J.cols()) {
    const MatrixD G = J * J.transpose();
    Eigen::SelfAdjointEigenSolver<MatrixD> eig(G);
    const Index top = G.rows() - 1;
    r.lipschitz = std::sqrt(std::max(0.0, eig.eigenvalues()(top)));
    const VectorD v = J.transpose() * eig.eigenvectors().col(top);  // Jᵀu = σ v
    r.right_vector = v.norm() > 0 ? VectorD(v / v.norm()) : VectorD(VectorD::Unit(J.cols(), 0));
  } else {
    const MatrixD G = J.transpose() * J;
    Eigen::SelfAdjointEigenSolver<MatrixD> eig(G);
    const Index top = G.rows() - 1;
    r.lipschitz = std::sqrt(std::max(0.0, eig.eigenvalues()(top)));
    r.right_vector = eig.eigenvectors().col(top);
  }
  r.matvecs = op.input_size();
  r.converged = true;
  return r;
}

SpectralResult lanczos_method(const LinearOperator& op, const SpectralOptions& o) {
  SpectralResult r;
  r.method = SpectralMethod::Lanczos;
  const Index N = op.input_size();
  NormalOperator normal(op, o);
  const Index ncv = std::min<Index>(std::max(o.krylov_dim, 3), N);
  Spectra::SymEigsSolver<NormalOperator> eigs(normal, 1, ncv);
  const VectorD start = random_unit_vector(N, o.seed);
  eigs.init(start.data());
  const int max_restarts = o.max_iter > 0 ? o.max_iter : 1000;
  eigs.compute(Spectra::SortRule::LargestAlge, max_restarts, o.tol);
  r.matvecs = eigs.num_operations();
  r.converged = eigs.info() == Spectra::CompInfo::Successful;
  if (eigs.eigenvalues().size() > 0) {
    r.lipschitz = std::sqrt(std::max(0.0, eigs.eigenvalues()(0)));
    r.right_vector = eigs.eigenvectors().col(0);
  } else {
    // Not converged: Spectra returns nothing, so fall back on the start vector's certificate.
    r.right_vector = start;
  }
  return r;
}

SpectralResult power_method(const LinearOperator& op, const SpectralOptions& o) {
  SpectralResult r;
  r.method = SpectralMethod::Power;
  const auto start = std::chrono::steady_clock::now();
  VectorD v = random_unit_vector(op.input_size(), o.seed);
  VectorD w = op.apply_normal(v);
  r.matvecs = 1;
  if (o.on_product) o.on_product(r.matvecs, seconds_since(start));
  const long max_steps = o.max_iter > 0 ? o.max_iter : 100000;
  double theta = 0;
  while (true) {
    theta = v.dot(w);  // Rayleigh quotient of JᵀJ
    const double residual = (w - theta * v).norm();
    if (residual <= o.tol * theta || residual == 0) {
      r.converged = true;
      break;
    }
    if (r.matvecs >= max_steps) break;
    v = w / w.norm();
    w = op.apply_normal(v);
    ++r.matvecs;
    if (o.on_product) o.on_product(r.matvecs, seconds_since(start));
  }
  r.lipschitz = std::sqrt(std::max(0.0, theta));
  r.right_vector = v;
  return r;
}

}  // namespace

SpectralResult spectral_norm(const LinearOperator& op, const SpectralOptions& o) {
  if (!(o.tol > 0) || !std::isfinite(o.tol)) throw InputError(fmt::format("--tol must be positive, got {}", o.tol));
  if (o.max_iter < 0) throw InputError(fmt::format("--max-iter must be ≥ 0, got {}", o.max_iter));
  const auto start = std::chrono::steady_clock::now();
  SpectralMethod method = o.method;
  const Index N = op.input_size();
  if (method == SpectralMethod::Auto)
    method = std::max(N, op.output_size()) <= o.dense_max_size ? SpectralMethod::Dense : SpectralMethod::Lanczos;
  if (method == SpectralMethod::Lanczos && N < 3) method = SpectralMethod::Dense;  // Spectra needs ncv > nev ≥ 1
  SpectralResult r;
  if (N == 0) {
    r.method = method;
    r.converged = true;
    r.right_vector = VectorD(0);
  } else if (method == SpectralMethod::Dense) {
    r = dense_method(op);
  } else if (method == SpectralMethod::Lanczos) {
    try {
      r = lanczos_method(op, o);
    } catch (const std::exception&) {
      // Spectra gives up on an operator that is exactly zero on the Krylov space (e.g. LayerNorm
      // of width 1, whose Jacobian vanishes). Power iteration handles that case; it reports itself.
      r = power_method(op, o);
    }
  } else {
    r = power_method(op, o);
  }
  if (N > 0) {
    const Certificate c = certify(op, r.right_vector);
    r.lower = c.lower;
    r.relative_residual = c.relative_residual;
    // A certified lower bound: no estimate below it can be right.
    r.lipschitz = std::max(r.lipschitz, r.lower);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace lipattn
