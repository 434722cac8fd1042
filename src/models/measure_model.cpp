#include "models/measure_model.h"

#include <cmath>

#include <fmt/core.h>

#include "common/error.h"
#include "models/blocks.h"
#include "models/forward.h"
#include "models/tokenizer.h"
#include "text/windows.h"

namespace lipattn::models {

void measure_model(const ModelMeasureRequest& request, const SpectralOptions& options, Precision precision,
                   const std::function<void(const nlohmann::json&)>& on_record) {
  const ModelSource source = resolve_model(request.model);
  const ModelConfig& config = source.config;
  const Block block = parse_block(request.block, config.type);
  if (request.layer < 0 || request.layer >= config.num_layers)
    throw InputError(fmt::format("layer {} is out of range: the model has {} layers (0..{})", request.layer,
                                 config.num_layers, config.num_layers - 1),
                     "layer");
  if (request.head && (*request.head < 0 || *request.head >= config.num_heads))
    throw InputError(fmt::format("head {} is out of range: the layer has {} heads (0..{})", *request.head,
                                 config.num_heads, config.num_heads - 1),
                     "head");

  // The windows first, so that a text that runs out fails before the model is loaded.
  std::vector<text::Window> windows;
  if (!request.ids.empty()) {
    if (!request.text_file.empty()) throw InputError("give either token ids or a text file, not both", "ids");
    text::Window w;
    w.n = static_cast<int>(request.ids.size());
    w.ids = request.ids;
    windows.push_back(std::move(w));
  } else {
    if (request.text_file.empty()) throw InputError("a model needs a text file and n (or token ids)", "text_file");
    if (request.n < 1) throw InputError(fmt::format("n must be at least 1, got {}", request.n), "n");
    if (request.samples < 1)
      throw InputError(fmt::format("samples must be at least 1, got {}", request.samples), "samples");
    if (request.n > config.max_positions)
      throw InputError(fmt::format("a window of n = {} tokens is longer than the model's limit of {} positions ({})",
                                   request.n, config.max_positions, config.positions_key()),
                       "n");
    const auto tokenizer = ModelTokenizer::load(source, request.tokenizer_dir);
    const auto ids = tokenizer.encode(read_text(request.text_file), request.text_file);
    windows = text::make_windows(ids, {request.n}, request.samples);
  }
  for (const auto& w : windows) check_ids(config, w.ids);

  LoadOptions load;
  load.seed = request.seed;
  load.layers = request.layer + 1;  // nothing after layer L is needed
  load.force_causal = request.causal_override;
  const ModelWeights model = load_model(source, load);
  const LayerSpec spec = block_spec(model, request.layer, block, request.head);

  ForwardOptions forward;
  forward.last_layer = request.layer;
  for (const auto& w : windows) {
    const ForwardResult taps = run_forward(model, w.ids, forward);
    const MatrixD& X = block_input(taps.layers[request.layer], block);
    const SpectralResult r = measure_local_lipschitz(spec, X, options, precision, request.memory);
    nlohmann::json record;
    record["model"] = request.model;
    record["layer"] = request.layer;
    record["head"] = request.head ? nlohmann::json(*request.head) : nlohmann::json(nullptr);
    record["block"] = to_string(block);
    record["n"] = w.n;
    record["sample"] = w.sample;
    record["radius"] = std::sqrt(X.squaredNorm() / static_cast<double>(X.rows()));
    record["lipschitz"] = r.lipschitz;
    record["lower"] = r.lower;
    record["matvecs"] = r.matvecs;
    record["converged"] = r.converged;
    record["seconds"] = r.seconds;
    on_record(record);
  }
}

}  // namespace lipattn::models
