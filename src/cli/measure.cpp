// lipattn measure: ‖Df(X)‖₂ of one layer at one input (--weights/--input), of a model's block on
// text windows (--model), or of the embedded default (neither).
#include <iostream>
#include <random>

#include <fmt/core.h>

#include "cli/command.h"
#include "cli/common.h"
#include "common/error.h"
#include "common/progress.h"
#include "io/npy.h"
#include "models/measure_model.h"
#include "spectral/result_json.h"

namespace lipattn::cli {
namespace {

struct MeasureFlags {
  std::string weights, input, model;
  LayerFlags layer;
  SolverFlags solver;
  bool json = false;
  // --model
  int layer_index = 0;
  std::optional<int> head;
  std::string block, layers, text, tokenizer;
  int n = 0, samples = 1;
  std::vector<int> ids;
  // embedded default
  int demo_n = 64;
};

void print_summary(const SpectralResult& r, const std::string& what, Index n, Index d) {
  fmt::print("layer      {}\n", what);
  fmt::print("input      n = {} tokens, d = {}\n", n, d);
  fmt::print("lipschitz  {:.12g}   ‖Df(X)‖₂ by {}{}, {} products, {:.3f} s\n", r.lipschitz, to_string(r.method),
             r.converged ? "" : " (NOT converged: raise --max-iter or --tol)", r.matvecs, r.seconds);
  fmt::print("lower      {:.12g}   certified lower bound ‖Jv‖ at the unit vector found\n", r.lower);
  fmt::print("residual   {:.3g}   ‖JᵀJv − θv‖/θ\n", r.relative_residual);
  if (r.f32_check_difference)
    fmt::print("f32 check  {:.3g}   relative difference of one float32 product from float64 at v\n",
               *r.f32_check_difference);
  if (!r.storage.empty()) fmt::print("attention  {} (--storage, --max-memory)\n", r.storage);
  if (r.mixed != MixedPhase::Off)
    fmt::print("mixed      float32 phase {}, {} of the products in float32\n", to_string(r.mixed), r.f32_matvecs);
}

// One window's record of `measure --model` for a reader (the --json record holds the same).
void print_block(const models::BlockMeasurement& m) {
  const std::string where = m.layers ? fmt::format("layers {}:{}", m.layers->first, m.layers->last)
                                     : fmt::format("layer {}", m.layer.value_or(0));
  fmt::print("block      {} {}{} of {}\n", m.block, where, m.head ? fmt::format(", head {}", *m.head) : "", m.model);
  fmt::print("window     n = {}, sample {}, input radius {:.6g} (√ mean ‖x_i‖²)\n", m.n, m.sample, m.radius);
  fmt::print("lipschitz  {:.12g}   certified lower {:.12g}, {} products, {:.3f} s{}\n", m.lipschitz, m.lower,
             m.matvecs, m.seconds, m.converged ? "" : " (NOT converged: raise --max-iter or --tol)");
  std::string top;
  for (const auto& t : m.concentration.top) top += fmt::format("  {} ({:.1f}%)", t.token, 100 * t.share);
  fmt::print("tokens     {:.3g} effective of {} (1/Σp²); top:{}\n", m.concentration.effective_tokens, m.n, top);
  if (!m.composition) return;
  const models::Composition& c = *m.composition;
  for (const auto& factor : c.factors)
    fmt::print("  {:<12} {:.10g}   bound {}\n", factor.name, factor.lipschitz,
               factor.bound ? fmt::format("{:.6g}", *factor.bound) : "none: " + factor.no_bound_reason);
  fmt::print("product    {:.10g}   Π of the layers' constants ≥ exact; ratio {:.6g} (the cancellation)\n", c.product,
             c.ratio);
  fmt::print("bounds     {}\n", c.bound_product ? fmt::format("{:.6g}   Π of the layers' upper bounds", *c.bound_product)
                                                 : "none: " + c.no_bound_reason);
}

int run(const MeasureFlags& f) {
  const SpectralOptions options = f.solver.options();
  const Precision precision = f.solver.precision();
  if (!f.model.empty()) {
    if (!f.weights.empty() || !f.input.empty()) throw InputError("--model cannot be combined with --weights/--input");
    models::ModelMeasureRequest request = model_request(f, f.solver.seed);
    request.samples = f.samples;
    request.memory = f.solver.memory();
    models::measure_model(request, options, precision, [&](const models::BlockMeasurement& record) {
      progress::end_line();
      if (f.json)
        std::cout << nlohmann::json(record).dump() << std::endl;  // one line per window, flushed
      else
        print_block(record);
      std::cout.flush();
    });
    return 0;
  }
  LayerSpec spec;
  MatrixD X;
  std::string what;
  if (f.weights.empty() && f.input.empty()) {
    // The embedded default: a random GPT-2-shaped attention layer on random tokens.
    spec = models::random_gpt2_attention_layer(f.solver.seed);
    std::mt19937_64 rng(f.solver.seed + 1);
    std::normal_distribution<double> normal;
    X.resize(f.demo_n, spec.attention.input_dim());
    for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);
    what = fmt::format("embedded default: random GPT-2-shaped {} (seed {}), X ~ N(0, 1)", spec.describe(),
                       f.solver.seed);
  } else {
    if (f.weights.empty()) throw InputError("--input needs --weights LAYER.safetensors");
    if (f.input.empty()) throw InputError("--weights needs --input X.npy");
    spec = models::load_layer_file(f.weights, f.layer.options());
    X = io::read_npy_matrix(f.input);
    if (X.cols() != spec.attention.input_dim())
      throw InputError(fmt::format("{}: X has d = {} features per token, but {} expects d = {}", f.input, X.cols(),
                                   f.weights, spec.attention.input_dim()));
    what = spec.describe();
  }
  const SpectralResult r = measure_local_lipschitz(spec, X, options, precision, f.solver.memory());
  progress::end_line();
  if (f.json) {
    nlohmann::json j = r;
    j["n"] = X.rows();
    j["d"] = X.cols();
    j["heads"] = spec.attention.heads;
    j["causal"] = spec.attention.causal;
    j["dtype"] = to_string(precision);
    std::cout << j.dump() << std::endl;
  } else {
    print_summary(r, what, X.rows(), X.cols());
  }
  if (!r.converged)
    std::cerr << "lipattn: warning: the solver did not reach --tol; `lower` is still a certified lower bound\n";
  return 0;
}

const Register registered{{"measure", "the local Lipschitz constant ‖Df(X)‖₂ of an attention layer at X",
                           [](CLI::App& app) -> std::function<int()> {
                             auto f = std::make_shared<MeasureFlags>();
                             app.add_option("--weights", f->weights, "LAYER.safetensors (see docs/formats.md)");
                             app.add_option("--input", f->input, "X.npy, float32/float64, shape [n, d] or [1, n, d]");
                             f->layer.add_to(app);
                             f->solver.add_to(app);
                             app.add_flag("--json", f->json, "print one JSON object (one per window with --model)");
                             app.add_option("--model", f->model,
                                            "model folder, llama2.c FILE.bin, cached name, random:gpt2, "
                                            "random:bert-base-uncased, random:CONFIG.json");
                             app.add_option("--layer", f->layer_index, "layer L of --model")->capture_default_str();
                             app.add_option("--head", f->head,
                                            "measure one head's map (default: all heads; attention blocks only)");
                             app.add_option("--block", f->block,
                                            "attn (GPT-2, LLaMA) | attention (BERT) | self (BERT, LLaMA: no W_O) | "
                                            "mlp | layer | stack (with --layers) | model");
                             app.add_option("--layers", f->layers, "A:B, the layers A..B-1 of --block stack");
                             app.add_option("--text", f->text, "text file cut into windows of --n tokens");
                             app.add_option("--n", f->n, "tokens per window");
                             app.add_option("--samples", f->samples, "windows per n")->capture_default_str();
                             app.add_option("--ids", f->ids, "explicit token ids, e.g. --ids 1,2,3")->delimiter(',');
                             app.add_option("--tokenizer", f->tokenizer, "folder with the tokenizer files");
                             app.add_option("--demo-n", f->demo_n, "tokens of the embedded default")
                                 ->capture_default_str()
                                 ->check(CLI::Range(1, 1 << 20));
                             return [f] { return run(*f); };
                           }}};

}  // namespace
}  // namespace lipattn::cli
