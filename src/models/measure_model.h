// `measure --model`: the local Lipschitz constant of one block of a real model (an attention block,
// the MLP sub-block, a layer, a stack of layers or the whole model), on the inputs that block sees
// when the model reads real text (docs/theory.md §10).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/blocks.h"
#include "spectral/measure.h"
#include "text/windows.h"

namespace lipattn::models {

struct ModelMeasureRequest {
  AttentionMemory memory;       // stored or streaming attention (--max-memory, --storage)
  std::string model;            // folder, cached HF name, random:gpt2, random:bert-base-uncased, random:CONFIG.json
  std::uint64_t seed = 0;       // random init seed
  int layer = 0;                // attention blocks, mlp and layer
  std::optional<int> head;      // one head's map, or all heads (attention blocks only)
  // "" = the model's default: gpt2 "attn", bert "attention"; also "self", and the whole blocks
  // "mlp", "layer", "stack" (with `layers`), "model" (models/blocks.h).
  std::string block;
  std::optional<LayerRange> layers;  // stack only: layers first..last−1
  std::string text_file;
  std::string tokenizer_dir;    // "" = the model folder, or for random models the default data dir
  int n = 0, samples = 1;       // windows
  std::vector<int> ids;         // or explicit ids (one window)
  bool causal_override = false; // BERT decoder mode: --causal forces causal self-attention
};

// Where the top right singular vector v (n × d) of a block's Jacobian lives among the tokens
// (docs/theory.md §10.2): p_i = ‖v_i‖² (Σ p_i = 1 for the unit v).
struct TokenShare {
  Index token = 0;
  double share = 0;
};
struct Concentration {
  std::vector<double> shares;        // p_i, one per token
  std::vector<TokenShare> top;       // the largest shares, largest first (at most 5)
  double effective_tokens = 0;       // the participation ratio 1/Σ p_i² ∈ [1, n]
};
// The concentration of a unit (or any nonzero) vector of n·d entries, row-major n × d.
Concentration token_concentration(const VectorD& right_vector, Index n, int top = 5);

// One factor g_l of a composition g_k∘…∘g_1, measured at its own input from the same forward pass.
struct CompositionFactor {
  std::string name;               // "layer 3" or "final_norm"
  double lipschitz = 0;           // ‖Dg_l(X_l)‖₂ (the solver's estimate)
  double lower = 0;               // certified lower bound at the vector found
  long matvecs = 0;
  bool converged = false;
  std::optional<double> bound;    // a certified upper bound on ‖Dg_l(X_l)‖₂ from src/bounds
  std::string bound_name;         // how it is composed (docs/theory.md §10.1)
  std::string no_bound_reason;    // why there is none
};

// ‖D(g_k∘…∘g_1)(X)‖₂ against its chain-rule factors (docs/theory.md §10.1).
struct Composition {
  std::vector<CompositionFactor> factors;
  double product = 0;                // Π ‖Dg_l(X_l)‖₂: an upper bound on the exact constant
  double ratio = 0;                  // product / exact: how much the composition cancels (≥ 1)
  std::optional<double> bound_product;  // Π of the factors' bounds, when every factor has one
  std::string no_bound_reason;          // the first factor without a bound, and why
};

// Which block of which model, on how many tokens: what a measurement and an attack report share.
struct BlockIdentity {
  std::string model;
  std::optional<int> layer;          // the layer of a one-layer block; null for stack and model
  std::optional<LayerRange> layers;  // the layers spanned, for stack and model
  std::optional<int> head;           // null: every head (and every whole block)
  std::string block;
  int n = 0;
};
// `layer` for a one-layer block, `layers` = span for stack and model.
BlockIdentity block_identity(const std::string& model, Block block, int layer, LayerRange span,
                             std::optional<int> head, int n);
void to_json(nlohmann::json& j, const BlockIdentity& id);
void from_json(const nlohmann::json& j, BlockIdentity& id);

// One measurement of one block on one window: the record `measure --model --json` prints.
struct BlockMeasurement : BlockIdentity {
  int sample = 0;
  double radius = 0;                 // √(mean_i ‖x_i‖²) of the measured input
  double lipschitz = 0, lower = 0;
  long matvecs = 0;
  bool converged = false;
  double seconds = 0;                // the block's own solve (the composition's factors not included)
  std::string storage;               // "stored" | "streaming" when the block holds attention
  Concentration concentration;       // of the top right singular vector
  std::optional<Composition> composition;  // stack and model
};
void to_json(nlohmann::json& j, const BlockMeasurement& m);
void from_json(const nlohmann::json& j, BlockMeasurement& m);
void to_json(nlohmann::json& j, const Concentration& c);
void from_json(const nlohmann::json& j, Concentration& c);
void to_json(nlohmann::json& j, const Composition& c);
void from_json(const nlohmann::json& j, Composition& c);

// A certified upper bound on ‖D layer_l(X)‖₂ of one transformer layer at its input X = block_in,
// composed from src/bounds (attention sub-block local bounds, norm factors, the MLP's global
// constant) as docs/theory.md §10.1 states; nullopt with the reason where src/bounds does not cover
// a piece (RoPE, SwiGLU, ...).
std::optional<double> layer_upper_bound(const ModelWeights& model, int layer, const LayerTaps& taps,
                                        std::string* why_not = nullptr);

// A model loaded for a request and the windows it reads: what measure_model and attack_model share.
struct PreparedModel {
  ModelSource source;
  ModelWeights weights;
  Block block = Block::Attn;
  LayerRange span;                    // the layers the block covers
  std::vector<text::Window> windows;
};
// Checks the request (InputError naming "block", "layer", "head", "layers", "text_file", "n",
// "samples", "ids") before loading anything heavy, then loads the layers the block needs.
PreparedModel prepare_model(const ModelMeasureRequest& request);

// What one measurement measures, resolved against the model (prepare_model's block and span).
struct BlockTarget {
  Block block = Block::Attn;
  int layer = 0;             // one-layer blocks
  std::optional<int> head;   // attention blocks only
  LayerRange span;           // the layers the block covers (block_layers)
};

// One window of measure_model on weights already loaded (every layer the span needs; all of them,
// with the final norm, for Model): the forward pass, the block's input from that pass, the solve, the
// concentration and, for stack and model when `compose`, the composition. `model` names the model
// in the record. For callers that measure many windows of one loaded model (the experiments' jobs,
// which skip the composition where another job of the same window already has it).
BlockMeasurement measure_block(const ModelWeights& weights, const std::string& model, const BlockTarget& target,
                               const text::Window& window, const SpectralOptions& options, Precision precision,
                               const AttentionMemory& memory = {}, bool compose = true);

// Runs the model forward (float64) on each window, takes the input of the chosen block from that
// same pass and measures the block in `precision` through measure_local_lipschitz (an attention
// block through its LayerSpec, a whole block through its map). Calls on_record once per window.
// InputError for a bad layer, head, block, layer range, missing text or tokenizer, a window longer
// than the model's positions, or a text that runs out.
void measure_model(const ModelMeasureRequest& request, const SpectralOptions& options, Precision precision,
                   const std::function<void(const BlockMeasurement&)>& on_record);

}  // namespace lipattn::models
