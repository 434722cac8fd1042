// σ_max(J) three ways (docs/theory.md §4). Every method ends with certify(): lower = ‖Jv‖ for the
// unit vector v it found is a certified lower bound of ‖J‖₂ whatever the iteration did.
#include "spectral/spectral_norm.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include <Eigen/Eigenvalues>
#include <fmt/core.h>

#include "common/error.h"
#include "common/stop.h"
#include "spectral/correction.h"
#include "spectral/lanczos.h"

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

VectorD random_unit_vector(Index size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  VectorD v(size);
  for (Index i = 0; i < size; ++i) v(i) = normal(rng);
  return v / v.norm();
}

MatrixD assemble_dense(const LinearOperator& op) {
  MatrixD J(op.output_size(), op.input_size());
  VectorD e = VectorD::Zero(op.input_size());
  for (Index j = 0; j < op.input_size(); ++j) {
    e(j) = 1;
    J.col(j) = op.apply(e);
    e(j) = 0;
    stop::throw_if_requested();  // common/stop.h: between columns, as between products
  }
  return J;
}

namespace {

// σ_max² is the top eigenvalue of the Gram matrix of M's smaller side (docs/theory.md §4). For
// the largest singular value this loses nothing (its relative error stays at machine precision),
// and it holds on Jacobians with dozens of equal singular values (the paper's construction), on
// which Eigen 3.4's BDCSVD crashed or returned wrong values.
struct GramEigen {
  bool left_side = false;  // true: the eigenvectors are M's left singular vectors (M Mᵀ)
  Eigen::SelfAdjointEigenSolver<MatrixD> eig;
};
GramEigen gram_eigen(const MatrixD& M, int options) {
  GramEigen g;
  g.left_side = M.rows() < M.cols();
  g.eig.compute(g.left_side ? MatrixD(M * M.transpose()) : MatrixD(M.transpose() * M), options);
  return g;
}

}  // namespace

double top_singular_value(const MatrixD& M) {
  if (M.size() == 0) return 0.0;
  const GramEigen g = gram_eigen(M, Eigen::EigenvaluesOnly);
  return std::sqrt(std::max(0.0, g.eig.eigenvalues().maxCoeff()));
}

SingularPair top_singular_pair(const MatrixD& M) {
  SingularPair p;
  if (M.size() == 0) {
    p.right = M.cols() ? VectorD(VectorD::Unit(M.cols(), 0)) : VectorD(0);
    p.left = VectorD::Zero(M.rows());
    return p;
  }
  const GramEigen g = gram_eigen(M, Eigen::ComputeEigenvectors);
  const Index top = g.eig.eigenvalues().size() - 1;
  p.sigma = std::sqrt(std::max(0.0, g.eig.eigenvalues()(top)));
  if (g.left_side) {
    p.left = g.eig.eigenvectors().col(top);
    const VectorD v = M.transpose() * p.left;  // Mᵀu = σ v
    p.right = v.norm() > 0 ? VectorD(v / v.norm()) : VectorD(VectorD::Unit(M.cols(), 0));
  } else {
    p.right = g.eig.eigenvectors().col(top);
    const VectorD u = M * p.right;  // M v = σ u
    p.left = u.norm() > 0 ? VectorD(u / u.norm()) : VectorD(VectorD::Zero(M.rows()));
  }
  return p;
}

Certificate certify(const LinearOperator& op, const VectorD& v_in, const ImageAndNormal& known) {
  Certificate c;
  const double norm = v_in.norm();
  if (!(norm > 0)) return c;
  const VectorD v = v_in / norm;
  c.at_v.image = known.image.size() ? VectorD(known.image / norm) : op.apply(v);
  c.lower = c.at_v.image.norm();
  const double theta = c.lower * c.lower;
  c.at_v.normal = known.normal.size() ? VectorD(known.normal / norm) : op.apply_transpose(c.at_v.image);
  const VectorD r = c.at_v.normal - theta * v;
  c.relative_residual = theta > 0 ? r.norm() / theta : (r.norm() == 0 ? 0.0 : std::numeric_limits<double>::infinity());
  return c;
}

