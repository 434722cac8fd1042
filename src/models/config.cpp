#include "models/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <system_error>
#include <fstream>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn::models {

using Json = nlohmann::json;

std::string to_string(ModelType type) {
  switch (type) {
    case ModelType::Gpt2: return "gpt2";
    case ModelType::Bert: return "bert";
    case ModelType::Llama: return "llama";
  }
  return "gpt2";
}

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "gelu") return Activation::GeluErf;
  // transformers' NewGELU, PytorchGELUTanh and FastGELU are the same tanh formula.
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return Activation::GeluTanh;
  if (name == "relu") return Activation::Relu;
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "quick_gelu") return Activation::QuickGelu;
  if (name == "tanh") return Activation::Tanh;
  throw InputError(fmt::format(
      "{}: activation '{}' is not supported (expected gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, "
      "silu, swish, quick_gelu or tanh)",
      where, name));
}

double ModelConfig::attention_scale(int layer) const {
  double scale = scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(head_dim())) : 1.0;
  if (type == ModelType::Gpt2 && scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(layer + 1);
  return scale;
}

Json ModelConfig::to_json() const {
  Json j;
  j["model_type"] = to_string(type);
  j["hidden_size"] = hidden_size;
  j["num_heads"] = num_heads;
  j["head_dim"] = head_dim();
  j["num_layers"] = num_layers;
  j["intermediate_size"] = intermediate_size;
  j["max_positions"] = max_positions;
  j["vocab_size"] = vocab_size;
  if (type == ModelType::Bert) j["type_vocab_size"] = type_vocab_size;
  j["layer_norm_eps"] = layer_norm_eps;
  j["activation"] = activation_name;
  j["causal"] = causal();
  if (type == ModelType::Bert) j["is_decoder"] = is_decoder;
  j["initializer_range"] = initializer_range;
  if (type == ModelType::Llama) {
    j["model_type_name"] = model_type_name;
    j["num_kv_heads"] = kv_heads();
    j["rope_style"] = lipattn::to_string(rope_style);
    j["rope_theta"] = rope_theta;
    j["tie_word_embeddings"] = tie_word_embeddings;
    j["attention_bias"] = attention_bias;
  }
  if (type == ModelType::Gpt2) {
    j["scale_attn_weights"] = scale_attn_weights;
    j["scale_attn_by_inverse_layer_idx"] = scale_attn_by_inverse_layer_idx;
  }
  return j;
}

namespace {

// Missing keys take transformers' class defaults, as from_pretrained does; present keys must be
// well-typed.
struct Reader {
  const Json& json;
  const std::string& source;

  // Dimensions and counts: positive and below 2^31, so that products such as 4·n_embd and
  // heads·head_dim cannot overflow and every count fits the int the layers and ids use.
  Index positive(const char* key, Index fallback) const {
    if (!json.contains(key) || json.at(key).is_null()) return fallback;
    const Json& v = json.at(key);
    constexpr std::int64_t kLimit = std::numeric_limits<std::int32_t>::max();
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > kLimit) ||
        v.get<std::int64_t>() <= 0 || v.get<std::int64_t>() > kLimit)
      throw InputError(
          fmt::format("{}: \"{}\" must be a positive integer below 2^31, found {}", source, key, v.dump()), key);
    return static_cast<Index>(v.get<std::int64_t>());
  }
  double number(const char* key, double fallback) const {
    if (!json.contains(key) || json.at(key).is_null()) return fallback;
    const Json& v = json.at(key);
    if (!v.is_number()) throw InputError(fmt::format("{}: \"{}\" must be a number, found {}", source, key, v.dump()));
    return v.get<double>();
  }
  bool flag(const char* key, bool fallback) const {
    if (!json.contains(key) || json.at(key).is_null()) return fallback;
    const Json& v = json.at(key);
    if (!v.is_boolean()) throw InputError(fmt::format("{}: \"{}\" must be true or false, found {}", source, key, v.dump()));
    return v.get<bool>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    if (!json.contains(key) || json.at(key).is_null()) return fallback;
    const Json& v = json.at(key);
    if (!v.is_string()) throw InputError(fmt::format("{}: \"{}\" must be a string, found {}", source, key, v.dump()));
    return v.get<std::string>();
  }
};

