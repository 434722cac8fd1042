// Small GPT-2 and BERT checkpoints in Hugging Face's layout, written by the tests themselves, and a
// plain-loop reference forward pass that shares no code with src/models.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"

namespace fixture {

namespace fs = std::filesystem;
using Shape = std::vector<std::int64_t>;

struct Options {
  std::string type = "gpt2";  // "gpt2" | "bert"
  int d = 16, heads = 4, layers = 2, inner = 64, vocab = 50, positions = 32, type_vocab = 2;
  std::string prefix;          // "", "transformer." or "bert."
  bool gamma_beta = false;     // LayerNorm parameters stored as gamma/beta
  bool is_decoder = false;     // BERT
  std::uint32_t seed = 1;
};

struct Tensor {
  Shape shape;
  std::vector<double> values;  // row-major
};

struct Checkpoint {
  Options options;
  nlohmann::json config;
  std::map<std::string, Tensor> tensors;  // by canonical name (no prefix, weight/bias)
  std::map<std::string, std::string> stored_name;  // canonical → as written

  const Tensor& at(const std::string& name) const { return tensors.at(name); }
  double operator()(const std::string& name, std::int64_t i, std::int64_t j = -1) const {
    const Tensor& t = tensors.at(name);
    return j < 0 ? t.values[i] : t.values[i * t.shape[1] + j];
  }
};

// Values are k/128 with |k| ≤ 64 (times a power of two, plus 1 for LayerNorm weights), so F16 and BF16 store
// them exactly and every dtype loads back the same numbers.
inline Checkpoint make(const Options& o) {
  Checkpoint c;
  c.options = o;
  std::mt19937 rng(o.seed);
  std::uniform_int_distribution<int> step(-64, 64);
  const bool gpt2 = o.type == "gpt2";
  auto add = [&](const std::string& name, Shape shape, double scale, double offset = 0.0, bool norm = false) {
    std::int64_t count = 1;
    for (auto s : shape) count *= s;
    Tensor t;
    t.shape = shape;
    for (std::int64_t i = 0; i < count; ++i) t.values.push_back(offset + scale * step(rng) / 128.0);
    c.tensors[name] = t;
    std::string stored = name;
    if (norm && o.gamma_beta) {
      if (stored.ends_with(".weight")) stored = stored.substr(0, stored.size() - 7) + ".gamma";
      else if (stored.ends_with(".bias")) stored = stored.substr(0, stored.size() - 5) + ".beta";
    }
    c.stored_name[name] = o.prefix + stored;
  };
  auto norm = [&](const std::string& p) {
    add(p + ".weight", {o.d}, 1.0, 1.0, true);  // 1 + k/128: still exact in BF16
    add(p + ".bias", {o.d}, 0.25, 0.0, true);
  };
  const std::int64_t d = o.d;
  if (gpt2) {
    c.config = {{"model_type", "gpt2"}, {"n_embd", o.d},          {"n_head", o.heads},
                {"n_layer", o.layers},  {"n_positions", o.positions}, {"vocab_size", o.vocab},
                {"n_inner", o.inner},   {"activation_function", "gelu_new"}, {"layer_norm_epsilon", 1e-5}};
    add("wte.weight", {o.vocab, d}, 1.0);
    add("wpe.weight", {o.positions, d}, 0.5);
    for (int l = 0; l < o.layers; ++l) {
      const std::string h = "h." + std::to_string(l) + ".";
      norm(h + "ln_1");
      add(h + "attn.c_attn.weight", {d, 3 * d}, 0.5);
      add(h + "attn.c_attn.bias", {3 * d}, 0.25);
      add(h + "attn.c_proj.weight", {d, d}, 0.25);
      add(h + "attn.c_proj.bias", {d}, 0.125);
      norm(h + "ln_2");
      add(h + "mlp.c_fc.weight", {d, o.inner}, 0.25);
      add(h + "mlp.c_fc.bias", {o.inner}, 0.125);
      add(h + "mlp.c_proj.weight", {o.inner, d}, 0.125);
      add(h + "mlp.c_proj.bias", {d}, 0.125);
    }
    norm("ln_f");
  } else {
    c.config = {{"model_type", "bert"},          {"hidden_size", o.d},  {"num_attention_heads", o.heads},
                {"num_hidden_layers", o.layers}, {"intermediate_size", o.inner},
                {"max_position_embeddings", o.positions}, {"vocab_size", o.vocab},
                {"type_vocab_size", o.type_vocab}, {"hidden_act", "gelu"}, {"layer_norm_eps", 1e-12},
                {"is_decoder", o.is_decoder}};
    add("embeddings.word_embeddings.weight", {o.vocab, d}, 1.0);
    add("embeddings.position_embeddings.weight", {o.positions, d}, 0.5);
    add("embeddings.token_type_embeddings.weight", {o.type_vocab, d}, 0.5);
    norm("embeddings.LayerNorm");
    for (int l = 0; l < o.layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      for (const char* m : {"query", "key", "value"}) {
        add(p + "attention.self." + m + ".weight", {d, d}, 0.5);
        add(p + "attention.self." + m + ".bias", {d}, 0.25);
      }
      add(p + "attention.output.dense.weight", {d, d}, 0.25);
      add(p + "attention.output.dense.bias", {d}, 0.125);
      norm(p + "attention.output.LayerNorm");
      add(p + "intermediate.dense.weight", {o.inner, d}, 0.25);
      add(p + "intermediate.dense.bias", {o.inner}, 0.125);
      add(p + "output.dense.weight", {d, o.inner}, 0.125);
      add(p + "output.dense.bias", {d}, 0.125);
      norm(p + "output.LayerNorm");
    }
    // Heads a BertForPreTraining checkpoint also carries; BertModel ignores them.
    add("pooler.dense.weight", {d, d}, 0.5);
    add("pooler.dense.bias", {d}, 0.5);
    c.tensors["cls.predictions.bias"] = {{o.vocab}, std::vector<double>(o.vocab, 0.5)};
    c.stored_name["cls.predictions.bias"] = "cls.predictions.bias";
  }
  return c;
}

inline fs::path temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path dir = fs::temp_directory_path() /
                 ("lipattn_models_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline void write_config(const fs::path& dir, const nlohmann::json& config) {
  std::ofstream(dir / "config.json") << config.dump(2);
}

// Writes config.json and model.safetensors; `skip` names canonical tensors to leave out.
inline fs::path write(const Checkpoint& c, lipattn::io::DType dtype, const std::string& tag,
                      const std::vector<std::string>& skip = {}) {
  const fs::path dir = temp_dir(tag);
  write_config(dir, c.config);
  std::vector<lipattn::io::TensorToWrite> out;
  for (const auto& [name, t] : c.tensors) {
    if (std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
    out.push_back({c.stored_name.at(name), t.shape, t.values});
  }
  lipattn::io::write_safetensors(dir / "model.safetensors", out, dtype);
  return dir;
}

// ---- reference forward pass: plain loops over the tensors as stored ---------------------------

using Mat = std::vector<std::vector<double>>;  // [n][d]

struct Reference {
  std::vector<Mat> block_in, attn_in, attn_out;
  Mat hidden;
};

inline Mat zeros(std::size_t n, std::size_t d) { return Mat(n, std::vector<double>(d, 0.0)); }

inline Mat layer_norm(const Checkpoint& c, const Mat& x, const std::string& p, double eps) {
  Mat y = x;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t d = x[i].size();
    double mean = 0, var = 0;
    for (double v : x[i]) mean += v;
    mean /= d;
    for (double v : x[i]) var += (v - mean) * (v - mean);
    var /= d;
    for (std::size_t j = 0; j < d; ++j)
      y[i][j] = (x[i][j] - mean) / std::sqrt(var + eps) * c(p + ".weight", j) + c(p + ".bias", j);
  }
  return y;
}

// y[i][o] = Σ_k x[i][k] W[k][o] + b[o] with W stored (in, out) (Conv1D), or W[o][k] (nn.Linear).
inline Mat affine(const Checkpoint& c, const Mat& x, const std::string& w, const std::string& b, bool conv1d) {
  const Tensor& W = c.at(w);
  const std::size_t out = conv1d ? W.shape[1] : W.shape[0], in = conv1d ? W.shape[0] : W.shape[1];
  Mat y = zeros(x.size(), out);
  for (std::size_t i = 0; i < x.size(); ++i)
    for (std::size_t o = 0; o < out; ++o) {
      double s = c(b, o);
      for (std::size_t k = 0; k < in; ++k) s += x[i][k] * (conv1d ? c(w, k, o) : c(w, o, k));
      y[i][o] = s;
    }
  return y;
}

// One head: columns [q0, q0+k) of Q, K, V; returns n × k of Σ_j P_ij v_j.
inline Mat head_output(const Mat& Q, const Mat& K, const Mat& V, std::size_t q0, std::size_t k, bool causal) {
  const std::size_t n = Q.size();
  Mat out = zeros(n, k);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<double> s(n, -INFINITY);
    double top = -INFINITY;
    for (std::size_t j = 0; j < n; ++j) {
      if (causal && j > i) continue;
      double dot = 0;
      for (std::size_t t = 0; t < k; ++t) dot += Q[i][q0 + t] * K[j][q0 + t];
      s[j] = dot / std::sqrt(static_cast<double>(k));
      top = std::max(top, s[j]);
    }
    double total = 0;
    for (std::size_t j = 0; j < n; ++j) total += (s[j] = std::exp(s[j] - top));
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t t = 0; t < k; ++t) out[i][t] += s[j] / total * V[j][q0 + t];
  }
  return out;
}

