// The second-order product ∇_X ⟨u, Df(X) v⟩ of every map against central finite differences of
// X ↦ ⟨u, jvp(forward(X), v)⟩, coordinate by coordinate (docs/theory.md, attack §2).
#include <gtest/gtest.h>

#include <fmt/core.h>

#include "attention/layer.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;

namespace {

constexpr double kTolerance = 1e-6;

TEST(SecondOrder, AttentionEveryOption) {
  std::mt19937_64 rng(11);
  int cases = 0;
  for (int heads : {1, 3})
    for (bool causal : {false, true})
      for (bool biases : {false, true})
        for (bool w_o : {false, true}) {
          AttentionOptions o;
          o.heads = heads;
          o.d = 5;
          o.k = 3;
          o.kv = 2;
          o.causal = causal;
          o.biases = biases;
          o.w_o = w_o;
          o.d_out = w_o ? 4 : 0;
          o.sd = 0.7;
          MultiHeadAttention<double> map(random_attention(rng, o));
          for (Index n : {1, 2, 6}) {
            const MatrixD X = random_matrix(rng, n, o.d, 1.3);
            const double err = second_order_error(map, X, rng);
            EXPECT_LE(err, kTolerance) << map.describe() << " n=" << n << (biases ? " biases" : "");
            ++cases;
          }
        }
  EXPECT_EQ(cases, 48);
}

TEST(SecondOrder, PaperFormHeadSharpAttention) {
  // Large scores (nearly hard attention) stress the softmax terms.
  std::mt19937_64 rng(12);
  for (bool causal : {false, true}) {
    const MatrixD A = random_matrix(rng, 4, 4, 1.0);
    const MatrixD V = random_matrix(rng, 3, 4, 1.0);
    MultiHeadAttention<double> map(AttentionWeights::paper_form(A, V, causal));
    const MatrixD X = random_matrix(rng, 7, 4, 1.5);
    EXPECT_LE(second_order_error(map, X, rng), kTolerance) << (causal ? "causal" : "");
  }
}

TEST(SecondOrder, Norms) {
  std::mt19937_64 rng(13);
  for (NormKind kind : {NormKind::LayerNorm, NormKind::RmsNorm})
    for (bool bias : {false, true})
      for (Index d : {1, 2, 7}) {
        Norm<double> map(random_norm(rng, kind, d, bias));
        const MatrixD X = random_matrix(rng, 4, d, 1.0);
        const double err = second_order_error(map, X, rng);
        // LayerNorm of width 1 is constant: both sides are exactly 0.
        EXPECT_LE(err, kTolerance) << map.describe() << (bias ? " β" : "");
      }
}

TEST(SecondOrder, ResidualAndChains) {
  std::mt19937_64 rng(14);
  int cases = 0;
  for (int where = 0; where < 6; ++where)
    for (bool causal : {false, true}) {
      AttentionOptions o;
      o.heads = 2;
      o.d = 4;
      o.k = 2;
      o.kv = 3;
      o.w_o = true;
      o.biases = true;
      o.causal = causal;
      o.sd = 0.8;
      LayerSpec spec;
      spec.attention = random_attention(rng, o);
      if (where == 1 || where == 3 || where == 5)
        spec.pre_norm = random_norm(rng, where == 3 ? NormKind::RmsNorm : NormKind::LayerNorm, o.d, true);
      spec.residual = where >= 2;
      if (where == 4 || where == 5)
        spec.post_norm = random_norm(rng, where == 5 ? NormKind::RmsNorm : NormKind::LayerNorm, o.d, true);
      const MapPtr<double> map = build_map<double>(spec);
      const MatrixD X = random_matrix(rng, 5, o.d, 1.2);
      EXPECT_LE(second_order_error(*map, X, rng), kTolerance) << map->describe();
      ++cases;
    }
  // A longer hand-made chain: norm → attention → norm → attention (d_in ≠ d_out in the middle).
  AttentionOptions a1;
  a1.heads = 2, a1.d = 4, a1.k = 2, a1.kv = 2, a1.w_o = true, a1.d_out = 3, a1.biases = true;
  AttentionOptions a2;
  a2.heads = 1, a2.d = 3, a2.k = 2, a2.kv = 2, a2.causal = true;
  Chain<double> chain({std::make_shared<Norm<double>>(random_norm(rng, NormKind::LayerNorm, 4, true)),
                       std::make_shared<MultiHeadAttention<double>>(random_attention(rng, a1)),
                       std::make_shared<Norm<double>>(random_norm(rng, NormKind::RmsNorm, 3, false)),
                       std::make_shared<MultiHeadAttention<double>>(random_attention(rng, a2))});
  EXPECT_LE(second_order_error(chain, random_matrix(rng, 6, 4, 1.0), rng), kTolerance) << chain.describe();
  EXPECT_EQ(cases, 12);
}

TEST(SecondOrder, IsLinearInVAndU) {
  // An independent structural check: φ is bilinear in (v, u), so is its gradient.
  std::mt19937_64 rng(15);
  AttentionOptions o;
  o.heads = 2, o.d = 6, o.k = 3, o.kv = 3, o.w_o = true, o.causal = true;
  MultiHeadAttention<double> map(random_attention(rng, o));
  const MatrixD X = random_matrix(rng, 8, 6, 1.0);
  auto cache = map.forward(X);
  const MatrixD v1 = random_matrix(rng, 8, 6), v2 = random_matrix(rng, 8, 6), u = random_matrix(rng, 8, 6);
  const MatrixD lhs = map.second_order(*cache, 2.0 * v1 - 3.0 * v2, u);
  const MatrixD rhs = 2.0 * map.second_order(*cache, v1, u) - 3.0 * map.second_order(*cache, v2, u);
  EXPECT_LE(relative_error(lhs, rhs), 1e-13);
}

}  // namespace
