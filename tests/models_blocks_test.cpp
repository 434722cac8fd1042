// Whole layers, stacks and models as one map (models/blocks.h): they reproduce the forward pass's
// taps, their derivatives pass finite differences, a dense Jacobian, the adjoint identity and the
// second-order check, a stack of one layer is the layer, and the product of per-layer constants
// bounds the stack's. measure_model on whole blocks: the composition record, the concentration, the
// per-layer bounds, the errors; attack_model on a layer around a real input.
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "bounds/bounds.h"
#include "common/error.h"
#include "file_support.h"
#include "models/attack_model.h"
#include "models/blocks.h"
#include "models/measure_model.h"
#include "models/weights.h"
#include "spectral/operator.h"
#include "spectral/spectral_norm.h"
#include "test_support.h"

namespace lipattn::models {
namespace {

using testing::random_matrix;
using testing::relative_error;

// Small random models of the three families (transformers' initialisation, seeded).
std::vector<ModelWeights> small_models() {
  const nlohmann::json gpt2 = {{"model_type", "gpt2"}, {"n_embd", 8},     {"n_head", 2},
                               {"n_layer", 3},         {"n_positions", 32}, {"vocab_size", 50}};
  const nlohmann::json bert = {{"model_type", "bert"},          {"hidden_size", 8},        {"num_attention_heads", 2},
                               {"num_hidden_layers", 3},        {"intermediate_size", 16}, {"max_position_embeddings", 32},
                               {"vocab_size", 50},              {"type_vocab_size", 2}};
  const nlohmann::json llama = {{"model_type", "llama"},    {"hidden_size", 8},        {"num_attention_heads", 4},
                                {"num_key_value_heads", 2}, {"num_hidden_layers", 3},  {"intermediate_size", 12},
                                {"max_position_embeddings", 32}, {"vocab_size", 50}, {"initializer_range", 0.3}};
  std::vector<ModelWeights> out;
  for (const auto& j : {gpt2, bert, llama}) {
    ModelConfig c = parse_config(j, "test config");
    c.initializer_range = 0.3;  // larger weights than the default make the nonlinear parts visible
    out.push_back(random_model(c, 7));
  }
  return out;
}

const std::vector<int> kIds = {3, 17, 4, 41, 9, 22};

double sigma(const MapPtr<double>& map, const MatrixD& X) {
  SpectralOptions dense;
  dense.method = SpectralMethod::Dense;
  return spectral_norm(Linearization<double>(map, X), dense).lipschitz;
}

TEST(WholeBlocks, ReproduceTheForwardTaps) {
  for (const ModelWeights& m : small_models()) {
    const ForwardResult f = run_forward(m, kIds);
    const int L = static_cast<int>(m.layers.size());
    for (int l = 0; l + 1 < L; ++l)
      EXPECT_LT(relative_error(layer_map<double>(m, l)->forward(f.layers[l].block_in)->output, f.layers[l + 1].block_in),
                1e-14)
          << to_string(m.config.type) << " layer " << l;
    EXPECT_LT(relative_error(stack_map<double>(m, 0, 2)->forward(f.layers[0].block_in)->output, f.layers[2].block_in),
              1e-14);
    EXPECT_LT(relative_error(model_map<double>(m)->forward(f.layers[0].block_in)->output, f.hidden), 1e-14)
        << to_string(m.config.type);
  }
}

TEST(WholeBlocks, DerivativesPassTheChecks) {
  std::mt19937_64 rng(1501);
  for (const ModelWeights& m : small_models()) {
    const MatrixD X = run_forward(m, kIds).layers[0].block_in;
    for (const MapPtr<double>& map : {layer_map<double>(m, 1), model_map<double>(m)}) {
      const MatrixD dX = random_matrix(rng, X.rows(), X.cols()), dY = random_matrix(rng, X.rows(), X.cols());
      const auto cache = map->forward(X);
      const MatrixD Jv = map->jvp(*cache, dX);
      EXPECT_LT(relative_error(Jv, testing::finite_difference<double>(*map, X, dX, 1e-5)), 1e-7) << map->describe();
      const double lhs = (Jv.array() * dY.array()).sum(), rhs = (dX.array() * map->vjp(*cache, dY).array()).sum();
      EXPECT_LE(std::abs(lhs - rhs), 1e-12 * Jv.norm() * dY.norm());
      EXPECT_LE(testing::second_order_error(*map, X, rng), 1e-5) << map->describe();
    }
  }
}

TEST(WholeBlocks, CompositionIsBoundedByTheProductOfLayerConstants) {
  for (const ModelWeights& m : small_models()) {
    const ForwardResult f = run_forward(m, kIds);
    const MatrixD& X = f.layers[0].block_in;
    EXPECT_NEAR(sigma(stack_map<double>(m, 1, 2), f.layers[1].block_in), sigma(layer_map<double>(m, 1), f.layers[1].block_in),
                1e-12);
    double product = 1;
    for (int l = 0; l < 3; ++l) product *= sigma(layer_map<double>(m, l), f.layers[l].block_in);
    const double exact = sigma(stack_map<double>(m, 0, 3), X);
    EXPECT_LE(exact, product * (1 + 1e-12)) << to_string(m.config.type);
    EXPECT_GT(exact, 0);
  }
}

TEST(WholeBlocks, BadRangesNameTheField) {
  const ModelWeights m = small_models()[0];
  for (auto [a, b] : std::vector<std::pair<int, int>>{{0, 0}, {2, 1}, {-1, 2}, {0, 4}}) {
    try {
      stack_map<double>(m, a, b);
      FAIL() << a << ":" << b;
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), "layers") << e.what();
    }
  }
}

