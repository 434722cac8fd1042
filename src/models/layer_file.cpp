#include "models/layer_file.h"

#include <cmath>
#include <random>

#include <fmt/core.h>

#include "common/error.h"
#include "attention/weights.h"
#include "io/safetensors.h"

namespace lipattn::models {

NormKind parse_norm_kind(const std::string& name, const std::string& field) {
  if (name == "layernorm") return NormKind::LayerNorm;
  if (name == "rmsnorm") return NormKind::RmsNorm;
  throw InputError(fmt::format("{} must be layernorm or rmsnorm, got '{}'", field, name), field);
}

namespace {

NormWeights load_norm(const io::SafetensorsFile& file, const std::string& prefix, NormKind kind, Index d,
                      double eps) {
  NormWeights w;
  w.kind = kind;
  w.eps = eps;
  w.gamma = file.has(prefix + ".weight") ? file.vector(prefix + ".weight") : VectorD::Ones(d);
  if (file.has(prefix + ".bias")) w.beta = file.vector(prefix + ".bias");
  if (w.gamma.size() != d)
    throw InputError(fmt::format("tensor '{}.weight' has {} entries, expected {}", prefix, w.gamma.size(), d));
  if (w.beta.size() && w.beta.size() != d)
    throw InputError(fmt::format("tensor '{}.bias' has {} entries, expected {}", prefix, w.beta.size(), d));
  return w;
}

// The LLaMA-family options of an nn.Linear-form layer (docs/formats.md, "Layer files"): K/V heads from
// k.weight's rows, RoPE from the metadata keys `rope` and `rope_theta`, QK-norm from the tensors
// q_norm.weight and k_norm.weight with the metadata key `qk_norm_eps` (default 1e-6, Qwen3's).
void load_llama_options(const io::SafetensorsFile& file, AttentionWeights& w) {
  const auto& meta = file.metadata();
  const Index k = w.heads > 0 && w.w_q.rows() % w.heads == 0 ? w.w_q.rows() / w.heads : 0;
  if (k > 0 && w.w_k.rows() != w.w_q.rows()) {
    if (w.w_k.rows() % k != 0)
      throw InputError(
          fmt::format("tensor 'k.weight' has {} rows: grouped K/V heads need a multiple of k = {} (q.weight "
                      "has {} rows for {} heads)",
                      w.w_k.rows(), k, w.w_q.rows(), w.heads));
    w.kv_heads = w.w_k.rows() / k;
  }
  auto number = [&](const std::string& key, double fallback) {
    const auto it = meta.find(key);
    if (it == meta.end()) return fallback;
    try {
      std::size_t used = 0;
      const double v = std::stod(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    throw InputError(fmt::format("metadata '{}' must be a number, got '{}'", key, it->second));
  };
  if (const auto it = meta.find("rope"); it != meta.end()) {
    try {
      w.rope.style = parse_rope_style(it->second);
    } catch (const InputError& e) {
      throw InputError(fmt::format("metadata 'rope': {}", e.what()));
    }
  }
  w.rope.theta = number("rope_theta", w.rope.theta);
  if (!w.rope.enabled() && meta.count("rope_theta"))
    throw InputError("metadata 'rope_theta' is given but 'rope' is not: set 'rope' to interleaved or rotate_half");
  const bool q = file.has("q_norm.weight"), kn = file.has("k_norm.weight");
  if (q != kn)
    throw InputError(fmt::format("QK-norm needs both 'q_norm.weight' and 'k_norm.weight'; '{}' is missing",
                                 q ? "k_norm.weight" : "q_norm.weight"));
  if (q) {
    const double eps = number("qk_norm_eps", 1e-6);
    for (auto [name, slot] : {std::pair{"q_norm.weight", &w.q_norm}, std::pair{"k_norm.weight", &w.k_norm}}) {
      NormWeights n;
      n.kind = NormKind::RmsNorm;
      n.eps = eps;
      n.gamma = file.vector(name);
      *slot = n;
    }
  }
}

LayerSpec load(const io::SafetensorsFile& file, const LayerFileOptions& o) {
  LayerSpec spec;
  const bool paper = file.has("A") || file.has("V");
  if (paper) {
    if (!file.has("A") || !file.has("V"))
      throw InputError(fmt::format("the paper's single-head form needs both tensors 'A' and 'V'; '{}' is missing",
                                   file.has("A") ? "V" : "A"));
    if (o.heads != 1)
      throw InputError(fmt::format("heads = {} does not apply: a file with 'A' and 'V' holds a single head", o.heads),
                       "heads");
    for (const char* name : {"q.weight", "k.weight", "v.weight", "o.weight", "q_norm.weight", "k_norm.weight"})
      if (file.has(name))
        throw InputError(fmt::format("the file holds both 'A'/'V' and '{}': use one form or the other", name));
    for (const char* key : {"rope", "rope_theta", "qk_norm_eps"})
      if (file.metadata().count(key))
        throw InputError(
            fmt::format("metadata '{}' does not apply to the paper's form 'A'/'V' (no projections to "
                        "rotate or normalise): use q.weight, k.weight, v.weight",
                        key));
    spec.attention = AttentionWeights::paper_form(file.matrix("A"), file.matrix("V"), o.causal);
  } else {
    for (const char* name : {"q.weight", "k.weight", "v.weight"})
      if (!file.has(name))
        throw InputError(fmt::format("tensor '{}' is missing (expected q.weight, k.weight, v.weight in nn.Linear "
                                     "layout (out, in), optionally o.weight and biases; or 'A' and 'V')",
                                     name));
    AttentionWeights& w = spec.attention;
    w.heads = o.heads;
    w.causal = o.causal;
    w.w_q = file.matrix("q.weight");
    w.w_k = file.matrix("k.weight");
    w.w_v = file.matrix("v.weight");
    if (file.has("o.weight")) w.w_o = file.matrix("o.weight");
    if (file.has("q.bias")) w.b_q = file.vector("q.bias");
    if (file.has("k.bias")) w.b_k = file.vector("k.bias");
    if (file.has("v.bias")) w.b_v = file.vector("v.bias");
    if (file.has("o.bias")) w.b_o = file.vector("o.bias");
    load_llama_options(file, w);
  }
  spec.attention.validate();
  const Index d = spec.attention.input_dim();
  for (const auto& [prefix, wanted] :
       {std::pair{std::string("pre_norm"), o.pre_norm}, std::pair{std::string("post_norm"), o.post_norm}}) {
    const bool stored = file.has(prefix + ".weight") || file.has(prefix + ".bias");
    if (stored && !wanted)
      throw InputError(fmt::format("the file holds '{}.*' tensors but {} was not given: choose layernorm or "
                                   "rmsnorm to measure with them",
                                   prefix, prefix),
                       prefix);
  }
  if (o.pre_norm) spec.pre_norm = load_norm(file, "pre_norm", *o.pre_norm, d, o.norm_eps);
  spec.residual = o.residual;
  if (o.post_norm)
    spec.post_norm = load_norm(file, "post_norm", *o.post_norm, spec.attention.output_dim(), o.norm_eps);
  spec.validate();
  return spec;
}

}  // namespace

LayerSpec load_layer_file(const std::filesystem::path& path, const LayerFileOptions& options) {
  return load_layer_file(io::SafetensorsFile::open(path), options);
}

LayerSpec load_layer_file(const io::SafetensorsFile& file, const LayerFileOptions& options) {
  const std::string path = file.path().string();
  try {
    return load(file, options);
  } catch (const InputError& e) {
    const std::string message = e.what();
    if (message.find(path) != std::string::npos) throw;
    throw InputError(fmt::format("{}: {}", path, message), e.field());  // the field stays for the CLI
  }
}

LayerSpec random_gpt2_attention_layer(std::uint64_t seed, Index d, Index heads) {
  std::mt19937_64 rng(seed);
  auto normal = [&](Index rows, Index cols, double sd) {
    std::normal_distribution<double> dist(0.0, sd);
    MatrixD m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = dist(rng);
    return m;
  };
  LayerSpec spec;
  AttentionWeights& w = spec.attention;
  w.heads = heads;
  w.causal = true;
  w.w_q = normal(d, d, 0.02);
  w.w_k = normal(d, d, 0.02);
  w.w_v = normal(d, d, 0.02);
  w.w_o = normal(d, d, 0.02 / std::sqrt(2.0 * 12));  // GPT-2 scales c_proj by 1/√(2·n_layer)
  w.b_q = w.b_k = w.b_v = w.b_o = VectorD::Zero(d);
  return spec;
}

}  // namespace lipattn::models
