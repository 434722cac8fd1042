// The weighted attention map and the mean-field constant (docs/theory.md §MF.2, §MF.3): forward
// against a direct loop, jvp against finite differences, vjp against jvp (adjoint identity), the
// recomputing path against the cached one, uniform masses against MultiHeadAttention, masses against
// duplicated tokens, and ‖M^{1/2} J M^{−1/2}‖₂ against a generalized eigenproblem.
#include <gtest/gtest.h>

#include <cmath>

#include <fmt/core.h>

#include "common/error.h"
#include "meanfield/lipschitz.h"
#include "spectral/measure.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::meanfield;
using namespace lipattn::testing;

namespace {

// P_ij ∝ m_j exp(S_ij) over the j with s_j ≤ s_i, written loop by loop from the definition.
MatrixD direct_weighted_attention(const AttentionWeights& w, const MatrixD& X, const VectorD& m, const VectorD& s) {
  const Index n = X.rows(), H = w.heads, k = w.key_dim(), kv = w.value_dim();
  const double scale = w.effective_scale();
  const MatrixD Q = X * w.w_q.transpose(), K = X * w.w_k.transpose(), V = X * w.w_v.transpose();
  MatrixD O = MatrixD::Zero(n, H * kv);
  for (Index h = 0; h < H; ++h)
    for (Index i = 0; i < n; ++i) {
      double z = 0;
      VectorD acc = VectorD::Zero(kv);
      for (Index j = 0; j < n; ++j) {
        if (s.size() && s(j) > s(i)) continue;
        double dot = 0;
        for (Index a = 0; a < k; ++a) {
          const double q = Q(i, h * k + a) + (w.b_q.size() ? w.b_q(h * k + a) : 0.0);
          const double kk = K(j, h * k + a) + (w.b_k.size() ? w.b_k(h * k + a) : 0.0);
          dot += q * kk;
        }
        const double e = m(j) * std::exp(scale * dot);  // small scores in the tests: no overflow
        z += e;
        for (Index b = 0; b < kv; ++b) acc(b) += e * (V(j, h * kv + b) + (w.b_v.size() ? w.b_v(h * kv + b) : 0.0));
      }
      O.row(i).segment(h * kv, kv) = acc.transpose() / z;
    }
  if (w.w_o.size() == 0) return O;
  MatrixD Y = O * w.w_o.transpose();
  if (w.b_o.size()) Y.rowwise() += w.b_o.transpose();
  return Y;
}

VectorD random_masses(std::mt19937_64& rng, Index n) {
  VectorD m = random_vector(rng, n).array().exp();
  return m / m.sum();
}

// Positions with ties (several tokens at one position) in [0, 1].
VectorD random_positions(std::mt19937_64& rng, Index n) {
  std::uniform_int_distribution<int> level(0, 3);
  VectorD s(n);
  for (Index i = 0; i < n; ++i) s(i) = level(rng) / 3.0;
  return s;
}

struct Case {
  std::string name;
  LayerSpec spec;
  bool positions;  // masked by random positions (else: by index when causal)
};

std::vector<Case> cases(std::mt19937_64& rng) {
  std::vector<Case> out;
  for (int causal = 0; causal < 2; ++causal)
    for (int biases = 0; biases < 2; ++biases)
      for (int w_o = 0; w_o < 2; ++w_o)
        for (int placement = 0; placement < 3; ++placement) {
          AttentionOptions o;
          o.heads = 1 + (placement + w_o) % 3;
          o.d = 6;
          o.k = 2;
          o.kv = w_o ? 2 : 6 / o.heads;
          o.causal = causal;
          o.biases = biases;
          o.w_o = w_o;
          LayerSpec spec;
          spec.attention = random_attention(rng, o);
          if (placement == 1) spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 6, biases);
          if (placement == 2) {
            spec.pre_norm = random_norm(rng, NormKind::RmsNorm, 6, biases);
            spec.residual = true;
            spec.post_norm = random_norm(rng, NormKind::LayerNorm, spec.attention.output_dim(), biases);
          }
          for (int pos = 0; pos <= causal; ++pos)
            out.push_back({fmt::format("causal{}_bias{}_wo{}_place{}_pos{}", causal, biases, w_o, placement, pos),
                           spec, bool(pos)});
        }
  for (int causal = 0; causal < 2; ++causal) {
    LayerSpec spec;
    spec.attention = AttentionWeights::paper_form(random_matrix(rng, 4, 4, 0.6), random_matrix(rng, 3, 4), causal);
    out.push_back({fmt::format("paper_causal{}", causal), spec, false});
  }
  return out;
}