// ---- the MLP sub-block, dense Jacobians -------------------------------------------------------

TEST(WholeBlocks, MlpBlockTakesTheTapToTheNextLayer) {
  for (const ModelWeights& m : small_models()) {
    const ForwardResult f = run_forward(m, kIds);
    for (int l = 0; l + 1 < 3; ++l)
      EXPECT_LT(relative_error(mlp_block_map<double>(m, l)->forward(f.layers[l].mlp_in)->output, f.layers[l + 1].block_in),
                1e-14)
          << to_string(m.config.type) << " layer " << l;
    std::mt19937_64 rng(11);
    const auto map = mlp_block_map<double>(m, 1);
    const MatrixD& X = f.layers[1].mlp_in;
    EXPECT_LE(testing::second_order_error(*map, X, rng), 1e-5) << map->describe();
  }
}

// The Jacobian assembled from jvp against central differences of forward, column by column; its σ_max
// (a dense SVD) against measure_local_lipschitz through the builder with Lanczos, f64 and f32.
TEST(WholeBlocks, DenseJacobianAgreesWithFiniteDifferencesAndTheSolver) {
  const std::vector<int> ids = {3, 17, 4};
  for (const ModelWeights& m : small_models()) {
    const ForwardResult f = run_forward(m, ids);
    struct Case {
      Block block;
      int layer;
      std::optional<LayerRange> layers;
    };
    for (const Case& c : {Case{Block::Mlp, 1, {}}, Case{Block::Layer, 2, {}}, Case{Block::Stack, 0, LayerRange{1, 3}},
                          Case{Block::Model, 0, {}}}) {
      const LayerRange span = block_layers(m.config, c.block, c.layer, c.layers);
      const MatrixD& X = block_input(f.layers[span.first], c.block);
      const MapBuilder builder = whole_block_builder(m, c.block, c.layer, c.layers);
      const MapPtr<double> map = builder.f64(AttentionMemory{});
      SCOPED_TRACE(to_string(m.config.type) + " " + to_string(c.block));
      const MatrixD J = assemble_dense(Linearization<double>(map, X));
      MatrixD fd(J.rows(), J.cols());
      for (Index k = 0; k < X.size(); ++k) {
        MatrixD E = MatrixD::Zero(X.rows(), X.cols());
        E(k / X.cols(), k % X.cols()) = 1;  // row-major flattening, as Linearization's
        const MatrixD column = testing::finite_difference<double>(*map, X, E, 1e-6);
        fd.col(k) = Eigen::Map<const VectorD>(column.data(), column.size());  // MatrixD is row-major
      }
      EXPECT_LT(relative_error(J, fd), 1e-7);
      const double dense = top_singular_value(J);
      SpectralOptions lanczos;
      lanczos.method = SpectralMethod::Lanczos;
      lanczos.krylov_dim = 10;
      const SpectralResult r = measure_local_lipschitz(builder, X, lanczos);
      EXPECT_NEAR(r.lipschitz, dense, 1e-8 * dense);
      EXPECT_LE(r.lower, dense * (1 + 1e-12));
      const SpectralResult r32 = measure_local_lipschitz(builder, X, lanczos, Precision::F32);
      EXPECT_NEAR(r32.lipschitz, dense, 1e-4 * dense);
      EXPECT_LE(r32.lower, dense * (1 + 1e-12));  // certified in float64
      AttentionMemory streaming;
      streaming.storage = AttentionStorage::Streaming;
      const SpectralResult streamed = measure_local_lipschitz(builder, X, lanczos, Precision::F64, streaming);
      EXPECT_NEAR(streamed.lipschitz, dense, 1e-8 * dense);
      EXPECT_EQ(streamed.storage, c.block == Block::Mlp ? "" : "streaming");  // the MLP holds no attention
    }
  }
}

