// lipattn attack: a certified lower bound on sup ‖Df(X)‖₂ over a set of inputs, with its witness
// (docs/theory.md, attack): the paper's construction and/or projected ascent with the exact gradient.
#include <chrono>
#include <iostream>

#include <fmt/core.h>

#include "attack/report_json.h"
#include "attack/run.h"
#include "models/attack_model.h"
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
  // --model: a block of a real model around its input on real text
  std::string model, block, layers, text, tokenizer;
  int layer_index = 0;
  std::vector<int> ids;
  std::uint64_t model_seed = 0;
};

nlohmann::json model_attack_json(const models::ModelAttackReport& r, const AttackFlags& f, double seconds) {
  nlohmann::json j = static_cast<const models::BlockIdentity&>(r);
  j.update({
      {"d", r.center.cols()},
      {"set", "around"},
      {"eps", r.eps},
      {"unperturbed", r.unperturbed},
      {"lower", r.result.lower},
      {"lipschitz", r.result.lipschitz},
      {"distance", r.distance},
      {"in_set", attack::ConstraintSet::around(r.center, r.eps).violation(r.result.witness)},
      {"witness", f.out.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.out)},
      {"certificate", r.result.certificate},
      {"seconds", seconds}});
  j["starts"] = nlohmann::json::array();
  for (const auto& s : r.result.starts)
    j["starts"].push_back({{"name", s.name},
                           {"start", s.start_value},
                           {"final", s.final_value},
                           {"steps_kept", s.accepted_steps},
                           {"seconds", s.seconds}});
  return j;
}

void print_model_attack(const models::ModelAttackReport& r, const AttackFlags& f, double seconds) {
  fmt::print("block         {} {} of {}\n", r.block,
             r.layers ? fmt::format("layers {}:{}", r.layers->first, r.layers->last) : fmt::format("layer {}", *r.layer),
             r.model);
  fmt::print("set           ‖X − X0‖_F ≤ ε = {:g} around the block's input (n = {}, d = {})\n", r.eps, r.n,
             r.center.cols());
  fmt::print("unperturbed   {:.12g}   σ_max at X0 (certified)\n", r.unperturbed);
  fmt::print("lower         {:.12g}   σ_max at the witness (certified: ‖Jv‖ of a unit v), {:.4g}× X0's\n",
             r.result.lower, r.result.lower / r.unperturbed);
  fmt::print("distance      {:.6g}   ‖witness − X0‖_F\n", r.distance);
  fmt::print("witness       {}\n", f.out.empty() ? "(not saved: pass --out WITNESS.npy)" : f.out);
  fmt::print("time          {:.1f} s\n", seconds);
}

// attack --model: the request measure_model would get, and the ball ‖X − X0‖_F ≤ ε around the input.
int run_model_attack(const AttackFlags& f, std::chrono::steady_clock::time_point start_time) {
  if (!f.weights.empty() || !f.around.empty() || f.radius || f.layernorm)
    throw InputError("--model attacks the ball around the block's input: drop --weights, --around, --radius and "
                     "--layernorm, and give --eps");
  if (!f.eps) throw InputError("--model needs --eps E: the ball ‖X − X0‖_F ≤ E around the block's input");
  const models::ModelMeasureRequest request = model_request(f, f.model_seed);
  attack::AttackOptions options;
  options.restarts = f.restarts;
  options.steps = f.steps;
  options.seed = f.seed;
  if (!f.quiet) options.progress = [](const std::string& line) { std::cerr << "lipattn attack: " << line << std::endl; };
  const models::ModelAttackReport r = models::attack_model(request, *f.eps, options);
  if (!f.out.empty()) io::write_npy(f.out, r.result.witness);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  if (f.json)
    std::cout << model_attack_json(r, f, seconds).dump() << std::endl;
  else
    print_model_attack(r, f, seconds);
  return 0;
}