void apply_certificate(SpectralResult& result, const Certificate& c) {
  result.lower = c.lower;
  result.relative_residual = c.relative_residual;
  result.lipschitz = std::max(result.lipschitz, result.lower);
  const VectorD& image = c.at_v.image;
  result.left_vector = c.lower > 0 ? VectorD(image / c.lower) : VectorD(VectorD::Zero(image.size()));
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

SpectralResult dense_method(const LinearOperator& op) {
  SpectralResult r;
  r.method = SpectralMethod::Dense;
  const SingularPair pair = top_singular_pair(assemble_dense(op));
  r.lipschitz = pair.sigma;
  r.right_vector = pair.right;
  r.matvecs = op.input_size();
  r.converged = true;
  return r;
}

SpectralResult power_method(const LinearOperator& op, const SpectralOptions& o, const VectorD& v0) {
  SpectralResult r;
  r.method = SpectralMethod::Power;
  ProductCounter counter(o);
  VectorD v = v0 / v0.norm();
  VectorD w = op.apply_normal(v);
  counter.count();
  const long max_steps = o.max_iter > 0 ? o.max_iter : 100000;
  double theta = 0;
  while (true) {
    theta = v.dot(w);  // Rayleigh quotient of JᵀJ
    const double residual = (w - theta * v).norm();
    if (residual <= o.tol * theta || residual == 0) {
      r.converged = true;
      break;
    }
    if (counter.total() >= max_steps) break;
    v = w / w.norm();
    w = op.apply_normal(v);
    counter.count();
  }
  r.matvecs = counter.total();
  r.lipschitz = std::sqrt(std::max(0.0, theta));
  r.right_vector = v;
  return r;
}

void check_options(const LinearOperator& op, const SpectralOptions& o) {
  if (!(o.tol > 0) || !std::isfinite(o.tol))
    throw InputError(fmt::format("tol must be positive and finite, got {}", o.tol), "tol");
  if (o.max_iter < 0) throw InputError(fmt::format("max_iter must be ≥ 0, got {}", o.max_iter), "max_iter");
  if (!(o.mixed_tol >= 0) || !std::isfinite(o.mixed_tol))
    throw InputError(fmt::format("mixed_tol must be ≥ 0 and finite, got {}", o.mixed_tol), "mixed_tol");
  if (o.start.size() == 0) return;
  if (o.start.size() != op.input_size())
    throw InputError(
        fmt::format("the start vector has {} entries, the operator takes {}", o.start.size(), op.input_size()),
        "start");
  if (!o.start.allFinite() || !(o.start.norm() > 0))
    throw InputError("the start vector must be finite and nonzero", "start");
}

void check_hint(const LinearOperator& op, const SpectralOptions& o) {
  if (o.start_hint.size() == 0) return;
  if (o.start_hint.size() != op.input_size())
    throw InputError(fmt::format("the start hint has {} entries, the operator takes {}", o.start_hint.size(),
                                 op.input_size()),
                     "start_hint");
  if (!o.start_hint.allFinite() || !(o.start_hint.norm() > 0))
    throw InputError("the start hint must be finite and nonzero", "start_hint");
}

// Auto: dense for small Jacobians, unless a start vector is given: a warm start converges in a few
// products, while dense always costs N_in products and an N³ eigensolve (docs/theory.md §4).
SpectralMethod resolve_method(const LinearOperator& op, const SpectralOptions& o) {
  const Index N = op.input_size();
  SpectralMethod method = o.method;
  if (method == SpectralMethod::Auto)
    method = std::max(N, op.output_size()) <= o.dense_max_size && o.start.size() == 0 ? SpectralMethod::Dense
                                                                                      : SpectralMethod::Lanczos;
  if (method == SpectralMethod::Lanczos && N < 3) method = SpectralMethod::Dense;  // a restart needs 3 vectors
  return method;
}

// Mixed precision (docs/theory.md §4.5, §4.7). Float32 products carry relative rounding of about
// 1e-7, so the float32 phase stops at 1e-6 at the least; it gets a few restarts, since one that stalls
// above its tolerance only wastes products. Its vector must pass the first float64 product: a relative
// residual and a change of θ beyond kMixedAgreement times its tolerance mean the twin is not J to that
// tolerance. The float64 phase is then float32 corrections with float64 Rayleigh–Ritz
// (correction_method); when they are refused or make no progress, the float64 solve starts afresh
// from v0. (Float64 Lanczos from the float32 vector would spoil its own residual estimate to about
// ε/ρ₀ from a start of residual ρ₀; Rayleigh–Ritz on stored products does not, so the float32 phase
// needs no tolerance floor beyond float32's.)
constexpr double kFloat32Floor = 1e-6;
constexpr int kMixedRestarts = 4;
constexpr double kMixedAgreement = 100;

// on_product numbered across both phases.
SpectralOptions phase_options(const SpectralOptions& o, long products_before, double seconds_before) {
  SpectralOptions p = o;
  if (o.on_product)
    p.on_product = [f = o.on_product, products_before, seconds_before](long products, double seconds) {
      f(products_before + products, seconds_before + seconds);
    };
  return p;
}

// *known: Jv and JᵀJv at the vector found when the corrections found it (empty otherwise).
SpectralResult mixed_lanczos(const LinearOperator& op, const LinearOperator& twin, const SpectralOptions& o,
                             const VectorD& v0, ImageAndNormal* known) {
  const auto start = std::chrono::steady_clock::now();
  SpectralOptions o32 = o;
  o32.tol = std::max(o.mixed_tol, kFloat32Floor);
  o32.max_iter = o.max_iter > 0 ? std::min(o.max_iter, kMixedRestarts) : kMixedRestarts;
  SpectralResult r32;
  RitzBlock below;
  bool converged32 = false;
  try {
    r32 = lanczos_method(twin, o32, v0, {}, nullptr, &below, kPreconditionerPairs);
    converged32 = r32.converged;
  } catch (const KrylovBreakdown&) {
  }
  long spent64 = 0, spent32 = 0;  // by the corrections
  MixedPhase outcome = MixedPhase::Stalled;
  if (converged32) {
    const double theta32 = r32.lipschitz * r32.lipschitz, allowed = kMixedAgreement * o32.tol;
    const StartCheck agrees = [&](double theta, double residual) {
      return residual <= allowed && std::abs(theta - theta32) <= allowed * theta32;
    };
    SpectralResult c = correction_method(op, twin, phase_options(o, r32.matvecs, seconds_since(start)),
                                         r32.right_vector, agrees, &below, known);
    if (c.converged) {
      c.f32_matvecs += r32.matvecs;
      c.matvecs += r32.matvecs;
      c.mixed = MixedPhase::Used;
      return c;
    }
    *known = {};
    spent64 = c.matvecs - c.f32_matvecs;
    spent32 = c.f32_matvecs;
    outcome = MixedPhase::Rejected;
  }
  SpectralResult r =
      lanczos_method(op, phase_options(o, r32.matvecs + spent64 + spent32, seconds_since(start)), v0);
  r.f32_matvecs = r32.matvecs + spent32;
  r.matvecs += r32.matvecs + spent64 + spent32;
  r.mixed = outcome;
  return r;
}

}  // namespace