TEST(WholeBlocks, OneLayerModelIsTheLayerThenTheFinalNorm) {
  for (ModelWeights m : small_models()) {
    ModelConfig c = m.config;
    c.num_layers = 1;
    m = random_model(c, 3);
    const ForwardResult f = run_forward(m, kIds);
    const MatrixD& X = f.layers[0].block_in;
    MapPtr<double> expected = layer_map<double>(m, 0);
    if (m.final_norm)
      expected = std::make_shared<Chain<double>>(
          std::vector<MapPtr<double>>{expected, std::make_shared<Norm<double>>(*m.final_norm)});
    EXPECT_EQ(m.final_norm.has_value(), m.config.type != ModelType::Bert);
    const MapPtr<double> model = model_map<double>(m);
    EXPECT_LT(relative_error(model->forward(X)->output, f.hidden), 1e-14);
    EXPECT_NEAR(sigma(model, X), sigma(expected, X), 1e-12 * sigma(expected, X)) << to_string(m.config.type);
  }
}

// ---- bounds on the MLP ------------------------------------------------------------------------

TEST(WholeBlocks, ActivationDerivativeBoundsHoldOnAFineGrid) {
  for (Activation a : {Activation::GeluErf, Activation::GeluTanh, Activation::Silu, Activation::QuickGelu,
                       Activation::Relu, Activation::Tanh}) {
    double worst = 0;
    for (double x = -12; x <= 12; x += 1e-4) worst = std::max(worst, std::abs(activation_derivative(x, a)));
    // Between grid points |act'| moves by at most sup|act''|·h/2 ≤ 1e-4 (sup|act''| < 2 for all six);
    // relu's and tanh's sup 1 is attained (x > 0, x = 0), so the grid sees it.
    const bool attained = a == Activation::Relu || a == Activation::Tanh;
    EXPECT_LE(worst + (attained ? 0.0 : 1e-4), activation_derivative_bound(a)) << to_string(a);
    EXPECT_GE(worst, activation_derivative_bound(a) - 0.01) << to_string(a);  // and not loose
  }
}

TEST(WholeBlocks, MlpGlobalBoundIsAboveTheMlpsLocalConstants) {
  std::mt19937_64 rng(5);
  for (const ModelWeights& m : small_models()) {
    const MlpWeights& w = m.layers[0].mlp;
    std::string why;
    const std::optional<double> bound = mlp_global_bound(w, &why);
    if (w.gated()) {
      EXPECT_FALSE(bound);
      EXPECT_NE(why.find("SwiGLU"), std::string::npos) << why;
      continue;
    }
    ASSERT_TRUE(bound);
    for (int trial = 0; trial < 5; ++trial)
      EXPECT_LE(sigma(std::make_shared<Mlp<double>>(w), random_matrix(rng, 4, w.input_dim(), 3.0)), *bound);
  }
}

// ---- measure_model on whole blocks ------------------------------------------------------------

// random:CONFIG.json of a small model of each family (the configs of small_models, n_layer given).
std::vector<std::string> small_model_specs(const std::filesystem::path& dir, int layers) {
  const std::vector<nlohmann::json> configs = {
      {{"model_type", "gpt2"}, {"n_embd", 8}, {"n_head", 2}, {"n_layer", layers}, {"n_positions", 32},
       {"vocab_size", 50}, {"initializer_range", 0.3}},
      {{"model_type", "bert"}, {"hidden_size", 8}, {"num_attention_heads", 2}, {"num_hidden_layers", layers},
       {"intermediate_size", 16}, {"max_position_embeddings", 32}, {"vocab_size", 50}, {"type_vocab_size", 2},
       {"initializer_range", 0.3}},
      {{"model_type", "llama"}, {"hidden_size", 8}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
       {"num_hidden_layers", layers}, {"intermediate_size", 12}, {"max_position_embeddings", 32},
       {"vocab_size", 50}, {"initializer_range", 0.3}}};
  std::vector<std::string> specs;
  for (const auto& c : configs) {
    const auto path = dir / (c.at("model_type").get<std::string>() + std::to_string(layers) + ".json");
    std::ofstream(path) << c.dump();
    specs.push_back("random:" + path.string());
  }
  return specs;
}

