#include "experiments/jobs.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include <fmt/core.h>

#include "attention/construction.h"
#include "attack/optimize.h"
#include "bounds/bounds.h"
#include "common/error.h"
#include "meanfield/regime.h"
#include "models/blocks.h"
#include "models/forward.h"
#include "models/measure_model.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "spectral/measure.h"
#include "spectral/operator.h"
#include "text/windows.h"

namespace lipattn::experiments {

namespace {

const std::vector<std::string> kAxisOrder = {"model",  "model_seed", "regime", "layer", "layers", "block", "rope",
                                             "head",   "causal",     "radius", "n_star", "n",     "sample"};

std::string require_string(const nlohmann::json& job, const char* field, const std::string& where) {
  if (!job.contains(field) || !job[field].is_string())
    throw InputError(fmt::format("{}: field '{}' (a string) is required", where, field), field);
  return job[field].get<std::string>();
}

int require_int(const nlohmann::json& job, const char* field, const std::string& where) {
  if (!job.contains(field) || !job[field].is_number_integer())
    throw InputError(fmt::format("{}: field '{}' (an integer) is required, got {}", where, field,
                                 job.contains(field) ? job[field].dump() : "nothing"),
                     field);
  return job[field].get<int>();
}

// Fills a default without overriding what the spec says.
void set_default(nlohmann::json& job, const char* field, const nlohmann::json& value) {
  if (!job.contains(field)) job[field] = value;
}

struct ResolvedModel {
  models::ModelConfig config;
  models::ModelSource source;
};

ResolvedModel resolve(const std::string& model) {
  ResolvedModel r;
  r.source = models::resolve_model(model);
  r.config = r.source.config;
  return r;
}

std::string model_key(const nlohmann::json& job) {
  return fmt::format("{}|{}|{}", job["model"].get<std::string>(), job.value("model_seed", 0ULL),
                     job.value("causal", false) ? 1 : 0);
}

std::vector<int> tokenize_text(const models::ModelSource& source, const std::string& path) {
  const auto tokenizer = models::ModelTokenizer::load(source, "");
  return tokenizer.encode(models::read_text(path), path);
}

// Seeded random token ids for a window: a stream per (seed, n, sample), so a job does not depend on
// which other jobs run. BERT skips the first 1000 ids ([PAD], [unused*], [CLS], [SEP], [MASK]);
// GPT-2 skips <|endoftext|> (the last id).
std::vector<int> random_ids(const models::ModelConfig& config, std::uint64_t seed, int n, int sample) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(sample), 0x1d5u};
  std::mt19937_64 rng(seq);
  const int low = config.type == models::ModelType::Bert ? 1000 : 0;
  const int high = static_cast<int>(config.vocab_size) - (config.type == models::ModelType::Gpt2 ? 2 : 1);
  std::uniform_int_distribution<int> pick(low, high);
  std::vector<int> ids(n);
  for (auto& id : ids) id = pick(rng);
  return ids;
}

double window_cost(const models::ModelConfig& c, double n, bool one_head) {
  const double d = static_cast<double>(c.hidden_size);
  if (one_head) {
    const double k = static_cast<double>(c.head_dim());
    return 8 * n * d * k + 8 * n * n * k;
  }
  return 16 * n * d * d + 16 * n * n * d;  // design.md §5
}

// A whole block's Jacobian product: per layer the attention's 16nd² + 16n²d and the MLP's jvp and
// vjp, 2 · 2 · 2n·d·d_ff flops (design.md §5).
double block_cost(const models::ModelConfig& c, double n, int layers) {
  const double d = static_cast<double>(c.hidden_size), ff = static_cast<double>(c.intermediate_size);
  return layers * (16 * n * d * d + 16 * n * n * d + 8 * n * d * ff);
}

// The layers a job needs loaded: a window's layer and those before it; a block job's span (all of
// them, with the final norm, for "model").
int layers_needed(const nlohmann::json& job) {
  if (job.value("kind", std::string()) == "block") {
    const std::string block = job.value("block", std::string());
    if (block == "model") return std::numeric_limits<int>::max();
    if (block == "stack") return models::parse_layer_range(job["layers"].get<std::string>()).last;
  }
  return job.value("layer", 0) + 1;
}

