#include "models/measure_model.h"

#include <limits>
#include <cmath>

#include <fmt/core.h>

#include "bounds/bounds.h"
#include "common/error.h"
#include "models/forward.h"
#include "models/tokenizer.h"

namespace lipattn::models {

namespace {

std::vector<text::Window> request_windows(const ModelMeasureRequest& request, const ModelSource& source) {
  const ModelConfig& config = source.config;
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
  return windows;
}

double rms_radius(const MatrixD& X) { return std::sqrt(X.squaredNorm() / static_cast<double>(X.rows())); }

// One factor of a composition at its own input.
CompositionFactor measure_factor(const std::string& name, const MapBuilder& builder, const MatrixD& X,
                                 const SpectralOptions& options, Precision precision, const AttentionMemory& memory) {
  const SpectralResult r = measure_local_lipschitz(builder, X, options, precision, memory);
  CompositionFactor f;
  f.name = name;
  f.lipschitz = r.lipschitz;
  f.lower = r.lower;
  f.matvecs = r.matvecs;
  f.converged = r.converged;
  return f;
}

// The chain-rule factors of a stack or model at the inputs the forward pass tapped (docs/theory.md §10.1).
Composition compose_factors(const ModelWeights& weights, const BlockTarget& target, const ForwardResult& taps,
                            double exact, const SpectralOptions& options, Precision precision,
                            const AttentionMemory& memory) {
  Composition c;
  for (int l = target.span.first; l < target.span.last; ++l) {
    const MatrixD& X = taps.layers[l].block_in;
    CompositionFactor f = measure_factor(fmt::format("layer {}", l), whole_block_builder(weights, Block::Layer, l, {}),
                                         X, options, precision, memory);
    f.bound = layer_upper_bound(weights, l, taps.layers[l], &f.no_bound_reason);
    if (f.bound) f.bound_name = "layer (§10.1)";
    c.factors.push_back(std::move(f));
  }
  if (target.block == Block::Model && weights.final_norm) {
    const NormWeights norm = *weights.final_norm;
    MapBuilder builder;
    builder.f64 = [norm](const AttentionMemory&) -> MapPtr<double> { return std::make_shared<Norm<double>>(norm); };
    builder.f32 = [norm](const AttentionMemory&) -> MapPtr<float> { return std::make_shared<Norm<float>>(norm); };
    CompositionFactor f = measure_factor("final_norm", builder, taps.final_norm_in, options, precision, memory);
    f.bound = norm_local_factor(norm, taps.final_norm_in);
    f.bound_name = "norm_local_factor (§U.6)";
    c.factors.push_back(std::move(f));
  }
  c.product = 1;
  c.bound_product = 1.0;
  for (const auto& f : c.factors) {
    c.product *= f.lipschitz;
    if (c.bound_product && f.bound) {
      *c.bound_product *= *f.bound;
    } else if (c.bound_product) {
      c.bound_product.reset();
      c.no_bound_reason = f.name + ": " + f.no_bound_reason;
    }
  }
  c.ratio = exact > 0 ? c.product / exact : std::numeric_limits<double>::infinity();
  return c;
}

BlockMeasurement record_header(const std::string& model, const BlockTarget& target, const text::Window& w,
                               const MatrixD& X) {
  BlockMeasurement m;
  static_cast<BlockIdentity&>(m) = block_identity(model, target.block, target.layer, target.span, target.head, w.n);
  m.sample = w.sample;
  m.radius = rms_radius(X);
  return m;
}

}  // namespace

PreparedModel prepare_model(const ModelMeasureRequest& request) {
  PreparedModel p;
  p.source = resolve_model(request.model);
  const ModelConfig& config = p.source.config;
  p.block = parse_block(request.block, config.type);
  check_block_request(config, p.block, request.layer, request.head, request.layers);
  p.span = block_layers(config, p.block, request.layer, request.layers);
  // The windows first, so that a text that runs out fails before the model is loaded.
  p.windows = request_windows(request, p.source);
  LoadOptions load;
  load.seed = request.seed;
  load.layers = p.block == Block::Model ? -1 : p.span.last;  // nothing after the block is needed
  load.force_causal = request.causal_override;
  p.weights = load_model(p.source, load);
  return p;
}

BlockMeasurement measure_block(const ModelWeights& weights, const std::string& model, const BlockTarget& target,
                               const text::Window& window, const SpectralOptions& options, Precision precision,
                               const AttentionMemory& memory, bool compose) {
  ForwardOptions forward;
  forward.last_layer = target.block == Block::Model ? -1 : target.span.last - 1;
  const ForwardResult taps = run_forward(weights, window.ids, forward);
  const MatrixD& X = block_input(taps.layers[target.span.first], target.block);
  const SpectralResult r =
      is_attention_block(target.block)
          ? measure_local_lipschitz(block_spec(weights, target.layer, target.block, target.head), X, options,
                                    precision, memory)
          : measure_local_lipschitz(whole_block_builder(weights, target.block, target.layer,
                                                        target.block == Block::Stack
                                                            ? std::optional<LayerRange>(target.span)
                                                            : std::nullopt),
                                    X, options, precision, memory);
  BlockMeasurement m = record_header(model, target, window, X);
  m.lipschitz = r.lipschitz;
  m.lower = r.lower;
  m.matvecs = r.matvecs;
  m.converged = r.converged;
  m.storage = r.storage;
  m.concentration = token_concentration(r.right_vector, X.rows());
  if (compose && (target.block == Block::Stack || target.block == Block::Model))
    m.composition = compose_factors(weights, target, taps, r.lipschitz, options, precision, memory);
  m.seconds = r.seconds;
  return m;
}

void measure_model(const ModelMeasureRequest& request, const SpectralOptions& options, Precision precision,
                   const std::function<void(const BlockMeasurement&)>& on_record) {
  const PreparedModel p = prepare_model(request);
  const BlockTarget target{p.block, request.layer, request.head, p.span};
  for (const auto& w : p.windows)
    on_record(measure_block(p.weights, request.model, target, w, options, precision, request.memory));
}

}  // namespace lipattn::models
