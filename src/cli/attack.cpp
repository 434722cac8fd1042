// lipattn attack: a certified lower bound on sup ‖Df(X)‖₂ over a set of inputs, with its witness
// (docs/theory.md, attack): the paper's construction and/or projected ascent with the exact gradient.
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>

#include <fmt/core.h>

#include "attack/construction.h"
#include "attack/optimize.h"
#include "bounds/bounds.h"
#include "cli/command.h"
#include "cli/common.h"
#include "common/error.h"
#include "io/npy.h"

namespace lipattn::cli {
namespace {

struct AttackFlags {
  std::string weights, around, out, construction = "both";
  LayerFlags layer;
  int n = 0;
  std::optional<double> radius, eps;
  bool layernorm = false;
  std::optional<int> head;
  int restarts = 4, steps = 60;
  std::uint64_t seed = 0;
  bool json = false, quiet = false;
};

nlohmann::json finite_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

int run(const AttackFlags& f) {
  const auto start_time = std::chrono::steady_clock::now();
  if (f.weights.empty()) throw InputError("--weights LAYER.safetensors is required");
  const int chosen = (f.radius ? 1 : 0) + (f.layernorm ? 1 : 0) + (f.around.empty() ? 0 : 1);
  if (chosen != 1) throw InputError("choose exactly one set: --radius R, --layernorm, or --around X.npy --eps E");
  if (f.eps && f.around.empty()) throw InputError("--eps goes with --around X.npy");
  if (!f.around.empty() && !f.eps) throw InputError("--around X.npy needs --eps E");
  if (f.construction != "paper" && f.construction != "optimize" && f.construction != "both")
    throw InputError(fmt::format("--construction must be paper, optimize or both, got '{}'", f.construction));
  if (f.construction == "paper" && !f.radius)
    throw InputError("--construction paper needs --radius: the paper's input lives in B_R^n");
  if (f.restarts < 0) throw InputError(fmt::format("--restarts must be ≥ 0, got {}", f.restarts));
  if (f.steps < 0) throw InputError(fmt::format("--steps must be ≥ 0, got {}", f.steps));

  LayerSpec spec = models::load_layer_file(f.weights, f.layer.options());
  const AttentionWeights full_attention = spec.attention;  // constructions use head h of the file's layout
  std::vector<Index> heads;
  if (f.head) {
    if (*f.head < 0 || *f.head >= spec.attention.heads)
      throw InputError(fmt::format("--head {} is out of range: the layer has {} heads (0..{})", *f.head,
                                   spec.attention.heads, spec.attention.heads - 1));
    spec.attention = spec.attention.head(*f.head);  // attack head h alone (with its W_O block)
    heads = {*f.head};
  } else {
    for (Index h = 0; h < spec.attention.heads; ++h) heads.push_back(h);
  }
  const Index d = spec.attention.input_dim();

  // The set, and the radius of a ball holding the attention's inputs (for the upper bound).
  attack::ConstraintSet set;
  double bound_radius = 0;
  if (f.radius) {
    if (f.n < 1) throw InputError(fmt::format("--n must be at least 1, got {}", f.n));
    set = attack::ConstraintSet::ball(f.n, d, *f.radius);
    bound_radius = *f.radius;
  } else if (f.layernorm) {
    if (f.n < 1) throw InputError(fmt::format("--n must be at least 1, got {}", f.n));
    VectorD gamma = VectorD::Ones(d), beta;
    if (spec.pre_norm) {
      // The set is the pre-norm's image: attack what follows it, on that image.
      if (spec.pre_norm->kind != NormKind::LayerNorm)
        throw InputError("--layernorm takes γ and β from a LayerNorm pre-norm; --pre-norm rmsnorm does not fit");
      if (spec.residual)
        throw InputError("--layernorm with --pre-norm and --residual: the residual needs the pre-image X, "
                         "which the LayerNorm image does not determine; drop one of them");
      gamma = spec.pre_norm->gamma;
      beta = spec.pre_norm->beta;
      spec.pre_norm.reset();
    }
    set = attack::ConstraintSet::layernorm_image(f.n, gamma, beta);
    bound_radius = std::sqrt(static_cast<double>(d)) * gamma.cwiseAbs().maxCoeff() + (beta.size() ? beta.norm() : 0.0);
  } else {
    const MatrixD X0 = io::read_npy_matrix(f.around);
    if (X0.cols() != d)
      throw InputError(fmt::format("{}: X has d = {} features per token, but {} expects d = {}", f.around, X0.cols(),
                                   f.weights, d));
    if (f.n != 0 && f.n != X0.rows())
      throw InputError(fmt::format("--n {} disagrees with {} ({} tokens); omit --n with --around", f.n, f.around,
                                   X0.rows()));
    set = attack::ConstraintSet::around(X0, *f.eps);
    bound_radius = X0.rowwise().norm().maxCoeff() + *f.eps;
  }
  // With a pre-norm the attention sees normalised tokens, whose norms the image radius bounds.
  if (spec.pre_norm) bound_radius = std::max(bound_radius, norm_image_radius(*spec.pre_norm));

  auto progress = [&](const std::string& line) {
    if (!f.quiet) std::cerr << "lipattn attack: " << line << std::endl;
  };

  // The paper's construction on B_R^n: value and predicted n* per head.
  nlohmann::json constructions = nlohmann::json::array();
  std::vector<attack::NamedStart> starts;
  double construction_value = -1;
  std::optional<attack::Construction> best_construction;
  SpectralOptions certificate_options;
  if (f.radius) {
    for (Index h : heads) {
      const attack::Construction c = attack::paper_construction(full_attention, h, f.n, *f.radius);
      nlohmann::json j = {{"head", h}, {"applies", c.applies}};
      if (c.applies) {
        const double value = measure_local_lipschitz(spec, c.X, certificate_options).lower;
        j.update({{"lambda_max", c.lambda_max},
                  {"lambda_min", c.lambda_min},
                  {"branch", c.uses_lambda_max ? "lambda_max" : "lambda_min"},
                  {"log_n_star", c.log_n_star},
                  {"n_star", finite_or_null(c.n_star)},
                  {"value", value}});
        progress(fmt::format("paper construction, head {}: λ_max {:.6g}, λ_min {:.6g}, n* ≈ e^{:.4g}, σ {:.10g}", h,
                             c.lambda_max, c.lambda_min, c.log_n_star, value));
        if (value > construction_value) {
          construction_value = value;
          best_construction = c;
        }
      }
      constructions.push_back(j);
    }
    if (f.construction != "optimize") {
      const auto s = attack::construction_starts(full_attention, heads, f.n, *f.radius);
      starts.insert(starts.end(), s.begin(), s.end());
    }
  }
  if (!f.around.empty()) starts.push_back({"input", set.center});

  attack::AttackOptions options;
  options.restarts = f.construction == "paper" ? 0 : f.restarts;
  options.steps = f.steps;
  options.optimize = f.construction != "paper";
  options.seed = f.seed;
  options.progress = progress;
  if (f.construction == "paper" && starts.empty())
    throw InputError("--construction paper: no head of this layer has a real eigenvalue of A_h, so the "
                     "construction does not apply; use --construction optimize");
  const attack::AttackResult result = attack::maximize_lipschitz(spec, set, starts, options);

  if (!f.out.empty()) io::write_npy(f.out, result.witness);

  // The best upper bound on the same set (a superset of it, see bound_radius).
  nlohmann::json upper = nullptr, upper_name = nullptr;
  try {
    const BoundReport bounds = set_bounds(spec, TokenBall{set.n, bound_radius});
    if (!bounds.best_name.empty() && std::isfinite(bounds.best)) {
      upper = bounds.best;
      upper_name = bounds.best_name;
    }
  } catch (const InputError& e) {
    progress(fmt::format("no upper bound: {}", e.what()));
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  if (f.json) {
    nlohmann::json j;
    j["lower"] = result.lower;
    j["lipschitz"] = result.lipschitz;
    j["construction"] = construction_value >= 0 ? nlohmann::json(construction_value) : nlohmann::json(nullptr);
    j["constructions"] = constructions;
    j["witness"] = f.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.out);
    j["upper"] = upper;
    j["upper_name"] = upper_name;
    j["n"] = set.n;
    j["d"] = set.d;
    j["set"] = attack::to_string(set.kind);
    j["radius"] = f.radius ? nlohmann::json(*f.radius) : nlohmann::json(nullptr);
    j["eps"] = f.eps ? nlohmann::json(*f.eps) : nlohmann::json(nullptr);
    if (best_construction) {
      j["n_star"] = finite_or_null(best_construction->n_star);
      j["log_n_star"] = best_construction->log_n_star;
      j["regime"] = std::log(static_cast<double>(set.n)) < best_construction->log_n_star ? "sqrt_n" : "saturated";
    } else {
      j["n_star"] = nullptr;
      j["log_n_star"] = nullptr;
      j["regime"] = nullptr;
    }
    j["in_set"] = set.violation(result.witness);  // ≤ 1e-12
    j["certificate"] = to_json(result.certificate);
    nlohmann::json runs = nlohmann::json::array();
    for (const auto& s : result.starts)
      runs.push_back({{"name", s.name}, {"start", s.start_value}, {"final", s.final_value},
                      {"steps_kept", s.accepted_steps}, {"seconds", s.seconds}});
    j["starts"] = runs;
    j["seconds"] = seconds;
    std::cout << j.dump() << std::endl;
  } else {
    fmt::print("layer         {}\n", spec.describe());
    fmt::print("set           {} (n = {}, d = {}{})\n", attack::to_string(set.kind), set.n, set.d,
               f.radius ? fmt::format(", R = {:g}", *f.radius) : f.eps ? fmt::format(", ε = {:g}", *f.eps) : "");
    fmt::print("lower         {:.12g}   σ_max at the witness (certified: ‖Jv‖ of a unit v)\n", result.lower);
    if (construction_value >= 0)
      fmt::print("construction  {:.12g}   the paper's input (best head); n* ≈ e^{:.4g}\n", construction_value,
                 best_construction->log_n_star);
    if (!upper.is_null())
      fmt::print("upper         {:.12g}   {} (bound on a ball holding the set)\n", upper.get<double>(),
                 upper_name.get<std::string>());
    fmt::print("witness       {}\n", f.out.empty() ? "(not saved: pass --out WITNESS.npy)" : f.out);
    fmt::print("time          {:.1f} s\n", seconds);
  }
  return 0;
}

const Register registered{
    {"attack", "a certified lower bound on the Lipschitz constant over a set, with its witness input",
     [](CLI::App& app) -> std::function<int()> {
       auto f = std::make_shared<AttackFlags>();
       app.add_option("--weights", f->weights, "LAYER.safetensors (see docs/formats.md)");
       app.add_option("--n", f->n, "tokens per input (not with --around)");
       app.add_option("--radius", f->radius, "the set B_R^n: every token of norm ≤ R");
       app.add_flag("--layernorm", f->layernorm,
                    "the set: LayerNorm's image, x_i = γ ⊙ z_i + β with z_i ⊥ 1, ‖z_i‖ = √d (γ, β from --pre-norm "
                    "layernorm, which is then the set and not part of the map; else γ = 1, β = 0)");
       app.add_option("--around", f->around, "X0.npy: the set ‖X − X0‖_F ≤ ε (with --eps)");
       app.add_option("--eps", f->eps, "ε of --around (Frobenius norm of the whole perturbation)");
       f->layer.add_to(app);
       app.add_option("--head", f->head, "attack head h alone (default: the whole layer, constructions from every head)");
       app.add_option("--restarts", f->restarts, "random starts of the ascent")->capture_default_str();
       app.add_option("--steps", f->steps, "ascent steps per start")->capture_default_str();
       app.add_option("--construction", f->construction,
                      "paper: the paper's input only | optimize: random starts only | both: ascent from the "
                      "paper's input(s) and from random starts")
           ->capture_default_str();
       app.add_option("--out", f->out, "save the witness X here (.npy, float64)");
       app.add_option("--seed", f->seed, "seed of the random starts")->capture_default_str();
       app.add_flag("--json", f->json, "print one JSON object");
       app.add_flag("--quiet", f->quiet, "no progress lines on stderr");
       return [f] { return run(*f); };
     }}};

}  // namespace
}  // namespace lipattn::cli