// An integer ≥ 0 (JSON keeps 0 as a signed integer, 2⁶³ and above as unsigned).
bool is_natural(const nlohmann::json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
}

// A number field that may be absent; present, it must be a finite number ≥ 0 (> 0 if strict).
double optional_number(const nlohmann::json& job, const char* field, double fallback, bool strict,
                       const std::string& where) {
  if (!job.contains(field)) return fallback;
  const nlohmann::json& v = job[field];
  const double x = v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
  if (!std::isfinite(x) || x < 0 || (strict && x == 0))
    throw InputError(fmt::format("{}: field '{}' must be a finite number {} 0, got {}", where, field,
                                 strict ? ">" : "≥", v.dump()),
                     field);
  return x;
}

// The solver's fields of a job: "tol", "mixed_tol" (a float32 phase first, docs/theory.md §4.5),
// "solver_seed" and "method". Checked when the job is planned, so a bad one fails the plan by name.
SpectralOptions solver_options(const nlohmann::json& job, const std::string& where = "job") {
  SpectralOptions o;
  o.tol = optional_number(job, "tol", default_tol(parse_job_kind(job.value("kind", "window"))), true, where);
  o.mixed_tol = optional_number(job, "mixed_tol", 0.0, false, where);
  if (job.contains("solver_seed") && !is_natural(job["solver_seed"]))
    throw InputError(fmt::format("{}: field 'solver_seed' must be an integer ≥ 0, got {}", where,
                                 job["solver_seed"].dump()),
                     "solver_seed");
  o.seed = job.value("solver_seed", 0ULL);
  o.method = parse_spectral_method(job.contains("method") ? require_string(job, "method", where) : "auto");
  return o;
}

}  // namespace

LayerSpec toy_head(Index d, std::uint64_t seed, bool causal) {
  if (d < 1) throw InputError(fmt::format("toy head: d must be at least 1, got {}", d), "d");
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  MatrixD G(d, d);
  for (Index i = 0; i < G.size(); ++i) G.data()[i] = normal(rng);
  // Symmetric A has real eigenvalues, so the construction always applies; the 1/√(2d) scale puts
  // its spectrum in about [−√2, √2] whatever d.
  const MatrixD A = (G + G.transpose()) / std::sqrt(2.0 * static_cast<double>(d));
  LayerSpec spec;
  spec.attention = AttentionWeights::paper_form(A, MatrixD::Identity(d, d), causal);
  return spec;
}

AuthorsQuantity authors_quantity(const LayerSpec& spec, const MatrixD& X) {
  // The released script linearises f at X and power-iterates on the primal output f(X) (jvp(...)[0])
  // instead of a tangent; what it reports reduces to √‖Jᵀ f(X)‖ (docs/experiments.md).
  Linearization<double> linear(build_map<double>(spec), X);
  const MatrixD Y = linear.output();
  const VectorD y = Eigen::Map<const VectorD>(Y.data(), Y.size());
  AuthorsQuantity q;
  q.output_norm = y.norm();
  q.value = std::sqrt(linear.apply_transpose(y).norm());
  return q;
}

namespace {

// Plans the jobs of one sweep: per kind the defaults, the checks (InputError naming the key) and the
// cost estimate; the models it names are resolved once, and its text windows cut once.
class SweepPlanner {
 public:
  SweepPlanner(const nlohmann::json& spec, PlannedSweep& plan) : spec_(spec), plan_(plan) {
    where_ = "sweep '" + plan.name + "'";
  }
  const std::string& where() const { return where_; }
  // Fills the job's defaults and estimates its cost; false when the job is dropped (its text window
  // does not fit).
  bool plan(nlohmann::json& job, JobKind kind, Job& out);

 private:
  const ResolvedModel& model(const std::string& name);
  bool plan_window(nlohmann::json& job, const ResolvedModel& m, Job& out);
  bool plan_block(nlohmann::json& job, const ResolvedModel& m, Job& out);
  bool plan_input(nlohmann::json& job, const ResolvedModel& m);
  std::optional<std::size_t> window_start(const ResolvedModel& m, const nlohmann::json& job);
  void plan_head(nlohmann::json& job, JobKind kind, Job& out);

