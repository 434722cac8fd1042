// The composition analysis of whole blocks (docs/theory.md §10): where the top singular vector
// lives, a certified per-layer upper bound from src/bounds, and the typed records with their JSON.
#include <algorithm>
#include <numeric>

#include <fmt/core.h>

#include "bounds/bounds.h"
#include "common/json.h"
#include "models/measure_model.h"

namespace lipattn::models {

Concentration token_concentration(const VectorD& right_vector, Index n, int top) {
  Concentration c;
  if (n <= 0 || right_vector.size() == 0 || right_vector.size() % n != 0) return c;
  const Index d = right_vector.size() / n;
  const double total = right_vector.squaredNorm();
  if (!(total > 0)) return c;
  c.shares.resize(n);
  double sum_squares = 0;
  for (Index i = 0; i < n; ++i) {
    c.shares[i] = right_vector.segment(i * d, d).squaredNorm() / total;
    sum_squares += c.shares[i] * c.shares[i];
  }
  c.effective_tokens = 1.0 / sum_squares;  // participation ratio, §10.2
  std::vector<Index> order(n);
  std::iota(order.begin(), order.end(), Index(0));
  const Index kept = std::min<Index>(n, std::max(top, 0));
  std::partial_sort(order.begin(), order.begin() + kept, order.end(),
                    [&](Index a, Index b) { return c.shares[a] > c.shares[b]; });
  for (Index k = 0; k < kept; ++k) c.top.push_back({order[k], c.shares[order[k]]});
  return c;
}

namespace {

// The best certified local bound of an attention sub-block at X, or nullopt with the reason.
std::optional<double> attention_bound(const LayerSpec& spec, const MatrixD& X, std::string* why_not) {
  const BoundReport report = local_bounds(spec, X);
  if (!report.best_name.empty() && std::isfinite(report.best)) return report.best;
  if (why_not) *why_not = "attention: " + (report.notes.empty() ? std::string("no bound applies") : report.notes[0]);
  return std::nullopt;
}

}  // namespace

// §10.1: pre-norm layers (GPT-2, LLaMA) x ↦ y = x + attn(n₁(x)) ↦ y + mlp(n₂(y)):
//   ‖D layer‖ ≤ B_attn(x) · (1 + ‖Dn₂(y)‖ · Lip(mlp));
// post-norm layers (BERT) x ↦ a = n₁(x + attn(x)) ↦ n₂(a + mlp(a)):
//   ‖D layer‖ ≤ B_attn(x) · ‖Dn₂(a + mlp(a))‖ · (1 + Lip(mlp)),
// with B_attn the best local bound of src/bounds on the attention sub-block (its norm and residual
// included), ‖Dn‖ at an input bounded by norm_local_factor, Lip(mlp) by mlp_global_bound.
std::optional<double> layer_upper_bound(const ModelWeights& model, int layer, const LayerTaps& taps,
                                        std::string* why_not) {
  const LayerWeights& L = model.layers.at(layer);
  const MlpWeights& mlp = L.mlp;
  std::string mlp_why;
  const std::optional<double> mlp_bound = mlp_global_bound(mlp, &mlp_why);
  if (!mlp_bound) {
    if (why_not) *why_not = "mlp: " + mlp_why;
    return std::nullopt;
  }
  LayerSpec spec;
  spec.attention = L.attention;
  spec.residual = true;
  const bool post_norm = model.config.type == ModelType::Bert;
  if (post_norm)
    spec.post_norm = L.attention_norm;
  else
    spec.pre_norm = L.attention_norm;
  const std::optional<double> attention = attention_bound(spec, taps.block_in, why_not);
  if (!attention) return std::nullopt;
  if (!post_norm) return *attention * (1 + norm_local_factor(L.mlp_norm, taps.mlp_in) * *mlp_bound);
  const MatrixD& a = taps.mlp_in;
  const MatrixD norm_input = a + Mlp<double>(mlp).forward(a)->output;
  return *attention * norm_local_factor(L.mlp_norm, norm_input) * (1 + *mlp_bound);
}

// ---- JSON -------------------------------------------------------------------------------------

namespace {

template <class T>
nlohmann::json optional_json(const std::optional<T>& x) {
  return x ? nlohmann::json(*x) : nlohmann::json(nullptr);
}

nlohmann::json factor_json(const CompositionFactor& f) {
  return {{"name", f.name},
          {"lipschitz", f.lipschitz},
          {"lower", f.lower},
          {"matvecs", f.matvecs},
          {"converged", f.converged},
          {"bound", f.bound ? finite_or_null(*f.bound) : nlohmann::json(nullptr)},
          {"bound_name", f.bound ? nlohmann::json(f.bound_name) : nlohmann::json(nullptr)},
          {"no_bound_reason", f.bound ? nlohmann::json(nullptr) : nlohmann::json(f.no_bound_reason)}};
}

CompositionFactor factor_from_json(const nlohmann::json& j) {
  CompositionFactor f;
  f.name = j.at("name").get<std::string>();
  f.lipschitz = number_from_json(j.at("lipschitz"), "lipschitz");
  f.lower = number_from_json(j.at("lower"), "lower");
  f.matvecs = j.at("matvecs").get<long>();
  f.converged = j.at("converged").get<bool>();
  if (!j.at("bound").is_null()) f.bound = number_from_json(j["bound"], "bound");
  if (j.at("bound_name").is_string()) f.bound_name = j["bound_name"].get<std::string>();
  if (j.at("no_bound_reason").is_string()) f.no_bound_reason = j["no_bound_reason"].get<std::string>();
  return f;
}

}  // namespace

void to_json(nlohmann::json& j, const Concentration& c) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& t : c.top) top.push_back({{"token", t.token}, {"share", t.share}});
  j = {{"effective_tokens", finite_or_null(c.effective_tokens)}, {"top", top}, {"shares", c.shares}};
}

