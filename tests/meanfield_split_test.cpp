// Mass splitting and merging (docs/theory.md §MF.4, §MF.5): the split identity
// L(split cloud) = max(L(merged), ‖Q‖), the query Jacobian against its closed form, splitting
// without moving leaves the mean-field constant unchanged, and the Euclidean constant does change.
#include <gtest/gtest.h>

#include <cmath>

#include "meanfield/lipschitz.h"
#include "spectral/measure.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::meanfield;
using namespace lipattn::testing;

namespace {

SpectralOptions dense() {
  SpectralOptions o;
  o.method = SpectralMethod::Dense;
  return o;
}

double top_singular(const MatrixD& A) { return Eigen::JacobiSVD<MatrixD>(A).singularValues()(0); }

// The query Jacobian of the attention alone, from its closed form (§MF.4): with p the weighted
// softmax of the query x, k_j, v_j the keys and values, Q = Σ_h W_O,h · c · Cov_p(v, k) · W_Q,h.
MatrixD closed_form_query_jacobian(const AttentionWeights& w, const Measure& mu, Index a) {
  const Index n = mu.size(), H = w.heads, k = w.key_dim(), kv = w.value_dim(), d = w.input_dim();
  const double c = w.effective_scale();
  MatrixD total = MatrixD::Zero(w.output_dim(), d);
  for (Index h = 0; h < H; ++h) {
    const MatrixD Wq = w.w_q.middleRows(h * k, k), Wk = w.w_k.middleRows(h * k, k), Wv = w.w_v.middleRows(h * kv, kv);
    VectorD q = Wq * mu.points.row(a).transpose();
    if (w.b_q.size()) q += w.b_q.segment(h * k, k);
    MatrixD K = mu.points * Wk.transpose(), V = mu.points * Wv.transpose();
    if (w.b_k.size()) K.rowwise() += w.b_k.segment(h * k, k).transpose();
    if (w.b_v.size()) V.rowwise() += w.b_v.segment(h * kv, kv).transpose();
    VectorD logits(n);
    for (Index j = 0; j < n; ++j) {
      const bool allowed = !mu.masked() || mu.positions(j) <= mu.positions(a);
      logits(j) = allowed ? std::log(mu.masses(j)) + c * q.dot(K.row(j)) : -INFINITY;
    }
    VectorD p = (logits.array() - logits.maxCoeff()).exp();
    p /= p.sum();
    const VectorD kbar = K.transpose() * p, vbar = V.transpose() * p;
    MatrixD cov = MatrixD::Zero(kv, k);
    for (Index j = 0; j < n; ++j) cov += p(j) * (V.row(j).transpose() - vbar) * (K.row(j).transpose() - kbar).transpose();
    const MatrixD head = c * cov * Wq;  // kv × d
    total += w.w_o.size() ? MatrixD(w.w_o.middleCols(h * kv, kv) * head) : MatrixD(head);
  }
  return total;
}

}  // namespace

TEST(QueryJacobian, MatchesClosedForm) {
  std::mt19937_64 rng(21);
  for (int causal = 0; causal < 2; ++causal)
    for (int biases = 0; biases < 2; ++biases)
      for (int w_o = 0; w_o < 2; ++w_o) {
        if (w_o == 0) continue;  // H·k_v columns without W_O: covered by the paper form below
        LayerSpec spec;
        spec.attention = random_attention(rng, {2, 5, 3, 2, bool(causal), bool(biases), true, 4, 0.7});
        Measure mu = Measure::uniform(random_matrix(rng, 7, 5), causal);
        mu.masses = random_vector(rng, 7).array().exp();
        mu.masses /= mu.masses.sum();
        if (causal) mu.positions << 0.1, 0.5, 0.5, 0.2, 0.9, 1.0, 0.5;
        for (Index a : {0, 2, 6}) {
          const MatrixD Q = query_jacobian(spec, mu, a), expected = closed_form_query_jacobian(spec.attention, mu, a);
          // Absolute scale: a token alone at its position has Q = 0 (one point has no covariance).
          EXPECT_LT((Q - expected).norm(), 1e-10 * (1 + expected.norm()))
              << "causal " << causal << " biases " << biases << " a " << a << " ‖Q‖ " << expected.norm();
        }
      }
  LayerSpec paper;
  paper.attention = AttentionWeights::paper_form(random_matrix(rng, 3, 3), random_matrix(rng, 2, 3));
  const Measure mu = Measure::uniform(random_matrix(rng, 5, 3), false);
  EXPECT_LT(relative_error(query_jacobian(paper, mu, 1), closed_form_query_jacobian(paper.attention, mu, 1)), 1e-10);
}