  const nlohmann::json& spec_;
  PlannedSweep& plan_;
  std::string where_;
  std::map<std::string, ResolvedModel> resolved_;
  // Text windows per (model type, tokenizer, text): start offsets keyed by (n, sample).
  std::map<std::string, std::map<std::pair<int, int>, std::size_t>> window_starts_;
};

const ResolvedModel& SweepPlanner::model(const std::string& name) {
  auto it = resolved_.find(name);
  if (it == resolved_.end()) it = resolved_.emplace(name, resolve(name)).first;
  return it->second;
}

bool SweepPlanner::plan(nlohmann::json& job, JobKind kind, Job& out) {
  job["kind"] = to_string(kind);
  const std::string model_name = require_string(job, "model", where_);
  if ((kind == JobKind::Window || kind == JobKind::Block) && model_name == "toy")
    throw InputError(fmt::format("{}: {} jobs need a real model, not 'toy'", where_, to_string(kind)), "model");
  bool planned = true;
  if (kind == JobKind::Window) planned = plan_window(job, model(model_name), out);
  else if (kind == JobKind::Block) planned = plan_block(job, model(model_name), out);
  else plan_head(job, kind, out);
  (void)solver_options(job, where_);
  for (const char* count : {"attack_steps", "attack_restarts"})  // read as int when the job runs
    if (job.contains(count) &&
        !(is_natural(job[count]) && job[count].get<std::uint64_t>() <= std::numeric_limits<int>::max()))
      throw InputError(fmt::format("{}: field '{}' must be an integer from 0 to {}, got {}", where_, count,
                                   std::numeric_limits<int>::max(), job[count].dump()),
                       count);
  return planned;
}

bool SweepPlanner::plan_window(nlohmann::json& job, const ResolvedModel& m, Job& out) {
  set_default(job, "model_seed", 0);
  set_default(job, "layer", 0);
  set_default(job, "head", nullptr);
  set_default(job, "sample", 0);
  set_default(job, "tol", default_tol(JobKind::Window));
  set_default(job, "bounds", false);
  set_default(job, "rope", "as_trained");
  if (job["rope"] != "as_trained" && job["rope"] != "none")
    throw InputError(fmt::format("{}: rope must be \"as_trained\" or \"none\", got {}", where_, job["rope"].dump()),
                     "rope");
  const models::Block block = models::parse_block(job.value("block", std::string()), m.config.type);
  job["block"] = models::to_string(block);
  job["causal"] = m.config.causal() || job.value("causal", false);
  const int layer = require_int(job, "layer", where_);
  if (layer < 0 || layer >= m.config.num_layers)
    throw InputError(fmt::format("{}: layer {} is out of range: {} has {} layers", where_, layer,
                                 job["model"].get<std::string>(), m.config.num_layers),
                     "layer");
  if (!plan_input(job, m)) return false;
  out.cost = window_cost(m.config, job["n"].get<int>(), !job["head"].is_null());
  return true;
}

// The window of a window or block job: n within the model's positions, then its text window (false
// when the text ran out before it) or its seeded random ids.
bool SweepPlanner::plan_input(nlohmann::json& job, const ResolvedModel& m) {
  const int n = require_int(job, "n", where_);
  if (n < 1 || n > m.config.max_positions)
    throw InputError(
        fmt::format("{}: n = {} must lie in 1..{} (the model's positions)", where_, n, m.config.max_positions), "n");
  if (job.contains("text")) {
    const std::optional<std::size_t> start = window_start(m, job);
    if (!start) return false;
    job["start"] = *start;
  } else {
    set_default(job, "ids_seed", 0);
  }
  return true;
}

// A whole block (docs/experiments.md, "Job kinds"): "block" mlp | layer | stack | model, "layer" for
// mlp and layer, "layers" "A:B" for stack; "composition" (default true) measures a stack's or model's
// chain-rule factors too. Checked as measure --model checks them (models::check_block_request).
bool SweepPlanner::plan_block(nlohmann::json& job, const ResolvedModel& m, Job& out) {
  set_default(job, "model_seed", 0);
  set_default(job, "sample", 0);
  set_default(job, "tol", default_tol(JobKind::Block));
  set_default(job, "composition", true);
  const models::Block block = models::parse_block(require_string(job, "block", where_), m.config.type);
  if (models::is_attention_block(block))
    throw InputError(fmt::format("{}: block jobs measure mlp, layer, stack or model; '{}' is a window job's block",
                                 where_, models::to_string(block)),
                     "block");
  const bool one_layer = block == models::Block::Mlp || block == models::Block::Layer;
  if (one_layer) set_default(job, "layer", 0);
  const int layer = one_layer ? require_int(job, "layer", where_) : 0;
  std::optional<models::LayerRange> layers;
  try {
    if (job.contains("layers")) layers = models::parse_layer_range(require_string(job, "layers", where_));
    models::check_block_request(m.config, block, layer, std::nullopt, layers);
  } catch (const InputError& e) {
    throw InputError(where_ + ": " + e.what(), e.field());
  }
  if (!job["composition"].is_boolean())
    throw InputError(where_ + ": field 'composition' must be true or false", "composition");
  // The model's own masking: the same cached weights as the window jobs of the model (model_key).
  job["causal"] = m.config.causal();
  if (!plan_input(job, m)) return false;
  const models::LayerRange span = models::block_layers(m.config, block, layer, layers);
  out.cost = block_cost(m.config, job["n"].get<int>(), span.last - span.first);
  return true;
}

// The token offset of the job's window: the text is cut once over the sweep's n list, in order, the
// cursor running on across n (text::plan_windows); nothing when the text ran out before it.
std::optional<std::size_t> SweepPlanner::window_start(const ResolvedModel& m, const nlohmann::json& job) {
  const std::string text = require_string(job, "text", where_);
  const std::string group =
      fmt::format("{}|{}|{}", models::to_string(m.config.type), models::tokenizer_dir(m.source, "").string(), text);
  if (!window_starts_.count(group)) {
    std::vector<int> lengths;
    for (double x : expand_range(spec_["n"], "n")) lengths.push_back(static_cast<int>(x));
    const int samples = spec_.value("samples", 1);
    const text::WindowPlan windows = text::plan_windows(tokenize_text(m.source, text), lengths, samples);
    auto& starts = window_starts_[group];
    for (const auto& w : windows.windows) starts[{w.n, w.sample}] = w.start;
    if (!windows.complete)
      plan_.notes.push_back(fmt::format("{}: {} ({}); the jobs past it are dropped", where_, windows.message, text));
  }
  const auto& starts = window_starts_[group];
  const auto it = starts.find({job["n"].get<int>(), job["sample"].get<int>()});
  if (it == starts.end()) return std::nullopt;
  return it->second;
}

// Construction and regime jobs: one head of a model, or the toy head.
void SweepPlanner::plan_head(nlohmann::json& job, JobKind kind, Job& out) {
  set_default(job, "model_seed", 0);
  set_default(job, "causal", false);
  set_default(job, "tol", default_tol(kind));
  if (!job.contains("radius") && !job.contains("n_star"))
    throw InputError(where_ + ": give 'radius' (token norm R) or 'n_star' (the n* that fixes R)", "radius");
  const int n = require_int(job, "n", where_);
  if (n < 1) throw InputError(fmt::format("{}: n must be at least 1, got {}", where_, n), "n");
  if (job["model"] == "toy") {
    set_default(job, "d", 4);
    out.cost = 8.0 * n * n * job["d"].get<double>();
  } else {
    const ResolvedModel& m = model(job["model"].get<std::string>());
    set_default(job, "layer", 0);
    set_default(job, "head", 0);
    set_default(job, "with_wo", false);
    const models::Block block = models::parse_block(
        job.value("block", std::string(m.config.type == models::ModelType::Bert ? "self" : "attn")), m.config.type);
    job["block"] = models::to_string(block);
    job["causal"] = m.config.causal() || job["causal"].get<bool>();
    require_int(job, "head", where_);
    out.cost = window_cost(m.config, n, true);
  }
  if (kind == JobKind::Construction) {
    set_default(job, "attack_steps", 0);
    set_default(job, "attack_restarts", 0);
    return;
  }
  const std::string regime = require_string(job, "regime", where_);
  if (regime != "construction" && regime != "iid")
    throw InputError(fmt::format("{}: regime '{}' must be construction or iid", where_, regime), "regime");
  if (regime == "iid") set_default(job, "seed", 0);
  set_default(job, "full_max", 0);
  // The unmasked construction reduces to a 2-point measure: cheap at any n.
  if (regime == "construction" && !job["causal"].get<bool>() && n > job["full_max"].get<int>()) out.cost = 1e5;
}

}  // namespace