void from_json(const nlohmann::json& j, Concentration& c) {
  c = Concentration{};
  c.effective_tokens = number_from_json(j.at("effective_tokens"), "effective_tokens");
  for (const auto& t : j.at("top")) c.top.push_back({t.at("token").get<Index>(), t.at("share").get<double>()});
  c.shares = j.at("shares").get<std::vector<double>>();
}

void to_json(nlohmann::json& j, const Composition& c) {
  nlohmann::json factors = nlohmann::json::array();
  for (const auto& f : c.factors) factors.push_back(factor_json(f));
  j = {{"factors", factors},
       {"product", c.product},
       {"ratio", finite_or_null(c.ratio)},
       {"bound_product", c.bound_product ? finite_or_null(*c.bound_product) : nlohmann::json(nullptr)},
       {"no_bound_reason", c.bound_product ? nlohmann::json(nullptr) : nlohmann::json(c.no_bound_reason)}};
}

void from_json(const nlohmann::json& j, Composition& c) {
  c = Composition{};
  for (const auto& f : j.at("factors")) c.factors.push_back(factor_from_json(f));
  c.product = number_from_json(j.at("product"), "product");
  c.ratio = number_from_json(j.at("ratio"), "ratio");
  if (!j.at("bound_product").is_null()) c.bound_product = number_from_json(j["bound_product"], "bound_product");
  if (j.at("no_bound_reason").is_string()) c.no_bound_reason = j["no_bound_reason"].get<std::string>();
}

BlockIdentity block_identity(const std::string& model, Block block, int layer, LayerRange span,
                             std::optional<int> head, int n) {
  BlockIdentity id;
  id.model = model;
  id.block = to_string(block);
  if (block == Block::Stack || block == Block::Model)
    id.layers = span;
  else
    id.layer = layer;
  id.head = head;
  id.n = n;
  return id;
}

void to_json(nlohmann::json& j, const BlockIdentity& id) {
  j = {{"model", id.model},
       {"layer", optional_json(id.layer)},
       {"layers", id.layers ? nlohmann::json::array({id.layers->first, id.layers->last}) : nlohmann::json(nullptr)},
       {"head", optional_json(id.head)},
       {"block", id.block},
       {"n", id.n}};
}

void from_json(const nlohmann::json& j, BlockIdentity& id) {
  id = BlockIdentity{};
  id.model = j.at("model").get<std::string>();
  if (!j.at("layer").is_null()) id.layer = j["layer"].get<int>();
  if (j.contains("layers") && !j["layers"].is_null())  // records before whole blocks have no "layers"
    id.layers = LayerRange{j["layers"].at(0).get<int>(), j["layers"].at(1).get<int>()};
  if (!j.at("head").is_null()) id.head = j["head"].get<int>();
  id.block = j.at("block").get<std::string>();
  id.n = j.at("n").get<int>();
}

void to_json(nlohmann::json& j, const BlockMeasurement& m) {
  j = static_cast<const BlockIdentity&>(m);
  j.update({{"sample", m.sample},
       {"radius", m.radius},
       {"lipschitz", m.lipschitz},
       {"lower", m.lower},
       {"matvecs", m.matvecs},
       {"converged", m.converged},
       {"seconds", m.seconds},
            {"concentration", m.concentration},
            {"composition", m.composition ? nlohmann::json(*m.composition) : nlohmann::json(nullptr)}});
  if (!m.storage.empty()) j["storage"] = m.storage;
}

void from_json(const nlohmann::json& j, BlockMeasurement& m) {
  m = BlockMeasurement{};
  static_cast<BlockIdentity&>(m) = j.get<BlockIdentity>();
  m.sample = j.at("sample").get<int>();
  m.radius = number_from_json(j.at("radius"), "radius");
  m.lipschitz = number_from_json(j.at("lipschitz"), "lipschitz");
  m.lower = number_from_json(j.at("lower"), "lower");
  m.matvecs = j.at("matvecs").get<long>();
  m.converged = j.at("converged").get<bool>();
  m.seconds = number_from_json(j.at("seconds"), "seconds");
  if (j.contains("storage")) m.storage = j["storage"].get<std::string>();
  if (j.contains("concentration")) m.concentration = j["concentration"].get<Concentration>();
  if (j.contains("composition") && !j["composition"].is_null()) m.composition = j["composition"].get<Composition>();
}

}  // namespace lipattn::models
