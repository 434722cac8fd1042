// The jobs of lipattn's experiments, and the executor that runs them (docs/experiments.md, "Job kinds").
//
//   kind "window"        one model block on one input window (text or seeded random ids): ‖Df(X)‖₂,
//                        the authors' script quantity √‖Jᵀf(X)‖, and the local upper bounds.
//   kind "construction"  the paper's adversarial input for one head at (n, R): ‖Df(X)‖₂, n*, the set
//                        bounds on B_R^n and the local bounds at X, optionally the optimised attack.
//   kind "regime"        one point of a mean-field regime curve: the construction at fixed R as n runs
//                        past n*, or i.i.d. tokens as n grows (src/meanfield).
//   kind "block"         a whole block of a model (mlp, layer, stack of layers, the whole model) on one
//                        window: ‖Df(X)‖₂, where its top singular vector lives and, for stack and model,
//                        the chain-rule factors (models::measure_block).
// A head is either a model's head ("model", "model_seed", "layer", "head", "block", "with_wo",
// "causal") or the toy head ("model": "toy", "d", "model_seed", "causal"): the paper's form with
// A = (G + Gᵀ)/√(2d), G_ij ~ N(0, 1), and V = I_d.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "attention/layer.h"
#include "experiments/records.h"
#include "experiments/sweep.h"

namespace lipattn::models {
struct ModelWeights;
}

namespace lipattn::experiments {

struct PlannedSweep {
  std::string name;
  std::vector<Job> jobs;
  std::vector<std::string> notes;  // e.g. the text ran out after n = 302 (windows dropped)
};

// Expands a sweep spec (docs/experiments.md, "Sweep files"): its grid (expand_grid), then per kind
// the defaults, the text windows ("text": cut once over the n list, the cursor running on across n;
// windows that do not fit are dropped with a note) and the cost estimates. InputError for an
// unknown kind or a missing field, naming it.
PlannedSweep plan_sweep(const nlohmann::json& spec);

// A spec: one sweep object, or {"sweeps": [...]}; `what` names it in messages (a file, "spec").
std::vector<PlannedSweep> plan_sweeps(const nlohmann::json& spec, const std::string& what);
// A spec file: plan_sweeps of its JSON.
std::vector<PlannedSweep> plan_sweep_file(const std::string& path);
// The same on a sweep file's text held in memory; `source` names it in errors.
std::vector<PlannedSweep> plan_sweep_text(std::string_view text, const std::string& source);

// Runs jobs of every kind. Loaded models, tokenised texts and head specs are cached and shared by
// the threads of one process (models load once, with the deepest layer any job needs).
class JobRunner {
 public:
  JobRunner();
  ~JobRunner();
  // Tells the runner which layers each model needs, so a model is loaded once.
  void prepare(const std::vector<Job>& jobs);
  // The job's typed result (records.h), and the same as the results files' JSON.
  JobResult compute(const Job& job);
  nlohmann::json run(const Job& job, int threads);
  Executor executor() {
    return [this](const Job& job, int threads) { return run(job, threads); };
  }

  // The measured head/block of a job (public for tests and the report).
  LayerSpec head_spec(const nlohmann::json& job);
  std::vector<int> window_ids(const nlohmann::json& job);
  std::shared_ptr<const models::ModelWeights> model(const nlohmann::json& job);

 private:
  WindowResult run_window(const nlohmann::json& job);
  ConstructionResult run_construction(const nlohmann::json& job);
  RegimeResult run_regime(const nlohmann::json& job);
  BlockResult run_block(const nlohmann::json& job);
  double construction_radius(const nlohmann::json& job, const LayerSpec& spec);

  std::mutex mutex_;
  std::map<std::string, int> layers_needed_;
  std::map<std::string, std::shared_ptr<const models::ModelWeights>> models_;
  std::map<std::string, std::shared_ptr<const std::vector<int>>> texts_;
};

// Runs planned sweeps with one JobRunner (models load once for all of them): the loop of `lipattn
// sweep` (every sweep into one results file) and of `lipattn reproduce` (one file per experiment).
struct SweepsOptions {
  RunOptions run;  // workers, mode, progress; the label and the records' "sweep" are set per sweep
  std::function<std::string(const PlannedSweep&)> results_path;  // the file each sweep's records go to
  bool numbered = false;                                         // labels "[i/N] name" instead of "name"
  std::function<void(const std::string&)> on_note;               // repairs of results files, when made
};
struct SweepsSummary {
  int total = 0, ran = 0, skipped = 0, failed = 0;
  struct Error {
    std::string sweep, message;  // message: "job …: what went wrong"
  };
  std::vector<Error> errors;
};
SweepsSummary run_sweeps(const std::vector<PlannedSweep>& sweeps, const SweepsOptions& options);

// The quantity the authors' released script computes: √‖Jᵀ f(X)‖ with J = Df(X) (one vjp of the
// output; docs/experiments.md, "The authors' quantity"). Returned with ‖f(X)‖_F.
struct AuthorsQuantity {
  double value = 0;        // √‖Jᵀ f(X)‖
  double output_norm = 0;  // ‖f(X)‖_F
};
AuthorsQuantity authors_quantity(const LayerSpec& spec, const MatrixD& X);

// The toy head of the regime experiments (see above).
LayerSpec toy_head(Index d, std::uint64_t seed, bool causal);

}  // namespace lipattn::experiments
