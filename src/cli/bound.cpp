// lipattn bound: certified upper bounds on the Lipschitz constant of one layer, at an input X
// (--input) or on a set B_R^n (--n --radius), optionally next to the exact local constant
// (docs/theory.md, "Upper bounds").
#include <cmath>
#include <iostream>

#include <fmt/core.h>

#include "bounds/report_json.h"
#include "bounds/run.h"
#include "cli/command.h"
#include "cli/common.h"
#include "common/error.h"
#include "common/progress.h"
#include "io/npy.h"

namespace lipattn::cli {
namespace {

struct BoundFlags {
  std::string weights, input;
  Index n = 0;
  double radius = std::numeric_limits<double>::quiet_NaN();
  LayerFlags layer;
  SolverFlags solver;
  bool exact = false, json = false;
  std::vector<double> sweep;
};

void print_run(const LayerSpec& spec, const BoundFlags& f, const BoundRun& run, Index n_tokens) {
  const BoundReport& report = run.report;
  const std::optional<SpectralResult>& exact = run.exact;
  const std::vector<SweepPoint>& sweep = run.sweep;
  fmt::print("layer   {}\n", spec.describe());
  if (run.local)
    fmt::print("input   {}: n = {}, max_i ‖z_i‖ = {:.6g} (attention input)\n", f.input, n_tokens,
               report.factors.attention_radius);
  else
    fmt::print("set     n = {}, every attention-input token of norm ≤ {:.6g}\n", f.n, report.factors.attention_radius);
  fmt::print("factors pre-norm {:.6g}, residual {}, post-norm {:.6g}\n", report.factors.pre_norm,
             report.factors.residual, report.factors.post_norm);
  if (exact) fmt::print("exact   {:.10g}   ‖Df(X)‖₂ by {}\n", exact->lipschitz, to_string(exact->method));
  fmt::print("\n{:<22} {:>14} {:>10}  {}\n", "bound", "value", exact ? "/exact" : "", "status");
  for (const auto& [name, value] : report.bounds) {
    const std::string ratio = exact && exact->lipschitz > 0 ? fmt::format("{:.4g}", value / exact->lipschitz) : "";
    fmt::print("{:<22} {:>14.6g} {:>10}  {}\n", name, value, ratio, report.status.at(name).to_string());
  }
  fmt::print("\nbest    {} = {:.6g}\n", report.best_name, report.best);
  if (report.hardmax) {
    if (report.hardmax->exists)
      fmt::print("hardmax lim_(r→∞) ‖Df(rX)‖₂ = {:.6g} (max in-degree per head:", report.hardmax->value);
    else
      fmt::print("hardmax no finite limit: {} (max in-degree per head:", report.hardmax->note);
    for (Index k : report.hardmax->max_in_degree) fmt::print(" {}", k);
    fmt::print(")\n");
  }
  for (const auto& p : sweep) fmt::print("sweep   r = {:<8g} ‖Df(rX)‖₂ = {:.6g}\n", p.radius_factor, p.exact);
  for (const auto& note : report.notes) fmt::print("note    {}\n", note);
}

int run(const BoundFlags& f) {
  if (f.weights.empty()) throw InputError("--weights LAYER.safetensors is required");
  const bool local = !f.input.empty();
  const bool on_set = f.n != 0 || !std::isnan(f.radius);
  if (local && on_set) throw InputError("give either --input X.npy (local bounds) or --n N --radius R (a set), not both");
  if (!local && !on_set) throw InputError("give --input X.npy (local bounds) or --n N --radius R (a set)");
  if (on_set && (f.n == 0 || std::isnan(f.radius))) throw InputError("a set needs both --n N and --radius R");
  if (!local && f.exact) throw InputError("--exact needs --input: the exact constant is measured at an input");
  if (!local && !f.sweep.empty()) throw InputError("--sweep needs --input: it scales that input");

  const LayerSpec spec = models::load_layer_file(f.weights, f.layer.options());
  BoundRequest request;
  if (local) {
    request.input = io::read_npy_matrix(f.input);
    if (request.input->cols() != spec.attention.input_dim())
      throw InputError(fmt::format("{}: X has d = {} features per token, but {} expects d = {}", f.input,
                                   request.input->cols(), f.weights, spec.attention.input_dim()));
  } else {
    request.ball = TokenBall{f.n, f.radius};
  }
  request.exact = f.exact;
  request.sweep = f.sweep;
  request.options = f.solver.options();
  request.precision = f.solver.precision();
  const BoundRun run = run_bound(spec, request);
  progress::end_line();
  if (f.json) {
    std::cout << to_json(run).dump() << std::endl;
    return 0;
  }
  print_run(spec, f, run, local ? request.input->rows() : f.n);
  return 0;
}

const Register registered{{"bound", "certified upper bounds on the Lipschitz constant, at X or on B_R^n",
                           [](CLI::App& app) -> std::function<int()> {
                             auto f = std::make_shared<BoundFlags>();
                             app.add_option("--weights", f->weights, "LAYER.safetensors (see docs/formats.md)");
                             app.add_option("--input", f->input, "X.npy: local bounds at X");
                             app.add_option("--n", f->n, "tokens of the set B_R^n");
                             app.add_option("--radius", f->radius,
                                            "R of the set: every token (after the pre-norm) of norm ≤ R");
                             f->layer.add_to(app);
                             f->solver.add_to(app);
                             app.add_flag("--exact", f->exact, "also measure ‖Df(X)‖₂ (needs --input)");
                             app.add_option("--sweep", f->sweep,
                                            "factors r: measure ‖Df(rX)‖₂, approaching the hardmax limit")
                                 ->delimiter(',');
                             app.add_flag("--json", f->json, "print one JSON object");
                             return [f] { return run(*f); };
                           }}};

}  // namespace
}  // namespace lipattn::cli
