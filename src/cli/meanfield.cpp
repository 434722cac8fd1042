// lipattn meanfield: the local Lipschitz constant of a layer in the mean-field sense, on a weighted
// (optionally position-masked) cloud, next to the Euclidean n-token constant; or the regime change
// as a curve over n (docs/theory.md, mean-field §MF).
#include <cmath>
#include <iostream>

#include <fmt/core.h>

#include "cli/command.h"
#include "cli/common.h"
#include "common/error.h"
#include "io/npy.h"
#include "meanfield/analysis.h"
#include "meanfield/report_json.h"

namespace lipattn::cli {
namespace {

struct MeanFieldFlags {
  std::string weights, input, masses, positions, regime;
  double radius = std::numeric_limits<double>::quiet_NaN();
  Index n_min = 2, n_max = 0, full_max = -1;
  int per_decade = 4;
  std::optional<Index> head;
  std::optional<Index> split;
  Index copies = 2;
  double spread = 0;
  LayerFlags layer;
  SolverFlags solver;
  bool json = false;
};

void print_curve(const meanfield::RegimeCurve& curve, Index head) {
  fmt::print("regime  {} (radius {})\n", curve.regime, curve.radius);
  if (curve.regime == "construction") {
    const auto& c = curve.construction;
    if (!c.applies) {
      fmt::print("the construction does not apply: A_h has no real eigenvalue\n");
      return;
    }
    fmt::print("head    {}: λ_max = {:.6g}, λ_min = {:.6g}, branch {}, n* ≈ e^{:.4g} = {:.4g}\n", head,
               c.lambda_max, c.lambda_min, c.uses_lambda_max ? "λ_max" : "λ_min", c.log_n_star, c.n_star);
    fmt::print("{:>12} {:>14} {:>14} {:>14} {:>14}\n", "n", "L (n tokens)", "2-point L", "‖Q‖", "full");
    for (const auto& p : curve.points)
      fmt::print("{:>12} {:>14.8g} {:>14.8g} {:>14.6g} {:>14}\n", p.n, p.lipschitz, p.merged, p.query,
                 std::isnan(p.full) ? std::string("-") : fmt::format("{:.8g}", p.full));
    fmt::print("slope   d log L / d log n: {:.4g} for n ≤ n*/10, {:.4g} for n ≥ 10 n*\n", curve.slope_below,
               curve.slope_above);
    fmt::print("peak    L = {:.8g} at n = {}\n", curve.peak_value, curve.peak_n);
  } else {
    fmt::print("tokens  i.i.d. N(0, σ² I), σ = R/√d = {:.6g}; the first n of one sample\n", curve.sigma);
    fmt::print("{:>10} {:>16} {:>16} {:>9}\n", "n", "mean-field L", "Euclidean", "seconds");
    for (const auto& p : curve.points)
      fmt::print("{:>10} {:>16.8g} {:>16} {:>9.2f}\n", p.n, p.lipschitz,
                 std::isnan(p.full) ? std::string("-") : fmt::format("{:.8g}", p.full), p.seconds);
    fmt::print("slope   d log L / d log n: {:.4g} over the grid, {:.4g} over the last decade\n", curve.slope_all,
               curve.slope_last_decade);
    fmt::print("note    with masses 1/n the two constants are the same number (§MF.3)\n");
  }
}

int run_regime(const MeanFieldFlags& f, LayerSpec spec) {
  using namespace meanfield;
  if (std::isnan(f.radius)) throw InputError("--regime needs --radius R");
  RegimeRequest request;
  request.regime = f.regime;
  request.radius = f.radius;
  request.head = f.head;
  request.options.n_min = f.n_min;
  request.options.n_max = f.n_max;  // 0 and −1: the regime's defaults
  request.options.full_max = f.full_max;
  request.options.per_decade = f.per_decade;
  request.options.spectral = f.solver.options();
  request.options.seed = f.solver.seed;
  const RegimeCurve curve = regime_curve(std::move(spec), request);
  if (f.json) {
    std::cout << to_json(curve, f.head.value_or(0)).dump() << std::endl;
    return 0;
  }
  print_curve(curve, f.head.value_or(0));
  return 0;
}

void print_cloud(const meanfield::CloudReport& r, const MeanFieldFlags& f, const LayerSpec& spec) {
  fmt::print("layer      {}\n", spec.describe());
  fmt::print("input      n = {} tokens, d = {}{}{}\n", r.n, r.d, f.masses.empty() ? ", masses 1/n" : ", masses from " + f.masses,
             r.masked ? (f.positions.empty() ? ", causal (positions (i+1)/n)" : ", masked by " + f.positions) : "");
  fmt::print("euclidean  {:.12g}   ‖Df(X)‖₂, every token of mass 1/n, by {}\n", r.euclidean.lipschitz,
             to_string(r.euclidean.method));
  fmt::print("meanfield  {:.12g}   ‖M^½ Df M^-½‖₂ in L²(μ), by {}\n", r.meanfield.lipschitz,
             to_string(r.meanfield.method));
  if (const auto& reduced = r.reduced)
    fmt::print("reduced    {:.12g}   = max(L of the {} distinct points {:.8g}, ‖Q‖ of a repeated point {:.8g})\n",
               reduced->value, reduced->distinct_points, reduced->merged, reduced->query);
  if (const auto& split = r.split) {
    fmt::print("split      token {} into {} copies of mass m/{}:\n", r.split_token, r.copies, r.copies);
    fmt::print("           mean-field {:.10g} → {:.10g} (not moved; ‖Q‖ = {:.6g})", split->meanfield_before,
               split->meanfield_split, split->query_norm);
    if (!std::isnan(split->meanfield_split_moved)) fmt::print(" → {:.10g} (moved apart, spread {})", split->meanfield_split_moved, r.spread);
    fmt::print("\n           euclidean  {:.10g} → {:.10g} (copies as tokens)", split->euclidean_before, split->euclidean_split);
    if (!std::isnan(split->euclidean_split_moved)) fmt::print(" → {:.10g} (moved apart)", split->euclidean_split_moved);
    fmt::print("\n");
  }
}

int run_input(const MeanFieldFlags& f, const LayerSpec& spec) {
  using namespace meanfield;
  const MatrixD X = io::read_npy_matrix(f.input);
  const Index d_expected = f.head ? spec.attention.head(*f.head).input_dim() : spec.attention.input_dim();
  if (X.cols() != d_expected)
    throw InputError(fmt::format("{}: X has d = {} features per token, but {} expects d = {}", f.input, X.cols(),
                                 f.weights, d_expected));
  if (!f.positions.empty() && !spec.attention.causal)
    throw InputError("--positions needs --causal (the mask by position)");
  CloudRequest request;
  if (!f.masses.empty()) request.masses = io::read_npy_vector(f.masses, X.rows(), "the masses");
  if (!f.positions.empty()) request.positions = io::read_npy_vector(f.positions, X.rows(), "the positions");
  request.what = f.masses.empty() ? f.input : f.masses;
  request.head = f.head;
  request.split = f.split;
  request.copies = f.copies;
  request.spread = f.spread;
  request.options = f.solver.options();
  const CloudReport r = analyse_cloud(spec, X, request);
  if (f.json) {
    std::cout << to_json(r).dump() << std::endl;
    return 0;
  }
  print_cloud(r, f, spec);
  return 0;
}

int run(const MeanFieldFlags& f) {
  if (f.weights.empty()) throw InputError("--weights LAYER.safetensors is required");
  const bool input = !f.input.empty(), regime = !f.regime.empty();
  if (input == regime) throw InputError("give either --input X.npy or --regime construction|iid --radius R");
  if (!input && (!f.masses.empty() || !f.positions.empty() || f.split))
    throw InputError("--masses, --positions and --split need --input");
  if (f.copies < 1) throw InputError(fmt::format("--copies must be at least 1, got {}", f.copies));
  if (!(f.spread >= 0)) throw InputError(fmt::format("--spread must be ≥ 0, got {}", f.spread));
  const LayerSpec spec = models::load_layer_file(f.weights, f.layer.options());
  return input ? run_input(f, spec) : run_regime(f, spec);
}

const Register registered{
    {"meanfield", "the Lipschitz constant in the mean-field sense (weighted, masked), and the regime change in n",
     [](CLI::App& app) -> std::function<int()> {
       auto f = std::make_shared<MeanFieldFlags>();
       app.add_option("--weights", f->weights, "LAYER.safetensors (see docs/formats.md)");
       app.add_option("--input", f->input, "X.npy: the tokens of the cloud, shape [n, d]");
       app.add_option("--masses", f->masses, "M.npy: one positive mass per token (default 1/n), normalised");
       app.add_option("--positions", f->positions, "S.npy: one position in [0, 1] per token (needs --causal)");
       app.add_option("--regime", f->regime, "construction | iid: the constant as a curve over n");
       app.add_option("--radius", f->radius, "construction: ‖x_1‖ = R; iid: E‖x‖² = R² (σ = R/√d)");
       app.add_option("--n-min", f->n_min, "smallest n of the curve")->capture_default_str();
       app.add_option("--n-max", f->n_max, "largest n (default: 1000 n* for construction, 4096 for iid)");
       app.add_option("--per-decade", f->per_decade, "points per decade of n")->capture_default_str();
       app.add_option("--full-max", f->full_max,
                      "run the full n-token computation up to this n (default 256 construction, 1024 iid)");
       app.add_option("--head", f->head, "one head's map (construction: the head to build on, default 0)");
       app.add_option("--split", f->split, "with --input: split this token into --copies copies");
       app.add_option("--copies", f->copies, "copies of the split token")->capture_default_str();
       app.add_option("--spread", f->spread, "move the copies apart by N(0, spread²) offsets")->capture_default_str();
       f->layer.add_to(app);
       f->solver.add_to(app);
       app.add_flag("--json", f->json, "print one JSON object");
       return [f] { return run(*f); };
     }}};

}  // namespace
}  // namespace lipattn::cli
