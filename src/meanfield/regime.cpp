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

Measure construction_two_point(const Construction& c, Index n) {
  if (n < 2) throw InputError(fmt::format("the 2-point reduction needs n ≥ 2, got {}", n), "n");
  Measure mu;
  mu.points = c.tokens(2);
  mu.masses.resize(2);
  mu.masses << 1.0 / static_cast<double>(n), static_cast<double>(n - 1) / static_cast<double>(n);
  return mu;
}

namespace {

// The defaults RegimeOptions leaves to the regime (n_max = 0, full_max = −1).
RegimeOptions with_construction_defaults(RegimeOptions o, double log_n_star) {
  if (o.n_max <= 0) {
    const double n_star = std::exp(std::min(log_n_star, 40.0));
    o.n_max = static_cast<Index>(std::clamp(1000 * n_star, 1e4, 1e9));
  }
  if (o.full_max < 0) o.full_max = 256;
  return o;
}

RegimeOptions with_iid_defaults(RegimeOptions o) {
  if (o.n_max <= 0) o.n_max = 4096;
  if (o.full_max < 0) o.full_max = 1024;
  return o;
}

}  // namespace

std::vector<Index> log_grid(Index n_min, Index n_max, int per_decade) {
  if (n_min < 1 || n_max < n_min)
    throw InputError(fmt::format("the n grid needs 1 ≤ n_min ≤ n_max, got {}..{}", n_min, n_max), "n_min");
  if (per_decade < 1) throw InputError("the n grid needs at least one point per decade", "per_decade");
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
                               const RegimeOptions& options) {
  const AttentionWeights single = weights.head(head);
  RegimeCurve curve;
  curve.regime = "construction";
  curve.radius = radius;
  curve.construction = paper_construction(weights, head, 2, radius);
  if (!curve.construction.applies) return curve;
  const RegimeOptions o = with_construction_defaults(options, curve.construction.log_n_star);
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
      p.query = n >= 3 ? top_singular_value(query_jacobian(spec, two, 1, o.memory)) : 0.0;
      p.lipschitz = std::max(p.merged, p.query);
      p.converged = merged.converged;
    }
    if (n <= o.full_max) {
      const SpectralResult full = measure_local_lipschitz(spec, curve.construction.tokens(n), o.spectral);
      p.full = full.lipschitz;
      p.converged = p.converged && full.converged;
      if (causal) p.lipschitz = p.full;
    }
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    curve.points.push_back(p);
  }
  const double n_star = curve.construction.n_star;
  curve.slope_below = loglog_slope(curve.points, 0, n_star / 10);
  curve.slope_above = loglog_slope(curve.points, n_star * 10, std::numeric_limits<double>::infinity());
  for (const auto& p : curve.points)
    if (std::isfinite(p.lipschitz) && !(p.lipschitz <= curve.peak_value)) curve.peak_n = p.n, curve.peak_value = p.lipschitz;
  return curve;
}

RegimeCurve iid_curve(const LayerSpec& spec, double radius, const RegimeOptions& options) {
  spec.validate();
  if (!(radius > 0) || !std::isfinite(radius))
    throw InputError(fmt::format("radius must be positive and finite, got {}", radius), "radius");
  const RegimeOptions o = with_iid_defaults(options);
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