// Concatenated head outputs before W_O, from Q, K, V (n × d each).
inline Mat heads_concat(const Mat& Q, const Mat& K, const Mat& V, int heads, bool causal) {
  const std::size_t d = Q[0].size(), k = d / heads;
  Mat out = zeros(Q.size(), d);
  for (int h = 0; h < heads; ++h) {
    Mat o = head_output(Q, K, V, h * k, k, causal);
    for (std::size_t i = 0; i < Q.size(); ++i)
      for (std::size_t t = 0; t < k; ++t) out[i][h * k + t] = o[i][t];
  }
  return out;
}

inline double gelu_tanh(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
inline double gelu_erf(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

inline Mat add(const Mat& a, const Mat& b) {
  Mat y = a;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) y[i][j] += b[i][j];
  return y;
}

inline Reference reference_forward(const Checkpoint& c, const std::vector<int>& ids, bool force_causal = false) {
  const Options& o = c.options;
  const std::size_t n = ids.size(), d = o.d;
  Reference r;
  Mat x = zeros(n, d);
  if (o.type == "gpt2") {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j) x[i][j] = c("wte.weight", ids[i], j) + c("wpe.weight", i, j);
    for (int l = 0; l < o.layers; ++l) {
      const std::string h = "h." + std::to_string(l) + ".";
      r.block_in.push_back(x);
      Mat a = layer_norm(c, x, h + "ln_1", 1e-5);
      r.attn_in.push_back(a);
      Mat qkv = affine(c, a, h + "attn.c_attn.weight", h + "attn.c_attn.bias", true);
      Mat Q = zeros(n, d), K = zeros(n, d), V = zeros(n, d);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) {
          Q[i][j] = qkv[i][j];
          K[i][j] = qkv[i][d + j];
          V[i][j] = qkv[i][2 * d + j];
        }
      Mat attn = affine(c, heads_concat(Q, K, V, o.heads, true), h + "attn.c_proj.weight", h + "attn.c_proj.bias", true);
      r.attn_out.push_back(attn);
      x = add(x, attn);
      Mat m = affine(c, layer_norm(c, x, h + "ln_2", 1e-5), h + "mlp.c_fc.weight", h + "mlp.c_fc.bias", true);
      for (auto& row : m)
        for (auto& v : row) v = gelu_tanh(v);
      x = add(x, affine(c, m, h + "mlp.c_proj.weight", h + "mlp.c_proj.bias", true));
    }
    r.hidden = layer_norm(c, x, "ln_f", 1e-5);
  } else {
    const bool causal = o.is_decoder || force_causal;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j)
        x[i][j] = c("embeddings.word_embeddings.weight", ids[i], j) + c("embeddings.position_embeddings.weight", i, j) +
                  c("embeddings.token_type_embeddings.weight", 0, j);
    x = layer_norm(c, x, "embeddings.LayerNorm", 1e-12);
    for (int l = 0; l < o.layers; ++l) {
      const std::string p = "encoder.layer." + std::to_string(l) + ".";
      r.block_in.push_back(x);
      r.attn_in.push_back(x);
      Mat Q = affine(c, x, p + "attention.self.query.weight", p + "attention.self.query.bias", false);
      Mat K = affine(c, x, p + "attention.self.key.weight", p + "attention.self.key.bias", false);
      Mat V = affine(c, x, p + "attention.self.value.weight", p + "attention.self.value.bias", false);
      Mat s = affine(c, heads_concat(Q, K, V, o.heads, causal), p + "attention.output.dense.weight",
                     p + "attention.output.dense.bias", false);
      Mat a = layer_norm(c, add(s, x), p + "attention.output.LayerNorm", 1e-12);
      r.attn_out.push_back(a);
      Mat m = affine(c, a, p + "intermediate.dense.weight", p + "intermediate.dense.bias", false);
      for (auto& row : m)
        for (auto& v : row) v = gelu_erf(v);
      x = layer_norm(c, add(affine(c, m, p + "output.dense.weight", p + "output.dense.bias", false), a),
                     p + "output.LayerNorm", 1e-12);
    }
    r.hidden = x;
  }
  return r;
}

}  // namespace fixture
