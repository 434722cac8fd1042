// `measure --model`: the local Lipschitz constant of one attention block of a real model, on the
// inputs that block sees when the model reads real text.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "spectral/measure.h"

namespace lipattn::models {

struct ModelMeasureRequest {
  AttentionMemory memory;       // stored or streaming attention (--max-memory, --storage)
  std::string model;            // folder, cached HF name, random:gpt2, random:bert-base-uncased, random:CONFIG.json
  std::uint64_t seed = 0;       // random init seed
  int layer = 0;
  std::optional<int> head;      // one head's map, or all heads
  std::string block;            // "" = the model's default: gpt2 "attn", bert "attention"; also "self" (BERT)
  std::string text_file;
  std::string tokenizer_dir;    // "" = the model folder, or for random models the default data dir
  int n = 0, samples = 1;       // windows
  std::vector<int> ids;         // or explicit ids (one window)
  bool causal_override = false; // BERT decoder mode: --causal forces causal self-attention
};

// Runs the model forward (float64) on each window up to layer L, takes the input of the chosen block
// there, builds its LayerSpec and measures it in `precision`. Calls on_record once per window with
// {model, layer, head (null for all), block, n, sample, radius, lipschitz, lower, matvecs, converged,
// seconds}, radius = √(mean_i ‖x_i‖²) of the measured input. InputError for a bad layer, head, block,
// missing text or tokenizer, a window longer than the model's positions, or a text that runs out.
void measure_model(const ModelMeasureRequest& request, const SpectralOptions& options, Precision precision,
                   const std::function<void(const nlohmann::json&)>& on_record);

}  // namespace lipattn::models