PlannedSweep plan_sweep(const nlohmann::json& spec_in) {
  if (!spec_in.is_object()) throw InputError("a sweep must be a JSON object");
  PlannedSweep plan;
  nlohmann::json spec = spec_in;
  plan.name = spec.value("name", std::string("sweep"));
  spec.erase("name");
  SweepPlanner planner(spec, plan);
  const std::string kind_name = require_string(spec, "kind", planner.where());
  JobKind kind;
  try {
    kind = parse_job_kind(kind_name);
  } catch (const InputError& e) {
    throw InputError(planner.where() + ": " + e.what(), e.field());
  }
  if (!spec.contains("n")) throw InputError(planner.where() + ": field 'n' (a list or a range) is required", "n");
  if (kind == JobKind::Window && spec["n"].is_number()) spec["n"] = nlohmann::json::array({spec["n"]});
  for (nlohmann::json job : expand_grid(spec, kAxisOrder)) {
    Job out;
    if (!planner.plan(job, kind, out)) continue;
    out.spec = std::move(job);
    plan.jobs.push_back(std::move(out));
  }
  return plan;
}

std::vector<PlannedSweep> plan_sweeps(const nlohmann::json& spec, const std::string& what) {
  std::vector<PlannedSweep> out;
  try {
    if (spec.is_object() && spec.contains("sweeps")) {
      if (!spec["sweeps"].is_array()) throw InputError(fmt::format("{}: 'sweeps' must be a list of sweeps", what));
      for (const auto& s : spec["sweeps"]) out.push_back(plan_sweep(s));
    } else {
      out.push_back(plan_sweep(spec));
    }
  } catch (const nlohmann::json::exception& e) {
    // A key of the wrong type met where the planner reads it (e.g. "layer": "one").
    throw InputError(fmt::format("{}: a field has the wrong type: {}", what, e.what()));
  } catch (const InputError& e) {
    if (std::string_view(e.what()).starts_with(what + ":")) throw;
    throw InputError(fmt::format("{}: {}", what, e.what()), e.field());
  }
  return out;
}