TEST(Splitting, SplitIdentityHoldsExactly) {
  // A cloud with repeated tokens: its constant = max(L(merged), max_g ‖Q_g‖), for any masses, with
  // and without the mask, for layers with norms and residual too.
  std::mt19937_64 rng(22);
  for (int trial = 0; trial < 12; ++trial) {
    const bool causal = trial % 2;
    LayerSpec spec;
    spec.attention = random_attention(rng, {2, 4, 2, 2, causal, true, true, 4, 0.4 + 0.15 * (trial % 5)});
    if (trial % 3 == 1) spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 4, true);
    if (trial % 3 == 2) {
      spec.residual = true;
      spec.post_norm = random_norm(rng, NormKind::RmsNorm, 4, false);
    }
    Measure base;
    base.points = random_matrix(rng, 4, 4, 1.0 + trial % 3);
    base.masses = random_vector(rng, 4).array().exp();
    if (causal) base.positions = (VectorD(4) << 0.2, 0.7, 0.2, 1.0).finished();
    // Token 1 into 3 copies of unequal masses, token 3 into 2 copies.
    Measure mu = split_token(split_token(base, 3, 2), 1, 3);
    mu.masses(1) *= 0.5;
    mu.masses(3) *= 1.7;
    mu.validate_and_normalise();
    const double full = meanfield_lipschitz(spec, mu, dense()).lipschitz;
    const ReducedConstant r = reduced_lipschitz(spec, mu, dense());
    EXPECT_EQ(r.distinct_points, 4);
    EXPECT_NEAR(r.value, full, 1e-10 * full) << "trial " << trial << " merged " << r.merged << " query " << r.query;
  }
}

TEST(Splitting, WithoutMovingLeavesTheMeanFieldConstantUnchanged) {
  std::mt19937_64 rng(23);
  int unchanged = 0;
  for (int trial = 0; trial < 10; ++trial) {
    const bool causal = trial % 2;
    LayerSpec spec;
    spec.attention = random_attention(rng, {2, 5, 3, 3, causal, true, true, 5, 0.6});
    Measure mu = Measure::uniform(random_matrix(rng, 6, 5), causal);
    mu.masses = random_vector(rng, 6).array().exp();
    mu.validate_and_normalise();
    const Index token = trial % 6;
    const double before = meanfield_lipschitz(spec, mu, dense()).lipschitz;
    const double q = top_singular(query_jacobian(spec, mu, token));
    for (Index copies : {2, 5}) {
      const double after = meanfield_lipschitz(spec, split_token(mu, token, copies), dense()).lipschitz;
      // Exactly max(before, ‖Q‖) (§MF.4); on these inputs ‖Q‖ < L, so unchanged.
      EXPECT_NEAR(after, std::max(before, q), 1e-10 * before);
      if (q < before) {
        EXPECT_NEAR(after, before, 1e-10 * before) << "trial " << trial;
        ++unchanged;
      }
    }
  }
  EXPECT_GE(unchanged, 16);
}

TEST(Splitting, EuclideanConstantChangesAndMovingApartIsContinuous) {
  std::mt19937_64 rng(24);
  LayerSpec spec;
  spec.attention = AttentionWeights::paper_form(random_matrix(rng, 3, 3, 0.8), random_matrix(rng, 3, 3));
  const Measure mu = Measure::uniform(random_matrix(rng, 5, 3), false);
  const MatrixD offsets = random_matrix(rng, 4, 3, 1e-7);
  const SplitEffect e = split_effect(spec, mu, 2, 4, offsets, dense());
  // The Euclidean view of the split sequence is the uniform measure on 8 tokens: another measure.
  const double uniform_split =
      meanfield_lipschitz(spec, as_uniform_tokens(split_token(mu, 2, 4)), dense()).lipschitz;
  EXPECT_NEAR(e.euclidean_split, uniform_split, 1e-10 * uniform_split);
  EXPECT_GT(std::abs(e.euclidean_split - e.euclidean_before), 1e-3 * e.euclidean_before);
  EXPECT_NEAR(e.meanfield_split, std::max(e.meanfield_before, e.query_norm), 1e-10 * e.meanfield_before);
  // Copies moved apart by 1e-7: the constant moves by O(1e-7).
  EXPECT_NEAR(e.meanfield_split_moved, e.meanfield_split, 1e-5 * e.meanfield_split);
}

TEST(Merging, GroupsExactCopiesOnly) {
  Measure mu;
  mu.points = (MatrixD(5, 2) << 1, 2, 3, 4, 1, 2, 1, 2.0000001, 3, 4).finished();
  mu.masses = VectorD::Constant(5, 0.2);
  MergedMeasure m = merge_identical(mu);
  ASSERT_EQ(m.measure.size(), 3);
  EXPECT_NEAR(m.measure.masses.sum(), 1.0, 1e-15);
  EXPECT_EQ(m.group[0], m.group[2]);
  EXPECT_EQ(m.group[1], m.group[4]);
  EXPECT_NE(m.group[0], m.group[3]);
  mu.positions = (VectorD(5) << 0, 0, 0.5, 0, 0).finished();  // token 2 now sits elsewhere
  m = merge_identical(mu);
  EXPECT_EQ(m.measure.size(), 4);
}
