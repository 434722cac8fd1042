// lipattn.bound, lipattn.attack, lipattn.meanfield: the library calls the CLI's `bound`, `attack` and
// `meanfield` make (bounds/run.h, attack/run.h, meanfield/analysis.h), on arrays or on the same files,
// with the same JSON as their `--json` output (docs/python.md).
#include <chrono>
#include <iostream>

#include <fmt/core.h>
#include <pybind11/stl.h>

#include "attack/report_json.h"
#include "bindings.h"
#include "bounds/report_json.h"
#include "common/error.h"
#include "common/progress.h"
#include "io/npy.h"
#include "meanfield/report_json.h"

namespace lipattn::python {
namespace {

using namespace pybind11::literals;

// The layer keywords every call takes, as lipattn.measure takes them.
struct LayerArgs {
  Index heads;
  bool causal;
  std::optional<std::string> pre_norm, post_norm;
  bool residual;
  double norm_eps;
  models::LayerFileOptions options() const {
    return layer_options(heads, causal, pre_norm, residual, post_norm, norm_eps);
  }
};

py::object bound(py::object weights, py::object X, std::optional<Index> n, std::optional<double> radius, bool exact,
                 std::vector<double> sweep, Index heads, bool causal, std::optional<std::string> pre_norm,
                 bool residual, std::optional<std::string> post_norm, double norm_eps, const std::string& method,
                 double tol, int max_iter, int krylov, std::uint64_t seed, const std::string& dtype) {
  const LayerSpec spec = layer_argument(weights, LayerArgs{heads, causal, pre_norm, post_norm, residual, norm_eps}.options());
  BoundRequest request;
  if (!X.is_none()) request.input = matrix_argument(X, "X");
  if (n || radius) {
    if (!n || !radius) throw InputError("a set needs both n and radius", n ? "radius" : "n");
    request.ball = TokenBall{*n, *radius};
  }
  request.exact = exact;
  request.sweep = std::move(sweep);
  request.options = solver_options(method, tol, max_iter, krylov, seed);
  request.precision = parse_precision(dtype);
  const BoundRun run = run_interruptible([&] { return run_bound(spec, request); });
  progress::end_line();
  py::dict arrays;
  if (run.exact) {
    VectorD v = run.exact->right_vector;
    arrays["right_vector"] = vector_to_numpy(std::move(v), request.input->rows(), request.input->cols());
  }
  return make<BoundResult>(to_json(run), arrays);
}

attack::AttackRequest attack_request(std::optional<Index> n, std::optional<double> radius, bool layernorm,
                                     py::object around, std::optional<double> eps, std::optional<Index> head,
                                     const std::string& construction, int restarts, int steps, std::uint64_t seed,
                                     bool quiet) {
  const int chosen = (radius ? 1 : 0) + (layernorm ? 1 : 0) + (around.is_none() ? 0 : 1);
  if (chosen != 1) throw InputError("choose exactly one set: radius=R, layernorm=True, or around=X0 with eps=E", "set");
  if (eps && around.is_none()) throw InputError("eps goes with around=X0", "eps");
  if (!around.is_none() && !eps) throw InputError("around=X0 needs eps=E", "eps");
  attack::AttackRequest r;
  r.n = n.value_or(0);
  r.head = head;
  r.construction = attack::parse_construction_use(construction);
  if (radius) {
    r.set = attack::SetKind::Ball;
    r.radius = *radius;
  } else if (layernorm) {
    r.set = attack::SetKind::LayerNormImage;
  } else {
    r.set = attack::SetKind::AroundInput;
    r.center = matrix_argument(around, "around");
    r.eps = *eps;
  }
  r.options.restarts = restarts;
  r.options.steps = steps;
  r.options.seed = seed;
  // The CLI's progress lines, on stderr (from the solving thread: std::cerr, not sys.stderr).
  if (!quiet)
    r.options.progress = [](const std::string& line) { std::cerr << "lipattn attack: " << line << std::endl; };
  return r;
}

py::object attack(py::object weights, std::optional<Index> n, std::optional<double> radius, bool layernorm,
                  py::object around, std::optional<double> eps, std::optional<Index> head, int restarts, int steps,
                  const std::string& construction, std::uint64_t seed, std::optional<std::string> out, bool quiet,
                  Index heads, bool causal, std::optional<std::string> pre_norm, bool residual,
                  std::optional<std::string> post_norm, double norm_eps) {
  const auto start = std::chrono::steady_clock::now();
  const LayerSpec spec = layer_argument(weights, LayerArgs{heads, causal, pre_norm, post_norm, residual, norm_eps}.options());
  const attack::AttackRequest request =
      attack_request(n, radius, layernorm, around, eps, head, construction, restarts, steps, seed, quiet);
  attack::AttackReport report = run_interruptible([&] { return attack::run_attack(spec, request); });
  if (!report.no_upper_reason.empty() && request.options.progress)
    request.options.progress(fmt::format("no upper bound: {}", report.no_upper_reason));
  if (out) io::write_npy(*out, report.result.witness);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const nlohmann::json json = attack::report_json(report, request, out.value_or(""), seconds);
  py::dict arrays;
  arrays["witness"] = matrix_to_numpy(std::move(report.result.witness));
  return make<AttackResult>(json, arrays);
}

py::object meanfield_cloud(const LayerSpec& spec, py::object X, py::object masses, py::object positions,
                           std::optional<Index> head, std::optional<Index> split, Index copies, double spread,
                           const SpectralOptions& options) {
  const MatrixD x = matrix_argument(X, "X");
  meanfield::CloudRequest request;
  if (!masses.is_none()) request.masses = vector_argument(masses, x.rows(), "the masses", "masses");
  if (!positions.is_none()) request.positions = vector_argument(positions, x.rows(), "the positions", "positions");
  request.what = is_path(masses) ? path_string(masses) : is_path(X) && masses.is_none() ? path_string(X) : "masses";
  request.head = head;
  request.split = split;
  request.copies = copies;
  request.spread = spread;
  request.options = options;
  const meanfield::CloudReport r = run_interruptible([&] { return meanfield::analyse_cloud(spec, x, request); });
  return make<MeanFieldResult>(meanfield::to_json(r));
}

py::object meanfield(py::object weights, py::object X, py::object masses, py::object positions,
                     std::optional<std::string> regime, std::optional<double> radius, Index n_min, Index n_max,
                     int per_decade, Index full_max, std::optional<Index> head, std::optional<Index> split,
                     Index copies, double spread, Index heads, bool causal, std::optional<std::string> pre_norm,
                     bool residual, std::optional<std::string> post_norm, double norm_eps, const std::string& method,
                     double tol, int max_iter, int krylov, std::uint64_t seed) {
  if (X.is_none() == !regime.has_value())
    throw InputError("give either X (a cloud) or regime='construction'|'iid' with radius=R", "regime");
  if (regime && (!masses.is_none() || !positions.is_none() || split))
    throw InputError("masses, positions and split need X", regime ? "regime" : "X");
  const LayerSpec spec = layer_argument(weights, LayerArgs{heads, causal, pre_norm, post_norm, residual, norm_eps}.options());
  const SpectralOptions options = solver_options(method, tol, max_iter, krylov, seed);
  if (!regime) return meanfield_cloud(spec, X, masses, positions, head, split, copies, spread, options);
  if (!radius) throw InputError("a regime curve needs radius=R", "radius");
  meanfield::RegimeRequest request;
  request.regime = *regime;
  request.radius = *radius;
  request.head = head;
  request.options.n_min = n_min;
  request.options.n_max = n_max;
  request.options.full_max = full_max;
  request.options.per_decade = per_decade;
  request.options.spectral = options;
  request.options.seed = seed;
  const meanfield::RegimeCurve curve = run_interruptible([&] { return meanfield::regime_curve(spec, request); });
  return make<RegimeCurve>(meanfield::to_json(curve, head.value_or(0)));
}

}  // namespace

void bind_analysis(py::module_& m) {
  m.def("bound", &bound,
        R"(bound(weights, X=None, *, n=None, radius=None, exact=False, sweep=(), ...) -> BoundResult

Certified upper bounds on the Lipschitz constant of one layer: `lipattn bound --json`. Local bounds
at X (X given), or bounds on the set B_R^n (n and radius given: n tokens, each of norm ≤ radius
after the pre-norm); exactly one of the two.

weights: a dict of arrays named as in a layer file (see measure) or the path of a layer file.
X: array-like [n, d] or the path of an .npy file, as measure.
exact: also measure ‖Df(X)‖₂ (needs X); the result then holds exact, exact_detail and right_vector.
sweep: factors r: ‖Df(rX)‖₂ for each, approaching the hardmax limit (needs X).
heads, causal, pre_norm, residual, post_norm, norm_eps: the layer, as measure.
method, tol, max_iter, krylov, seed, dtype: the solver of exact and sweep, as measure.
Releases the GIL; Ctrl-C stops it between products (KeyboardInterrupt). Bad input: lipattn.InputError.)",
        "weights"_a, "X"_a = py::none(), py::kw_only(), "n"_a = py::none(), "radius"_a = py::none(),
        "exact"_a = false, "sweep"_a = std::vector<double>{}, "heads"_a = 12, "causal"_a = true,
        "pre_norm"_a = py::none(), "residual"_a = false, "post_norm"_a = py::none(), "norm_eps"_a = 1e-5,
        "method"_a = "auto", "tol"_a = 1e-10, "max_iter"_a = 0, "krylov"_a = 20, "seed"_a = 0, "dtype"_a = "f64");
  m.def("attack", &attack,
        R"(attack(weights, *, n=None, radius=None | layernorm=True | around=X0, eps=E, ...) -> AttackResult

A certified lower bound on sup ‖Df(X)‖₂ over a set of inputs, with its witness: `lipattn attack --json`.
The set is exactly one of: radius=R with n (B_R^n, every token of norm ≤ R); layernorm=True with n
(LayerNorm's image; γ, β from pre_norm='layernorm', which is then the set, not part of the map);
around=X0 (array-like or .npy path) with eps=E (‖X − X0‖_F ≤ E).

head: attack head h alone (default: the whole layer). restarts, steps: random starts and ascent steps
per start. construction: 'paper' | 'optimize' | 'both' (the paper's input, random starts, or both).
seed: of the random starts. out: also save the witness as an .npy file (its path is then the JSON's
'witness'). quiet: no progress lines on stderr. heads, causal, pre_norm, residual, post_norm, norm_eps:
the layer, as measure. The result's `witness` is the input found, [n, d] (zero-copy).
Releases the GIL; Ctrl-C stops it between products (KeyboardInterrupt). Bad input: lipattn.InputError.)",
        "weights"_a, py::kw_only(), "n"_a = py::none(), "radius"_a = py::none(), "layernorm"_a = false,
        "around"_a = py::none(), "eps"_a = py::none(), "head"_a = py::none(), "restarts"_a = 4, "steps"_a = 60,
        "construction"_a = "both", "seed"_a = 0, "out"_a = py::none(), "quiet"_a = false, "heads"_a = 12,
        "causal"_a = true, "pre_norm"_a = py::none(), "residual"_a = false, "post_norm"_a = py::none(),
        "norm_eps"_a = 1e-5);
  m.def("meanfield", &meanfield,
        R"(meanfield(weights, X=None, *, masses=None, positions=None, regime=None, radius=None, ...)

The Lipschitz constant in the mean-field sense: `lipattn meanfield --json`. Either on a cloud X
(array-like or .npy path) -> MeanFieldResult: the Euclidean constant, the mean-field one with the
given masses (default 1/n) and positions (a causal layer only; default (i+1)/n), the reduction of
coinciding tokens, and with split=i the effect of splitting token i into `copies` copies (moved
apart by N(0, spread²) offsets when spread > 0). Or regime='construction' | 'iid' with radius=R
-> RegimeCurve: the constant as a curve over n (n_min, n_max: 0 the regime's default; per_decade;
full_max: -1 the regime's default). head: one head's map (construction: the head built on).
heads, causal, pre_norm, residual, post_norm, norm_eps: the layer; method, tol, max_iter, krylov,
seed: the solver, as measure. Releases the GIL; Ctrl-C stops it (KeyboardInterrupt).)",
        "weights"_a, "X"_a = py::none(), py::kw_only(), "masses"_a = py::none(), "positions"_a = py::none(),
        "regime"_a = py::none(), "radius"_a = py::none(), "n_min"_a = 2, "n_max"_a = 0, "per_decade"_a = 4,
        "full_max"_a = -1, "head"_a = py::none(), "split"_a = py::none(), "copies"_a = 2, "spread"_a = 0.0,
        "heads"_a = 12, "causal"_a = true, "pre_norm"_a = py::none(), "residual"_a = false,
        "post_norm"_a = py::none(), "norm_eps"_a = 1e-5, "method"_a = "auto", "tol"_a = 1e-10, "max_iter"_a = 0,
        "krylov"_a = 20, "seed"_a = 0);
}

}  // namespace lipattn::python