std::vector<PlannedSweep> plan_sweep_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot read the sweep file", path));
  std::ostringstream text;
  text << in.rdbuf();
  return plan_sweep_text(text.str(), path);
}

std::vector<PlannedSweep> plan_sweep_text(std::string_view text, const std::string& source) {
  nlohmann::json spec;
  try {
    spec = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  return plan_sweeps(spec, source);
}

JobRunner::JobRunner() = default;
JobRunner::~JobRunner() = default;

void JobRunner::prepare(const std::vector<Job>& jobs) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& job : jobs) {
    const bool block = job.spec.value("kind", std::string()) == "block";
    if (job.spec.value("model", std::string()) == "toy" || (!block && !job.spec.contains("layer"))) continue;
    int& layers = layers_needed_[model_key(job.spec)];
    layers = std::max(layers, layers_needed(job.spec));
  }
}

std::shared_ptr<const models::ModelWeights> JobRunner::model(const nlohmann::json& job) {
  const std::string key = model_key(job);
  const int needed = layers_needed(job);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = models_.find(key);
  if (it != models_.end() && (it->second->complete() || static_cast<int>(it->second->layers.size()) >= needed))
    return it->second;
  int& layers = layers_needed_[key];
  layers = std::max(layers, needed);
  const models::ModelSource source = models::resolve_model(job["model"].get<std::string>());
  models::LoadOptions load;
  load.seed = job.value("model_seed", 0ULL);
  load.layers = std::min<int>(layers, static_cast<int>(source.config.num_layers));
  load.force_causal = source.config.type == models::ModelType::Bert && job.value("causal", false);
  auto weights = std::make_shared<const models::ModelWeights>(models::load_model(source, load));
  models_[key] = weights;
  return weights;
}

