// Typed results of the three job kinds (docs/experiments.md, "Job kinds" and "Results files"): what
// JobRunner computes, what a results file's "result" object holds, and what the report reads. Each
// struct's to_json writes the results files' keys and from_json reads them back, so every key is
// spelled once, here, and nothing else reads a result by its key.
//
// Reading is lenient where old files need it: a number a record lacks reads as NaN (the report
// skips it, as a missing point), and the bound renamed since (paper_data_dependent, now
// released_code_data_dependent) is read under its new name. A field of the wrong type is an
// InputError naming the key.
#pragma once

#include <limits>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "bounds/bounds.h"
#include "models/measure_model.h"
#include "spectral/spectral_norm.h"

namespace lipattn::experiments {

// A number a job did not compute (or a record does not hold).
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class JobKind { Window, Construction, Regime, Block };
// "window" | "construction" | "regime" | "block"; InputError("kind")
JobKind parse_job_kind(const std::string& name);
std::string to_string(JobKind kind);
// The relative residual a job's solve reaches when its spec gives no "tol" (docs/experiments.md,
// "Tolerances and grids"): 1e-8 for windows and blocks, 1e-9 for constructions and regimes.
double default_tol(JobKind kind);

// The spectral solve of a job: the fields every measuring kind shares.
struct SolverRecord {
  double lipschitz = 0, lower = 0, relative_residual = 0;
  SpectralMethod method = SpectralMethod::Auto;  // the method that ran
  long matvecs = 0;
  bool converged = false;
  double solver_seconds = 0;
  static SolverRecord from(const SpectralResult& r);
};

// A bound's status, from src/bounds: proved, or refuted by a saved counterexample (reported, never
// used as the best). Written as "proved" or "refuted: <reason>".
// Upper bounds of src/bounds (local at X, or on B_R^n): each named bound, its status, and the best
// (smallest unrefuted) one. A bound that does not apply is +inf (written "inf").
struct BoundsRecord {
  struct Bound {
    double value = 0;
    BoundStatus status;
  };
  std::map<std::string, Bound> bounds;  // name → bound
  double best = 0;
  std::string best_name;
  static BoundsRecord from(const BoundReport& report);
};

// kind "window": one model block on one input window.
struct WindowResult {
  SolverRecord solver;
  double radius = 0;                         // √(mean_i ‖x_i‖²)
  double max_token_norm = 0;                 // max_i ‖x_i‖
  double authors = 0;                        // the authors' script quantity √‖Jᵀ f(X)‖
  double output_norm = 0;                    // ‖f(X)‖_F
  std::optional<BoundsRecord> local_bounds;  // with "bounds": true
};

// The optimised attack run from the construction.
struct AttackRecord {
  double lower = 0;      // the certified lower bound found
  double violation = 0;  // how far the witness lies outside B_R^n (0: inside)
};

// kind "construction": the paper's input for one head at (n, R). When the construction does not
// apply (A_h has no usable real eigenvalue), only radius_used and applies are set (the rest NaN).
struct ConstructionResult {
  double radius_used = 0;
  bool applies = false;
  double lambda_max = kNaN, lambda_min = kNaN;
  bool uses_lambda_max = true;
  double log_n_star = kNaN, n_star = kNaN;  // n* may be +inf (e^{log n*} overflows); written null
  SolverRecord solver{kNaN, kNaN, kNaN};
  double authors = kNaN, output_norm = kNaN;
  double value_norm = kNaN, score_norm = kNaN;  // ‖V‖₂, ‖A‖₂
  BoundsRecord set_bounds, local_bounds;        // on B_R^n, at X
  std::optional<AttackRecord> attack;           // with attack_steps or attack_restarts
};

// kind "regime": one point of a mean-field curve (src/meanfield). Which fields are set depends on the
// input: the construction at fixed R (no law), i.i.d. tokens on a sphere, or i.i.d. Gaussian tokens.
struct RegimeResult {
  enum class Input { Construction, Sphere, Gaussian } input = Input::Construction;
  double radius_used = 0;
  bool applies = true;                              // construction only
  double log_n_star = kNaN, n_star = kNaN;          // construction only (n* may be +inf)
  double lambda_max = kNaN, lambda_min = kNaN;      // construction only
  double sigma = kNaN;                              // Gaussian only
  double lipschitz = kNaN;                          // the n-token constant
  double merged = kNaN, query = kNaN, full = kNaN;  // construction and Gaussian (src/meanfield)
  double lower = kNaN;                              // sphere only (a direct solve)
  long matvecs = 0;                                 // sphere only
  bool converged = false;
};

// kind "block": a whole block (mlp, layer, stack, model) of a model on one window: the record of
// models::measure_block (src/models/measure_model.h), with its own to/from JSON: the exact constant,
// the top singular vector's concentration and, for stack and model, the composition.
using BlockResult = models::BlockMeasurement;

using JobResult = std::variant<WindowResult, ConstructionResult, RegimeResult, BlockResult>;

void to_json(nlohmann::json& j, const SolverRecord& r);
void from_json(const nlohmann::json& j, SolverRecord& r);
void to_json(nlohmann::json& j, const BoundsRecord& r);
void from_json(const nlohmann::json& j, BoundsRecord& r);
void to_json(nlohmann::json& j, const WindowResult& r);
void from_json(const nlohmann::json& j, WindowResult& r);
void to_json(nlohmann::json& j, const ConstructionResult& r);
void from_json(const nlohmann::json& j, ConstructionResult& r);
void to_json(nlohmann::json& j, const RegimeResult& r);
void from_json(const nlohmann::json& j, RegimeResult& r);

nlohmann::json result_to_json(const JobResult& result);
// L = ‖Df(X)‖₂ of any kind's result (NaN when the job computed none: a construction that does not apply).
double lipschitz(const JobResult& result);
JobResult result_from_json(JobKind kind, const nlohmann::json& j);

// One line of a results file, typed: {"sweep", "job", "result", "seconds", "threads", "finished"}
// (and "rank" under MPI). The job stays JSON: it is the job's identity (its canonical dump), with
// every field the sweep gave; its kind and n are read out.
struct Record {
  std::string sweep;
  nlohmann::json job;
  JobKind kind = JobKind::Window;
  double n = 0;
  JobResult result;
  double seconds = 0;
  int threads = 0;
  std::string finished;
  std::optional<int> rank;
};
Record record_from_json(const nlohmann::json& j);

// The typed records of a results file (read_records: a torn last line is skipped). InputError naming
// the file, the line and the key for a record that does not read.
std::vector<Record> read_results(const std::string& path);

}  // namespace lipattn::experiments
