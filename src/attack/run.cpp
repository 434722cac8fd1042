// The attack as one call (docs/theory.md, attack §1–§3).
#include "attack/run.h"

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "bounds/bounds.h"
#include "common/error.h"
#include "spectral/measure.h"

namespace lipattn::attack {

ConstructionUse parse_construction_use(const std::string& name) {
  if (name == "paper") return ConstructionUse::Paper;
  if (name == "optimize") return ConstructionUse::Optimize;
  if (name == "both") return ConstructionUse::Both;
  throw InputError(fmt::format("construction must be paper, optimize or both, got '{}'", name), "construction");
}

std::string to_string(ConstructionUse use) {
  switch (use) {
    case ConstructionUse::Paper:
      return "paper";
    case ConstructionUse::Optimize:
      return "optimize";
    case ConstructionUse::Both:
      return "both";
  }
  return "?";
}

double enclosing_radius(const ConstraintSet& set) {
  switch (set.kind) {
    case SetKind::Ball:
      return set.radius;
    case SetKind::LayerNormImage: {
      NormWeights image;
      image.gamma = set.gamma;
      image.beta = set.beta;
      return norm_image_radius(image);
    }
    case SetKind::AroundInput:
      return set.center.rowwise().norm().maxCoeff() + set.eps;
  }
  return 0;
}

namespace {

// The set the request names, for the map `spec` attacks. The LayerNorm image takes γ and β from a
// LayerNorm pre-norm, which then is the set and leaves the map.
ConstraintSet make_set(LayerSpec& spec, const AttackRequest& r) {
  const Index d = spec.attention.input_dim();
  switch (r.set) {
    case SetKind::Ball:
      return ConstraintSet::ball(r.n, d, r.radius);
    case SetKind::LayerNormImage: {
      VectorD gamma = VectorD::Ones(d), beta;
      if (spec.pre_norm) {
        if (spec.pre_norm->kind != NormKind::LayerNorm)
          throw InputError("the LayerNorm image takes γ and β from a layernorm pre-norm, not rmsnorm", "pre_norm");
        if (spec.residual)
          throw InputError(
              "the LayerNorm image with a pre-norm and a residual: the residual needs the pre-image X, "
              "which the LayerNorm image does not determine; drop one of them",
              "residual");
        gamma = spec.pre_norm->gamma;
        beta = spec.pre_norm->beta;
        spec.pre_norm.reset();
      }
      return ConstraintSet::layernorm_image(r.n, gamma, beta);
    }
    case SetKind::AroundInput:
      if (r.center.cols() != d)
        throw InputError(fmt::format("the centre X0 has d = {} features per token, but the layer expects d = {}",
                                     r.center.cols(), d),
                         "center");
      if (r.n != 0 && r.n != r.center.rows())
        throw InputError(fmt::format("n = {} disagrees with the centre's {} tokens (leave n unset with a centre)", r.n,
                                     r.center.rows()),
                         "n");
      return ConstraintSet::around(r.center, r.eps);
  }
  throw InputError("unknown set", "set");
}

// The paper's construction on B_R^n for every head attacked, each valued by its certified σ_max.
void add_constructions(AttackReport& report, const AttentionWeights& layout, const std::vector<Index>& heads,
                       const AttackRequest& r) {
  SpectralOptions certificate_options;
  for (Index h : heads) {
    HeadConstruction hc{h, paper_construction(layout, h, r.n, r.radius), 0.0};
    if (hc.construction.applies) {
      hc.value = measure_local_lipschitz(report.spec, hc.construction.X, certificate_options).lower;
      if (r.options.progress)
        r.options.progress(
            fmt::format("paper construction, head {}: λ_max {:.6g}, λ_min {:.6g}, n* ≈ e^{:.4g}, σ {:.10g}", h,
                        hc.construction.lambda_max, hc.construction.lambda_min, hc.construction.log_n_star, hc.value));
      if (!report.best_construction || hc.value > report.best_construction->value) report.best_construction = hc;
    }
    report.constructions.push_back(std::move(hc));
  }
}

// The best bound on a ball holding the set (a superset of it), or why there is none.
void add_upper_bound(AttackReport& report) {
  try {
    const BoundReport bounds = set_bounds(report.spec, TokenBall{report.set.n, report.enclosing_radius});
    if (!bounds.best_name.empty() && std::isfinite(bounds.best)) {
      report.upper = bounds.best;
      report.upper_name = bounds.best_name;
    }
  } catch (const InputError& e) {
    report.no_upper_reason = e.what();
  }
}

}  // namespace

AttackReport run_attack(LayerSpec spec, const AttackRequest& r) {
  if (r.construction == ConstructionUse::Paper && r.set != SetKind::Ball)
    throw InputError("the paper's construction needs the ball B_R^n: its input lives there", "construction");
  const AttentionWeights layout = spec.attention;  // constructions use head h of the file's layout
  std::vector<Index> heads;
  if (r.head) {
    if (*r.head < 0 || *r.head >= spec.attention.heads)
      throw InputError(fmt::format("head {} is out of range: the layer has {} heads (0..{})", *r.head,
                                   spec.attention.heads, spec.attention.heads - 1),
                       "head");
    spec.attention = spec.attention.head(*r.head);
    heads = {*r.head};
  } else {
    for (Index h = 0; h < spec.attention.heads; ++h) heads.push_back(h);
  }
  AttackReport report;
  report.set = make_set(spec, r);
  report.spec = spec;
  report.enclosing_radius = enclosing_radius(report.set);
  // With a pre-norm the attention sees normalised tokens, whose norms the image radius bounds.
  if (spec.pre_norm) report.enclosing_radius = std::max(report.enclosing_radius, norm_image_radius(*spec.pre_norm));

  std::vector<NamedStart> starts;
  if (r.set == SetKind::Ball) {
    add_constructions(report, layout, heads, r);
    if (r.construction != ConstructionUse::Optimize) starts = construction_starts(layout, heads, r.n, r.radius);
  }
  if (r.set == SetKind::AroundInput) starts.push_back({"input", report.set.center});
  if (r.construction == ConstructionUse::Paper && starts.empty())
    throw InputError(
        "no head of this layer has a real eigenvalue of A_h, so the paper's construction does not "
        "apply; use the optimiser",
        "construction");
  AttackOptions options = r.options;
  options.optimize = r.construction != ConstructionUse::Paper;
  if (!options.optimize) options.restarts = 0;
  report.result = maximize_lipschitz(spec, report.set, starts, options);
  add_upper_bound(report);
  return report;
}

}  // namespace lipattn::attack