std::vector<int> JobRunner::window_ids(const nlohmann::json& job) {
  const int n = job["n"].get<int>();
  const auto weights = model(job);
  if (!job.contains("text"))
    return random_ids(weights->config, job.value("ids_seed", 0ULL), n, job.value("sample", 0));
  const std::string text = job["text"].get<std::string>();
  std::shared_ptr<const std::vector<int>> tokens;
  {
    const models::ModelSource source = models::resolve_model(job["model"].get<std::string>());
    // Keyed by tokenizer folder as plan_sweep keys its window starts: two GPT-2 folders (or a folder
    // and random:gpt2) may tokenise the same text differently.
    const std::string key = fmt::format("{}|{}|{}", models::to_string(source.config.type),
                                        models::tokenizer_dir(source, "").string(), text);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = texts_.find(key);
    if (it == texts_.end())
      it = texts_.emplace(key, std::make_shared<const std::vector<int>>(tokenize_text(source, text))).first;
    tokens = it->second;
  }
  const std::size_t start = job["start"].get<std::size_t>();
  if (start + n > tokens->size())
    throw InputError(fmt::format("{}: the window at token {} of length {} runs past the text's {} tokens (the "
                                 "text changed since the sweep was planned?)",
                                 text, start, n, tokens->size()));
  return std::vector<int>(tokens->begin() + static_cast<std::ptrdiff_t>(start),
                          tokens->begin() + static_cast<std::ptrdiff_t>(start + n));
}

LayerSpec JobRunner::head_spec(const nlohmann::json& job) {
  const std::string model_name = job["model"].get<std::string>();
  if (model_name == "toy")
    return toy_head(job.value("d", 4), job.value("model_seed", 0ULL), job.value("causal", false));
  const auto weights = model(job);
  const models::Block block = models::parse_block(job.value("block", std::string()), weights->config.type);
  std::optional<int> head;
  if (job.contains("head") && !job["head"].is_null()) head = job["head"].get<int>();
  LayerSpec spec = models::block_spec(*weights, job["layer"].get<int>(), block, head);
  // "rope": "none" measures the same weights with the rotary embedding removed, to isolate what
  // position encoding does (docs/experiments.md, "Trained model").
  if (job.value("rope", std::string("as_trained")) == "none") spec.attention.rope.style = RopeStyle::None;
  if (job["kind"] != "window" && !job.value("with_wo", false)) {
    // The paper's single head f(X)_i = Σ_j P_ij V x_j: the head's value map without W_O.
    spec.attention.w_o.resize(0, 0);
    spec.attention.b_o.resize(0);
  }
  return spec;
}

nlohmann::json JobRunner::run(const Job& job, int) { return result_to_json(compute(job)); }

JobResult JobRunner::compute(const Job& job) {
  switch (parse_job_kind(job.spec.value("kind", std::string()))) {
    case JobKind::Window:
      return run_window(job.spec);
    case JobKind::Construction:
      return run_construction(job.spec);
    case JobKind::Regime:
      return run_regime(job.spec);
    case JobKind::Block:
      return run_block(job.spec);
  }
  throw std::logic_error("JobRunner::compute: unknown job kind");
}

WindowResult JobRunner::run_window(const nlohmann::json& job) {
  const std::vector<int> ids = window_ids(job);
  const auto weights = model(job);
  const int layer = job["layer"].get<int>();
  const models::Block block = models::parse_block(job["block"].get<std::string>(), weights->config.type);
  models::ForwardOptions forward;
  forward.last_layer = layer;
  const models::ForwardResult taps = models::run_forward(*weights, ids, forward);
  const MatrixD& X = models::block_input(taps.layers[layer], block);
  const LayerSpec spec = head_spec(job);
  WindowResult result;
  result.solver = SolverRecord::from(measure_local_lipschitz(spec, X, solver_options(job)));
  result.radius = std::sqrt(X.squaredNorm() / static_cast<double>(X.rows()));
  result.max_token_norm = X.rowwise().norm().maxCoeff();
  const AuthorsQuantity authors = authors_quantity(spec, X);
  result.authors = authors.value;
  result.output_norm = authors.output_norm;
  if (job.value("bounds", false)) result.local_bounds = BoundsRecord::from(local_bounds(spec, X));
  return result;
}