std::vector<BlockMeasurement> measure(ModelMeasureRequest request, const std::string& block,
                                      std::optional<LayerRange> layers = {}, int layer = 0) {
  request.block = block;
  request.layers = layers;
  request.layer = layer;
  std::vector<BlockMeasurement> out;
  SpectralOptions options;
  options.tol = 1e-11;
  measure_model(request, options, Precision::F64, [&](const BlockMeasurement& m) { out.push_back(m); });
  return out;
}

TEST(MeasureWholeBlocks, StackOfOneLayerIsTheLayerAndRecordsRoundTrip) {
  const auto dir = testing::scratch_dir("blocks-one");
  for (const std::string& spec : small_model_specs(dir, 3)) {
    ModelMeasureRequest request;
    request.model = spec;
    request.ids = kIds;
    const BlockMeasurement layer = measure(request, "layer", {}, 1).at(0);
    const BlockMeasurement stack = measure(request, "stack", LayerRange{1, 2}).at(0);
    SCOPED_TRACE(spec);
    EXPECT_NEAR(stack.lipschitz, layer.lipschitz, 1e-10 * layer.lipschitz);
    EXPECT_EQ(layer.layer, 1);
    EXPECT_FALSE(layer.layers);
    EXPECT_FALSE(layer.composition);
    EXPECT_FALSE(stack.layer);
    EXPECT_EQ(stack.layers, (LayerRange{1, 2}));
    ASSERT_TRUE(stack.composition);
    ASSERT_EQ(stack.composition->factors.size(), 1u);
    EXPECT_NEAR(stack.composition->ratio, 1.0, 1e-9);
    // The stack's input is layer 1's block_in from the same pass.
    const ForwardResult f = run_forward(load_model(spec), kIds);
    EXPECT_NEAR(stack.radius, std::sqrt(f.layers[1].block_in.squaredNorm() / 6.0), 1e-12);
    const nlohmann::json j = stack;
    EXPECT_EQ(j.at("layers"), nlohmann::json::array({1, 2}));
    EXPECT_TRUE(j.at("layer").is_null());
    const BlockMeasurement back = j.get<BlockMeasurement>();
    EXPECT_EQ(nlohmann::json(back), j);
  }
  std::filesystem::remove_all(dir);
}

// Property: over seeds and families, the product of per-layer constants (each at its own input) is
// never below the exact constant of the composition, nor the product of bounds below the product;
// the concentration is a distribution over the tokens.
TEST(MeasureWholeBlocks, ProductOfLayerConstantsBoundsTheComposition) {
  const auto dir = testing::scratch_dir("blocks-product");
  int checked = 0, with_bounds = 0;
  for (const std::string& spec : small_model_specs(dir, 3))
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      ModelMeasureRequest request;
      request.model = spec;
      request.seed = seed;
      request.ids = {static_cast<int>(seed) + 1, 7, 30, 2, 44};
      for (const BlockMeasurement& m : {measure(request, "model").at(0), measure(request, "stack", LayerRange{0, 2}).at(0)}) {
        SCOPED_TRACE(spec + " seed " + std::to_string(seed) + " " + m.block);
        ASSERT_TRUE(m.composition);
        const Composition& c = *m.composition;
        EXPECT_EQ(c.factors.size(), m.block == "stack" ? 2u : (spec.find("bert") != std::string::npos ? 3u : 4u));
        double product = 1;
        for (const auto& f : c.factors) product *= f.lipschitz;
        EXPECT_NEAR(c.product, product, 1e-12 * product);
        EXPECT_GE(c.product, m.lipschitz * (1 - 1e-9));
        EXPECT_NEAR(c.ratio, c.product / m.lipschitz, 1e-12 * c.ratio);
        if (c.bound_product) {
          ++with_bounds;
          EXPECT_GE(*c.bound_product, c.product * (1 - 1e-9));
          for (const auto& f : c.factors) EXPECT_GE(*f.bound, f.lipschitz * (1 - 1e-9)) << f.name;
        } else {
          EXPECT_NE(spec.find("llama"), std::string::npos);  // SwiGLU and RoPE: not covered
          EXPECT_NE(c.no_bound_reason.find("layer 0"), std::string::npos) << c.no_bound_reason;
        }
        double sum = 0;
        for (double p : m.concentration.shares) sum += p;
        EXPECT_EQ(m.concentration.shares.size(), 5u);
        EXPECT_NEAR(sum, 1.0, 1e-12);
        EXPECT_GE(m.concentration.effective_tokens, 1 - 1e-12);
        EXPECT_LE(m.concentration.effective_tokens, 5 + 1e-12);
        ASSERT_FALSE(m.concentration.top.empty());
        EXPECT_GE(m.concentration.top[0].share, m.concentration.top.back().share);
        ++checked;
      }
    }
  EXPECT_EQ(checked, 24);
  EXPECT_EQ(with_bounds, 16);
  std::filesystem::remove_all(dir);
}

