#include "models/layer_file.h"

#include <cmath>
#include <random>

#include <fmt/core.h>

#include "common/error.h"
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
    for (const char* name : {"q.weight", "k.weight", "v.weight", "o.weight"})
      if (file.has(name))
        throw InputError(fmt::format("the file holds both 'A'/'V' and '{}': use one form or the other", name));
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
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  try {
    return load(file, options);
  } catch (const InputError& e) {
    const std::string message = e.what();
    if (message.find(path.string()) != std::string::npos) throw;
    throw InputError(fmt::format("{}: {}", path.string(), message), e.field());  // the field stays for the CLI
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