BlockResult JobRunner::run_block(const nlohmann::json& job) {
  const auto weights = model(job);
  const models::Block block = models::parse_block(job["block"].get<std::string>(), weights->config.type);
  std::optional<models::LayerRange> layers;
  if (job.contains("layers")) layers = models::parse_layer_range(job["layers"].get<std::string>());
  const int layer = job.value("layer", 0);
  const models::BlockTarget target{block, layer, std::nullopt,
                                   models::block_layers(weights->config, block, layer, layers)};
  text::Window window;
  window.ids = window_ids(job);
  window.n = static_cast<int>(window.ids.size());
  window.sample = job.value("sample", 0);
  return models::measure_block(*weights, job["model"].get<std::string>(), target, window, solver_options(job),
                               Precision::F64, {}, job.value("composition", true));
}

double JobRunner::construction_radius(const nlohmann::json& job, const LayerSpec& spec) {
  if (job.contains("radius")) {
    const double R = job["radius"].get<double>();
    if (!(R > 0)) throw InputError(fmt::format("radius must be positive, got {}", R), "radius");
    return R;
  }
  // log n* is proportional to R² (n* = e^{λ R²/4} or e^{2|λ| R²}): solve for the R that gives n*.
  const double target = job["n_star"].get<double>();
  if (!(target > 1)) throw InputError(fmt::format("n_star must exceed 1, got {}", target), "n_star");
  const Construction unit = paper_construction(spec.attention, 0, 2, 1.0);
  if (!unit.applies || !(unit.log_n_star > 0))
    throw InputError(
        "the construction does not apply to this head (A_h has no usable real eigenvalue), so no n* "
        "fixes R: give 'radius'",
        "n_star");
  return std::sqrt(std::log(target) / unit.log_n_star);
}

ConstructionResult JobRunner::run_construction(const nlohmann::json& job) {
  const LayerSpec spec = head_spec(job);
  const double R = construction_radius(job, spec);
  const Index n = job["n"].get<Index>();
  const Construction c = paper_construction(spec.attention, 0, n, R);
  ConstructionResult result;
  result.radius_used = R;
  result.applies = c.applies;
  if (!c.applies) return result;
  result.lambda_max = c.lambda_max;
  result.lambda_min = c.lambda_min;
  result.uses_lambda_max = c.uses_lambda_max;
  result.log_n_star = c.log_n_star;
  result.n_star = c.n_star;
  result.solver = SolverRecord::from(measure_local_lipschitz(spec, c.X, solver_options(job)));
  const AuthorsQuantity authors = authors_quantity(spec, c.X);
  result.authors = authors.value;
  result.output_norm = authors.output_norm;
  const HeadQuantities q = head_quantities(spec.attention, 0);
  result.value_norm = q.value_norm;
  result.score_norm = q.score_norm;
  result.set_bounds = BoundsRecord::from(set_bounds(spec, TokenBall{n, R}));
  result.local_bounds = BoundsRecord::from(local_bounds(spec, c.X));
  const int steps = job.value("attack_steps", 0), restarts = job.value("attack_restarts", 0);
  if (steps > 0 || restarts > 0) {
    attack::AttackOptions options;
    options.steps = steps;
    options.restarts = restarts;
    options.seed = job.value("solver_seed", 0ULL);
    const auto set = attack::ConstraintSet::ball(n, spec.attention.input_dim(), R);
    const auto starts = attack::construction_starts(spec.attention, {0}, n, R);
    const attack::AttackResult a = attack::maximize_lipschitz(spec, set, starts, options);
    result.attack = AttackRecord{a.lower, set.violation(a.witness)};
  }
  return result;
}