std::string to_string(MixedPhase phase) {
  switch (phase) {
    case MixedPhase::Off: return "off";
    case MixedPhase::Used: return "used";
    case MixedPhase::Stalled: return "stalled";
    case MixedPhase::Rejected: return "rejected";
  }
  return "?";
}

MixedPhase parse_mixed_phase(const std::string& name) {
  for (MixedPhase p : {MixedPhase::Off, MixedPhase::Used, MixedPhase::Stalled, MixedPhase::Rejected})
    if (to_string(p) == name) return p;
  throw InputError(fmt::format("mixed must be off, used, stalled or rejected, got '{}'", name), "mixed");
}

SpectralResult spectral_norm(const LinearOperator& op, const SpectralOptions& o) {
  check_options(op, o);
  check_hint(op, o);
  const auto start = std::chrono::steady_clock::now();
  const SpectralMethod method = resolve_method(op, o);
  const Index N = op.input_size();
  VectorD v0 = N == 0 || method == SpectralMethod::Dense ? VectorD()
               : o.start.size()                          ? o.start
                                                         : random_unit_vector(N, o.seed);
  if (v0.size() && !o.start.size() && o.start_hint.size()) v0 += o.start_hint / o.start_hint.norm();  // §4.6
  SpectralResult r;
  ImageAndNormal known;  // Jv and JᵀJv at r.right_vector when the method has them from its own products
  if (N == 0) {
    r.method = method;
    r.converged = true;
    r.right_vector = VectorD(0);
  } else if (method == SpectralMethod::Dense) {
    r = dense_method(op);
  } else if (method == SpectralMethod::Lanczos) {
    try {
      const LinearOperator* twin = op.float32_twin();
      r = twin && o.mixed_tol > o.tol ? mixed_lanczos(op, *twin, o, v0, &known) : lanczos_method(op, o, v0);
    } catch (const KrylovBreakdown&) {
      known = {};
      // JᵀJ is zero on the Krylov space and beyond (e.g. LayerNorm of width 1, whose Jacobian
      // vanishes). Power iteration handles that case; it reports itself.
      r = power_method(op, o, v0);
    }
  } else {
    r = power_method(op, o, v0);
  }
  if (N > 0 && o.certify) apply_certificate(r, certify(op, r.right_vector, known));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace lipattn
