// The regime change (docs/theory.md §MF.6): the construction's 2-point reduction against the full
// n-token computation, its √n growth below n* and its saturation beyond, and the convergence of the
// constant of i.i.d. tokens.
#include <gtest/gtest.h>

#include <cmath>

#include "meanfield/regime.h"
#include "spectral/measure.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::meanfield;
using namespace lipattn::testing;

namespace {

// A symmetric A with eigenvalues 1, 0.3, −0.1 (so λ_max > −8 λ_min: the λ_max branch) in a random
// basis, and a random V. n* = e^{R²/4}.
AttentionWeights construction_head(std::mt19937_64& rng) {
  const MatrixD G = random_matrix(rng, 3, 3);
  const Eigen::HouseholderQR<MatrixD> qr(G);
  const MatrixD U = qr.householderQ();
  const MatrixD A = U * Eigen::Vector3d(1.0, 0.3, -0.1).asDiagonal() * U.transpose();
  return AttentionWeights::paper_form(A, random_matrix(rng, 3, 3));
}

}  // namespace

TEST(Construction, PointsFollowThePaperRule) {
  std::mt19937_64 rng(31);
  const AttentionWeights w = construction_head(rng);
  // The one construction (src/attention/construction.h) at n = 2: its two distinct tokens.
  const Construction c = paper_construction(w, 0, 2, 2.0);
  const MatrixD tokens = c.tokens(2);
  ASSERT_TRUE(c.applies);
  EXPECT_NEAR(c.lambda_max, 1.0, 1e-12);
  EXPECT_NEAR(c.lambda_min, -0.1, 1e-12);
  EXPECT_TRUE(c.uses_lambda_max);
  EXPECT_NEAR(c.log_n_star, 1.0, 1e-12);  // λ_max R²/4
  EXPECT_LT((w.w_q * c.direction - c.direction).norm(), 1e-12);  // A u = u
  EXPECT_LT((tokens.row(0) - 2.0 * tokens.row(1)).norm(), 1e-12);
  // The other branch: make λ_min dominant.
  const AttentionWeights neg = AttentionWeights::paper_form(-w.w_q, w.w_v);
  const Construction c2 = paper_construction(neg, 0, 2, 2.0);
  const MatrixD tokens2 = c2.tokens(2);
  EXPECT_FALSE(c2.uses_lambda_max);
  EXPECT_NEAR(c2.log_n_star, 2 * 1.0 * 4.0, 1e-12);
  EXPECT_LT((tokens2.row(0) + tokens2.row(1)).norm(), 1e-12);
}

TEST(Construction, TwoPointReductionEqualsFullComputation) {
  std::mt19937_64 rng(32);
  const AttentionWeights w = construction_head(rng);
  // Lanczos: the full computation by the iterative method (DenseMethodHandlesTheDegenerateJacobians
  // below runs the dense one on the same inputs).
  SpectralOptions lanczos;
  lanczos.method = SpectralMethod::Lanczos;
  lanczos.tol = 1e-11;
  RegimeOptions o;
  o.n_min = 2;
  o.n_max = 150;
  o.per_decade = 3;
  o.full_max = 150;
  o.spectral = lanczos;
  for (double radius : {1.5, 3.0, 4.5}) {
    const RegimeCurve curve = construction_curve(w, 0, radius, o);
    ASSERT_GE(curve.points.size(), 6u);
    for (const auto& p : curve.points)
      EXPECT_NEAR(p.lipschitz, p.full, 1e-9 * p.full) << "R " << radius << " n " << p.n << " merged " << p.merged
                                                      << " query " << p.query;
  }
}

