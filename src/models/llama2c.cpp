#include "models/llama2c.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn::models {

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kMagic = 0x616b3432;  // "ak42" as export.py packs it ('I', little-endian)
constexpr std::int64_t kLegacyHeader = 7 * 4, kVersionedHeader = 256;

std::int32_t int32_at(const std::vector<char>& bytes, std::size_t offset) {
  std::int32_t v = 0;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

// The float32 count the tensors after the header take, in 128-bit arithmetic: the header's claims
// may be anything, and nothing is allocated before this count has matched the file's size.
__int128 float_count(const Llama2cHeader& h) {
  const __int128 d = h.dim, L = h.n_layers, hid = h.hidden_dim, V = h.vocab_size;
  const __int128 kvd = h.kv_dim();
  __int128 n = V * d + 2 * L * d + 2 * L * d * d + 2 * L * kvd * d + 3 * L * hid * d + d;
  if (h.version == 0) n += static_cast<__int128>(h.seq_len) * h.head_size();  // freq_cis real + imag
  if (!h.shared_classifier) n += V * d;
  return n;
}

void check_dimensions(const Llama2cHeader& h, const std::string& source) {
  const std::pair<const char*, std::int64_t> fields[] = {
      {"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
      {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"vocab_size", h.vocab_size},
      {"seq_len", h.seq_len}};
  for (const auto& [name, value] : fields)
    if (value <= 0)
      throw InputError(fmt::format("{}: llama2.c header field {} = {} must be positive", source, name, value));
  if (h.dim % h.n_heads != 0)
    throw InputError(
        fmt::format("{}: llama2.c header field n_heads = {} does not divide dim = {}", source, h.n_heads, h.dim));
  if (h.n_heads % h.n_kv_heads != 0)
    throw InputError(fmt::format("{}: llama2.c header field n_kv_heads = {} does not divide n_heads = {}", source,
                                 h.n_kv_heads, h.n_heads));
  if (h.head_size() % 2 != 0)
    throw InputError(fmt::format("{}: llama2.c head size dim / n_heads = {} is odd; rotary embeddings rotate pairs",
                                 source, h.head_size()));
}

void check_size(const Llama2cHeader& h, std::int64_t file_bytes, const std::string& source) {
  const __int128 expected = h.header_bytes + 4 * float_count(h);
  if (expected != file_bytes) {
    const bool huge = expected > std::numeric_limits<std::int64_t>::max();
    throw InputError(fmt::format(
        "{}: the llama2.c {} header (dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads {}, vocab_size {}, "
        "seq_len {}, {} classifier) needs {} bytes, the file has {} bytes",
        source, h.version == 0 ? "legacy" : "version 1", h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads,
        h.vocab_size, h.seq_len, h.shared_classifier ? "shared" : "unshared",
        huge ? std::string("more than 2^63") : std::to_string(static_cast<std::int64_t>(expected)), file_bytes));
  }
}

// The tensors in file order. Legacy (run.c's memory_map_weights): token embedding, then per-layer
// arrays rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, then rms_final, freq_cis_real, freq_cis_imag,
// then wcls if unshared. Version 1 (export.py's version1_export): the norms first (rms_att of every
// layer, rms_ffn of every layer, the final norm), then the token embedding, wq..w3, then wcls.
std::vector<Llama2cTensor> tensor_table(const Llama2cHeader& h) {
  const std::int64_t d = h.dim, hid = h.hidden_dim, kvd = h.kv_dim(), V = h.vocab_size;
  std::vector<Llama2cTensor> out;
  std::int64_t offset = h.header_bytes;
  auto add = [&](std::string name, std::vector<std::int64_t> shape, std::string role) {
    std::int64_t count = 1;
    for (auto s : shape) count *= s;
    out.push_back({std::move(name), std::move(shape), offset, std::move(role)});
    offset += 4 * count;
  };
  auto per_layer = [&](const char* name, std::vector<std::int64_t> shape, const char* role) {
    for (std::int64_t l = 0; l < h.n_layers; ++l)
      add(fmt::format("{}[{}]", name, l), shape, fmt::format("model.layers.{}.{}", l, role));
  };
  if (h.version == 1) {
    per_layer("rms_att_weight", {d}, "input_layernorm.weight");
    per_layer("rms_ffn_weight", {d}, "post_attention_layernorm.weight");
    add("rms_final_weight", {d}, "model.norm.weight");
  }
  add("token_embedding_table", {V, d}, "model.embed_tokens.weight");
  if (h.version == 0) per_layer("rms_att_weight", {d}, "input_layernorm.weight");
  per_layer("wq", {d, d}, "self_attn.q_proj.weight");
  per_layer("wk", {kvd, d}, "self_attn.k_proj.weight");
  per_layer("wv", {kvd, d}, "self_attn.v_proj.weight");
  per_layer("wo", {d, d}, "self_attn.o_proj.weight");
  if (h.version == 0) per_layer("rms_ffn_weight", {d}, "post_attention_layernorm.weight");
  per_layer("w1", {hid, d}, "mlp.gate_proj.weight");
  per_layer("w2", {d, hid}, "mlp.down_proj.weight");
  per_layer("w3", {hid, d}, "mlp.up_proj.weight");
  if (h.version == 0) {
    add("rms_final_weight", {d}, "model.norm.weight");
    // RoPE tables run.c no longer reads (it recomputes the angles); lipattn does the same.
    add("freq_cis_real", {h.seq_len, h.head_size() / 2}, "");
    add("freq_cis_imag", {h.seq_len, h.head_size() / 2}, "");
  }
  if (!h.shared_classifier) add("wcls", {V, d}, "lm_head.weight");
  return out;
}

ModelConfig config_of(const Llama2cHeader& h) {
  ModelConfig c;
  c.type = ModelType::Llama;
  c.model_type_name = "llama2.c";
  c.hidden_size = h.dim;
  c.num_heads = h.n_heads;
  c.num_kv_heads = h.n_kv_heads;
  c.num_layers = h.n_layers;
  c.intermediate_size = h.hidden_dim;
  c.max_positions = h.seq_len;
  c.positions_source = "seq_len";
  c.vocab_size = h.vocab_size;
  c.layer_norm_eps = 1e-5;  // run.c's rmsnorm and model.py's ModelArgs.norm_eps
  c.activation = Activation::Silu;
  c.activation_name = "silu";
  c.rope_style = RopeStyle::Interleaved;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = h.shared_classifier;
  c.attention_bias = false;
  return c;
}

}  // namespace

Llama2cHeader parse_llama2c_header(const std::vector<char>& head_in, std::int64_t file_bytes,
                                   const std::string& source) {
  // The header fields are read from a fixed 256-byte copy, so a short `head` cannot be read past.
  std::vector<char> head(static_cast<std::size_t>(kVersionedHeader), 0);
  std::copy_n(head_in.begin(), std::min(head_in.size(), head.size()), head.begin());
  if (file_bytes < kLegacyHeader)
    throw InputError(fmt::format("{}: {} bytes is too short for a llama2.c checkpoint (a header alone is {} bytes)",
                                 source, file_bytes, kLegacyHeader));
  Llama2cHeader h;
  std::size_t params = 0;
  std::uint32_t magic = 0;
  std::memcpy(&magic, head.data(), sizeof magic);
  if (magic == kMagic) {
    if (file_bytes < kVersionedHeader)
      throw InputError(fmt::format("{}: {} bytes is too short for a versioned llama2.c checkpoint ({}-byte header)",
                                   source, file_bytes, kVersionedHeader));
    h.version = int32_at(head, 4);
    if (h.version == 2)
      throw InputError(
          fmt::format("{}: llama2.c version 2 (int8 Q8_0) checkpoints are not supported; export "
                      "float32 with export.py --version 1 (or 0, the legacy format)",
                      source));
    if (h.version != 1)
      throw InputError(
          fmt::format("{}: llama2.c header field version = {} is unknown (lipattn reads version 1 "
                      "and the legacy format)",
                      source, h.version));
    params = 8;
    h.shared_classifier = head[36] != 0;
    h.header_bytes = kVersionedHeader;
  } else {
    h.header_bytes = kLegacyHeader;
  }
  h.dim = int32_at(head, params);
  h.hidden_dim = int32_at(head, params + 4);
  h.n_layers = int32_at(head, params + 8);
  h.n_heads = int32_at(head, params + 12);
  h.n_kv_heads = int32_at(head, params + 16);
  h.vocab_size = int32_at(head, params + 20);
  h.seq_len = int32_at(head, params + 24);
  if (h.version == 0) {
    // run.c: a negative vocab_size says the classifier is not shared and wcls follows.
    h.shared_classifier = h.vocab_size > 0;
    if (h.vocab_size < 0) h.vocab_size = -h.vocab_size;
  }
  check_dimensions(h, source);
  check_size(h, file_bytes, source);
  return h;
}

Llama2cCheckpoint Llama2cCheckpoint::open(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) throw InputError(fmt::format("{}: cannot open the llama2.c checkpoint", path.string()));
  std::vector<char> head(static_cast<std::size_t>(kVersionedHeader), 0);
  in.read(head.data(), static_cast<std::streamsize>(std::min<std::uintmax_t>(size, head.size())));
  return from_header(head, static_cast<std::int64_t>(size), path);
}