// Options of transformers' LlamaConfig / MistralConfig / Qwen2Config that change the computation
// in ways lipattn's layer does not model: refused by name rather than silently ignored.
void reject_llama_options(const Reader& r) {
  const Json& json = r.json;
  if (json.contains("rope_scaling") && !json.at("rope_scaling").is_null()) {
    const Json& s = json.at("rope_scaling");
    // The type may be under "rope_type" or "type", and may be anything in a hostile file: only the
    // string "default" is plain RoPE (a number there escaped as a JSON type error: config_json fuzzer).
    const auto text_at = [&s](const char* key) {
      return s.contains(key) && s.at(key).is_string() ? s.at(key).get<std::string>() : std::string();
    };
    const bool plain = s.is_object() && (s.contains("rope_type") ? text_at("rope_type") : text_at("type")) == "default";
    if (!plain)
      throw InputError(
          fmt::format("{}: \"rope_scaling\" {} is not supported (only null: plain RoPE)", r.source, s.dump()));
  }
  if (r.flag("mlp_bias", false))
    throw InputError(fmt::format("{}: \"mlp_bias\": true is not supported (the gated MLP has no biases)", r.source));
  const Index heads = r.positive("num_attention_heads", 32);
  const Index kv = r.positive("num_key_value_heads", heads);
  if (heads % kv != 0)
    throw InputError(
        fmt::format("{}: \"num_key_value_heads\" {} does not divide \"num_attention_heads\" {}", r.source, kv, heads));
}

// LlamaConfig, MistralConfig and Qwen2Config share their keys; defaults are transformers' class
// defaults. A sliding window only changes attention for windows longer than it, so it caps the
// positions lipattn accepts instead of being refused (qwen2 uses it only with use_sliding_window).
ModelConfig parse_llama(const Reader& r, const std::string& model_type) {
  reject_llama_options(r);
  ModelConfig c;
  c.type = ModelType::Llama;
  c.model_type_name = model_type;
  const bool mistral = model_type == "mistral", qwen2 = model_type == "qwen2";
  c.hidden_size = r.positive("hidden_size", 4096);
  c.num_heads = r.positive("num_attention_heads", 32);
  c.num_layers = r.positive("num_hidden_layers", 32);
  c.intermediate_size = r.positive("intermediate_size", qwen2 ? 22016 : mistral ? 14336 : 11008);
  c.max_positions = r.positive("max_position_embeddings", qwen2 ? 32768 : mistral ? 131072 : 2048);
  c.vocab_size = r.positive("vocab_size", qwen2 ? 151936 : 32000);
  c.num_kv_heads = r.positive("num_key_value_heads", mistral ? 8 : c.num_heads);
  c.head_dim_value = r.positive("head_dim", 0);
  c.rope_theta = r.number("rope_theta", 10000.0);
  c.rope_style = RopeStyle::RotateHalf;
  c.layer_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.flag("tie_word_embeddings", false);
  c.attention_bias = qwen2 || r.flag("attention_bias", false);
  c.activation_name = r.text("hidden_act", "silu");
  c.activation = parse_activation(c.activation_name, r.source + " \"hidden_act\"");
  const bool windowed = !qwen2 || r.flag("use_sliding_window", false);
  if (windowed && r.positive("sliding_window", c.max_positions) < c.max_positions) {
    c.max_positions = r.positive("sliding_window", c.max_positions);
    c.positions_source = "sliding_window";
  }
  if (r.json.contains("pad_token_id") && r.json.at("pad_token_id").is_number_integer())
    c.pad_token_id = static_cast<Index>(r.json.at("pad_token_id").get<std::int64_t>());
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
    throw InputError(fmt::format("{}: \"rope_theta\" must be positive, found {}", r.source, c.rope_theta));
  if (c.head_dim() % 2 != 0)
    throw InputError(
        fmt::format("{}: the head dimension {} is odd; rotary embeddings rotate pairs", r.source, c.head_dim()));
  return c;
}

}  // namespace

