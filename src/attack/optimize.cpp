// Projected ascent of σ_max(Df(X)) over a set (docs/theory.md, attack §3).
//
// Where σ = σ_max(J) is simple with unit singular pair (u, v), dσ = ⟨u, dJ v⟩, so
//   ∇_X σ = ∇_X ⟨u, Df(X) v⟩ (u, v held fixed) = map.second_order(cache, v, u).
// Each step moves Z by a fixed length η along the normalised ascent direction, projects, and is
// kept only if σ grew (then η grows ×2, else it shrinks ×½): a monotone ascent that needs no step
// size tuning across sets whose sizes differ by orders of magnitude.
#include "attack/optimize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include <fmt/core.h>

#include "common/error.h"
#include "spectral/measure.h"

namespace lipattn::attack {

std::string to_string(SetKind kind) {
  switch (kind) {
    case SetKind::Ball: return "ball";
    case SetKind::LayerNormImage: return "layernorm";
    case SetKind::AroundInput: return "around";
  }
  return "?";
}

// ---- sets -----------------------------------------------------------------------------------

ConstraintSet ConstraintSet::ball(Index n, Index d, double radius) {
  if (n < 1) throw InputError(fmt::format("n must be at least 1, got {}", n), "n");
  if (!(radius > 0) || !std::isfinite(radius))
    throw InputError(fmt::format("radius must be positive and finite, got {}", radius), "radius");
  ConstraintSet s;
  s.kind = SetKind::Ball;
  s.n = n;
  s.d = d;
  s.radius = radius;
  return s;
}

ConstraintSet ConstraintSet::layernorm_image(Index n, const VectorD& gamma, const VectorD& beta) {
  if (n < 1) throw InputError(fmt::format("n must be at least 1, got {}", n), "n");
  if (gamma.size() < 2)
    throw InputError("the LayerNorm image needs at least 2 features per token (1^⊥ is {0} for d = 1)",
                     "layernorm_image");
  if (beta.size() != 0 && beta.size() != gamma.size())
    throw InputError(fmt::format("LayerNorm bias has {} entries, the weight {}", beta.size(), gamma.size()));
  if (!gamma.allFinite() || (beta.size() && !beta.allFinite())) throw InputError("LayerNorm γ or β holds NaN or Inf");
  ConstraintSet s;
  s.kind = SetKind::LayerNormImage;
  s.n = n;
  s.d = gamma.size();
  s.gamma = gamma;
  s.beta = beta;
  return s;
}

ConstraintSet ConstraintSet::around(const MatrixD& X0, double eps) {
  if (X0.rows() < 1) throw InputError("the centre X0 has no tokens", "center");
  if (!X0.allFinite()) throw InputError("the centre X0 holds NaN or Inf", "center");
  if (!(eps > 0) || !std::isfinite(eps))
    throw InputError(fmt::format("eps must be positive and finite, got {}", eps), "eps");
  ConstraintSet s;
  s.kind = SetKind::AroundInput;
  s.n = X0.rows();
  s.d = X0.cols();
  s.center = X0;
  s.eps = eps;
  return s;
}

namespace {
// Rescales a row onto the sphere of radius r; the extra factor guards the last ulp.
void rescale_row_to(Eigen::Ref<RowVector<double>> row, double r) {
  const double norm = row.norm();
  if (norm > 0) row *= r / norm;
  if (row.norm() > r) row *= 1 - 1e-15;
}
}  // namespace

MatrixD ConstraintSet::project(const MatrixD& Z) const {
  MatrixD P = Z;
  switch (kind) {
    case SetKind::Ball:
      for (Index i = 0; i < P.rows(); ++i)
        if (P.row(i).norm() > radius) rescale_row_to(P.row(i), radius);
      break;
    case SetKind::LayerNormImage: {
      const double target = std::sqrt(static_cast<double>(d));
      for (Index i = 0; i < P.rows(); ++i) {
        P.row(i).array() -= P.row(i).mean();
        if (!(P.row(i).norm() > 1e-300)) {  // the centre has no nearest point: pick one
          P.row(i).setZero();
          P(i, 0) = 1;
          P(i, 1) = -1;
        }
        P.row(i) *= target / P.row(i).norm();
      }
      break;
    }
    case SetKind::AroundInput: {
      const double dist = (P - center).norm();
      if (dist > eps) {
        P = center + (P - center) * (eps / dist);
        if ((P - center).norm() > eps) P = center + (P - center) * (1 - 1e-15);
      }
      break;
    }
  }
  return P;
}

MatrixD ConstraintSet::to_input(const MatrixD& Z) const {
  if (kind != SetKind::LayerNormImage) return Z;
  MatrixD X = Z.array().rowwise() * gamma.transpose().array();
  if (beta.size()) X.rowwise() += beta.transpose();
  return X;
}

MatrixD ConstraintSet::ascent_direction(const MatrixD& Z, const MatrixD& grad_X) const {
  MatrixD G = grad_X;
  switch (kind) {
    case SetKind::Ball:
      // No outward push on tokens already at ‖z_i‖ = R: the projection would undo it.
      for (Index i = 0; i < G.rows(); ++i) {
        const double norm2 = Z.row(i).squaredNorm();
        const double outward = G.row(i).dot(Z.row(i));
        if (norm2 >= radius * radius * (1 - 1e-9) && outward > 0) G.row(i) -= (outward / norm2) * Z.row(i);
      }
      break;
    case SetKind::LayerNormImage:
      // ∇_z = γ ⊙ ∇_x, then onto the tangent space of {mean z = 0, ‖z‖ = √d}.
      G.array().rowwise() *= gamma.transpose().array();
      for (Index i = 0; i < G.rows(); ++i) {
        G.row(i).array() -= G.row(i).mean();
        G.row(i) -= (G.row(i).dot(Z.row(i)) / Z.row(i).squaredNorm()) * Z.row(i);
      }
      break;
    case SetKind::AroundInput: {
      const MatrixD offset = Z - center;
      const double norm2 = offset.squaredNorm();
      const double outward = (G.array() * offset.array()).sum();
      if (norm2 >= eps * eps * (1 - 1e-9) && outward > 0) G -= (outward / norm2) * offset;
      break;
    }
  }
  return G;
}

MatrixD ConstraintSet::random_point(std::mt19937_64& rng) const {
  std::normal_distribution<double> normal;
  MatrixD Z(n, d);
  for (Index i = 0; i < Z.size(); ++i) Z.data()[i] = normal(rng);
  switch (kind) {
    case SetKind::Ball:
      for (Index i = 0; i < n; ++i) rescale_row_to(Z.row(i), radius);  // on the sphere: sharp attention
      return Z;
    case SetKind::LayerNormImage:
      return project(Z);
    case SetKind::AroundInput: {
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      return project(center + Z * (eps * unit(rng) / Z.norm()));
    }
  }
  return Z;
}

double ConstraintSet::step_scale() const {
  switch (kind) {
    case SetKind::Ball: return radius * std::sqrt(static_cast<double>(n));
    case SetKind::LayerNormImage: return std::sqrt(static_cast<double>(n * d));
    case SetKind::AroundInput: return eps;
  }
  return 1;
}

double ConstraintSet::violation(const MatrixD& X) const {
  if (X.rows() != n || X.cols() != d) return std::numeric_limits<double>::infinity();
  double worst = 0;
  switch (kind) {
    case SetKind::Ball:
      for (Index i = 0; i < n; ++i) worst = std::max(worst, (X.row(i).norm() - radius) / radius);
      return worst;
    case SetKind::LayerNormImage: {
      const double root_d = std::sqrt(static_cast<double>(d));
      for (Index i = 0; i < n; ++i) {
        RowVector<double> z = X.row(i);
        if (beta.size()) z -= beta.transpose();
        z.array() /= gamma.transpose().array();
        // the component along 1/√d is mean·√d; relative to ‖z‖ = √d that is |mean z|
        worst = std::max({worst, std::abs(z.mean()), std::abs(z.norm() - root_d) / root_d});
      }
      return worst;
    }
    case SetKind::AroundInput:
      return std::max(0.0, ((X - center).norm() - eps) / eps);
  }
  return worst;
}

// ---- σ_max and its gradient -------------------------------------------------------------------

MatrixD sigma_gradient(const Linearization<double>& at, const SpectralResult& top) {
  const Index n = at.tokens();
  Eigen::Map<const MatrixD> V(top.right_vector.data(), n, at.map().input_dim());
  Eigen::Map<const MatrixD> U(top.left_vector.data(), n, at.map().output_dim());
  return at.map().second_order(at.cache(), V, U);
}

// ---- the ascent -------------------------------------------------------------------------------

namespace {

struct AscentResult {
  MatrixD Z;
  double value = 0;
  int accepted = 0;
};

// σ_max at a point with its singular pair (u, v), from spectral_norm: dense for a small Jacobian,
// else Lanczos, warm-started from the previous point's v when there is one (docs/theory.md §6.3).
// value = lower = ‖Jv‖, certified: the ascent only ever compares certified values.
SpectralResult top_pair(const Linearization<double>& at, const VectorD& warm, double tol, std::uint64_t seed) {
  SpectralOptions options;
  options.tol = tol;
  options.seed = seed;
  options.start = warm;
  return spectral_norm(at, options);
}

AscentResult ascend(const MapPtr<double>& map, const ConstraintSet& set, const MatrixD& start, const AttackOptions& o,
                    std::uint64_t seed) {
  AscentResult best;
  best.Z = set.project(start);
  auto at = std::make_unique<Linearization<double>>(map, set.to_input(best.Z));
  SpectralResult pair = top_pair(*at, VectorD(), o.inner_tol, seed);
  best.value = pair.lower;
  if (!o.optimize) return best;
  const double scale = set.step_scale();
  double eta = 0.05 * scale;
  MatrixD direction = set.ascent_direction(best.Z, sigma_gradient(*at, pair));
  for (int step = 0; step < o.steps; ++step) {
    const double norm = direction.norm();
    if (!(norm > 0) || !std::isfinite(norm) || eta < 1e-12 * scale) break;
    const MatrixD trial = set.project(best.Z + direction * (eta / norm));
    auto trial_at = std::make_unique<Linearization<double>>(map, set.to_input(trial));
    SpectralResult trial_pair = top_pair(*trial_at, pair.right_vector, o.inner_tol, seed + step + 1);
    if (trial_pair.lower > best.value) {
      best.Z = trial;
      best.value = trial_pair.lower;
      ++best.accepted;
      pair = std::move(trial_pair);
      at = std::move(trial_at);
      direction = set.ascent_direction(best.Z, sigma_gradient(*at, pair));
      eta *= 2;
    } else {
      eta *= 0.5;
    }
  }
  return best;
}

}  // namespace

AttackResult maximize_lipschitz(const LayerSpec& spec, const ConstraintSet& set, const std::vector<NamedStart>& starts,
                                const AttackOptions& o) {
  MapBuilder builder;
  builder.attention_heads = spec.attention.heads;
  builder.f64 = [&spec](const AttentionMemory& memory) { return build_map<double>(spec, memory); };
  return maximize_lipschitz(builder, set, starts, o);
}

AttackResult maximize_lipschitz(const MapBuilder& builder, const ConstraintSet& set,
                                const std::vector<NamedStart>& starts, const AttackOptions& o) {
  if (o.restarts < 0) throw InputError(fmt::format("restarts must be ≥ 0, got {}", o.restarts), "restarts");
  if (o.steps < 0) throw InputError(fmt::format("steps must be ≥ 0, got {}", o.steps), "steps");
  const MapPtr<double> map = builder.f64(AttentionMemory{});
  if (map->input_dim() != set.d)
    throw InputError(fmt::format("the set has d = {} features per token, the layer expects {}", set.d,
                                 map->input_dim()));
  std::vector<NamedStart> all = starts;
  std::mt19937_64 rng(o.seed);
  for (int r = 0; r < o.restarts; ++r) all.push_back({fmt::format("random {}", r), set.random_point(rng)});
  if (all.empty()) throw InputError("nothing to evaluate: no construction applies and restarts is 0", "restarts");
  SpectralOptions final_options;
  final_options.tol = o.final_tol;
  AttackResult result;
  result.lower = -1;
  for (size_t s = 0; s < all.size(); ++s) {
    const auto start_time = std::chrono::steady_clock::now();
    if (all[s].Z.rows() != set.n || all[s].Z.cols() != set.d)
      throw InputError(fmt::format("start '{}' is {} × {}, the set is {} × {}", all[s].name, all[s].Z.rows(),
                                   all[s].Z.cols(), set.n, set.d));
    StartRecord record;
    record.name = all[s].name;
    AttackOptions evaluate_only = o;
    evaluate_only.optimize = false;
    record.start_value = ascend(map, set, all[s].Z, evaluate_only, o.seed).value;
    const AscentResult end = ascend(map, set, all[s].Z, o, o.seed + 1000 * s);
    record.accepted_steps = end.accepted;
    const MatrixD X = set.to_input(end.Z);
    const SpectralResult certificate = measure_local_lipschitz(builder, X, final_options);
    record.final_value = certificate.lower;
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
    if (o.progress)
      o.progress(fmt::format("start {}/{} {}: σ {:.10g} → {:.10g} ({} steps kept, {:.1f} s)", s + 1, all.size(),
                             record.name, record.start_value, record.final_value, record.accepted_steps,
                             record.seconds));
    if (certificate.lower > result.lower) {
      result.lower = certificate.lower;
      result.lipschitz = certificate.lipschitz;
      result.witness = X;
      result.certificate = certificate;
    }
    result.starts.push_back(std::move(record));
  }
  return result;
}

std::vector<NamedStart> construction_starts(const AttentionWeights& weights, const std::vector<Index>& heads, Index n,
                                            double radius) {
  std::vector<NamedStart> starts;
  for (Index h : heads)
    for (bool rule : {true, false}) {
      const Construction c = paper_construction(weights, h, n, radius, rule);
      if (!c.applies) continue;
      starts.push_back({fmt::format("paper(head {}, λ_{}{})", h, c.uses_lambda_max ? "max" : "min",
                                    rule ? "" : ", other branch"),
                        c.X});
    }
  return starts;
}

}  // namespace lipattn::attack
