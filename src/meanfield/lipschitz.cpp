// Mean-field constants (docs/theory.md §MF.3–§MF.5).
#include "meanfield/lipschitz.h"

#include <chrono>
#include <cmath>
#include <limits>

#include <fmt/core.h>

#include "common/error.h"
#include "spectral/measure.h"

namespace lipattn::meanfield {

namespace {
Measure normalised(const Measure& mu) {
  Measure m = mu;
  m.validate_and_normalise();
  return m;
}
}  // namespace

MeanFieldOperator::MeanFieldOperator(const LayerSpec& spec, const Measure& mu_in, const AttentionMemory& memory)
    : linear_(build_weighted_map<double>(spec, normalised(mu_in), memory), mu_in.points),
      sqrt_mass_((mu_in.masses / mu_in.masses.sum()).cwiseSqrt()),
      d_in_(spec.attention.input_dim()),
      d_out_(linear_.map().output_dim()) {}

// §MF.3: v holds g = M^{1/2} h row by row; h = M^{−1/2} g, then J h, then M^{1/2}.
VectorD MeanFieldOperator::apply(const VectorD& v) const {
  const Index n = sqrt_mass_.size();
  MatrixD h = Eigen::Map<const MatrixD>(v.data(), n, d_in_);
  h.array().colwise() /= sqrt_mass_.array();
  VectorD out = linear_.apply(Eigen::Map<const VectorD>(h.data(), h.size()));
  Eigen::Map<MatrixD> y(out.data(), n, d_out_);
  y.array().colwise() *= sqrt_mass_.array();
  return out;
}

// Kᵀ = M_in^{−1/2} Jᵀ M_out^{1/2}.
VectorD MeanFieldOperator::apply_transpose(const VectorD& w) const {
  const Index n = sqrt_mass_.size();
  MatrixD y = Eigen::Map<const MatrixD>(w.data(), n, d_out_);
  y.array().colwise() *= sqrt_mass_.array();
  VectorD out = linear_.apply_transpose(Eigen::Map<const VectorD>(y.data(), y.size()));
  Eigen::Map<MatrixD> h(out.data(), n, d_in_);
  h.array().colwise() /= sqrt_mass_.array();
  return out;
}

SpectralResult meanfield_lipschitz(const LayerSpec& spec, const Measure& mu_in, const SpectralOptions& options,
                                   const AttentionMemory& memory) {
  const auto start = std::chrono::steady_clock::now();
  const Measure mu = normalised(mu_in);
  if (mu.points.cols() != spec.attention.input_dim())
    throw InputError(fmt::format("the tokens have d = {} features, the layer expects d = {}", mu.points.cols(),
                                 spec.attention.input_dim()));
  MeanFieldOperator op(spec, mu, memory);
  SpectralResult r = spectral_norm(op, options);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

MatrixD query_jacobian(const LayerSpec& spec, const Measure& mu_in, Index token, const AttentionMemory& memory) {
  const Measure mu = normalised(mu_in);
  const Measure twin = split_token(mu, token, 2);  // copies at rows token and token + 1
  const auto map = build_weighted_map<double>(spec, twin, memory);
  const auto cache = map->forward(twin.points);
  const Index d = map->input_dim();
  MatrixD Q(map->output_dim(), d);
  MatrixD dX = MatrixD::Zero(twin.size(), d);
  for (Index c = 0; c < d; ++c) {
    // Opposite moves of two equal masses: the first copy's output moves by Q δ and nothing else of
    // first order (§MF.4).
    dX(token, c) = 1;
    dX(token + 1, c) = -1;
    Q.col(c) = map->jvp(*cache, dX).row(token).transpose();
    dX(token, c) = 0;
    dX(token + 1, c) = 0;
  }
  return Q;
}

ReducedConstant reduced_lipschitz(const LayerSpec& spec, const Measure& mu_in, const SpectralOptions& options,
                                  const AttentionMemory& memory) {
  const Measure mu = normalised(mu_in);
  const MergedMeasure merged = merge_identical(mu);
  ReducedConstant r;
  r.distinct_points = merged.measure.size();
  r.merged_result = meanfield_lipschitz(spec, merged.measure, options, memory);
  r.merged = r.merged_result.lipschitz;
  for (size_t g = 0; g < merged.members.size(); ++g) {
    if (merged.members[g].size() < 2) continue;
    const MatrixD Q = query_jacobian(spec, merged.measure, static_cast<Index>(g), memory);
    const double q = Q.size() ? Eigen::JacobiSVD<MatrixD>(Q).singularValues()(0) : 0.0;
    r.query = std::max(r.query, q);
  }
  r.value = std::max(r.merged, r.query);
  return r;
}

SplitEffect split_effect(const LayerSpec& spec, const Measure& mu_in, Index token, Index copies,
                         const MatrixD& offsets, const SpectralOptions& options) {
  const Measure mu = normalised(mu_in);
  SplitEffect e;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  e.meanfield_before = meanfield_lipschitz(spec, mu, options).lipschitz;
  const Measure split = split_token(mu, token, copies);
  e.meanfield_split = meanfield_lipschitz(spec, split, options).lipschitz;
  const MatrixD Q = query_jacobian(spec, mu, token);
  e.query_norm = Q.size() ? Eigen::JacobiSVD<MatrixD>(Q).singularValues()(0) : 0.0;
  // The Euclidean constants use the ordinary (unweighted, index-causal) layer: the n-token view.
  e.euclidean_before = measure_local_lipschitz(spec, mu.points, options).lipschitz;
  e.euclidean_split = measure_local_lipschitz(spec, split.points, options).lipschitz;
  e.meanfield_split_moved = e.euclidean_split_moved = nan;
  if (offsets.size()) {
    const Measure moved = split_token(mu, token, copies, offsets);
    e.meanfield_split_moved = meanfield_lipschitz(spec, moved, options).lipschitz;
    e.euclidean_split_moved = measure_local_lipschitz(spec, moved.points, options).lipschitz;
  }
  return e;
}

}  // namespace lipattn::meanfield
