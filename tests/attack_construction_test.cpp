// The paper's construction (src/attention/construction.h; the attack starts from it): A_h against the
// scores the layer computes, eigenpairs against A, the input's shape, and the √n regime it predicts
// (docs/theory.md, attack §1).
#include <gtest/gtest.h>

#include <cmath>

#include <fmt/core.h>

#include "attention/construction.h"
#include "common/error.h"
#include "spectral/measure.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;

namespace {

TEST(Construction, InteractionMatrixReproducesTheLayersScores) {
  // log P_ij − log P_i0 = S_ij − S_i0 must equal ⟨A_h x_i, x_j − x_0⟩ for every head, causal or not.
  std::mt19937_64 rng(21);
  for (bool causal : {false, true}) {
    AttentionOptions o;
    o.heads = 3, o.d = 7, o.k = 2, o.kv = 3, o.w_o = true, o.causal = causal, o.sd = 0.6;
    const AttentionWeights w = random_attention(rng, o);
    MultiHeadAttention<double> map(w);
    const MatrixD X = random_matrix(rng, 6, 7, 1.0);
    auto cache = map.forward(X);
    for (Index h = 0; h < 3; ++h) {
      const MatrixD A = interaction_matrix(w, h);
      ASSERT_EQ(A.rows(), 7);
      const MatrixD& P = map.attention_matrix(*cache, h);
      for (Index i = 0; i < 6; ++i)
        for (Index j = 0; j <= (causal ? i : 5); ++j) {
          const double expected = (A * X.row(i).transpose()).dot(X.row(j) - X.row(0));
          EXPECT_NEAR(std::log(P(i, j)) - std::log(P(i, 0)), expected, 1e-12) << "head " << h;
        }
    }
  }
}

TEST(Construction, Conv1DLayoutHeadsAgreeWithTheLinearLayout) {
  // GPT-2 stores c_attn as Conv1D (in, out) = d × 3d: q = x W[:, 0:d]. Head h's scores are then
  // scale x_i W_q,h W_k,hᵀ x_jᵀ, so A_h = scale W_k,h W_q,hᵀ in Conv1D blocks. The models code
  // transposes the blocks into nn.Linear layout; A_h from that layout must be the same matrix.
  std::mt19937_64 rng(22);
  const Index d = 12, heads = 3, k = d / heads;
  const MatrixD c_attn = random_matrix(rng, d, 3 * d, 0.02);
  AttentionWeights w;
  w.heads = heads;
  w.w_q = c_attn.middleCols(0, d).transpose();
  w.w_k = c_attn.middleCols(d, d).transpose();
  w.w_v = c_attn.middleCols(2 * d, d).transpose();
  const double scale = 1 / std::sqrt(static_cast<double>(k));
  for (Index h = 0; h < heads; ++h) {
    const MatrixD Wq = c_attn.middleCols(h * k, k), Wk = c_attn.middleCols(d + h * k, k);
    const MatrixD expected = scale * Wk * Wq.transpose();
    EXPECT_LE(relative_error(interaction_matrix(w, h), expected), 1e-15) << "head " << h;
  }
}

TEST(Construction, EigenpairsAreEigenpairs) {
  std::mt19937_64 rng(23);
  for (Index d : {3, 9, 15}) {  // odd sizes: at least one real eigenvalue
    const MatrixD A = random_matrix(rng, d, d);
    const auto pairs = real_eigenpairs(A);
    ASSERT_FALSE(pairs.empty()) << "a real matrix of odd size has a real eigenvalue";
    for (const auto& p : pairs) {
      EXPECT_NEAR(p.vector.norm(), 1.0, 1e-14);
      EXPECT_LE((A * p.vector - p.value * p.vector).norm(), 1e-10 * A.norm());
    }
    for (size_t i = 1; i < pairs.size(); ++i) EXPECT_LE(pairs[i - 1].value, pairs[i].value);
  }
  // A rotation has no real eigenvalue: the construction does not apply.
  MatrixD rotation(2, 2);
  rotation << 0, -1, 1, 0;
  EXPECT_TRUE(real_eigenpairs(rotation).empty());
  EXPECT_FALSE(paper_construction_from_eigenpairs(real_eigenpairs(rotation), 4, 1.0).applies);
}

TEST(Construction, FactoredEigenpairsMatchTheFullProblem) {
  // A = C B with k < d: the k × k route must give the same extreme real eigenvalues as the d × d one,
  // with vectors that are eigenvectors of A, plus λ = 0.
  std::mt19937_64 rng(24);
  for (int trial = 0; trial < 5; ++trial) {
    const Index d = 24, k = 4;
    const MatrixD C = random_matrix(rng, d, k), B = random_matrix(rng, k, d);
    const MatrixD A = C * B;
    const auto factored = real_eigenpairs_factored(C, B);
    const auto full = real_eigenpairs(A);
    ASSERT_FALSE(factored.empty());
    for (const auto& p : factored) EXPECT_LE((A * p.vector - p.value * p.vector).norm(), 1e-9 * A.norm());
    const double scale = A.norm();
    EXPECT_NEAR(factored.back().value, std::max(full.back().value, 0.0), 1e-9 * scale);
    EXPECT_NEAR(factored.front().value, std::min(full.front().value, 0.0), 1e-9 * scale);
  }
}

TEST(Construction, FollowsThePapersRule) {
  // A = diag(λ_max, λ_min, 0): the rule λ_max > −8 λ_min chooses the branch.
  for (auto [lmax, lmin, expect_max] : {std::tuple{1.0, -0.1, true}, std::tuple{1.0, -0.2, false},
                                        std::tuple{0.5, -0.0625, false}, std::tuple{0.5, -0.06, true}}) {
    MatrixD A = MatrixD::Zero(3, 3);
    A(0, 0) = lmax;
    A(1, 1) = lmin;
    const double R = 3;
    const Construction c = paper_construction_from_eigenpairs(real_eigenpairs(A), 5, R);
    ASSERT_TRUE(c.applies);
    EXPECT_EQ(c.uses_lambda_max, expect_max) << lmax << " " << lmin;
    EXPECT_DOUBLE_EQ(c.lambda_max, lmax);
    EXPECT_DOUBLE_EQ(c.lambda_min, lmin);
    const Index axis = expect_max ? 0 : 1;
    EXPECT_NEAR(std::abs(c.direction(axis)), 1.0, 1e-15);
    // x_1 = ±R u and x_2..n = R u/2 or R u: norms R and R/2 or R, all inside B_R.
    EXPECT_NEAR(c.X.row(0).norm(), R, 1e-13);
    for (Index i = 1; i < 5; ++i) {
      EXPECT_NEAR(c.X.row(i).norm(), expect_max ? R / 2 : R, 1e-13);
      EXPECT_NEAR(c.X.row(i).dot(c.X.row(0)), expect_max ? R * R / 2 : -R * R, 1e-12);
    }
    EXPECT_NEAR(c.log_n_star, expect_max ? lmax * R * R / 4 : 2 * std::abs(lmin) * R * R, 1e-12);
    // The other branch is the other eigenvector.
    const Construction other = paper_construction_from_eigenpairs(real_eigenpairs(A), 5, R, false);
    EXPECT_NE(other.uses_lambda_max, c.uses_lambda_max);
  }
  EXPECT_THROW(paper_construction_from_eigenpairs(real_eigenpairs(MatrixD::Identity(2, 2)), 0, 1.0), InputError);
  EXPECT_THROW(paper_construction_from_eigenpairs(real_eigenpairs(MatrixD::Identity(2, 2)), 3, -1.0), InputError);
}

double sigma_max(const AttentionWeights& w, const MatrixD& X) {
  LayerSpec spec;
  spec.attention = w;
  SpectralOptions o;
  o.method = SpectralMethod::Lanczos;
  return measure_local_lipschitz(spec, X, o).lipschitz;
}

TEST(Construction, SqrtNRegimeThenSaturation) {
  // The paper's single head, A = diag(2, −0.1, 0.3), V = I (d = 3). With R = 4, λ_max R²/4 = 8,
  // n* = e^8 ≈ 2981: for n ≪ n* every query attends to token 1, ‖P‖₂ ≈ √n, and σ_max/√n must
  // stay nearly constant. With R = 1.2 (n* = e^0.72 ≈ 2) the attention spreads and σ_max stops
  // growing like √n.
  MatrixD A = MatrixD::Zero(3, 3);
  A(0, 0) = 2, A(1, 1) = -0.1, A(2, 2) = 0.3;
  const AttentionWeights w = AttentionWeights::paper_form(A, MatrixD::Identity(3, 3));
  const auto pairs = real_eigenpairs(A);
  std::vector<double> ratio_sharp, ratio_soft;
  for (Index n : {4, 16, 64, 256}) {
    const Construction sharp = paper_construction_from_eigenpairs(pairs, n, 4.0);
    const Construction soft = paper_construction_from_eigenpairs(pairs, n, 1.2);
    ASSERT_TRUE(sharp.uses_lambda_max);
    ratio_sharp.push_back(sigma_max(w, sharp.X) / std::sqrt(static_cast<double>(n)));
    ratio_soft.push_back(sigma_max(w, soft.X) / std::sqrt(static_cast<double>(n)));
  }
  for (size_t i = 0; i < ratio_sharp.size(); ++i)
    std::printf("n=%d  sharp σ/√n = %.6f  soft σ/√n = %.6f\n", 4 << (2 * i), ratio_sharp[i], ratio_soft[i]);
  // √n regime: over n = 4..256 (a 64× range) σ/√n never falls below its value at n = 4 and at most
  // doubles (the Cov and (x_j − m_i)(A x_i)ᵀ terms add to the √n of ‖P‖₂ as n nears n*).
  for (double r : ratio_sharp) {
    EXPECT_GE(r, ratio_sharp.front() * (1 - 1e-9));
    EXPECT_LE(r, 2 * ratio_sharp.front());
  }
  // Past n*: σ/√n falls by more than half over the same range.
  EXPECT_LT(ratio_soft.back(), 0.5 * ratio_soft.front());
}

}  // namespace
