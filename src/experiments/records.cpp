#include "experiments/records.h"

#include <cmath>

#include <fmt/core.h>

#include "bounds/bounds.h"
#include "common/error.h"
#include "common/json.h"
#include "experiments/sweep.h"

namespace lipattn::experiments {

namespace {

using nlohmann::json;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Bounds are written as src/bounds reports them: a bound that does not apply is "inf".
json number_or_inf(double value) { return std::isfinite(value) ? json(value) : json("inf"); }

// Missing or null reads as NaN: a record from before the field existed, or a value not computed.
double read_number(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return kNaN;
  if (it->is_number()) return it->get<double>();
  if (it->is_string() && it->get<std::string>() == "inf") return kInf;
  throw InputError(fmt::format("result field '{}': expected a number, got {}", key, it->dump()), key);
}

// n* overflows to +inf for a large R and is written null: read null as +inf.
double read_n_star(const json& j) {
  const double v = read_number(j, "n_star");
  return std::isnan(v) && j.contains("n_star") ? kInf : v;
}

bool read_bool(const json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_boolean())
    throw InputError(fmt::format("result field '{}': expected true or false, got {}", key, it->dump()), key);
  return it->get<bool>();
}

long read_integer(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return 0;
  if (!it->is_number_integer())
    throw InputError(fmt::format("result field '{}': expected an integer, got {}", key, it->dump()), key);
  return it->get<long>();
}

std::string read_string(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_string())
    throw InputError(fmt::format("result field '{}': expected a string, got {}", key, it->dump()), key);
  return it->get<std::string>();
}

const json& read_object(const json& j, const char* key) {
  static const json empty = json::object();
  const auto it = j.find(key);
  if (it == j.end()) return empty;
  if (!it->is_object())
    throw InputError(fmt::format("result field '{}': expected an object, got {}", key, it->dump()), key);
  return *it;
}

// Bounds renamed since they were first written: old name → name today (docs/theory.md, Upper bounds,
// U.2: formula (2) is transcribed from the authors' released code, not a theorem of the paper).
std::string current_bound_name(const std::string& name) {
  return name == "paper_data_dependent" ? "released_code_data_dependent" : name;
}

}  // namespace

JobKind parse_job_kind(const std::string& name) {
  if (name == "window") return JobKind::Window;
  if (name == "construction") return JobKind::Construction;
  if (name == "regime") return JobKind::Regime;
  if (name == "block") return JobKind::Block;
  throw InputError(fmt::format("unknown kind '{}' (expected window, construction, regime or block)", name), "kind");
}

double default_tol(JobKind kind) { return kind == JobKind::Window || kind == JobKind::Block ? 1e-8 : 1e-9; }

std::string to_string(JobKind kind) {
  switch (kind) {
    case JobKind::Window:
      return "window";
    case JobKind::Construction:
      return "construction";
    case JobKind::Regime:
      return "regime";
    case JobKind::Block:
      return "block";
  }
  return "?";
}

SolverRecord SolverRecord::from(const SpectralResult& r) {
  return {r.lipschitz, r.lower, r.relative_residual, r.method, r.matvecs, r.converged, r.seconds};
}

void to_json(json& j, const SolverRecord& r) {
  j = {{"lipschitz", r.lipschitz},          {"lower", r.lower},     {"relative_residual", r.relative_residual},
       {"method", to_string(r.method)},     {"matvecs", r.matvecs}, {"converged", r.converged},
       {"solver_seconds", r.solver_seconds}};
}

void from_json(const json& j, SolverRecord& r) {
  r.lipschitz = read_number(j, "lipschitz");
  r.lower = read_number(j, "lower");
  r.relative_residual = read_number(j, "relative_residual");
  const std::string method = read_string(j, "method");
  r.method = method.empty() ? SpectralMethod::Auto : parse_spectral_method(method);
  r.matvecs = read_integer(j, "matvecs");
  r.converged = read_bool(j, "converged", false);
  r.solver_seconds = read_number(j, "solver_seconds");
}

BoundsRecord BoundsRecord::from(const BoundReport& report) {
  BoundsRecord r;
  for (const auto& [name, value] : report.bounds) r.bounds[name] = {value, report.status.at(name)};
  r.best = report.best;
  r.best_name = report.best_name;
  return r;
}

