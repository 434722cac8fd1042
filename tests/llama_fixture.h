// The shipped stories260K (llama2.c legacy format) read by the tests' own parser, and copies of it the
// tests write: the Hugging Face LLaMA folder that transformers' convert script would make (q/k rows
// permuted per head, rope "rotate half"), sharded or not, and llama2.c's other layouts (version 1
// export, unshared classifier). Shares no code with src/models.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "models_fixture.h"  // temp_dir
#include "shared_data.h"

namespace llama_fixture {

namespace fs = std::filesystem;

inline const std::string kStoriesBin = lipattn::testing::kSharedData + "/stories260K/stories260K.bin";
inline const std::string kStoriesTokenizer = lipattn::testing::kSharedData + "/stories260K/tok512.bin";

struct Array {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

// stories260K as run.c reads it: the 7 header ints and every tensor by run.c's name ("wq" holds all
// layers: [L][dim][dim]).
struct Llama2c {
  int dim, hidden, layers, heads, kv_heads, vocab, seq_len;
  std::map<std::string, Array> t;
  int head_dim() const { return dim / heads; }
  int kv_dim() const { return head_dim() * kv_heads; }
};

inline Llama2c read_stories() {
  std::ifstream in(kStoriesBin, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Llama2c m;
  int h[7];
  std::memcpy(h, bytes.data(), sizeof h);
  m.dim = h[0], m.hidden = h[1], m.layers = h[2], m.heads = h[3], m.kv_heads = h[4], m.vocab = h[5], m.seq_len = h[6];
  std::size_t offset = sizeof h;
  const std::int64_t d = m.dim, L = m.layers, hd = m.hidden, kvd = m.kv_dim(), V = m.vocab, hs2 = m.head_dim() / 2;
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>> order{{"token_embedding_table", {V, d}},
                                                                             {"rms_att_weight", {L, d}},
                                                                             {"wq", {L, d, d}},
                                                                             {"wk", {L, kvd, d}},
                                                                             {"wv", {L, kvd, d}},
                                                                             {"wo", {L, d, d}},
                                                                             {"rms_ffn_weight", {L, d}},
                                                                             {"w1", {L, hd, d}},
                                                                             {"w2", {L, d, hd}},
                                                                             {"w3", {L, hd, d}},
                                                                             {"rms_final_weight", {d}},
                                                                             {"freq_cis_real", {m.seq_len, hs2}},
                                                                             {"freq_cis_imag", {m.seq_len, hs2}}};
  for (const auto& [name, shape] : order) {
    std::int64_t count = 1;
    for (auto s : shape) count *= s;
    Array a{shape, std::vector<float>(static_cast<std::size_t>(count))};
    std::memcpy(a.values.data(), bytes.data() + offset, 4 * count);
    offset += 4 * count;
    m.t[name] = a;
  }
  return m;
}

// Layer l's slice of a per-layer array, as doubles.
inline std::vector<double> layer_slice(const Array& a, int l) {
  std::size_t per = a.values.size() / a.shape[0];
  return std::vector<double>(a.values.begin() + l * per, a.values.begin() + (l + 1) * per);
}

// transformers' convert_llama_weights_to_hf.py permute(): w.view(heads, k/2, 2, d).transpose(1, 2)
// .reshape(heads·k, d), so HF row h·k + a·k/2 + i is llama2.c row h·k + 2i + a.
inline std::vector<double> permute_rows(const std::vector<double>& w, int heads, int head_dim, int cols) {
  std::vector<double> out(w.size());
  for (int h = 0; h < heads; ++h)
    for (int a = 0; a < 2; ++a)
      for (int i = 0; i < head_dim / 2; ++i) {
        const int to = h * head_dim + a * head_dim / 2 + i, from = h * head_dim + 2 * i + a;
        std::copy_n(w.begin() + from * cols, cols, out.begin() + to * cols);
      }
  return out;
}

inline nlohmann::json hf_config(const Llama2c& m) {
  return {{"model_type", "llama"},
          {"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", m.dim},
          {"intermediate_size", m.hidden},
          {"num_hidden_layers", m.layers},
          {"num_attention_heads", m.heads},
          {"num_key_value_heads", m.kv_heads},
          {"vocab_size", m.vocab},
          {"max_position_embeddings", m.seq_len},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"rope_scaling", nullptr},
          {"tie_word_embeddings", true},
          {"hidden_act", "silu"},
          {"attention_bias", false},
          {"bos_token_id", 1},
          {"eos_token_id", 2},
          {"torch_dtype", "float32"}};
}

// The HF tensors of stories260K, by name, in HF's layout.
inline std::vector<lipattn::io::TensorToWrite> hf_tensors(const Llama2c& m) {
  std::vector<lipattn::io::TensorToWrite> out;
  const std::int64_t d = m.dim, hd = m.hidden, kvd = m.kv_dim();
  auto whole = [](const Array& a) { return std::vector<double>(a.values.begin(), a.values.end()); };
  out.push_back({"model.embed_tokens.weight", {m.vocab, d}, whole(m.t.at("token_embedding_table"))});
  for (int l = 0; l < m.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto slice = [&](const char* name) { return layer_slice(m.t.at(name), l); };
    out.push_back({p + "input_layernorm.weight", {d}, slice("rms_att_weight")});
    out.push_back({p + "self_attn.q_proj.weight", {d, d}, permute_rows(slice("wq"), m.heads, m.head_dim(), m.dim)});
    out.push_back(
        {p + "self_attn.k_proj.weight", {kvd, d}, permute_rows(slice("wk"), m.kv_heads, m.head_dim(), m.dim)});
    out.push_back({p + "self_attn.v_proj.weight", {kvd, d}, slice("wv")});
    out.push_back({p + "self_attn.o_proj.weight", {d, d}, slice("wo")});
    out.push_back({p + "post_attention_layernorm.weight", {d}, slice("rms_ffn_weight")});
    out.push_back({p + "mlp.gate_proj.weight", {hd, d}, slice("w1")});
    out.push_back({p + "mlp.down_proj.weight", {d, hd}, slice("w2")});
    out.push_back({p + "mlp.up_proj.weight", {hd, d}, slice("w3")});
  }
  out.push_back({"model.norm.weight", {d}, whole(m.t.at("rms_final_weight"))});
  return out;
}

// Writes the HF-format copy of stories260K: config.json and model.safetensors (float32, exact), or
// with `shards` = 2 model-0000{1,2}-of-00002.safetensors and model.safetensors.index.json. Returns
// the folder.
inline fs::path write_hf_stories(const std::string& tag = "hf_stories", int shards = 1) {
  const Llama2c m = read_stories();
  const fs::path dir = fixture::temp_dir(tag);
  fixture::write_config(dir, hf_config(m));
  const auto tensors = hf_tensors(m);
  if (shards == 1) {
    lipattn::io::write_safetensors(dir / "model.safetensors", tensors, lipattn::io::DType::F32);
    return dir;
  }
  nlohmann::json index{{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (int s = 0; s < shards; ++s) {
    const std::string file =
        "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    std::vector<lipattn::io::TensorToWrite> part;
    for (std::size_t i = s; i < tensors.size(); i += shards) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].name] = file;
    }
    lipattn::io::write_safetensors(dir / file, part, lipattn::io::DType::F32);
  }
  std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
  return dir;
}

inline void write_bytes(const fs::path& path, const std::vector<char>& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<char> read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

template <class T>
void append(std::vector<char>& out, const T& v) {
  const char* p = reinterpret_cast<const char*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

inline void append_floats(std::vector<char>& out, const std::vector<float>& v) {
  const char* p = reinterpret_cast<const char*>(v.data());
  out.insert(out.end(), p, p + 4 * v.size());
}

// export.py's version1_export of stories260K: magic, version 1, the 7 ints, shared flag, zero padding
// to 256 bytes, then the norms first, the embedding, wq..w3, and `wcls` when given (unshared).
inline std::vector<char> version1_bytes(const Llama2c& m, const std::vector<float>* wcls = nullptr) {
  std::vector<char> out;
  append(out, std::uint32_t{0x616b3432});
  append(out, std::int32_t{1});
  for (int v : {m.dim, m.hidden, m.layers, m.heads, m.kv_heads, m.vocab, m.seq_len}) append(out, std::int32_t{v});
  out.push_back(wcls ? 0 : 1);
  out.resize(256, 0);
  for (const char* name : {"rms_att_weight", "rms_ffn_weight", "rms_final_weight", "token_embedding_table", "wq", "wk",
                           "wv", "wo", "w1", "w2", "w3"})
    append_floats(out, m.t.at(name).values);
  if (wcls) append_floats(out, *wcls);
  return out;
}

}  // namespace llama_fixture
