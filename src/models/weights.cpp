#include "models/weights.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/stop.h"
#include "io/safetensors.h"
#include "models/llama2c.h"

namespace lipattn::models {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Shape = std::vector<std::int64_t>;

// ---- layout ----------------------------------------------------------------------------------

namespace {

// LlamaForCausalLM's tensors (transformers' LlamaModel, MistralModel, Qwen2Model): RMSNorm weights,
// bias-free Linear layers unless the config asks for them, the gated MLP, an lm_head unless tied.
template <class Add>
void llama_layout(const ModelConfig& c, int count, bool complete, Add& add) {
  using K = TensorSpec::Kind;
  const std::int64_t d = c.hidden_size, inner = c.intermediate_size, q_width = c.num_heads * c.head_dim(),
                     kv_width = c.kv_heads() * c.head_dim();
  const double std0 = c.initializer_range;
  add("model.embed_tokens.weight", {c.vocab_size, d}, K::Embedding, std0);
  auto linear = [&](const std::string& name, std::int64_t out, std::int64_t in, bool bias) {
    add(name + ".weight", {out, in}, K::Matrix, std0);
    if (bias) add(name + ".bias", {out}, K::Bias);
  };
  for (int i = 0; i < count; ++i) {
    const std::string l = fmt::format("model.layers.{}.", i);
    add(l + "input_layernorm.weight", {d}, K::NormWeight);
    linear(l + "self_attn.q_proj", q_width, d, c.qkv_bias());
    linear(l + "self_attn.k_proj", kv_width, d, c.qkv_bias());
    linear(l + "self_attn.v_proj", kv_width, d, c.qkv_bias());
    linear(l + "self_attn.o_proj", d, q_width, c.output_bias());
    add(l + "post_attention_layernorm.weight", {d}, K::NormWeight);
    linear(l + "mlp.gate_proj", inner, d, false);
    linear(l + "mlp.up_proj", inner, d, false);
    linear(l + "mlp.down_proj", d, inner, false);
  }
  if (!complete) return;
  add("model.norm.weight", {d}, K::NormWeight);
  if (!c.tie_word_embeddings) add("lm_head.weight", {c.vocab_size, d}, K::Matrix, std0);
}

}  // namespace

std::vector<TensorSpec> checkpoint_layout(const ModelConfig& c, int layers) {
  using K = TensorSpec::Kind;
  const std::int64_t d = c.hidden_size, inner = c.intermediate_size;
  const double std0 = c.initializer_range;
  const int count = layers < 0 ? static_cast<int>(c.num_layers) : std::min<int>(layers, static_cast<int>(c.num_layers));
  std::vector<TensorSpec> out;
  auto add = [&](std::string name, Shape shape, K kind, double init_std = 0) {
    out.push_back({std::move(name), std::move(shape), kind, init_std});
  };
  auto norm = [&](const std::string& prefix) {
    add(prefix + ".weight", {d}, K::NormWeight);
    add(prefix + ".bias", {d}, K::NormBias);
  };
  if (c.type == ModelType::Gpt2) {
    // transformers' GPT2PreTrainedModel._init_weights scales every "c_proj.weight" by 1/√(2·n_layer)
    // (the GPT-2 paper's residual-path scaling).
    const double proj_std = std0 / std::sqrt(2.0 * static_cast<double>(c.num_layers));
    add("wte.weight", {c.vocab_size, d}, K::Embedding, std0);
    add("wpe.weight", {c.max_positions, d}, K::Embedding, std0);
    for (int i = 0; i < count; ++i) {
      const std::string h = fmt::format("h.{}.", i);
      norm(h + "ln_1");
      // Conv1D stores its weight (in, out).
      add(h + "attn.c_attn.weight", {d, 3 * d}, K::Matrix, std0);
      add(h + "attn.c_attn.bias", {3 * d}, K::Bias);
      add(h + "attn.c_proj.weight", {d, d}, K::Matrix, proj_std);
      add(h + "attn.c_proj.bias", {d}, K::Bias);
      norm(h + "ln_2");
      add(h + "mlp.c_fc.weight", {d, inner}, K::Matrix, std0);
      add(h + "mlp.c_fc.bias", {inner}, K::Bias);
      add(h + "mlp.c_proj.weight", {inner, d}, K::Matrix, proj_std);
      add(h + "mlp.c_proj.bias", {d}, K::Bias);
    }
    if (layers < 0 || layers >= c.num_layers) norm("ln_f");
  } else if (c.type == ModelType::Llama) {
    llama_layout(c, count, layers < 0 || layers >= c.num_layers, add);
  } else {
    add("embeddings.word_embeddings.weight", {c.vocab_size, d}, K::Embedding, std0);
    add("embeddings.position_embeddings.weight", {c.max_positions, d}, K::Embedding, std0);
    add("embeddings.token_type_embeddings.weight", {c.type_vocab_size, d}, K::Embedding, std0);
    norm("embeddings.LayerNorm");
    for (int i = 0; i < count; ++i) {
      const std::string l = fmt::format("encoder.layer.{}.", i);
      // nn.Linear stores its weight (out, in).
      for (const char* qkv : {"query", "key", "value"}) {
        add(l + "attention.self." + qkv + ".weight", {d, d}, K::Matrix, std0);
        add(l + "attention.self." + qkv + ".bias", {d}, K::Bias);
      }
      add(l + "attention.output.dense.weight", {d, d}, K::Matrix, std0);
      add(l + "attention.output.dense.bias", {d}, K::Bias);
      norm(l + "attention.output.LayerNorm");
      add(l + "intermediate.dense.weight", {inner, d}, K::Matrix, std0);
      add(l + "intermediate.dense.bias", {inner}, K::Bias);
      add(l + "output.dense.weight", {d, inner}, K::Matrix, std0);
      add(l + "output.dense.bias", {d}, K::Bias);
      norm(l + "output.LayerNorm");
    }
  }
  return out;
}

// ---- resolving MODEL ---------------------------------------------------------------------------

std::map<std::string, std::string> parse_shard_index(std::string_view text, const std::string& source) {
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  if (!json.is_object() || !json.contains("weight_map") || !json.at("weight_map").is_object())
    throw InputError(fmt::format("{}: no \"weight_map\" object", source));
  std::map<std::string, std::string> out;
  for (const auto& [tensor, file] : json.at("weight_map").items()) {
    if (!file.is_string())
      throw InputError(fmt::format("{}: weight_map entry '{}' must be a file name, found {}", source, tensor,
                                   file.dump()));
    const std::string& name = file.get_ref<const std::string&>();
    if (name.empty() || name == "." || name == ".." || name.find_first_of(std::string("/\\\0", 3)) != std::string::npos)
      throw InputError(fmt::format("{}: weight_map entry '{}' names shard '{}', which is not a file name in the "
                                   "checkpoint's folder",
                                   source, tensor, name));
    out.emplace(tensor, name);
  }
  return out;
}

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string how_to_get(const std::string& name) {
  return fmt::format(
      "to get the files, run `huggingface-cli download {0} config.json model.safetensors` plus the "
      "tokenizer files (GPT-2: vocab.json merges.txt; BERT: vocab.txt tokenizer_config.json), or in Python "
      "`AutoModel.from_pretrained(\"{0}\").save_pretrained(DIR, safe_serialization=True)` and pass DIR",
      name);
}

std::string read_file_text(const fs::path& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) throw InputError(fmt::format("{}: not a regular file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open for reading", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The weight files of a folder: model.safetensors, or the shards named by model.safetensors.index.json.
std::vector<fs::path> weight_files_of(const fs::path& folder, const std::string& spec) {
  const fs::path single = folder / "model.safetensors";
  if (fs::exists(single)) return {single};
  const fs::path index = folder / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::map<std::string, std::string> shards;  // shard → one tensor the index puts in it
    for (const auto& [tensor, file] : parse_shard_index(read_file_text(index), index.string()))
      shards.emplace(file, tensor);
    std::vector<fs::path> files;
    for (const auto& [shard, tensor] : shards) {
      if (!fs::is_regular_file(folder / shard))
        throw InputError(fmt::format("{}: shard '{}' (holding tensor '{}', among others) is missing from {}",
                                     index.string(), shard, tensor, folder.string()));
      files.push_back(folder / shard);
    }
    return files;
  }
  for (const char* other : {"pytorch_model.bin", "tf_model.h5", "flax_model.msgpack"}) {
    if (fs::exists(folder / other))
      throw InputError(fmt::format(
          "{}: the folder has {} but no model.safetensors; lipattn reads safetensors only. Convert it in Python "
          "with `AutoModel.from_pretrained(\"{}\").save_pretrained(DIR, safe_serialization=True)`",
          folder.string(), other, folder.string()));
  }
  throw InputError(fmt::format("{}: no model.safetensors in the folder of model '{}'; {}", folder.string(), spec,
                               how_to_get(spec)));
}

ModelSource folder_source(const std::string& spec, const fs::path& folder) {
  ModelSource s;
  s.spec = spec;
  s.folder = folder;
  const fs::path config = folder / "config.json";
  if (!fs::exists(config))
    throw InputError(fmt::format("{}: no config.json in the folder of model '{}'; {}", folder.string(), spec,
                                 how_to_get(spec)));
  s.config = read_config(config);
  s.weight_files = weight_files_of(folder, spec);
  return s;
}

ModelSource llama2c_source(const std::string& spec) {
  ModelSource s;
  s.spec = spec;
  s.format = CheckpointFormat::Llama2c;
  s.weight_files = {fs::path(spec)};
  s.folder = fs::path(spec).parent_path().empty() ? fs::path(".") : fs::path(spec).parent_path();
  s.config = Llama2cCheckpoint::open(spec).config();
  return s;
}

// models--NAME/snapshots/<revision>: the revision refs/main names, else the newest snapshot that
// has a config.json.
// The cache's folder name for a repo id: '/' becomes "--".
std::string fold_name(const std::string& name) {
  std::string folded;
  for (char ch : name) folded += ch == '/' ? std::string("--") : std::string(1, ch);
  return folded;
}

std::optional<fs::path> cached_snapshot(const fs::path& cache, const std::string& name) {
  const fs::path repo = cache / ("models--" + fold_name(name));
  const fs::path snapshots = repo / "snapshots";
  std::error_code ec;
  if (!fs::is_directory(snapshots, ec)) return std::nullopt;
  std::ifstream ref(repo / "refs" / "main");
  std::string revision;
  if (ref && std::getline(ref, revision) && !revision.empty() && fs::exists(snapshots / revision / "config.json"))
    return snapshots / revision;
  std::optional<fs::path> best;
  fs::file_time_type best_time{};
  for (const auto& entry : fs::directory_iterator(snapshots, ec)) {
    if (!fs::exists(entry.path() / "config.json")) continue;
    const auto t = fs::last_write_time(entry.path(), ec);
    if (!best || t > best_time) {
      best = entry.path();
      best_time = t;
    }
  }
  return best;
}

}  // namespace

fs::path huggingface_hub_cache() {
  if (auto v = env("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (auto v = env("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  return fs::path(env("HOME")) / ".cache" / "huggingface" / "hub";
}

ModelSource resolve_model(const std::string& model) {
  if (model.empty()) throw InputError("model is empty: give a folder, a cached model name or random:gpt2", "model");
  if (model.rfind("random:", 0) == 0) {
    ModelSource s;
    s.spec = model;
    s.random = true;
    s.random_name = model.substr(7);
    if (s.random_name == "gpt2" || s.random_name == "bert-base-uncased") {
      s.config = published_config(s.random_name);
    } else if (s.random_name.size() > 5 && s.random_name.ends_with(".json")) {
      s.config = read_config(s.random_name);
    } else {
      throw InputError(fmt::format(
          "model '{}': expected random:gpt2, random:bert-base-uncased or random:CONFIG.json", model));
    }
    return s;
  }
  std::error_code ec;
  if (fs::is_directory(model, ec)) return folder_source(model, model);
  // pytorch_model.bin is a pickle, not llama2.c: say how to convert it rather than misread its header.
  if (fs::is_regular_file(model, ec) && model.ends_with(".bin") && fs::path(model).filename() != "pytorch_model.bin")
    return llama2c_source(model);
  if (model.ends_with(".bin") && !fs::exists(model, ec))
    throw InputError(fmt::format("{}: no such llama2.c checkpoint file", model));
  if (fs::exists(model, ec))
    throw InputError(
        fmt::format("model '{}' is a file; MODEL is the folder that holds config.json and "
                    "model.safetensors, or a llama2.c checkpoint FILE.bin",
                    model));
  const fs::path cache = huggingface_hub_cache();
  std::vector<std::string> names{model};
  // The hub moved the original checkpoints under organisations; "gpt2" may be cached as
  // openai-community/gpt2 and "bert-base-uncased" as google-bert/bert-base-uncased.
  if (model.find('/') == std::string::npos) {
    names.push_back("openai-community/" + model);
    names.push_back("google-bert/" + model);
  }
  for (const auto& name : names) {
    if (auto snapshot = cached_snapshot(cache, name)) return folder_source(model, *snapshot);
  }
  throw InputError(fmt::format(
      "model '{}' is neither a folder nor in the Hugging Face cache (looked for {}/models--{}/snapshots/*/config.json); {}",
      model, cache.string(), fold_name(model), how_to_get(model)));
}

// ---- reading tensors ----------------------------------------------------------------------------

namespace {

std::string shape_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string config_summary(const ModelConfig& c) {
  return fmt::format("hidden {}, heads {}, layers {}, intermediate {}, vocab {}, positions {}", c.hidden_size,
                     c.num_heads, c.num_layers, c.intermediate_size, c.vocab_size, c.max_positions);
}

// The names a canonical tensor may be stored under: with or without the base-model prefix, and for
// LayerNorm parameters the older gamma/beta spelling.
std::vector<std::string> stored_candidates(const TensorSpec& spec, ModelType type) {
  std::vector<std::string> bases{spec.name};
  auto ends = [&](const std::string& suffix) { return spec.name.ends_with(suffix); };
  if (spec.kind == TensorSpec::Kind::NormWeight && ends(".weight"))
    bases.push_back(spec.name.substr(0, spec.name.size() - 7) + ".gamma");
  if (spec.kind == TensorSpec::Kind::NormBias && ends(".bias"))
    bases.push_back(spec.name.substr(0, spec.name.size() - 5) + ".beta");
  if (type == ModelType::Llama) return bases;  // Hugging Face's full names, "model." included
  const std::string prefix = type == ModelType::Gpt2 ? "transformer." : "bert.";
  std::vector<std::string> out;
  for (const auto& b : bases) {
    out.push_back(b);
    out.push_back(prefix + b);
  }
  return out;
}

// The tensors of all the files of a checkpoint, by stored name.
class Checkpoint {
 public:
  explicit Checkpoint(const ModelSource& source) : source_(source) {
    for (const auto& path : source.weight_files) files_.push_back(io::SafetensorsFile::open(path));
    for (std::size_t f = 0; f < files_.size(); ++f)
      for (const auto& name : files_[f].names()) where_.emplace(name, f);
    check_index();
  }

  const io::SafetensorsFile* find(const std::string& name) const {
    auto it = where_.find(name);
    return it == where_.end() ? nullptr : &files_[it->second];
  }

  // The stored name of a canonical tensor; InputError naming it when absent.
  std::pair<std::string, const io::SafetensorsFile*> locate(const TensorSpec& spec) const {
    const auto candidates = stored_candidates(spec, source_.config.type);
    for (const auto& name : candidates)
      if (const auto* file = find(name)) return {name, file};
    const fs::path file = source_.weight_files.size() == 1 ? source_.weight_files[0] : source_.folder;
    throw InputError(fmt::format("{}: tensor '{}' is missing (looked for '{}'); the {} config ({}) needs it",
                                 file.string(), spec.name, fmt::join(candidates, "', '"),
                                 to_string(source_.config.type), config_summary(source_.config)));
  }

  std::vector<double> values(const TensorSpec& spec) const {
    auto [name, file] = locate(spec);
    const auto& info = file->info(name);
    if (info.shape != spec.shape)
      throw InputError(fmt::format("{}: tensor '{}' has shape {} but {}/config.json ({}) needs {}",
                                   file->path().string(), name, shape_string(info.shape), source_.folder.string(),
                                   config_summary(source_.config), shape_string(spec.shape)));
    return file->values(name);
  }

  const std::vector<io::SafetensorsFile>& files() const { return files_; }

 private:
  // A sharded checkpoint's index must tell the truth: every tensor it names is in the shard it names.
  void check_index() const {
    if (source_.weight_files.size() == 1 && source_.weight_files[0].filename() == "model.safetensors") return;
    const fs::path index = source_.folder / "model.safetensors.index.json";
    if (!fs::exists(index)) return;
    for (const auto& [tensor, file] : parse_shard_index(read_file_text(index), index.string())) {
      const auto* holder = find(tensor);
      if (!holder || holder->path().filename() != file)
        throw InputError(fmt::format("{}: the index puts tensor '{}' in shard '{}', which does not hold it",
                                     index.string(), tensor, file));
    }
  }

  const ModelSource& source_;
  std::vector<io::SafetensorsFile> files_;
  std::map<std::string, std::size_t> where_;
};

// ---- random init -----------------------------------------------------------------------------

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// xoshiro256** with Box–Muller normals: a fixed, documented generator, so a seed gives the same
// weights on every platform (std::normal_distribution is implementation-defined).
class NormalStream {
 public:
  explicit NormalStream(std::uint64_t seed) {
    for (auto& word : s_) word = splitmix64(seed);
  }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = uniform_open(), u2 = uniform_open();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(angle);
    has_spare_ = true;
    return r * std::cos(angle);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform_open() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }  // (0, 1]

  std::uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

std::uint64_t tensor_seed(std::uint64_t seed, const std::string& name) {
  std::uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a of the canonical name
  for (unsigned char ch : name) h = (h ^ ch) * 0x100000001B3ULL;
  std::uint64_t state = seed ^ h;
  return splitmix64(state);
}

// ---- assembly ----------------------------------------------------------------------------------

using Provider = std::function<std::vector<double>(const TensorSpec&)>;

MatrixD as_matrix(std::vector<double> v, const Shape& shape) {
  MatrixD m(shape[0], shape[1]);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}
VectorD as_vector(const std::vector<double>& v) { return Eigen::Map<const VectorD>(v.data(), v.size()); }

// The tensors of one model, by canonical name, in the shapes the layout gives them.
struct Tensors {
  const ModelConfig& config;
  const Provider& provide;
  std::map<std::string, const TensorSpec*> by_name;

  std::vector<double> get(const std::string& name) const { return provide(*by_name.at(name)); }
  MatrixD matrix(const std::string& name) const { return as_matrix(get(name), by_name.at(name)->shape); }
  VectorD vector(const std::string& name) const { return as_vector(get(name)); }
  VectorD optional_vector(const std::string& name) const { return by_name.count(name) ? vector(name) : VectorD(); }
  NormWeights layer_norm(const std::string& prefix) const {
    NormWeights n;
    n.kind = NormKind::LayerNorm;
    n.gamma = vector(prefix + ".weight");
    n.beta = vector(prefix + ".bias");
    n.eps = config.layer_norm_eps;
    return n;
  }
  NormWeights rms_norm(const std::string& name) const {
    NormWeights n;
    n.kind = NormKind::RmsNorm;
    n.gamma = vector(name);
    n.eps = config.layer_norm_eps;
    return n;
  }
};

void assemble_gpt2(const Tensors& t, int count, ModelWeights& w) {
  const ModelConfig& config = t.config;
  const Index d = config.hidden_size;
  w.token_embeddings = t.matrix("wte.weight");
  w.position_embeddings = t.matrix("wpe.weight");
  for (int i = 0; i < count; ++i) {
    const std::string h = fmt::format("h.{}.", i);
    LayerWeights L;
    L.attention_norm = t.layer_norm(h + "ln_1");
    // Conv1D: y = x W + b with W (in, out) = [d, 3d]; Q, K, V are its column blocks, so in
    // nn.Linear layout W_Q = W[:, 0:d]ᵀ, W_K = W[:, d:2d]ᵀ, W_V = W[:, 2d:3d]ᵀ.
    const MatrixD c_attn = t.matrix(h + "attn.c_attn.weight");
    const VectorD c_attn_b = t.vector(h + "attn.c_attn.bias");
    AttentionWeights& a = L.attention;
    a.heads = config.num_heads;
    a.w_q = c_attn.middleCols(0, d).transpose();
    a.w_k = c_attn.middleCols(d, d).transpose();
    a.w_v = c_attn.middleCols(2 * d, d).transpose();
    a.b_q = c_attn_b.segment(0, d);
    a.b_k = c_attn_b.segment(d, d);
    a.b_v = c_attn_b.segment(2 * d, d);
    a.w_o = t.matrix(h + "attn.c_proj.weight").transpose();
    a.b_o = t.vector(h + "attn.c_proj.bias");
    a.causal = true;
    a.scale = config.attention_scale(i);
    L.mlp_norm = t.layer_norm(h + "ln_2");
    L.mlp.activation = config.activation;
    L.mlp.w_in = t.matrix(h + "mlp.c_fc.weight").transpose();
    L.mlp.b_in = t.vector(h + "mlp.c_fc.bias");
    L.mlp.w_out = t.matrix(h + "mlp.c_proj.weight").transpose();
    L.mlp.b_out = t.vector(h + "mlp.c_proj.bias");
    w.layers.push_back(std::move(L));
  }
  if (w.complete()) w.final_norm = t.layer_norm("ln_f");
}

void assemble_bert(const Tensors& t, int count, ModelWeights& w) {
  const ModelConfig& config = t.config;
  w.token_embeddings = t.matrix("embeddings.word_embeddings.weight");
  w.position_embeddings = t.matrix("embeddings.position_embeddings.weight");
  w.token_type_embedding = t.matrix("embeddings.token_type_embeddings.weight").row(0).transpose();
  w.embedding_norm = t.layer_norm("embeddings.LayerNorm");
  for (int i = 0; i < count; ++i) {
    const std::string l = fmt::format("encoder.layer.{}.", i);
    LayerWeights L;
    AttentionWeights& a = L.attention;
    a.heads = config.num_heads;
    a.w_q = t.matrix(l + "attention.self.query.weight");
    a.b_q = t.vector(l + "attention.self.query.bias");
    a.w_k = t.matrix(l + "attention.self.key.weight");
    a.b_k = t.vector(l + "attention.self.key.bias");
    a.w_v = t.matrix(l + "attention.self.value.weight");
    a.b_v = t.vector(l + "attention.self.value.bias");
    a.w_o = t.matrix(l + "attention.output.dense.weight");
    a.b_o = t.vector(l + "attention.output.dense.bias");
    a.causal = w.config.causal();
    a.scale = config.attention_scale(i);
    L.attention_norm = t.layer_norm(l + "attention.output.LayerNorm");
    L.mlp.activation = config.activation;
    L.mlp.w_in = t.matrix(l + "intermediate.dense.weight");
    L.mlp.b_in = t.vector(l + "intermediate.dense.bias");
    L.mlp.w_out = t.matrix(l + "output.dense.weight");
    L.mlp.b_out = t.vector(l + "output.dense.bias");
    L.mlp_norm = t.layer_norm(l + "output.LayerNorm");
    w.layers.push_back(std::move(L));
  }
}

// LlamaDecoderLayer: x + attn(rms(x)), then + mlp(rms(·)); causal, rotary, grouped K/V heads.
void assemble_llama(const Tensors& t, int count, ModelWeights& w) {
  const ModelConfig& config = t.config;
  w.token_embeddings = t.matrix("model.embed_tokens.weight");
  for (int i = 0; i < count; ++i) {
    const std::string l = fmt::format("model.layers.{}.", i), a_ = l + "self_attn.", m = l + "mlp.";
    LayerWeights L;
    AttentionWeights& a = L.attention;
    a.heads = config.num_heads;
    a.kv_heads = config.kv_heads();
    a.w_q = t.matrix(a_ + "q_proj.weight");
    a.w_k = t.matrix(a_ + "k_proj.weight");
    a.w_v = t.matrix(a_ + "v_proj.weight");
    a.w_o = t.matrix(a_ + "o_proj.weight");
    a.b_q = t.optional_vector(a_ + "q_proj.bias");
    a.b_k = t.optional_vector(a_ + "k_proj.bias");
    a.b_v = t.optional_vector(a_ + "v_proj.bias");
    a.b_o = t.optional_vector(a_ + "o_proj.bias");
    a.causal = true;
    a.scale = config.attention_scale(i);
    a.rope = {config.rope_style, config.rope_theta};
    L.attention_norm = t.rms_norm(l + "input_layernorm.weight");
    L.mlp_norm = t.rms_norm(l + "post_attention_layernorm.weight");
    L.mlp.activation = config.activation;
    L.mlp.w_gate = t.matrix(m + "gate_proj.weight");
    L.mlp.w_in = t.matrix(m + "up_proj.weight");
    L.mlp.w_out = t.matrix(m + "down_proj.weight");
    w.layers.push_back(std::move(L));
  }
  if (!w.complete()) return;
  w.final_norm = t.rms_norm("model.norm.weight");
  if (!config.tie_word_embeddings) w.lm_head = t.matrix("lm_head.weight");
}

ModelWeights assemble(const ModelConfig& config, const LoadOptions& options, const Provider& provide) {
  if (options.layers > config.num_layers)
    throw InputError(fmt::format("cannot load {} layers: the model has {}", options.layers, config.num_layers));
  ModelWeights w;
  w.config = config;
  if (options.force_causal) w.config.is_decoder = config.type == ModelType::Bert ? true : config.is_decoder;
  const auto layout = checkpoint_layout(config, options.layers);
  // Loading a large model takes seconds: a stop request (common/stop.h) ends it between two tensors.
  const Provider checked = [&provide](const TensorSpec& spec) {
    stop::throw_if_requested();
    return provide(spec);
  };
  Tensors tensors{config, checked, {}};
  for (const auto& spec : layout) tensors.by_name[spec.name] = &spec;
  const int count = options.layers < 0 ? static_cast<int>(config.num_layers) : options.layers;
  switch (config.type) {
    case ModelType::Gpt2:
      assemble_gpt2(tensors, count, w);
      break;
    case ModelType::Bert:
      assemble_bert(tensors, count, w);
      break;
    case ModelType::Llama:
      assemble_llama(tensors, count, w);
      break;
  }
  return w;
}

}  // namespace

std::vector<double> random_tensor(const TensorSpec& spec, const ModelConfig& config, std::uint64_t seed) {
  std::int64_t count = 1;
  for (auto dim : spec.shape) count *= dim;
  std::vector<double> v(static_cast<std::size_t>(count), 0.0);
  switch (spec.kind) {
    case TensorSpec::Kind::Bias:
    case TensorSpec::Kind::NormBias:
      break;
    case TensorSpec::Kind::NormWeight:
      std::fill(v.begin(), v.end(), 1.0);
      break;
    case TensorSpec::Kind::Matrix:
    case TensorSpec::Kind::Embedding: {
      NormalStream stream(tensor_seed(seed, spec.name));
      for (auto& x : v) x = spec.init_std * stream.normal();
      // nn.Embedding(padding_idx=pad_token_id): transformers zeroes that row of BERT's word embeddings.
      // LlamaModel's embed_tokens has padding_idx = pad_token_id too (usually null: no zero row).
      const bool token_table = (config.type == ModelType::Bert && spec.name == "embeddings.word_embeddings.weight") ||
                               (config.type == ModelType::Llama && spec.name == "model.embed_tokens.weight");
      if (token_table && config.pad_token_id >= 0 && config.pad_token_id < config.vocab_size) {
        const std::int64_t d = spec.shape[1];
        std::fill_n(v.begin() + config.pad_token_id * d, d, 0.0);
      }
      break;
    }
  }
  return v;
}

ModelWeights random_model(const ModelConfig& config, std::uint64_t seed, const LoadOptions& options) {
  ModelWeights w = assemble(config, options, [&](const TensorSpec& spec) { return random_tensor(spec, config, seed); });
  w.description = fmt::format("random {} (seed {})", to_string(config.type), seed);
  return w;
}

ModelWeights load_model(const ModelSource& source, const LoadOptions& options) {
  if (source.random) {
    ModelWeights w = random_model(source.config, options.seed, options);
    w.description = fmt::format("{} (seed {})", source.spec, options.seed);
    return w;
  }
  if (source.format == CheckpointFormat::Llama2c) {
    const Llama2cCheckpoint file = Llama2cCheckpoint::open(source.weight_files.at(0));
    ModelWeights w = assemble(source.config, options, [&](const TensorSpec& spec) {
      const Llama2cTensor* t = file.find(spec.name);
      if (t && t->shape != spec.shape)  // the header implies both: a mismatch is lipattn's bug
        throw std::logic_error(fmt::format("llama2.c tensor {} does not have the shape of {}", t->name, spec.name));
      return file.values(spec.name);
    });
    w.description = source.weight_files[0].string();
    return w;
  }
  const Checkpoint checkpoint(source);
  ModelWeights w = assemble(source.config, options, [&](const TensorSpec& spec) { return checkpoint.values(spec); });
  w.description = source.folder.string();
  return w;
}

ModelWeights load_model(const std::string& model, const LoadOptions& options) {
  return load_model(resolve_model(model), options);
}

std::vector<StoredTensor> list_tensors(const ModelSource& source) {
  std::vector<StoredTensor> out;
  const auto layout = checkpoint_layout(source.config);
  if (source.random) {
    for (const auto& spec : layout) out.push_back({spec.name, "F64", spec.shape, "", spec.name});
    return out;
  }
  if (source.format == CheckpointFormat::Llama2c) {
    const Llama2cCheckpoint file = Llama2cCheckpoint::open(source.weight_files.at(0));
    const std::string name = source.weight_files[0].filename().string();
    for (const auto& t : file.tensors()) out.push_back({t.name, "F32", t.shape, name, t.role});
    return out;
  }
  const Checkpoint checkpoint(source);
  std::map<std::string, std::string> role;  // stored name → canonical name
  for (const auto& spec : layout) {
    for (const auto& name : stored_candidates(spec, source.config.type)) {
      if (checkpoint.find(name)) {
        role[name] = spec.name;
        break;
      }
    }
  }
  for (std::size_t f = 0; f < checkpoint.files().size(); ++f) {
    const auto& file = checkpoint.files()[f];
    for (const auto& name : file.names()) {
      const auto& info = file.info(name);
      auto it = role.find(name);
      out.push_back({name, io::to_string(info.dtype), info.shape, source.weight_files[f].filename().string(),
                     it == role.end() ? "" : it->second});
    }
  }
  return out;
}

}  // namespace lipattn::models
