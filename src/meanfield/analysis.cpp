#include "meanfield/analysis.h"

#include <fmt/core.h>

#include "common/error.h"
#include "spectral/measure.h"

namespace lipattn::meanfield {
namespace {

void check_cloud_request(const CloudRequest& r) {
  if (r.copies < 1) throw InputError(fmt::format("copies must be at least 1, got {}", r.copies), "copies");
  if (!(r.spread >= 0)) throw InputError(fmt::format("spread must be ≥ 0, got {}", r.spread), "spread");
}

VectorD per_token(const VectorD& values, Index n, const std::string& name) {
  if (values.size() != n)
    throw InputError(fmt::format("{}: {} values, expected one per token (n = {})", name, values.size(), n), name);
  return values;
}

}  // namespace

CloudReport analyse_cloud(LayerSpec spec, const MatrixD& X, const CloudRequest& r) {
  check_cloud_request(r);
  if (r.head) spec.attention = spec.attention.head(*r.head);
  if (X.cols() != spec.attention.input_dim())
    throw InputError(fmt::format("X has d = {} features per token, but the layer expects d = {}", X.cols(),
                                 spec.attention.input_dim()),
                     "input");
  Measure mu = Measure::uniform(X, spec.attention.causal);
  const Index n = mu.size();
  if (r.masses.size()) mu.masses = per_token(r.masses, n, "masses");
  if (r.positions.size()) {
    if (!spec.attention.causal)
      throw InputError("positions need a causal layer (the mask by position)", "positions");
    mu.positions = per_token(r.positions, n, "positions");
  }
  mu.validate_and_normalise(r.what);
  CloudReport report;
  report.n = n;
  report.d = X.cols();
  report.masked = mu.masked();
  report.euclidean = measure_local_lipschitz(spec, mu.points, r.options);
  report.meanfield = meanfield_lipschitz(spec, mu, r.options);
  if (merge_identical(mu).measure.size() < n) report.reduced = reduced_lipschitz(spec, mu, r.options);
  if (r.split) {
    const MatrixD offsets = r.spread > 0 ? gaussian_offsets(r.copies, X.cols(), r.spread, r.options.seed + 7) : MatrixD();
    report.split = split_effect(spec, mu, *r.split, r.copies, offsets, r.options);
    report.split_token = *r.split;
    report.copies = r.copies;
    report.spread = r.spread;
  }
  return report;
}

RegimeCurve regime_curve(LayerSpec spec, const RegimeRequest& r) {
  if (r.regime == "construction") return construction_curve(spec.attention, r.head.value_or(0), r.radius, r.options);
  if (r.regime == "iid") {
    if (r.head) spec.attention = spec.attention.head(*r.head);
    return iid_curve(spec, r.radius, r.options);
  }
  throw InputError(fmt::format("regime must be construction or iid, got '{}'", r.regime), "regime");
}

}  // namespace lipattn::meanfield