// The Jacobians behind the removed "BDCSVD crashes" workarounds (regime.cpp, attack): the
// construction's n − 1 identical tokens give dozens of equal singular values. The dense method (the
// Gram route, docs/theory.md §4), which auto now picks for them, must agree with Lanczos and with the
// 2-point reduction (§MF.4) for n up to 128.
TEST(Construction, DenseMethodHandlesTheDegenerateJacobians) {
  std::mt19937_64 rng(32);
  const AttentionWeights w = construction_head(rng);
  RegimeOptions dense;
  dense.n_min = 2;
  dense.n_max = 128;
  dense.per_decade = 4;
  dense.full_max = 128;
  dense.spectral.method = SpectralMethod::Dense;
  RegimeOptions lanczos = dense;
  lanczos.spectral.method = SpectralMethod::Lanczos;
  lanczos.spectral.tol = 1e-11;
  for (double radius : {1.5, 4.5}) {
    const RegimeCurve a = construction_curve(w, 0, radius, dense);
    const RegimeCurve b = construction_curve(w, 0, radius, lanczos);
    ASSERT_EQ(a.points.size(), b.points.size());
    ASSERT_GE(a.points.size(), 8u);
    for (size_t i = 0; i < a.points.size(); ++i) {
      const RegimePoint& p = a.points[i];
      ASSERT_TRUE(std::isfinite(p.full)) << "R " << radius << " n " << p.n;
      EXPECT_NEAR(p.full, b.points[i].full, 1e-9 * p.full) << "R " << radius << " n " << p.n;
      EXPECT_NEAR(p.full, p.lipschitz, 1e-9 * p.full) << "R " << radius << " n " << p.n;
    }
  }
  // The three inputs on which BDCSVD failed (§MF.7): σ off by 3e-5 at (seed 32, R 1.5, n 43), a crash at
  // (seed 32, R 3, n 93), an over-estimate by 1.6e-6 at (seed 33, R = √(4 ln 10⁴), n 6).
  struct Failed {
    std::uint64_t seed;
    double radius;
    Index n;
  };
  for (const Failed& f : {Failed{32, 1.5, 43}, Failed{32, 3.0, 93}, Failed{33, std::sqrt(4 * std::log(1e4)), 6}}) {
    std::mt19937_64 head_rng(f.seed);
    LayerSpec one;
    one.attention = construction_head(head_rng);
    const MatrixD Xf = paper_construction(one.attention, 0, f.n, f.radius).X;
    const Linearization<double> at(build_map<double>(one), Xf);
    const double reference = Eigen::JacobiSVD<MatrixD>(assemble_dense(at)).singularValues()(0);
    SpectralOptions o;
    o.method = SpectralMethod::Dense;
    const SpectralResult r = spectral_norm(at, o);
    EXPECT_NEAR(r.lipschitz, reference, 1e-12 * reference) << "seed " << f.seed << " R " << f.radius << " n " << f.n;
    EXPECT_NEAR(r.lower, reference, 1e-12 * reference) << "seed " << f.seed << " R " << f.radius << " n " << f.n;
  }
  // The input is the degenerate one: at n = 64 the Jacobian has a singular value repeated dozens of times.
  LayerSpec spec;
  spec.attention = w;
  const MatrixD X = paper_construction(w, 0, 64, 3.0).X;
  const Linearization<double> lin(build_map<double>(spec), X);
  const VectorD s = Eigen::JacobiSVD<MatrixD>(assemble_dense(lin)).singularValues();
  Index largest_cluster = 1, run = 1;
  for (Index i = 1; i < s.size(); ++i) {
    run = std::abs(s(i) - s(i - 1)) <= 1e-10 * s(0) ? run + 1 : 1;
    largest_cluster = std::max(largest_cluster, run);
  }
  EXPECT_GE(largest_cluster, 30);
  EXPECT_EQ(measure_local_lipschitz(spec, X).method, SpectralMethod::Dense);  // what auto runs on it now
}

TEST(Construction, GrowsLikeSqrtNThenSaturates) {
  std::mt19937_64 rng(33);
  const AttentionWeights w = construction_head(rng);
  const double radius = std::sqrt(4 * std::log(1e4));  // n* = 1e4
  RegimeOptions o;
  o.n_min = 2;
  o.n_max = 100000000;
  o.per_decade = 4;
  o.full_max = 0;  // the 2-point reduction only (checked against the full computation above)
  o.spectral.method = SpectralMethod::Dense;
  const RegimeCurve curve = construction_curve(w, 0, radius, o);
  EXPECT_GE(curve.slope_below, 0.4);
  EXPECT_LE(curve.slope_below, 0.6);
  EXPECT_LT(curve.slope_above, 0.15);
  for (const auto& p : curve.points) EXPECT_TRUE(std::isfinite(p.lipschitz)) << p.n;
}

TEST(Iid, MeanFieldConstantConverges) {
  std::mt19937_64 rng(34);
  LayerSpec spec;
  spec.attention = AttentionWeights::paper_form(random_matrix(rng, 3, 3, 0.5), random_matrix(rng, 3, 3));
  RegimeOptions o;
  o.n_min = 2000;
  o.n_max = 4000;
  o.per_decade = 1;  // the grid is {2000, 4000}
  o.full_max = 0;
  o.seed = 5;
  o.spectral.method = SpectralMethod::Lanczos;
  o.spectral.tol = 1e-8;
  // σ = 0.5, σ²‖A‖ ≈ 0.18: inside the range where the kernel operator is Hilbert–Schmidt (§MF.6).
  const RegimeCurve curve = iid_curve(spec, 0.5 * std::sqrt(3.0), o);
  ASSERT_EQ(curve.points.size(), 2u);
  const double a = curve.points[0].lipschitz, b = curve.points[1].lipschitz;
  EXPECT_LT(std::abs(a - b), 0.03 * b) << a << " " << b;
}

TEST(Construction, DefaultsComeFromTheRegime) {
  // n_max = 0 and full_max = −1 leave the grid to the regime: for the construction 1000 n* clamped
  // to [10⁴, 10⁹] and the full computation up to n = 256 (n* = e here, so n_max = 10⁴).
  std::mt19937_64 rng(35);
  const AttentionWeights w = construction_head(rng);
  RegimeOptions o;
  o.per_decade = 1;
  o.spectral.method = SpectralMethod::Lanczos;
  const RegimeCurve curve = construction_curve(w, 0, 2.0, o);
  ASSERT_FALSE(curve.points.empty());
  EXPECT_EQ(curve.points.back().n, 10000);
  for (const auto& p : curve.points) EXPECT_EQ(std::isnan(p.full), p.n > 256) << p.n;
}