Measure random_measure(std::mt19937_64& rng, const Case& c, Index n) {
  Measure mu;
  mu.points = random_matrix(rng, n, c.spec.attention.input_dim());
  mu.masses = random_masses(rng, n);
  if (c.positions) mu.positions = random_positions(rng, n);
  return mu;
}

}  // namespace

TEST(WeightedForward, MatchesDirectComputation) {
  std::mt19937_64 rng(11);
  for (int causal = 0; causal < 2; ++causal)
    for (int biases = 0; biases < 2; ++biases)
      for (int w_o = 0; w_o < 2; ++w_o) {
        AttentionOptions o{2, 5, 3, 2, bool(causal), bool(biases), bool(w_o), 4, 0.7};
        const AttentionWeights w = random_attention(rng, o);
        const Index n = 9;
        const MatrixD X = random_matrix(rng, n, 5);
        const VectorD m = random_masses(rng, n);
        const VectorD s = causal ? random_positions(rng, n) : VectorD();
        const MatrixD Y = weighted_attention<double>(w, m, s)->forward(X)->output;
        EXPECT_LT(relative_error(Y, direct_weighted_attention(w, X, m, s)), 1e-13);
        // The streaming path (tiles, online softmax, no n × n matrix) gives the same numbers.
        const MatrixD Y2 = weighted_attention<double>(w, m, s, {AttentionStorage::Streaming})->forward(X)->output;
        EXPECT_LT(relative_error(Y, Y2), 1e-14);
      }
}

TEST(WeightedForward, IntegerMassesEqualDuplicatedTokens) {
  // Masses (2, 1, 3)/6 on 3 points = the uniform sequence with the points repeated 2, 1, 3 times.
  std::mt19937_64 rng(12);
  const AttentionWeights w = random_attention(rng, {2, 4, 2, 2, false, true, true, 4, 0.8});
  const MatrixD pts = random_matrix(rng, 3, 4);
  VectorD m(3);
  m << 2, 1, 3;
  const MatrixD Y = weighted_attention<double>(w, m)->forward(pts)->output;
  MatrixD X(6, 4);
  X << pts.row(0), pts.row(0), pts.row(1), pts.row(2), pts.row(2), pts.row(2);
  const MatrixD Yfull = MultiHeadAttention<double>(w).forward(X)->output;
  EXPECT_LT((Y.row(0) - Yfull.row(0)).norm(), 1e-13 * Y.norm());
  EXPECT_LT((Y.row(1) - Yfull.row(2)).norm(), 1e-13 * Y.norm());
  EXPECT_LT((Y.row(2) - Yfull.row(5)).norm(), 1e-13 * Y.norm());
}

TEST(WeightedDerivatives, JvpMatchesCentralFiniteDifferences) {
  std::mt19937_64 rng(13);
  const auto all = cases(rng);
  ASSERT_GE(all.size(), 30u);
  for (const auto& c : all)
    for (Index n : {1, 2, 7}) {
      const Measure mu = random_measure(rng, c, n);
      for (AttentionStorage storage : {AttentionStorage::Stored, AttentionStorage::Streaming}) {
        const auto map = build_weighted_map<double>(c.spec, mu, {storage});
        const MatrixD dX = random_matrix(rng, n, map->input_dim());
        const MatrixD jvp = map->jvp(*map->forward(mu.points), dX);
        const MatrixD fd = finite_difference<double>(*map, mu.points, dX, 1e-5);
        EXPECT_LT(relative_error(jvp, fd), 1e-6) << c.name << " n=" << n << " " << to_string(storage);
      }
    }
}