TEST(MeasureWholeBlocks, ConcentrationOfKnownVectors) {
  VectorD v = VectorD::Zero(12);  // n = 4 tokens, d = 3
  v(3) = 1;
  Concentration c = token_concentration(v, 4);
  EXPECT_DOUBLE_EQ(c.effective_tokens, 1);
  EXPECT_EQ(c.top.at(0).token, 1);
  EXPECT_DOUBLE_EQ(c.top[0].share, 1);
  c = token_concentration(VectorD::Ones(12), 4, 2);
  EXPECT_NEAR(c.effective_tokens, 4, 1e-12);
  EXPECT_EQ(c.top.size(), 2u);
  for (double p : c.shares) EXPECT_NEAR(p, 0.25, 1e-15);
}

TEST(MeasureWholeBlocks, BadRequestsNameTheField) {
  const auto dir = testing::scratch_dir("blocks-bad");
  ModelMeasureRequest request;
  request.model = small_model_specs(dir, 2)[0];
  request.ids = kIds;
  auto field_of = [&](const std::string& block, std::optional<LayerRange> layers, std::optional<int> head) {
    request.head = head;
    try {
      measure(request, block, layers);
    } catch (const InputError& e) {
      return e.field();
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(field_of("stack", std::nullopt, std::nullopt), "layers");
  EXPECT_EQ(field_of("stack", LayerRange{1, 1}, std::nullopt), "layers");
  EXPECT_EQ(field_of("stack", LayerRange{0, 3}, std::nullopt), "layers");
  EXPECT_EQ(field_of("stack", LayerRange{-1, 1}, std::nullopt), "layers");
  EXPECT_EQ(field_of("layer", LayerRange{0, 1}, std::nullopt), "layers");
  EXPECT_EQ(field_of("attn", LayerRange{0, 1}, std::nullopt), "layers");
  for (const char* whole : {"mlp", "layer", "model"}) EXPECT_EQ(field_of(whole, std::nullopt, 0), "head") << whole;
  EXPECT_EQ(field_of("stack", LayerRange{0, 1}, 0), "head");
  EXPECT_EQ(field_of("attn", std::nullopt, 0), "(no error)");
  EXPECT_EQ(field_of("blocks", std::nullopt, std::nullopt), "block");
  EXPECT_EQ(parse_layer_range("2:5"), (LayerRange{2, 5}));
  for (const char* bad : {"", "3", "1:", ":2", "a:b", "1:2:3", "1.5:2"}) {
    try {
      parse_layer_range(bad);
      ADD_FAILURE() << bad;
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), "layers");
    }
  }
  std::filesystem::remove_all(dir);
}

// ---- the attack on whole blocks ---------------------------------------------------------------

TEST(AttackWholeBlocks, LayerWitnessIsWithinEpsAndAboveTheInputsValue) {
  const auto dir = testing::scratch_dir("blocks-attack");
  for (const std::string& spec : small_model_specs(dir, 2)) {
    ModelMeasureRequest request;
    request.model = spec;
    request.ids = kIds;
    request.block = "layer";
    request.layer = 1;
    attack::AttackOptions options;
    options.restarts = 1;
    options.steps = 8;
    const ModelAttackReport r = attack_model(request, 0.5, options);
    SCOPED_TRACE(spec);
    EXPECT_LE(r.distance, 0.5 * (1 + 1e-12));
    EXPECT_LE(attack::ConstraintSet::around(r.center, 0.5).violation(r.result.witness), 1e-12);
    EXPECT_GE(r.result.lower, r.unperturbed * (1 - 1e-9));
    EXPECT_EQ(r.result.lower, r.result.certificate.lower);
    // The witness's value, recomputed from scratch through the layer's map.
    const double at_witness = sigma(layer_map<double>(load_model(spec), 1), r.result.witness);
    EXPECT_NEAR(r.result.lower, at_witness, 1e-8 * at_witness);
    const ForwardResult f = run_forward(load_model(spec), kIds);
    EXPECT_EQ(r.center, f.layers[1].block_in);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lipattn::models