void to_json(json& j, const BoundsRecord& r) {
  json bounds = json::object(), status = json::object();
  for (const auto& [name, b] : r.bounds) {
    bounds[name] = number_or_inf(b.value);
    status[name] = b.status.to_string();
  }
  j = {{"bounds", bounds}, {"status", status}, {"best", number_or_inf(r.best)}, {"best_name", r.best_name}};
}

void from_json(const json& j, BoundsRecord& r) {
  r = BoundsRecord{};
  const json& status = read_object(j, "status");
  for (const auto& [name, value] : read_object(j, "bounds").items()) {
    if (!status.contains(name)) throw InputError(fmt::format("bounds: the bound '{}' has no status", name), "status");
    BoundsRecord::Bound& b = r.bounds[current_bound_name(name)];
    b.value = read_number(read_object(j, "bounds"), name.c_str());
    b.status = BoundStatus::parse(status[name].get<std::string>());
  }
  r.best = read_number(j, "best");
  r.best_name = current_bound_name(read_string(j, "best_name"));
}

void to_json(json& j, const WindowResult& r) {
  j = r.solver;
  j["radius"] = r.radius;
  j["max_token_norm"] = r.max_token_norm;
  j["authors"] = r.authors;
  j["output_norm"] = r.output_norm;
  if (r.local_bounds) j["local_bounds"] = *r.local_bounds;
}

void from_json(const json& j, WindowResult& r) {
  r.solver = j.get<SolverRecord>();
  r.radius = read_number(j, "radius");
  r.max_token_norm = read_number(j, "max_token_norm");
  r.authors = read_number(j, "authors");
  r.output_norm = read_number(j, "output_norm");
  r.local_bounds.reset();
  if (j.contains("local_bounds")) r.local_bounds = read_object(j, "local_bounds").get<BoundsRecord>();
}

void to_json(json& j, const ConstructionResult& r) {
  j = {{"radius_used", r.radius_used}, {"applies", r.applies}};
  if (!r.applies) return;
  j.update(json(r.solver));
  j.update({{"lambda_max", r.lambda_max},
            {"lambda_min", r.lambda_min},
            {"uses_lambda_max", r.uses_lambda_max},
            {"log_n_star", r.log_n_star},
            {"n_star", finite_or_null(r.n_star)},
            {"authors", r.authors},
            {"output_norm", r.output_norm},
            {"value_norm", r.value_norm},
            {"score_norm", r.score_norm},
            {"set_bounds", r.set_bounds},
            {"local_bounds", r.local_bounds}});
  if (r.attack) j.update({{"attack_lower", r.attack->lower}, {"attack_violation", r.attack->violation}});
}

void from_json(const json& j, ConstructionResult& r) {
  r = ConstructionResult{};
  r.radius_used = read_number(j, "radius_used");
  r.applies = read_bool(j, "applies", false);
  if (!r.applies) return;
  r.solver = j.get<SolverRecord>();
  r.lambda_max = read_number(j, "lambda_max");
  r.lambda_min = read_number(j, "lambda_min");
  r.uses_lambda_max = read_bool(j, "uses_lambda_max", true);
  r.log_n_star = read_number(j, "log_n_star");
  r.n_star = read_n_star(j);
  r.authors = read_number(j, "authors");
  r.output_norm = read_number(j, "output_norm");
  r.value_norm = read_number(j, "value_norm");
  r.score_norm = read_number(j, "score_norm");
  r.set_bounds = read_object(j, "set_bounds").get<BoundsRecord>();
  r.local_bounds = read_object(j, "local_bounds").get<BoundsRecord>();
  if (j.contains("attack_lower"))
    r.attack = AttackRecord{read_number(j, "attack_lower"), read_number(j, "attack_violation")};
}