Llama2cCheckpoint Llama2cCheckpoint::from_header(const std::vector<char>& head, std::int64_t file_bytes,
                                                 const fs::path& path) {
  Llama2cCheckpoint c;
  c.path_ = path;
  c.header_ = parse_llama2c_header(head, file_bytes, path.string());
  c.config_ = config_of(c.header_);
  c.tensors_ = tensor_table(c.header_);
  return c;
}

const Llama2cTensor* Llama2cCheckpoint::find(const std::string& hf_name) const {
  for (const auto& t : tensors_)
    if (t.role == hf_name) return &t;
  return nullptr;
}

std::vector<double> Llama2cCheckpoint::values(const std::string& hf_name) const {
  const Llama2cTensor* t = find(hf_name);
  if (!t) throw InputError(fmt::format("{}: the llama2.c checkpoint has no tensor for '{}'", path_.string(), hf_name));
  std::int64_t count = 1;
  for (auto s : t->shape) count *= s;
  std::vector<float> raw(static_cast<std::size_t>(count));
  std::ifstream in(path_, std::ios::binary);
  in.seekg(t->offset);
  in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(4 * count));
  if (!in) throw InputError(fmt::format("{}: cannot read tensor {} at byte {}", path_.string(), t->name, t->offset));
  return std::vector<double>(raw.begin(), raw.end());
}

}  // namespace lipattn::models