namespace {

// i.i.d. tokens uniform on the sphere of radius R: a compactly supported law, so the n-token constant
// converges to the mean-field one (Gaussian tokens have max_i ‖x_i‖ growing like √(2 log n), and L
// keeps growing with them). Row i of the stream is the same for every n, so the inputs are nested: the
// first n tokens of one sample.
RegimeResult sphere_point(const LayerSpec& spec, double R, Index n, const meanfield::RegimeOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal;
  const Index d = spec.attention.input_dim();
  MatrixD X(n, d);
  for (Index i = 0; i < n; ++i) {
    for (Index c = 0; c < d; ++c) X(i, c) = normal(rng);
    X.row(i) *= R / X.row(i).norm();
  }
  const SpectralResult r = measure_local_lipschitz(spec, X, options.spectral);
  RegimeResult result;
  result.input = RegimeResult::Input::Sphere;
  result.radius_used = R;
  result.lipschitz = r.lipschitz;
  result.lower = r.lower;
  result.converged = r.converged;
  result.matvecs = r.matvecs;
  return result;
}

}  // namespace

RegimeResult JobRunner::run_regime(const nlohmann::json& job) {
  const LayerSpec spec = head_spec(job);
  const double R = construction_radius(job, spec);
  const Index n = job["n"].get<Index>();
  meanfield::RegimeOptions options;
  options.n_min = options.n_max = n;
  options.full_max = job.value("full_max", 0);
  options.spectral = solver_options(job);
  options.seed = job.value("seed", 0ULL);
  const bool construction = job["regime"].get<std::string>() == "construction";
  if (!construction && job.value("law", std::string("sphere")) == "sphere") return sphere_point(spec, R, n, options);
  RegimeResult result;
  result.radius_used = R;
  meanfield::RegimeCurve curve;
  if (construction) {
    if (spec.attention.causal) options.full_max = std::max<Index>(options.full_max, n);
    curve = meanfield::construction_curve(spec.attention, 0, R, options);
    result.applies = curve.construction.applies;
    if (!result.applies) return result;
    result.log_n_star = curve.construction.log_n_star;
    result.n_star = std::exp(curve.construction.log_n_star);
    result.lambda_max = curve.construction.lambda_max;
    result.lambda_min = curve.construction.lambda_min;
  } else {
    curve = meanfield::iid_curve(spec, R, options);
    result.input = RegimeResult::Input::Gaussian;
    result.sigma = curve.sigma;
  }
  if (curve.points.empty()) throw std::runtime_error(fmt::format("no regime point computed at n = {}", n));
  const meanfield::RegimePoint& p = curve.points.front();
  result.lipschitz = p.lipschitz;
  result.merged = p.merged;
  result.query = p.query;
  result.full = p.full;
  result.converged = p.converged;
  return result;
}

SweepsSummary run_sweeps(const std::vector<PlannedSweep>& sweeps, const SweepsOptions& options) {
  JobRunner runner;
  for (const auto& s : sweeps) runner.prepare(s.jobs);
  std::map<std::string, std::unique_ptr<ResultsFile>> files;  // several sweeps may share one
  SweepsSummary summary;
  for (std::size_t i = 0; i < sweeps.size(); ++i) {
    const PlannedSweep& sweep = sweeps[i];
    auto& results = files[options.results_path(sweep)];
    if (!results) {
      results = std::make_unique<ResultsFile>(options.results_path(sweep));
      if (results->repaired() && options.on_note) options.on_note(results->repair_note());
    }
    RunOptions run = options.run;
    run.sweep = sweep.name;
    run.label = options.numbered ? fmt::format("[{}/{}] {}", i + 1, sweeps.size(), sweep.name) : sweep.name;
    const RunSummary r = run_jobs(sweep.jobs, runner.executor(), *results, run);
    summary.total += static_cast<int>(sweep.jobs.size());
    summary.ran += r.ran;
    summary.skipped += r.skipped;
    summary.failed += r.failed;
    for (const auto& e : r.errors) summary.errors.push_back({sweep.name, e});
  }
  return summary;
}

}  // namespace lipattn::experiments