void to_json(json& j, const RegimeResult& r) {
  using Input = RegimeResult::Input;
  j = {{"radius_used", r.radius_used}};
  switch (r.input) {
    case Input::Construction:
      j["applies"] = r.applies;
      if (!r.applies) return;
      j.update({{"log_n_star", r.log_n_star},
                {"n_star", finite_or_null(r.n_star)},
                {"lambda_max", r.lambda_max},
                {"lambda_min", r.lambda_min}});
      break;
    case Input::Sphere:
      j.update({{"law", "sphere"},
                {"lipschitz", r.lipschitz},
                {"lower", r.lower},
                {"converged", r.converged},
                {"matvecs", r.matvecs}});
      return;
    case Input::Gaussian:
      j.update({{"law", "gaussian"}, {"sigma", r.sigma}});
      break;
  }
  j.update({{"lipschitz", finite_or_null(r.lipschitz)},
            {"merged", finite_or_null(r.merged)},
            {"query", finite_or_null(r.query)},
            {"full", finite_or_null(r.full)},
            {"converged", r.converged}});
}

void from_json(const json& j, RegimeResult& r) {
  using Input = RegimeResult::Input;
  r = RegimeResult{};
  const std::string law = read_string(j, "law");
  if (law.empty())
    r.input = Input::Construction;
  else if (law == "sphere" || law == "gaussian")
    r.input = law == "sphere" ? Input::Sphere : Input::Gaussian;
  else
    throw InputError(fmt::format("result field 'law': expected sphere or gaussian, got '{}'", law), "law");
  r.radius_used = read_number(j, "radius_used");
  r.applies = read_bool(j, "applies", true);
  r.log_n_star = read_number(j, "log_n_star");
  r.n_star = read_n_star(j);
  r.lambda_max = read_number(j, "lambda_max");
  r.lambda_min = read_number(j, "lambda_min");
  r.sigma = read_number(j, "sigma");
  r.lipschitz = read_number(j, "lipschitz");
  r.merged = read_number(j, "merged");
  r.query = read_number(j, "query");
  r.full = read_number(j, "full");
  r.lower = read_number(j, "lower");
  r.matvecs = read_integer(j, "matvecs");
  r.converged = read_bool(j, "converged", false);
}

namespace {

// models::BlockMeasurement reads its keys with json::at: a missing key or a wrong type there is an
// InputError naming the block record here, as for the other kinds.
BlockResult block_result_from_json(const json& j) {
  try {
    return j.get<BlockResult>();
  } catch (const json::exception& e) {
    throw InputError(fmt::format("block result: {}", e.what()), "result");
  }
}

}  // namespace

json result_to_json(const JobResult& result) {
  return std::visit([](const auto& r) { return json(r); }, result);
}

double lipschitz(const JobResult& result) {
  if (const auto* w = std::get_if<WindowResult>(&result)) return w->solver.lipschitz;
  if (const auto* c = std::get_if<ConstructionResult>(&result)) return c->solver.lipschitz;
  if (const auto* b = std::get_if<BlockResult>(&result)) return b->lipschitz;
  return std::get<RegimeResult>(result).lipschitz;
}

JobResult result_from_json(JobKind kind, const json& j) {
  switch (kind) {
    case JobKind::Window:
      return j.get<WindowResult>();
    case JobKind::Construction:
      return j.get<ConstructionResult>();
    case JobKind::Regime:
      return j.get<RegimeResult>();
    case JobKind::Block:
      return block_result_from_json(j);
  }
  throw std::logic_error("result_from_json: unknown job kind");
}

Record record_from_json(const json& j) {
  Record r;
  r.sweep = read_string(j, "sweep");
  r.job = read_object(j, "job");
  r.kind = parse_job_kind(read_string(r.job, "kind"));
  r.n = read_number(r.job, "n");
  r.result = result_from_json(r.kind, read_object(j, "result"));
  r.seconds = read_number(j, "seconds");
  r.threads = static_cast<int>(read_integer(j, "threads"));
  r.finished = read_string(j, "finished");
  if (j.contains("rank")) r.rank = static_cast<int>(read_integer(j, "rank"));
  return r;
}

std::vector<Record> read_results(const std::string& path) {
  std::vector<Record> out;
  const std::vector<json> records = read_records(path);
  for (std::size_t i = 0; i < records.size(); ++i) {
    try {
      out.push_back(record_from_json(records[i]));
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: record {}: {}", path, i + 1, e.what()), e.field());
    }
  }
  return out;
}

}  // namespace lipattn::experiments