ModelConfig parse_config(const Json& json, const std::string& source) {
  if (!json.is_object()) throw InputError(fmt::format("{}: expected a JSON object, found {}", source, json.type_name()));
  if (!json.contains("model_type") || !json.at("model_type").is_string())
    throw InputError(
        fmt::format("{}: no \"model_type\" string; lipattn reads model_type \"gpt2\", \"bert\", \"llama\", \"mistral\" "
                    "or \"qwen2\"",
                    source));
  const std::string model_type = json.at("model_type").get<std::string>();
  const Reader r{json, source};
  ModelConfig c;
  if (model_type == "gpt2") {
    c.type = ModelType::Gpt2;
    c.hidden_size = r.positive("n_embd", 768);
    c.num_heads = r.positive("n_head", 12);
    c.num_layers = r.positive("n_layer", 12);
    c.max_positions = r.positive("n_positions", 1024);
    c.positions_source = "n_positions";
    c.vocab_size = r.positive("vocab_size", 50257);
    c.intermediate_size = r.positive("n_inner", 4 * c.hidden_size);
    c.activation_name = r.text("activation_function", "gelu_new");
    c.layer_norm_eps = r.number("layer_norm_epsilon", 1e-5);
    c.scale_attn_weights = r.flag("scale_attn_weights", true);
    c.scale_attn_by_inverse_layer_idx = r.flag("scale_attn_by_inverse_layer_idx", false);
    c.activation = parse_activation(c.activation_name, source + " \"activation_function\"");
  } else if (model_type == "bert") {
    c.type = ModelType::Bert;
    c.hidden_size = r.positive("hidden_size", 768);
    c.num_heads = r.positive("num_attention_heads", 12);
    c.num_layers = r.positive("num_hidden_layers", 12);
    c.max_positions = r.positive("max_position_embeddings", 512);
    c.vocab_size = r.positive("vocab_size", 30522);
    c.type_vocab_size = r.positive("type_vocab_size", 2);
    c.intermediate_size = r.positive("intermediate_size", 3072);
    c.activation_name = r.text("hidden_act", "gelu");
    c.layer_norm_eps = r.number("layer_norm_eps", 1e-12);
    c.is_decoder = r.flag("is_decoder", false);
    c.activation = parse_activation(c.activation_name, source + " \"hidden_act\"");
    const std::string positions = r.text("position_embedding_type", "absolute");
    if (positions != "absolute")
      throw InputError(fmt::format("{}: position_embedding_type \"{}\" is not supported (only \"absolute\")",
                                   source, positions));
    if (json.contains("pad_token_id") && json.at("pad_token_id").is_number_integer()) {
      c.pad_token_id = static_cast<Index>(json.at("pad_token_id").get<std::int64_t>());
    } else if (!json.contains("pad_token_id")) {
      c.pad_token_id = 0;
    }
  } else if (model_type == "llama" || model_type == "mistral" || model_type == "qwen2") {
    c = parse_llama(r, model_type);
  } else {
    throw InputError(fmt::format(
        "{}: model_type \"{}\" is not supported; lipattn reads \"gpt2\", \"bert\", \"llama\", \"mistral\" and "
        "\"qwen2\"",
        source, model_type));
  }
  c.initializer_range = r.number("initializer_range", 0.02);
  if (!(c.layer_norm_eps > 0) || !std::isfinite(c.layer_norm_eps))
    throw InputError(fmt::format("{}: the {} epsilon must be positive, found {}", source,
                                 c.type == ModelType::Llama ? "RMSNorm" : "LayerNorm", c.layer_norm_eps));
  if (!(c.initializer_range > 0) || !std::isfinite(c.initializer_range))
    throw InputError(fmt::format("{}: \"initializer_range\" must be positive, found {}", source, c.initializer_range));
  // An explicit head_dim (LLaMA family) frees the heads from tiling the hidden size.
  if (c.head_dim_value == 0 && c.hidden_size % c.num_heads != 0)
    throw InputError(fmt::format("{}: the hidden size {} is not a multiple of the number of heads {}", source,
                                 c.hidden_size, c.num_heads));
  return c;
}

ModelConfig read_config(const std::filesystem::path& path) {
  // A regular file only: the text is read whole before parsing, and a device such as /dev/zero (a
  // random:PATH in a sweep file may name anything) would never end.
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    throw InputError(fmt::format("{}: not a regular file (expected the model's config.json)", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the model's config.json", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config_text(text.str(), path.string());
}

ModelConfig parse_config_text(std::string_view text, const std::string& source) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  return parse_config(json, source);
}

ModelConfig published_config(const std::string& name) {
  // The values of the config.json files published with these checkpoints.
  if (name == "gpt2") {
    return parse_config(Json{{"model_type", "gpt2"},
                             {"n_embd", 768},
                             {"n_head", 12},
                             {"n_layer", 12},
                             {"n_positions", 1024},
                             {"vocab_size", 50257},
                             {"activation_function", "gelu_new"},
                             {"layer_norm_epsilon", 1e-5},
                             {"initializer_range", 0.02}},
                        "random:gpt2");
  }
  if (name == "bert-base-uncased") {
    return parse_config(Json{{"model_type", "bert"},
                             {"hidden_size", 768},
                             {"num_attention_heads", 12},
                             {"num_hidden_layers", 12},
                             {"intermediate_size", 3072},
                             {"max_position_embeddings", 512},
                             {"vocab_size", 30522},
                             {"type_vocab_size", 2},
                             {"hidden_act", "gelu"},
                             {"layer_norm_eps", 1e-12},
                             {"initializer_range", 0.02},
                             {"pad_token_id", 0}},
                        "random:bert-base-uncased");
  }
  throw InputError(fmt::format(
      "random:{}: no published shapes for '{}'; use random:gpt2, random:bert-base-uncased or random:CONFIG.json",
      name, name));
}

}  // namespace lipattn::models