TEST(WeightedDerivatives, AdjointIdentity) {
  std::mt19937_64 rng(14);
  for (const auto& c : cases(rng))
    for (Index n : {1, 3, 10}) {
      const Measure mu = random_measure(rng, c, n);
      for (AttentionStorage storage : {AttentionStorage::Stored, AttentionStorage::Streaming}) {
        const auto map = build_weighted_map<double>(c.spec, mu, {storage});
        const auto fwd = map->forward(mu.points);
        const MatrixD u = random_matrix(rng, n, map->input_dim()), v = random_matrix(rng, n, map->output_dim());
        const MatrixD Ju = map->jvp(*fwd, u), Jtv = map->vjp(*fwd, v);
        const double lhs = (Ju.array() * v.array()).sum(), rhs = (u.array() * Jtv.array()).sum();
        EXPECT_LE(std::abs(lhs - rhs), 1e-12 * Ju.norm() * v.norm()) << c.name << " n=" << n;
      }
    }
}

TEST(WeightedDerivatives, StoredAndStreamingProductsAgree) {
  std::mt19937_64 rng(15);
  const AttentionWeights w = random_attention(rng, {3, 5, 2, 2, true, true, true, 5, 0.6});
  const Index n = 23;
  const MatrixD X = random_matrix(rng, n, 5);
  const VectorD m = random_masses(rng, n), s = random_positions(rng, n);
  const auto cached = weighted_attention<double>(w, m, s, {AttentionStorage::Stored});
  const auto blocks = weighted_attention<double>(w, m, s, {AttentionStorage::Streaming});
  const auto c1 = cached->forward(X), c2 = blocks->forward(X);
  ASSERT_TRUE(blocks->is_streaming(*c2));
  const MatrixD dX = random_matrix(rng, n, 5), dY = random_matrix(rng, n, 5);
  EXPECT_LT(relative_error(cached->jvp(*c1, dX), blocks->jvp(*c2, dX)), 1e-14);
  EXPECT_LT(relative_error(cached->vjp(*c1, dY), blocks->vjp(*c2, dY)), 1e-14);
  for (Index h = 0; h < 3; ++h)
    EXPECT_LT(relative_error(cached->attention_matrix(*c1, h), blocks->attention_matrix(*c2, h)), 1e-14);
}

// The vjp sums per-thread buffers in a fixed order: a rerun repeats its bits (n = 700, 4 heads,
// stored and streaming).
TEST(WeightedDerivatives, VjpRepeatsItsBits) {
  std::mt19937_64 rng(18);
  const AttentionWeights w = random_attention(rng, {4, 6, 3, 3, true, true, true, 6, 0.6});
  const Index n = 700;
  const MatrixD X = random_matrix(rng, n, 6), dY = random_matrix(rng, n, 6);
  const VectorD m = random_masses(rng, n), s = random_positions(rng, n);
  for (AttentionStorage storage : {AttentionStorage::Stored, AttentionStorage::Streaming}) {
    const auto map = weighted_attention<double>(w, m, s, {storage});
    const auto cache = map->forward(X);
    const MatrixD first = map->vjp(*cache, dY);
    for (int repeat = 0; repeat < 5; ++repeat) EXPECT_TRUE(map->vjp(*cache, dY) == first) << "repeat " << repeat;
  }
}

TEST(WeightedUniform, EqualsMultiHeadAttention) {
  std::mt19937_64 rng(16);
  for (int causal = 0; causal < 2; ++causal) {
    const AttentionWeights w = random_attention(rng, {2, 6, 3, 3, bool(causal), true, true, 6, 0.6});
    const Index n = 12;
    const MatrixD X = random_matrix(rng, n, 6), dX = random_matrix(rng, n, 6), dY = random_matrix(rng, n, 6);
    const Measure mu = Measure::uniform(X, causal);
    const auto weighted = weighted_attention<double>(w, mu.masses, mu.positions);
    MultiHeadAttention<double> plain(w);
    const auto cw = weighted->forward(X), cp = plain.forward(X);
    EXPECT_LT(relative_error(cw->output, cp->output), 1e-14);
    EXPECT_LT(relative_error(weighted->jvp(*cw, dX), plain.jvp(*cp, dX)), 1e-13);
    EXPECT_LT(relative_error(weighted->vjp(*cw, dY), plain.vjp(*cp, dY)), 1e-13);
  }
}