attack::AttackRequest make_request(const AttackFlags& f) {
  const int chosen = (f.radius ? 1 : 0) + (f.layernorm ? 1 : 0) + (f.around.empty() ? 0 : 1);
  if (chosen != 1) throw InputError("choose exactly one set: --radius R, --layernorm, or --around X.npy --eps E");
  if (f.eps && f.around.empty()) throw InputError("--eps goes with --around X.npy");
  if (!f.around.empty() && !f.eps) throw InputError("--around X.npy needs --eps E");
  attack::AttackRequest r;
  r.n = f.n;
  r.head = f.head;
  r.construction = attack::parse_construction_use(f.construction);
  if (f.radius) {
    r.set = attack::SetKind::Ball;
    r.radius = *f.radius;
  } else if (f.layernorm) {
    r.set = attack::SetKind::LayerNormImage;
  } else {
    r.set = attack::SetKind::AroundInput;
    r.center = io::read_npy_matrix(f.around);
    r.eps = *f.eps;
  }
  r.options.restarts = f.restarts;
  r.options.steps = f.steps;
  r.options.seed = f.seed;
  if (!f.quiet)
    r.options.progress = [](const std::string& line) { std::cerr << "lipattn attack: " << line << std::endl; };
  return r;
}

void print_report(const attack::AttackReport& r, const AttackFlags& f, double seconds) {
  fmt::print("layer         {}\n", r.spec.describe());
  fmt::print("set           {} (n = {}, d = {}{})\n", attack::to_string(r.set.kind), r.set.n, r.set.d,
             f.radius ? fmt::format(", R = {:g}", *f.radius)
             : f.eps  ? fmt::format(", ε = {:g}", *f.eps)
                      : "");
  fmt::print("lower         {:.12g}   σ_max at the witness (certified: ‖Jv‖ of a unit v)\n", r.result.lower);
  if (r.best_construction)
    fmt::print("construction  {:.12g}   the paper's input (best head); n* ≈ e^{:.4g}\n", r.best_construction->value,
               r.best_construction->construction.log_n_star);
  if (r.upper) fmt::print("upper         {:.12g}   {} (bound on a ball holding the set)\n", *r.upper, r.upper_name);
  fmt::print("witness       {}\n", f.out.empty() ? "(not saved: pass --out WITNESS.npy)" : f.out);
  fmt::print("time          {:.1f} s\n", seconds);
}

int run(const AttackFlags& f) {
  const auto start_time = std::chrono::steady_clock::now();
  if (!f.model.empty()) return run_model_attack(f, start_time);
  if (f.weights.empty()) throw InputError("--weights LAYER.safetensors is required");
  const attack::AttackRequest request = make_request(f);
  const attack::AttackReport report =
      attack::run_attack(models::load_layer_file(f.weights, f.layer.options()), request);
  if (!report.no_upper_reason.empty() && request.options.progress)
    request.options.progress(fmt::format("no upper bound: {}", report.no_upper_reason));
  if (!f.out.empty()) io::write_npy(f.out, report.result.witness);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  if (f.json)
    std::cout << attack::report_json(report, request, f.out, seconds).dump() << std::endl;
  else
    print_report(report, f, seconds);
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
       app.add_option("--model", f->model,
                      "attack a block of this model around its input on real text (with --eps; --text and --n, or "
                      "--ids)");
       app.add_option("--block", f->block, "with --model: attn | attention | self | mlp | layer | stack | model");
       app.add_option("--layer", f->layer_index, "with --model: the layer of the block")->capture_default_str();
       app.add_option("--layers", f->layers, "with --model --block stack: A:B, the layers A..B-1");
       app.add_option("--text", f->text, "with --model: a text file; the first window of --n tokens is X0's");
       app.add_option("--ids", f->ids, "with --model: explicit token ids, e.g. --ids 1,2,3")->delimiter(',');
       app.add_option("--tokenizer", f->tokenizer, "with --model: folder with the tokenizer files");
       app.add_option("--model-seed", f->model_seed, "with --model random:...: the initialisation seed")
           ->capture_default_str();
       return [f] { return run(*f); };
     }}};

}  // namespace
}  // namespace lipattn::cli
