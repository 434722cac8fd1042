// GPT-2, BERT and LLaMA-family weights in float64, in the layouts lipattn's maps use (nn.Linear
// (out, in)), loaded from a Hugging Face folder, a cached model name, a llama2.c checkpoint, or
// initialised at random as transformers does (docs/formats.md, "Model folders", "llama2.c checkpoints").
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attention/attention.h"
#include "attention/mlp.h"
#include "attention/norm.h"
#include "models/config.h"

namespace lipattn::models {

// One tensor of a checkpoint in Hugging Face's layout, by its canonical name (no "transformer." or
// "bert." prefix, LayerNorm parameters as weight/bias).
struct TensorSpec {
  enum class Kind { Matrix, Bias, NormWeight, NormBias, Embedding };
  std::string name;
  std::vector<std::int64_t> shape;
  Kind kind = Kind::Matrix;
  double init_std = 0;  // random init: N(0, init_std²) for Matrix and Embedding
};

// Every tensor BertModel / GPT2Model / LlamaForCausalLM reads, in checkpoint order, with the shapes
// the config implies. LLaMA names are Hugging Face's in full ("model.layers.0.self_attn.q_proj.weight",
// "lm_head.weight" only when the embeddings are not tied).
// With `layers` ≥ 0 only the first `layers` blocks (and no final LayerNorm) are listed.
std::vector<TensorSpec> checkpoint_layout(const ModelConfig& config, int layers = -1);

// How a checkpoint's weights are stored.
enum class CheckpointFormat {
  Safetensors,  // a Hugging Face folder: model.safetensors or the shards of its index
  Llama2c,      // a llama2.c .bin (legacy or version 1), models/llama2c.h
};

// Where a MODEL argument points.
struct ModelSource {
  std::string spec;                  // as the user wrote it
  bool random = false;               // random:gpt2, random:bert-base-uncased, random:CONFIG.json
  std::string random_name;           // "gpt2", "bert-base-uncased", or the config path
  std::filesystem::path folder;      // the checkpoint folder (a cache snapshot for cached names)
  std::vector<std::filesystem::path> weight_files;  // model.safetensors or the shards of its index, or the .bin
  CheckpointFormat format = CheckpointFormat::Safetensors;
  ModelConfig config;
};

// Resolves MODEL: "random:…", an existing folder, a llama2.c checkpoint FILE.bin (folder = its
// directory), or a name in the Hugging Face cache
// ($HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub; models--NAME/snapshots/<refs/main or any>/, '/' in NAME → '--').
// InputError saying how to get the files when nothing is found, or when a folder holds only
// pytorch_model.bin.
ModelSource resolve_model(const std::string& model);
// The Hugging Face hub cache directory as above.
std::filesystem::path huggingface_hub_cache();

// The "weight_map" of a sharded checkpoint's model.safetensors.index.json (text in memory): tensor →
// shard file. InputError naming `source` and the entry for invalid JSON, a missing map, a shard that
// is not a string, or a shard name that is not a plain file name of the folder ("", ".", "..", or
// a name holding '/', '\\' or NUL would reach outside it).
std::map<std::string, std::string> parse_shard_index(std::string_view text, const std::string& source);

// One stored tensor of a checkpoint, for `inspect`.
struct StoredTensor {
  std::string name;     // as stored
  std::string dtype;    // as stored: F32, BF16, ..., or I64, BOOL, ... (any safetensors dtype)
  std::vector<std::int64_t> shape;
  std::string file;     // file name within the folder
  std::string role;     // the canonical name it provides, or "" when lipattn ignores it
};
// Lists every tensor in the checkpoint files (random models: the layout, dtype "F64").
std::vector<StoredTensor> list_tensors(const ModelSource& source);

struct LayerWeights {
  AttentionWeights attention;  // Q, K, V, W_O (GPT-2 c_proj, BERT attention.output.dense), causal, scale
  NormWeights attention_norm;  // GPT-2 ln_1 (before attention); BERT attention.output.LayerNorm (after)
  // w_in: GPT-2 mlp.c_fc, BERT intermediate.dense, LLaMA mlp.up_proj (w3); w_gate: LLaMA mlp.gate_proj
  // (w1), act(x W_gateᵀ) ⊙ (x W_inᵀ), empty when not gated; w_out: GPT-2 mlp.c_proj, BERT output.dense,
  // LLaMA mlp.down_proj (w2). The activation is the config's. The Mlp map is built from it as it is.
  MlpWeights mlp;
  NormWeights mlp_norm;        // GPT-2 ln_2 (before the MLP); BERT output.LayerNorm (after)
};

struct ModelWeights {
  ModelConfig config;
  std::string description;            // "folder /path", "random:gpt2 (seed 0)", …
  MatrixD token_embeddings;           // vocab × d (GPT-2 wte, BERT word_embeddings)
  MatrixD position_embeddings;        // positions × d (GPT-2 wpe, BERT position_embeddings)
  VectorD token_type_embedding;       // BERT token type 0 (the only type lipattn feeds); empty for GPT-2
  std::optional<NormWeights> embedding_norm;  // BERT embeddings.LayerNorm
  std::vector<LayerWeights> layers;   // the first LoadOptions::layers blocks, or all of them
  std::optional<NormWeights> final_norm;      // GPT-2 ln_f, LLaMA norm (only when every layer is loaded)
  // The LM head, vocab × d: LLaMA's lm_head (llama2.c wcls) when untied; empty when it is the token
  // embedding (GPT-2, tie_word_embeddings) or the model has none (BERT).
  MatrixD lm_head;

  bool complete() const { return static_cast<Index>(layers.size()) == config.num_layers; }
};

struct LoadOptions {
  std::uint64_t seed = 0;     // random models only
  int layers = -1;            // load blocks 0..layers-1 only (-1: all, plus the final LayerNorm)
  bool force_causal = false;  // BERT decoder mode: causal self-attention even if is_decoder is false
};

ModelWeights load_model(const ModelSource& source, const LoadOptions& options = {});
ModelWeights load_model(const std::string& model, const LoadOptions& options = {});

// Transformers' _init_weights, seeded: Linear/Conv1D weights and embeddings N(0, initializer_range²)
// (GPT-2's attn.c_proj and mlp.c_proj weights N(0, (initializer_range/√(2·n_layer))²)), biases 0,
// LayerNorm and RMSNorm weights 1 and biases 0, the padding row (pad_token_id) of BERT's and
// LLaMA's token embeddings 0. Each tensor draws from
// its own stream seeded by (seed, canonical name), so a tensor does not depend on which others are made.
ModelWeights random_model(const ModelConfig& config, std::uint64_t seed, const LoadOptions& options = {});
// The values random_model gives the tensor `spec` (row-major), exposed for tests and `inspect`.
std::vector<double> random_tensor(const TensorSpec& spec, const ModelConfig& config, std::uint64_t seed);

}  // namespace lipattn::models
