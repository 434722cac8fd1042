// lipattn forward: run a model on a window of text (or ids) and dump every layer's attention taps
// as .npy files.
#include <filesystem>
#include <iostream>

#include <fmt/core.h>

#include "cli/command.h"
#include "common/error.h"
#include "io/npy.h"
#include "models/forward.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "text/windows.h"

namespace lipattn::cli {
namespace {

struct ForwardFlags {
  std::string model, text, tokenizer, dump, dtype = "f64";
  int n = 0;
  std::vector<int> ids;
  std::uint64_t seed = 0;
  bool causal = false;
};

int run(const ForwardFlags& f) {
  const models::ModelSource source = models::resolve_model(f.model);
  std::vector<int> ids = f.ids;
  if (!ids.empty()) {
    if (!f.text.empty()) throw InputError("give either --ids or --text, not both");
  } else {
    if (f.text.empty()) throw InputError("forward needs --text FILE --n N or --ids 1,2,3");
    if (f.n < 1) throw InputError(fmt::format("--n must be at least 1 with --text, got {}", f.n));
    const auto tokenizer = models::ModelTokenizer::load(source, f.tokenizer);  // checks the vocabulary size
    ids = text::make_windows(tokenizer.encode(models::read_text(f.text), f.text), {f.n}, 1).at(0).ids;
  }
  models::check_ids(source.config, ids);

  models::LoadOptions load;
  load.seed = f.seed;
  load.force_causal = f.causal;
  const models::ModelWeights model = models::load_model(source, load);
  models::ForwardOptions options;
  options.precision = parse_precision(f.dtype);
  options.logits = true;  // only forward computes them: measure and the experiments stop at their layer
  const models::ForwardResult result = models::run_forward(model, ids, options);

  const std::filesystem::path dir = f.dump;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw InputError(fmt::format("--dump {}: cannot create the folder: {}", dir.string(), ec.message()));
  io::write_npy(dir / "hidden.npy", result.hidden);
  for (std::size_t l = 0; l < result.layers.size(); ++l) {
    const auto& taps = result.layers[l];
    io::write_npy(dir / fmt::format("layer{}.block_in.npy", l), taps.block_in);
    io::write_npy(dir / fmt::format("layer{}.attn_in.npy", l), taps.attn_in);
    io::write_npy(dir / fmt::format("layer{}.attn_out.npy", l), taps.attn_out);
  }
  std::size_t files = 1 + 3 * result.layers.size();
  if (result.logits.size()) {  // every model with an LM head (GPT-2's tied wte, LLaMA's classifier)
    io::write_npy(dir / "logits.npy", result.logits);
    ++files;
  }
  fmt::print("{}: {} tokens through {} layers in {}; wrote {} files to {}\n", f.model, ids.size(), result.layers.size(),
             to_string(options.precision), files, dir.string());
  return 0;
}

const Register reg{{"forward", "run a model on text or ids and dump every layer's attention inputs and outputs",
                    [](CLI::App& sub) {
                      auto f = std::make_shared<ForwardFlags>();
                      sub.add_option("--model", f->model, "model folder, cached name or random:...")->required();
                      sub.add_option("--text", f->text, "UTF-8 text file: the first --n tokens are used");
                      sub.add_option("--n", f->n, "tokens to take from --text");
                      sub.add_option("--ids", f->ids, "token ids, comma-separated (instead of --text)")
                          ->delimiter(',');
                      sub.add_option("--tokenizer", f->tokenizer, "tokenizer folder (default: the model's)");
                      sub.add_option("--dump", f->dump,
                                     "output folder: hidden.npy, logits.npy (models with an LM head) and "
                                     "layer{L}.{block_in,attn_in,attn_out}.npy")
                          ->required();
                      sub.add_option("--seed", f->seed, "random init seed (random: models)");
                      sub.add_option("--dtype", f->dtype, "compute precision: f64 or f32 (files are float64)");
                      sub.add_flag("--causal", f->causal, "BERT decoder mode: causal self-attention");
                      return [f] { return run(*f); };
                    }}};

}  // namespace
}  // namespace lipattn::cli
