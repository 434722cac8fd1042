// The regime change (docs/theory.md §MF.6).
#include "meanfield/regime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include <fmt/core.h>

#include "common/error.h"
#include "spectral/measure.h"

namespace lipattn::meanfield {

namespace {

struct Eigenpair {
  double value;
  VectorD vector;
};

// Real eigenpairs of A = C B (d × d) with C d × k, B k × d. For k < d the non-zero spectrum is that
// of B C (k × k), with eigenvectors C y; λ = 0 then comes with a null vector of B.
std::vector<Eigenpair> real_eigenpairs(const MatrixD& C, const MatrixD& B) {
  const Index d = C.rows(), k = C.cols();
  const bool factored = k < d;
  const MatrixD small = factored ? MatrixD(B * C) : MatrixD(C * B);
  Eigen::EigenSolver<Eigen::MatrixXd> solver(small, true);
  if (solver.info() != Eigen::Success) throw InputError("the eigen-decomposition of A_h did not converge");
  const auto& values = solver.eigenvalues();
  const double scale = values.size() ? values.cwiseAbs().maxCoeff() : 0.0;
  std::vector<Eigenpair> pairs;
  for (Index i = 0; i < values.size(); ++i) {
    if (std::abs(values(i).imag()) > 1e-10 * std::max(scale, 1e-300)) continue;
    VectorD y = solver.eigenvectors().col(i).real();
    VectorD u = factored ? VectorD(C * y) : y;
    if (!(u.norm() > 0)) continue;
    pairs.push_back({values(i).real(), u / u.norm()});
  }
  if (factored) {
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(B, Eigen::ComputeFullV);
    pairs.push_back({0.0, svd.matrixV().col(d - 1)});
  }
  return pairs;
}

}  // namespace

ConstructionPoints construction_points(const AttentionWeights& w, double radius) {
  w.validate();
  if (w.heads != 1) throw InputError("construction_points needs a single head (use AttentionWeights::head)");
  if (!(radius > 0) || !std::isfinite(radius))
    throw InputError(fmt::format("--radius must be positive and finite, got {}", radius));
  // S_ij = c ⟨W_Q x_i, W_K x_j⟩ = ⟨A x_i, x_j⟩ with A = c W_Kᵀ W_Q (biases ignored).
  const MatrixD C = w.effective_scale() * w.w_k.transpose();
  const auto pairs = real_eigenpairs(C, w.w_q);
  ConstructionPoints c;
  c.radius = radius;
  if (pairs.empty()) return c;
  auto [lo, hi] = std::minmax_element(pairs.begin(), pairs.end(),
                                      [](const Eigenpair& a, const Eigenpair& b) { return a.value < b.value; });
  c.applies = true;
  c.lambda_max = hi->value;
  c.lambda_min = lo->value;
  c.uses_lambda_max = c.lambda_max > -8 * c.lambda_min;
  const double R2 = radius * radius;
  if (c.uses_lambda_max) {
    c.direction = hi->vector;
    c.first = radius * c.direction;
    c.rest = 0.5 * radius * c.direction;
    c.log_n_star = c.lambda_max * R2 / 4;
  } else {
    c.direction = lo->vector;
    c.first = -radius * c.direction;
    c.rest = radius * c.direction;
    c.log_n_star = 2 * std::abs(c.lambda_min) * R2;
  }
  return c;
}

MatrixD construction_tokens(const ConstructionPoints& c, Index n) {
  if (!c.applies) throw InputError("the construction does not apply: A_h has no real eigenvalue");
  MatrixD X(n, c.first.size());
  X.row(0) = c.first.transpose();
  for (Index i = 1; i < n; ++i) X.row(i) = c.rest.transpose();
  return X;
}

Measure construction_two_point(const ConstructionPoints& c, Index n) {
  if (n < 2) throw InputError(fmt::format("the 2-point reduction needs n ≥ 2, got {}", n));
  Measure mu;
  mu.points = construction_tokens(c, 2);
  mu.masses.resize(2);
  mu.masses << 1.0 / static_cast<double>(n), static_cast<double>(n - 1) / static_cast<double>(n);
  return mu;
}

std::vector<Index> log_grid(Index n_min, Index n_max, int per_decade) {
  if (n_min < 1 || n_max < n_min)
    throw InputError(fmt::format("the n grid needs 1 ≤ n_min ≤ n_max, got {}..{}", n_min, n_max));
  if (per_decade < 1) throw InputError("the n grid needs at least one point per decade");
  std::vector<Index> grid;
  const double lo = std::log10(static_cast<double>(n_min)), hi = std::log10(static_cast<double>(n_max));
  const int steps = std::max(1, static_cast<int>(std::ceil((hi - lo) * per_decade)));
  for (int s = 0; s <= steps; ++s) {
    const Index n = static_cast<Index>(std::llround(std::pow(10.0, lo + (hi - lo) * s / steps)));
    if (grid.empty() || n > grid.back()) grid.push_back(std::clamp(n, n_min, n_max));
  }
  return grid;
}

double loglog_slope(const std::vector<RegimePoint>& points, double n_lo, double n_hi) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int m = 0;
  for (const auto& p : points) {
    if (p.n < n_lo || p.n > n_hi || !(p.lipschitz > 0)) continue;
    const double x = std::log(static_cast<double>(p.n)), y = std::log(p.lipschitz);
    sx += x, sy += y, sxx += x * x, sxy += x * y, ++m;
  }
  if (m < 2) return kNaN;
  const double denom = m * sxx - sx * sx;
  return denom > 0 ? (m * sxy - sx * sy) / denom : kNaN;
}

