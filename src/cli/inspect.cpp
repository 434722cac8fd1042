// lipattn inspect MODEL: what a model folder, llama2.c file or random model holds — its config and every tensor.
#include <iostream>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "models/weights.h"

namespace lipattn::cli {
namespace {

struct InspectFlags {
  std::string model;
  bool json = false;
  std::uint64_t seed = 0;
};

void print_architecture(const models::ModelConfig& c) {
  if (c.type != models::ModelType::Llama) {
    fmt::print("type       {} ({}{})\n", models::to_string(c.type), c.causal() ? "causal" : "bidirectional",
               c.type == models::ModelType::Gpt2 ? ", pre-LN" : ", post-LN");
    fmt::print("shape      d = {}, {} heads of {}, {} layers, MLP {}, vocab {}, {} positions\n", c.hidden_size,
               c.num_heads, c.head_dim(), c.num_layers, c.intermediate_size, c.vocab_size, c.max_positions);
    fmt::print("norm/act   LayerNorm eps {:g}, activation {}\n", c.layer_norm_eps, c.activation_name);
    return;
  }
  fmt::print("type       llama ({}, causal, pre-RMSNorm, gated MLP{}{})\n", c.model_type_name,
             c.qkv_bias() ? (c.output_bias() ? ", q/k/v/o biases" : ", q/k/v biases") : "",
             c.tie_word_embeddings ? ", tied embeddings" : ", separate lm_head");
  fmt::print("shape      d = {}, {} heads of {} ({} K/V heads), {} layers, MLP {}, vocab {}, {} positions\n",
             c.hidden_size, c.num_heads, c.head_dim(), c.kv_heads(), c.num_layers, c.intermediate_size, c.vocab_size,
             c.max_positions);
  fmt::print("rope       {}, theta {:g}\n", to_string(c.rope_style), c.rope_theta);
  fmt::print("norm/act   RMSNorm eps {:g}, activation {}\n", c.layer_norm_eps, c.activation_name);
}

int run(const InspectFlags& f) {
  const models::ModelSource source = models::resolve_model(f.model);
  const auto tensors = models::list_tensors(source);
  const models::ModelConfig& c = source.config;
  std::size_t used = 0;
  for (const auto& t : tensors) used += !t.role.empty();
  if (f.json) {
    nlohmann::json out;
    out["model"] = f.model;
    if (source.random) {
      out["random"] = true;
      out["seed"] = f.seed;
    } else {
      out["folder"] = source.folder.string();
      out["format"] = source.format == models::CheckpointFormat::Llama2c ? "llama2.c" : "safetensors";
      out["files"] = nlohmann::json::array();
      for (const auto& file : source.weight_files) out["files"].push_back(file.string());
    }
    out["config"] = c.to_json();
    out["tensors"] = nlohmann::json::array();
    for (const auto& t : tensors) {
      out["tensors"].push_back({{"name", t.name},
                                {"dtype", t.dtype},
                                {"shape", t.shape},
                                {"file", t.file},
                                {"role", t.role.empty() ? nlohmann::json(nullptr) : nlohmann::json(t.role)}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  fmt::print("model      {}\n", f.model);
  if (source.random) {
    fmt::print("source     random init as transformers does it (seed {})\n", f.seed);
  } else {
    fmt::print("folder     {}\n", source.folder.string());
    for (const auto& file : source.weight_files) fmt::print("file       {}\n", file.filename().string());
  }
  print_architecture(c);
  fmt::print("tensors    {} ({} used, {} ignored)\n", tensors.size(), used, tensors.size() - used);
  std::size_t width = 0;
  for (const auto& t : tensors) width = std::max(width, t.name.size());
  for (const auto& t : tensors) {
    fmt::print("  {:<{}}  {:<4}  [{}]{}\n", t.name, width, t.dtype, fmt::join(t.shape, ", "),
               t.role.empty() ? "  (ignored)" : "");
  }
  return 0;
}

const Register reg{{"inspect", "show a model's config and tensors (names, dtypes, shapes)", [](CLI::App& sub) {
                      auto f = std::make_shared<InspectFlags>();
                      sub.add_option("model", f->model,
                                     "model folder, llama2.c FILE.bin, cached Hugging Face name, random:gpt2, "
                                     "random:bert-base-uncased or random:CONFIG.json")
                          ->required();
                      sub.add_flag("--json", f->json, "print JSON");
                      sub.add_option("--seed", f->seed, "random init seed (random: models)");
                      return [f] { return run(*f); };
                    }}};

}  // namespace
}  // namespace lipattn::cli