TEST(MeanFieldConstant, UniformMassesReproduceEuclidean) {
  std::mt19937_64 rng(17);
  SpectralOptions dense;
  dense.method = SpectralMethod::Dense;
  for (const auto& c : cases(rng)) {
    if (c.positions) continue;
    const MatrixD X = random_matrix(rng, 8, c.spec.attention.input_dim());
    const double euclid = measure_local_lipschitz(c.spec, X, dense).lipschitz;
    // Masked: positions (i+1)/n by default, and i/n given explicitly (the same order).
    const double mf = meanfield_lipschitz(c.spec, Measure::uniform(X, c.spec.attention.causal), dense).lipschitz;
    EXPECT_NEAR(mf, euclid, 1e-10 * euclid) << c.name;
    if (c.spec.attention.causal) {
      Measure mu = Measure::uniform(X, true);
      for (Index i = 0; i < 8; ++i) mu.positions(i) = i / 8.0;
      EXPECT_NEAR(meanfield_lipschitz(c.spec, mu, dense).lipschitz, euclid, 1e-10 * euclid) << c.name;
    }
  }
}

TEST(MeanFieldConstant, EqualsGeneralizedEigenproblem) {
  // sup_h ‖J h‖²_μ / ‖h‖²_μ = the top eigenvalue of (Jᵀ M J, M): no M^{1/2} anywhere.
  std::mt19937_64 rng(18);
  SpectralOptions dense;
  dense.method = SpectralMethod::Dense;
  for (const auto& c : cases(rng)) {
    if (c.spec.attention.output_dim() != c.spec.attention.input_dim()) continue;
    const Index n = 6;
    const Measure mu = random_measure(rng, c, n);
    const auto map = build_weighted_map<double>(c.spec, mu);
    const MatrixD J = assemble_dense(Linearization<double>(map, mu.points));
    const Index d = map->input_dim();
    VectorD diag(n * d);
    for (Index i = 0; i < n; ++i) diag.segment(i * d, d).setConstant(mu.masses(i));
    const Eigen::MatrixXd M = diag.asDiagonal();
    const Eigen::MatrixXd A = J.transpose() * M * J;
    Eigen::GeneralizedSelfAdjointEigenSolver<Eigen::MatrixXd> ges(A, M);
    const double expected = std::sqrt(ges.eigenvalues().maxCoeff());
    const double got = meanfield_lipschitz(c.spec, mu, dense).lipschitz;
    EXPECT_NEAR(got, expected, 1e-9 * expected) << c.name;
    // Lanczos on the same operator agrees.
    SpectralOptions lanczos;
    lanczos.method = SpectralMethod::Lanczos;
    EXPECT_NEAR(meanfield_lipschitz(c.spec, mu, lanczos).lipschitz, expected, 1e-8 * expected) << c.name;
  }
}

TEST(MeanFieldConstant, RejectsBadMeasures) {
  std::mt19937_64 rng(19);
  LayerSpec spec;
  spec.attention = AttentionWeights::paper_form(random_matrix(rng, 3, 3), random_matrix(rng, 3, 3));
  Measure mu = Measure::uniform(random_matrix(rng, 4, 3), false);
  mu.masses(2) = 0;
  EXPECT_THROW(meanfield_lipschitz(spec, mu), InputError);
  mu.masses(2) = 0.25;
  mu.positions = VectorD::Constant(4, 0.5);
  EXPECT_THROW(meanfield_lipschitz(spec, mu), InputError);  // positions without --causal
  spec.attention.causal = true;
  mu.positions(1) = 1.5;
  EXPECT_THROW(meanfield_lipschitz(spec, mu), InputError);
  mu.positions(1) = 0.5;
  EXPECT_NO_THROW(meanfield_lipschitz(spec, mu));
}
