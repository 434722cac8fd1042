// Hugging Face config.json for the model families lipattn reads: GPT-2, BERT and the LLaMA family
// (llama, mistral, qwen2; llama2.c checkpoints fill the same struct from their header) (docs/formats.md,
// "Model folders").
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "attention/mlp.h"
#include "attention/weights.h"
#include "common/types.h"

namespace lipattn::models {

// Llama covers the LLaMA family whose layer fits lipattn's one attention and gated MLP: config.json
// model_type llama, mistral, qwen2 (q/k/v biases), and llama2.c checkpoints.
enum class ModelType { Gpt2, Bert, Llama };
std::string to_string(ModelType type);  // "gpt2" | "bert" | "llama" (the config.json spelling)

// Activation (the MLP activations) lives with the MLP map in attention/mlp.h.
using ::lipattn::Activation;
// Throws InputError naming `where` (file and key) for a name transformers would not accept here.
Activation parse_activation(const std::string& name, const std::string& where);

struct ModelConfig {
  ModelType type = ModelType::Gpt2;
  Index hidden_size = 0;        // d: GPT-2 n_embd, BERT hidden_size
  Index num_heads = 0;          // GPT-2 n_head, BERT num_attention_heads
  Index num_layers = 0;         // GPT-2 n_layer, BERT num_hidden_layers
  Index intermediate_size = 0;  // GPT-2 n_inner (null: 4d), BERT intermediate_size
  Index max_positions = 0;      // GPT-2 n_positions, BERT max_position_embeddings
  Index vocab_size = 0;
  Index type_vocab_size = 0;    // BERT token types (GPT-2: 0)
  double layer_norm_eps = 1e-5; // GPT-2 layer_norm_epsilon, BERT layer_norm_eps
  Activation activation = Activation::GeluTanh;
  std::string activation_name = "gelu_new";
  bool is_decoder = false;      // BERT: causal self-attention (GPT-2 is always causal)
  double initializer_range = 0.02;
  // GPT-2 attention scaling switches (transformers' GPT2Attention): scores are divided by √k when
  // scale_attn_weights, and additionally by (layer + 1) when scale_attn_by_inverse_layer_idx.
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;
  Index pad_token_id = -1;      // BERT: the embedding row random init zeroes (-1: none)
  // LLaMA family (layer_norm_eps holds rms_norm_eps; max_positions max_position_embeddings or seq_len):
  std::string model_type_name;  // config.json's model_type as written ("llama", "mistral", "qwen2")
  Index num_kv_heads = 0;       // num_key_value_heads (0: num_heads)
  Index head_dim_value = 0;     // head_dim when the config gives it (0: hidden_size / num_heads)
  double rope_theta = 10000.0;
  RopeStyle rope_style = RopeStyle::RotateHalf;  // Hugging Face; llama2.c checkpoints: Interleaved
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v (and o for llama's attention_bias) biases; qwen2 always has q/k/v

  bool causal() const { return type != ModelType::Bert || is_decoder; }
  Index head_dim() const { return head_dim_value > 0 ? head_dim_value : hidden_size / num_heads; }
  Index kv_heads() const { return num_kv_heads > 0 ? num_kv_heads : num_heads; }
  // LLaMA family: whether q/k/v_proj and o_proj carry biases (llama's attention_bias gives all four,
  // qwen2 has q/k/v only, mistral and llama2.c none).
  bool qkv_bias() const { return type == ModelType::Llama && attention_bias; }
  bool output_bias() const { return qkv_bias() && model_type_name != "qwen2"; }
  // The name of the positions limit where it came from, for errors about windows longer than
  // max_positions: "n_positions" (GPT-2), "seq_len" (llama2.c header), "max_position_embeddings", or
  // "sliding_window" when that capped it.
  std::string positions_key() const { return positions_source.empty() ? "max_position_embeddings" : positions_source; }
  std::string positions_source;  // set by the parsers; "" means max_position_embeddings
  // The attention score scale of layer `layer` (1/√k by default).
  double attention_scale(int layer) const;
  nlohmann::json to_json() const;  // the fields above, config.json-like but in lipattn's names
};

// Parses a config.json object. `source` names the file in every error (unknown model_type, a
// missing or non-positive dimension, hidden size not divisible by heads, unsupported options such
// as BERT's relative position embeddings, LLaMA's rope_scaling or mlp_bias).
ModelConfig parse_config(const nlohmann::json& json, const std::string& source);
ModelConfig read_config(const std::filesystem::path& path);
// read_config on the text of a config.json held in memory; `source` names it in errors.
ModelConfig parse_config_text(std::string_view text, const std::string& source);

// The published shapes of "gpt2" (124M) and "bert-base-uncased" (110M), as their config.json say.
// InputError for any other name.
ModelConfig published_config(const std::string& name);

}  // namespace lipattn::models