RegimeCurve construction_curve(const AttentionWeights& weights, Index head, double radius,
                               const RegimeOptions& o) {
  const AttentionWeights single = weights.head(head);
  RegimeCurve curve;
  curve.regime = "construction";
  curve.radius = radius;
  curve.construction = construction_points(single, radius);
  if (!curve.construction.applies) return curve;
  LayerSpec spec;
  spec.attention = single;
  const bool causal = single.causal;
  for (Index n : log_grid(std::max<Index>(o.n_min, 2), o.n_max, o.per_decade)) {
    if (causal && n > o.full_max) break;  // no reduction with distinct positions
    const auto start = std::chrono::steady_clock::now();
    RegimePoint p;
    p.n = n;
    if (!causal) {
      // §MF.4 with one group of n − 1 copies: L = max(L(2-point measure), ‖Q(x_2)‖ if n − 1 ≥ 2).
      const Measure two = construction_two_point(curve.construction, n);
      const SpectralResult merged = meanfield_lipschitz(spec, two, o.spectral, o.memory);
      p.merged = merged.lipschitz;
      p.query = n >= 3 ? Eigen::JacobiSVD<MatrixD>(query_jacobian(spec, two, 1, o.memory)).singularValues()(0) : 0.0;
      p.lipschitz = std::max(p.merged, p.query);
      p.converged = merged.converged;
    }
    if (n <= o.full_max) {
      // Auto would pick dense, and Eigen 3.4's BDCSVD returns wrong values or crashes on these
      // Jacobians with n − 1 identical tokens (§MF.7): Auto means Lanczos here.
      SpectralOptions full_options = o.spectral;
      if (full_options.method == SpectralMethod::Auto) full_options.method = SpectralMethod::Lanczos;
      const SpectralResult full =
          measure_local_lipschitz(spec, construction_tokens(curve.construction, n), full_options);
      p.full = full.lipschitz;
      p.converged = p.converged && full.converged;
      if (causal) p.lipschitz = p.full;
    }
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    curve.points.push_back(p);
  }
  const double n_star = std::exp(curve.construction.log_n_star);
  curve.slope_below = loglog_slope(curve.points, 0, n_star / 10);
  curve.slope_above = loglog_slope(curve.points, n_star * 10, std::numeric_limits<double>::infinity());
  for (const auto& p : curve.points)
    if (std::isfinite(p.lipschitz) && !(p.lipschitz <= curve.peak_value)) curve.peak_n = p.n, curve.peak_value = p.lipschitz;
  return curve;
}

RegimeCurve iid_curve(const LayerSpec& spec, double radius, const RegimeOptions& o) {
  spec.validate();
  if (!(radius > 0) || !std::isfinite(radius))
    throw InputError(fmt::format("--radius must be positive and finite, got {}", radius));
  RegimeCurve curve;
  curve.regime = "iid";
  curve.radius = radius;
  const Index d = spec.attention.input_dim();
  curve.sigma = radius / std::sqrt(static_cast<double>(d));  // E‖x‖² = R²
  // One sample of n_max tokens; the curve uses its first n, so the measures are nested.
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> normal(0.0, curve.sigma);
  MatrixD sample(o.n_max, d);
  for (Index i = 0; i < sample.size(); ++i) sample.data()[i] = normal(rng);
  for (Index n : log_grid(o.n_min, o.n_max, o.per_decade)) {
    const auto start = std::chrono::steady_clock::now();
    RegimePoint p;
    p.n = n;
    const MatrixD X = sample.topRows(n);
    const SpectralResult mf = meanfield_lipschitz(spec, Measure::uniform(X, spec.attention.causal), o.spectral,
                                                  o.memory);
    p.lipschitz = mf.lipschitz;
    p.converged = mf.converged;
    if (n <= o.full_max) {
      const SpectralResult full = measure_local_lipschitz(spec, X, o.spectral);
      p.full = full.lipschitz;
      p.converged = p.converged && full.converged;
    }
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    curve.points.push_back(p);
  }
  curve.slope_all = loglog_slope(curve.points, 0, std::numeric_limits<double>::infinity());
  curve.slope_last_decade = loglog_slope(curve.points, o.n_max / 10.0, std::numeric_limits<double>::infinity());
  return curve;
}

}  // namespace lipattn::meanfield
