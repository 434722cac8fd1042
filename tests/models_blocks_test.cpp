// Whole layers, stacks and models as one map (models/blocks.h): they reproduce the forward pass's
// taps, their derivatives pass finite differences, the adjoint identity and the second-order check,
// a stack of one layer is the layer, and the product of per-layer constants bounds the stack's.
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "models/blocks.h"
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

}  // namespace
}  // namespace lipattn::models
