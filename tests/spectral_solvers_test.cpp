// The solvers: dense against an independent SVD, Lanczos and power against dense on random layers,
// certificates, float32.
#include <gtest/gtest.h>

#include <fmt/core.h>
#include <omp.h>

#include <string>
#include <tuple>
#include <vector>

#include "spectral/measure.h"
#include "common/error.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;

namespace {

struct RandomLayer {
  LayerSpec spec;
  MatrixD X;
  std::string name;
};

// heads 1–4, causal or not, with and without biases and W_O, each norm placement, n 1..16, d 1..12.
RandomLayer random_layer(std::mt19937_64& rng, int index) {
  std::uniform_int_distribution<int> heads(1, 4), n_dist(1, 16), d_dist(1, 12), k_dist(1, 4), coin(0, 1),
      placement(0, 5);
  AttentionOptions o;
  o.heads = heads(rng);
  o.d = d_dist(rng);
  o.k = k_dist(rng);
  o.causal = coin(rng);
  o.biases = coin(rng);
  o.w_o = coin(rng);
  o.sd = 0.8;
  const int where = placement(rng);
  const bool residual = where >= 2;
  if (o.w_o) {
    o.kv = k_dist(rng);
    o.d_out = residual ? o.d : d_dist(rng);
  } else {
    // Without W_O the output width is H·k_v; a residual needs it to equal d.
    if (residual) o.heads = 1;
    o.kv = residual ? o.d : k_dist(rng);
  }
  RandomLayer layer;
  layer.spec.attention = random_attention(rng, o);
  const Index d_out = layer.spec.attention.output_dim();
  const bool bias = coin(rng);
  if (where == 1 || where == 3 || where == 5)
    layer.spec.pre_norm = random_norm(rng, where == 3 ? NormKind::RmsNorm : NormKind::LayerNorm, o.d, bias);
  layer.spec.residual = residual;
  if (where == 4 || where == 5)
    layer.spec.post_norm = random_norm(rng, where == 5 ? NormKind::RmsNorm : NormKind::LayerNorm, d_out, bias);
  const Index n = n_dist(rng);
  layer.X = random_matrix(rng, n, o.d, 1.5);
  layer.name = fmt::format("#{} {} n={} d={}", index, layer.spec.describe(), n, o.d);
  return layer;
}

}  // namespace

TEST(Dense, MatchesAnIndependentSvdOfTheJacobianAssembledFromVjps) {
  std::mt19937_64 rng(20);
  for (int t = 0; t < 10; ++t) {
    const RandomLayer layer = random_layer(rng, t);
    Linearization<double> lin(build_map<double>(layer.spec), layer.X);
    // Rows of J from Jᵀ e_i: a different assembly path from the solver's columns.
    MatrixD J(lin.output_size(), lin.input_size());
    for (Index i = 0; i < lin.output_size(); ++i) J.row(i) = lin.apply_transpose(VectorD::Unit(lin.output_size(), i));
    const double sigma = Eigen::JacobiSVD<MatrixD>(J).singularValues()(0);
    SpectralOptions o;
    o.method = SpectralMethod::Dense;
    const SpectralResult r = spectral_norm(lin, o);
    EXPECT_NEAR(r.lipschitz, sigma, 1e-12 * sigma) << layer.name;
    EXPECT_NEAR(r.lower, sigma, 1e-12 * sigma) << layer.name;
    EXPECT_LT(r.relative_residual, 1e-10) << layer.name;
  }
}

TEST(IterativeSolvers, AgreeWithDenseOnRandomLayers) {
  std::mt19937_64 rng(21);
  int compared = 0;
  for (int t = 0; t < 60; ++t) {
    const RandomLayer layer = random_layer(rng, t);
    Linearization<double> lin(build_map<double>(layer.spec), layer.X);
    SpectralOptions o;
    o.method = SpectralMethod::Dense;
    const double exact = spectral_norm(lin, o).lipschitz;
    for (SpectralMethod method : {SpectralMethod::Lanczos, SpectralMethod::Power}) {
      o.method = method;
      o.seed = t;
      SpectralResult r; try { r = spectral_norm(lin, o);} catch(std::exception&e){ ADD_FAILURE() << layer.name << " exact=" << exact << " " << e.what(); continue;}
      EXPECT_TRUE(r.converged) << layer.name << " " << to_string(method);
      EXPECT_NEAR(r.lipschitz, exact, 1e-9 * exact) << layer.name << " " << to_string(method);
      EXPECT_LE(r.lower, exact * (1 + 1e-12)) << layer.name;  // the certificate never exceeds the truth
      EXPECT_LT(r.relative_residual, 1e-9) << layer.name << " " << to_string(method);
      EXPECT_GT(r.matvecs, 0) << layer.name;
    }
    ++compared;
  }
  EXPECT_GE(compared, 50);
}

TEST(IterativeSolvers, LanczosOnALargerLayerAgreesWithDense) {
  std::mt19937_64 rng(22);
  AttentionOptions o{4, 24, 6, 6, true, true, true, 24, 0.5};
  LayerSpec spec;
  spec.attention = random_attention(rng, o);
  spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 24, true);
  spec.residual = true;
  const MatrixD X = random_matrix(rng, 40, 24);
  SpectralOptions so;
  so.method = SpectralMethod::Dense;
  const double exact = measure_local_lipschitz(spec, X, so).lipschitz;
  so.method = SpectralMethod::Lanczos;
  const SpectralResult r = measure_local_lipschitz(spec, X, so);
  EXPECT_NEAR(r.lipschitz, exact, 1e-9 * exact);
  EXPECT_TRUE(r.converged);
  // Lanczos needs far fewer products than the 960 columns of the dense Jacobian.
  EXPECT_LT(r.matvecs, 300);
}

// Small subspaces force the implicit restarts (§4): the answer must not depend on --krylov, and
// convergence is checked after every product, so the count is not tied to the subspace size.
TEST(IterativeSolvers, LanczosRestartsAgreeWithDenseForEveryKrylovSize) {
  std::mt19937_64 rng(23);
  AttentionOptions o{2, 10, 4, 4, true, true, true, 10, 0.9};
  LayerSpec spec;
  spec.attention = random_attention(rng, o);
  spec.post_norm = random_norm(rng, NormKind::RmsNorm, 10, false);
  const MatrixD X = random_matrix(rng, 30, 10, 1.5);
  Linearization<double> lin(build_map<double>(spec), X);
  SpectralOptions so;
  so.method = SpectralMethod::Dense;
  const double exact = spectral_norm(lin, so).lipschitz;
  so.method = SpectralMethod::Lanczos;
  std::vector<long> counts;
  for (int krylov : {3, 4, 5, 6, 9, 20, 60}) {
    so.krylov_dim = krylov;
    const SpectralResult r = spectral_norm(lin, so);
    EXPECT_TRUE(r.converged) << "krylov " << krylov;
    EXPECT_NEAR(r.lipschitz, exact, 1e-9 * exact) << "krylov " << krylov;
    EXPECT_LT(r.relative_residual, 1e-9) << "krylov " << krylov;
    counts.push_back(r.matvecs);
  }
  // With 20 or 60 vectors no restart happens before convergence here, so both stop after the same
  // product, and that product is not a multiple of the subspace size.
  EXPECT_EQ(counts[5], counts[6]);
  EXPECT_LT(counts[5], 20);
  // The restarted runs need more products, but the subspace still converges.
  EXPECT_GE(counts[0], counts[6]);
  EXPECT_GT(counts[0], 3 * 3);  // so krylov 3 went through several restarts
  fmt::print("products for krylov 3, 4, 5, 6, 9, 20, 60: {} {} {} {} {} {} {}\n", counts[0], counts[1], counts[2],
             counts[3], counts[4], counts[5], counts[6]);
}

// J = diag(s): σ_max is max |s_i|, known exactly. N = 50,000 spans four row chunks of the Lanczos
// basis sweeps (§4), which the attention tests (N in the hundreds) never do.
class DiagonalOperator final : public LinearOperator {
 public:
  explicit DiagonalOperator(VectorD s) : s_(std::move(s)) {}
  Index input_size() const override { return s_.size(); }
  Index output_size() const override { return s_.size(); }
  VectorD apply(const VectorD& v) const override { return s_.cwiseProduct(v); }
  VectorD apply_transpose(const VectorD& w) const override { return s_.cwiseProduct(w); }

 private:
  VectorD s_;
};

// Three spectra: graded (1/(1 + i/10)), rank 3 (the Krylov space becomes invariant after three
// products, so the step's second Gram–Schmidt pass and the fresh-direction restart run), and a
// cluster at the top (σ = 1 and 1 − 10⁻³ above a tail ≤ 0.5, slow to separate, so a subspace of 6
// restarts many times), and a narrow band (σ² in [0.9, 0.99] and one σ = 1: ‖JᵀJv‖ is many times
// the Lanczos residual ‖f‖, which multiplies any loss of orthogonality at every step). Each must give max |s_i| to
// 1e-10, with 1 or 2 threads and the same bits, and still give it after running on long past convergence.
TEST(IterativeSolvers, LanczosOnDiagonalOperatorsSpanningManyRowChunks) {
  const Index N = 50000;
  VectorD graded(N), rank3 = VectorD::Zero(N), cluster(N), narrow(N);
  for (Index i = 0; i < N; ++i) {
    graded(i) = 1.0 / (1.0 + static_cast<double>(i) / 10.0);
    cluster(i) = 0.5 / (1.0 + static_cast<double>(i));
    narrow(i) = std::sqrt(0.9 + 0.09 * static_cast<double>(i) / static_cast<double>(N));
  }
  narrow(N / 3) = 1.0;
  rank3.head(3) << 2.0, -1.5, 0.7;
  cluster(N - 1) = 1.0;
  cluster(N / 2) = 1.0 - 1e-3;
  struct Case {
    const char* name;
    VectorD s;
    int krylov;
  };
  for (const Case& c : {Case{"graded", graded, 20}, Case{"rank 3", rank3, 20}, Case{"cluster", cluster, 6},
                        Case{"narrow", narrow, 20}}) {
    const DiagonalOperator op(c.s);
    const double exact = c.s.cwiseAbs().maxCoeff();
    SpectralOptions o;
    o.method = SpectralMethod::Lanczos;
    o.krylov_dim = c.krylov;
    o.tol = 1e-12;
    std::vector<SpectralResult> runs;
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      runs.push_back(spectral_norm(op, o));
    }
    omp_set_num_threads(omp_get_num_procs());
    for (const SpectralResult& r : runs) {
      EXPECT_TRUE(r.converged) << c.name;
      EXPECT_NEAR(r.lipschitz, exact, 1e-10 * exact) << c.name;
      EXPECT_NEAR(r.lower, exact, 1e-10 * exact) << c.name;
    }
    EXPECT_EQ(runs[0].lipschitz, runs[1].lipschitz) << c.name << ": the sums depend on the thread count";
    EXPECT_EQ(runs[0].matvecs, runs[1].matvecs) << c.name;
    // Long after convergence (a tolerance it cannot meet, three restarts): the basis must stay
    // orthonormal, or ghost copies of the top Ritz value push θ above the spectrum.
    o.tol = 1e-300;
    o.max_iter = 3;
    const SpectralResult late = spectral_norm(op, o);
    EXPECT_TRUE(late.matvecs >= c.krylov + 3 * (c.krylov / 2) || late.converged) << c.name;
    EXPECT_NEAR(late.lipschitz, exact, 1e-10 * exact) << c.name;
    fmt::print("{}: {} products, σ = {:.17g} (exact {}); after {} products σ = {:.17g}\n", c.name, runs[0].matvecs,
               runs[0].lipschitz, exact, late.matvecs, late.lipschitz);
  }
}

// The dense-matrix pair against JacobiSVD: wide, tall, square, rank-deficient, and many equal
// singular values (an orthogonal matrix times 3, where BDCSVD once failed); Mv = σu and Mᵀu = σv.
TEST(Dense, TopSingularPairOfAMatrixMatchesJacobiSvd) {
  std::mt19937_64 rng(27);
  const MatrixD Q = Eigen::HouseholderQR<MatrixD>(random_matrix(rng, 40, 40)).householderQ();
  std::vector<MatrixD> cases = {random_matrix(rng, 5, 30), random_matrix(rng, 30, 5), random_matrix(rng, 12, 12),
                                random_matrix(rng, 20, 2) * random_matrix(rng, 2, 15), 3.0 * Q};
  for (const MatrixD& M : cases) {
    const double expected = Eigen::JacobiSVD<MatrixD>(M).singularValues()(0);
    const SingularPair p = top_singular_pair(M);
    EXPECT_NEAR(p.sigma, expected, 1e-13 * expected) << M.rows() << " × " << M.cols();
    EXPECT_NEAR(top_singular_value(M), expected, 1e-13 * expected);
    EXPECT_NEAR(p.right.norm(), 1.0, 1e-14);
    EXPECT_NEAR(p.left.norm(), 1.0, 1e-14);
    EXPECT_LT((M * p.right - p.sigma * p.left).norm(), 1e-12 * expected);
    EXPECT_LT((M.transpose() * p.left - p.sigma * p.right).norm(), 1e-12 * expected);
  }
  EXPECT_EQ(top_singular_value(MatrixD(0, 3)), 0.0);
  EXPECT_EQ(top_singular_pair(MatrixD::Zero(3, 4)).sigma, 0.0);
}

// Every method returns u = Jv/‖Jv‖ with the certificate: Jᵀu = σ v at the top pair.
TEST(IterativeSolvers, LeftVectorIsTheNormalisedImage) {
  std::mt19937_64 rng(28);
  LayerSpec spec;
  spec.attention = random_attention(rng, AttentionOptions{2, 8, 4, 4, true, true, true, 8, 0.6});
  const Linearization<double> lin(build_map<double>(spec), random_matrix(rng, 12, 8));
  for (SpectralMethod method : {SpectralMethod::Dense, SpectralMethod::Lanczos, SpectralMethod::Power}) {
    SpectralOptions o;
    o.method = method;
    const SpectralResult r = spectral_norm(lin, o);
    ASSERT_EQ(r.left_vector.size(), lin.output_size()) << to_string(method);
    EXPECT_LT((r.left_vector - lin.apply(r.right_vector) / r.lower).norm(), 1e-14) << to_string(method);
    EXPECT_LT((lin.apply_transpose(r.left_vector) - r.lower * r.right_vector).norm(), 1e-8 * r.lower)
        << to_string(method);
  }
}

// A warm start from the top vector of a nearby Jacobian (the next step of an ascent) converges in
// fewer products than the random start, to the same σ; from the exact vector in very few. Auto with
// a start runs Lanczos even on a small Jacobian; a start of the wrong size is refused by field.
TEST(IterativeSolvers, WarmStartConvergesFasterToTheSameValue) {
  std::mt19937_64 rng(29);
  LayerSpec spec;
  spec.attention = random_attention(rng, AttentionOptions{4, 24, 6, 6, true, true, true, 24, 0.5});
  spec.residual = true;
  const MatrixD X = random_matrix(rng, 40, 24);
  const Linearization<double> here(build_map<double>(spec), X);
  const Linearization<double> nearby(build_map<double>(spec), X + random_matrix(rng, 40, 24, 1e-3));
  SpectralOptions o;
  o.method = SpectralMethod::Dense;
  const SpectralResult exact = spectral_norm(here, o);
  o.method = SpectralMethod::Auto;
  o.dense_max_size = 100000;  // auto would pick dense without a start
  const SpectralResult cold = spectral_norm(here, o);
  EXPECT_EQ(cold.method, SpectralMethod::Dense);
  o.start = spectral_norm(nearby, o).right_vector;
  const SpectralResult warm = spectral_norm(here, o);
  EXPECT_EQ(warm.method, SpectralMethod::Lanczos);
  o.method = SpectralMethod::Lanczos;
  o.start = VectorD();
  const SpectralResult random_start = spectral_norm(here, o);
  o.start = exact.right_vector;
  const SpectralResult from_exact = spectral_norm(here, o);
  for (const SpectralResult* r : {&warm, &random_start, &from_exact}) {
    EXPECT_TRUE(r->converged);
    EXPECT_NEAR(r->lipschitz, exact.lipschitz, 1e-10 * exact.lipschitz);
  }
  EXPECT_LT(warm.matvecs, random_start.matvecs);
  EXPECT_LE(from_exact.matvecs, 3);
  o.method = SpectralMethod::Power;
  o.start = exact.right_vector;
  EXPECT_LE(spectral_norm(here, o).matvecs, 2);
  fmt::print("products: random start {}, warm start from a point 1e-3 away {}, from the top vector {}\n",
             random_start.matvecs, warm.matvecs, from_exact.matvecs);
  o.start = VectorD::Ones(7);
  try {
    spectral_norm(here, o);
    ADD_FAILURE() << "a start of the wrong size was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "start");
  }
  o.start = VectorD::Zero(here.input_size());
  EXPECT_THROW(spectral_norm(here, o), InputError);
}

TEST(Certificate, LowerBoundOfAnyVectorIsBelowTheNorm) {
  std::mt19937_64 rng(23);
  const RandomLayer layer = random_layer(rng, 0);
  Linearization<double> lin(build_map<double>(layer.spec), layer.X);
  SpectralOptions o;
  o.method = SpectralMethod::Dense;
  const double exact = spectral_norm(lin, o).lipschitz;
  for (int t = 0; t < 20; ++t) {
    const Certificate c = certify(lin, random_vector(rng, lin.input_size()));
    EXPECT_LE(c.lower, exact * (1 + 1e-12));
  }
  // Products the caller already has at v (at v's length) give the certificate a fresh one gives.
  const VectorD v = random_vector(rng, lin.input_size());
  const Certificate fresh = certify(lin, v);
  const Certificate known = certify(lin, v, lin.apply_keeping_image(v));
  EXPECT_NEAR(known.lower, fresh.lower, 1e-13 * fresh.lower);
  EXPECT_NEAR(known.relative_residual, fresh.relative_residual, 1e-12);
  EXPECT_LT(relative_error(known.at_v.image, fresh.at_v.image), 1e-13);
  EXPECT_LT(relative_error(known.at_v.normal, fresh.at_v.normal), 1e-13);
  // A power method stopped after two products still certifies its lower bound.
  o.method = SpectralMethod::Power;
  o.max_iter = 2;
  const SpectralResult r = spectral_norm(lin, o);
  EXPECT_LE(r.lower, exact * (1 + 1e-12));
  EXPECT_EQ(r.matvecs, 2);
}

TEST(Measure, AutoPicksDenseForSmallAndLanczosForLarge) {
  std::mt19937_64 rng(24);
  LayerSpec spec;
  spec.attention = random_attention(rng, AttentionOptions{2, 8, 4, 4, false, false, true, 8, 0.5});
  SpectralOptions o;
  EXPECT_EQ(measure_local_lipschitz(spec, random_matrix(rng, 4, 8), o).method, SpectralMethod::Dense);
  EXPECT_EQ(measure_local_lipschitz(spec, random_matrix(rng, 200, 8), o).method, SpectralMethod::Lanczos);
}

TEST(Measure, Float32AgreesWithFloat64AndStaysCertified) {
  std::mt19937_64 rng(25);
  LayerSpec spec;
  spec.attention = random_attention(rng, AttentionOptions{4, 32, 8, 8, true, true, true, 32, 0.3});
  spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 32, true);
  const MatrixD X = random_matrix(rng, 30, 32);
  SpectralOptions o;
  o.method = SpectralMethod::Lanczos;
  const SpectralResult r64 = measure_local_lipschitz(spec, X, o, Precision::F64);
  const SpectralResult r32 = measure_local_lipschitz(spec, X, o, Precision::F32);
  EXPECT_NEAR(r32.lipschitz, r64.lipschitz, 1e-5 * r64.lipschitz);
  EXPECT_LE(r32.lower, r64.lipschitz * (1 + 1e-12));  // recertified in float64
  EXPECT_NEAR(r32.lower, r64.lipschitz, 1e-5 * r64.lipschitz);
}

TEST(Measure, RejectsNonFiniteInputAndBadOptions) {
  std::mt19937_64 rng(26);
  LayerSpec spec;
  spec.attention = random_attention(rng, AttentionOptions{});
  MatrixD X = random_matrix(rng, 3, 6);
  X(1, 2) = std::nan("");
  EXPECT_THROW(measure_local_lipschitz(spec, X), InputError);
  X(1, 2) = 0;
  SpectralOptions o;
  o.tol = -1;
  EXPECT_THROW(measure_local_lipschitz(spec, X, o), InputError);
  EXPECT_THROW(measure_local_lipschitz(spec, random_matrix(rng, 3, 5)), InputError);
  EXPECT_THROW(parse_spectral_method("svd"), InputError);
  EXPECT_THROW(parse_precision("f16"), InputError);
}

// Mixed precision (docs/theory.md §4.5): a float32 phase on the operator's twin, then float64 from its
// Ritz vector. On random layers it must give the float64 solve's σ (to 1e-10 at tol 1e-12), with a
// float64 residual and a certified lower bound, and count the float32 products in f32_matvecs.
TEST(MixedPrecision, AgreesWithFloat64AndDenseOnLayers) {
  std::mt19937_64 rng(22);
  for (int trial = 0; trial < 4; ++trial) {
    AttentionOptions ao{4, 24, 6, 6, trial % 2 == 0, true, true, 24, 0.5 + 0.3 * trial};
    LayerSpec spec;
    spec.attention = random_attention(rng, ao);
    spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 24, true);
    spec.residual = trial >= 2;
    const MatrixD X = random_matrix(rng, 40, 24);
    SpectralOptions o;
    o.method = SpectralMethod::Dense;
    const double exact = measure_local_lipschitz(spec, X, o).lipschitz;
    o.method = SpectralMethod::Lanczos;
    o.tol = 1e-12;
    const SpectralResult plain = measure_local_lipschitz(spec, X, o);
    o.mixed_tol = 1e-5;
    long reported = 0;
    o.on_product = [&](long products, double) { EXPECT_EQ(products, ++reported); };
    const SpectralResult mixed = measure_local_lipschitz(spec, X, o);
    EXPECT_EQ(plain.mixed, MixedPhase::Off);
    EXPECT_EQ(mixed.mixed, MixedPhase::Used) << trial;
    EXPECT_TRUE(mixed.converged);
    EXPECT_NEAR(mixed.lipschitz, plain.lipschitz, 1e-10 * plain.lipschitz) << trial;
    EXPECT_NEAR(mixed.lipschitz, exact, 1e-10 * exact) << trial;
    EXPECT_LE(mixed.lower, exact * (1 + 1e-12));
    EXPECT_LT(mixed.relative_residual, 1e-10);
    EXPECT_GT(mixed.f32_matvecs, 0);
    EXPECT_GT(mixed.matvecs, mixed.f32_matvecs);
    EXPECT_EQ(reported, mixed.matvecs);  // on_product numbers the products across both phases
  }
}

namespace {

// A diagonal operator with a float32 twin that is another diagonal operator: the exact J rounded
// to float32 (twin_s = s), or a deliberately wrong one, to put the mixed-precision solve's checks
// (§4.5) on trial. noise > 0 adds that much relative noise to every twin product (a twin whose
// float32 phase cannot converge: it stalls).
class DiagonalWithTwin final : public LinearOperator {
 public:
  class Twin final : public LinearOperator {
   public:
    Twin(VectorD s, double noise) : s_(std::move(s)), noise_(noise) {}
    Index input_size() const override { return s_.size(); }
    Index output_size() const override { return s_.size(); }
    VectorD apply(const VectorD& v) const override { return round(s_.cwiseProduct(v)); }
    VectorD apply_transpose(const VectorD& w) const override { return round(s_.cwiseProduct(w)); }

   private:
    VectorD round(const VectorD& x) const {
      VectorD y = x.cast<float>().cast<double>();
      if (noise_ > 0) y += noise_ * y.norm() * random_unit_vector(y.size(), ++draws_);
      return y;
    }
    VectorD s_;
    double noise_;
    mutable std::uint64_t draws_ = 0;
  };
  DiagonalWithTwin(VectorD s, VectorD twin_s, double noise = 0) : s_(std::move(s)), twin_(std::move(twin_s), noise) {}
  Index input_size() const override { return s_.size(); }
  Index output_size() const override { return s_.size(); }
  VectorD apply(const VectorD& v) const override {
    ++applies_;
    return s_.cwiseProduct(v);
  }
  VectorD apply_transpose(const VectorD& w) const override { return s_.cwiseProduct(w); }
  const LinearOperator* float32_twin() const override { return &twin_; }
  long applies() const { return applies_; }  // float64 J products, certificate included

 private:
  VectorD s_;
  Twin twin_;
  mutable long applies_ = 0;
};

// Lanczos to tol, with a float32 phase to mixed_tol (0: float64 alone).
SpectralOptions lanczos_options(double tol, double mixed_tol) {
  SpectralOptions o;
  o.method = SpectralMethod::Lanczos;
  o.tol = tol;
  o.mixed_tol = mixed_tol;
  return o;
}

// σ = 1 at index `top` above a graded tail ≤ 0.9.
VectorD graded_spectrum(Index N, Index top) {
  VectorD s(N);
  for (Index i = 0; i < N; ++i) s(i) = 0.9 / (1.0 + static_cast<double>(i) / 20.0);
  s(top) = 1.0;
  return s;
}

}  // namespace

// The adversaries of the mixed-precision solve, each of which would make a float32 phase trusted
// blindly return a wrong σ: its answer must equal max |s_i| to 1e-10 all the same.
TEST(MixedPrecision, DetectsFloat32PhasesThatCannotBeTrusted) {
  const Index N = 3000;
  SpectralOptions o = lanczos_options(1e-10, 1e-5);
  auto solve = [&](const DiagonalWithTwin& op) {
    const SpectralResult r = spectral_norm(op, o);
    EXPECT_TRUE(r.converged);
    EXPECT_NEAR(r.lipschitz, 1.0, 1e-10);
    EXPECT_NEAR(r.lower, 1.0, 1e-10);
    EXPECT_GT(r.f32_matvecs, 0);
    return r;
  };
  // Clustered top: σ₂ = 1 − 1e-7, a gap float32 rounds away and the float32 phase's tolerance cannot
  // see; the float64 phase must still separate the two.
  VectorD cluster = graded_spectrum(N, 7);
  cluster(1500) = 1.0 - 1e-7;
  EXPECT_EQ(solve(DiagonalWithTwin(cluster, cluster)).mixed, MixedPhase::Used);
  // A twin whose top singular vector is orthogonal to J's: its σ = 1 sits where J has 0.99, and J's
  // top is 0.98 in the twin. The float32 Ritz vector is then (nearly) an eigenvector of J for 0.99²,
  // from which float64 Lanczos would stop at 0.99 at once: the first float64 product must reject it.
  VectorD truth = graded_spectrum(N, 7), swapped = truth;
  truth(100) = 0.99;
  swapped(7) = 0.98;
  swapped(100) = 1.0;
  EXPECT_EQ(solve(DiagonalWithTwin(truth, swapped)).mixed, MixedPhase::Rejected);
  // Noisy twins: every product off by 1e-3, 1e-2 or 0.3 of its norm in a random direction. Lanczos
  // tolerates the first (its vector is still good), not the others: they must be caught.
  for (double noise : {1e-3, 1e-2, 0.3}) {
    const SpectralResult r = solve(DiagonalWithTwin(truth, truth, noise));
    fmt::print("noise {}: {}, {} products ({} in float32)\n", noise, to_string(r.mixed), r.matvecs, r.f32_matvecs);
    if (noise >= 0.3) {
      EXPECT_NE(r.mixed, MixedPhase::Used);
    }
    EXPECT_LE(r.f32_matvecs, 20 + 4 * 10);  // the phase's budget: krylov + 4 restarts of 10
  }
  // A phase that cannot meet its tolerance within 4 restarts (a subspace of 4 on a graded spectrum)
  // stalls and is given up; the float64 solve then starts afresh.
  o.krylov_dim = 4;
  const SpectralResult stalled = solve(DiagonalWithTwin(truth, truth));
  EXPECT_EQ(stalled.mixed, MixedPhase::Stalled);
  EXPECT_EQ(stalled.f32_matvecs, 4 + 4 * 2);  // the phase's budget: krylov + 4 restarts of 2
  o.krylov_dim = 20;
  // Mixed precision is off without a twin, and for a tolerance not looser than tol.
  o.mixed_tol = 1e-12;
  EXPECT_EQ(spectral_norm(DiagonalWithTwin(truth, truth), o).mixed, MixedPhase::Off);
  o.mixed_tol = -1;
  EXPECT_THROW(spectral_norm(DiagonalWithTwin(truth, truth), o), InputError);
}

// The float64 phase by float32 corrections (docs/theory.md §4.7): with a twin that is J rounded to
// float32, a few float64 products take the float32 phase's vector to tol; with a twin whose lower
// spectrum is wrong (its top pair is J's, so the float32 phase and the start check pass), the
// corrections do not shrink the residual, and the float64 solve starts afresh: σ_max to 1e-10 and a
// float64 residual below tol either way.
TEST(MixedPrecision, CorrectionsFinishInFewFloat64ProductsOrGiveUp) {
  const Index N = 3000;
  const SpectralOptions o = lanczos_options(1e-10, 1e-6);
  const VectorD s = graded_spectrum(N, 7);
  const DiagonalWithTwin twin_is_rounded(s, s);
  const SpectralResult good = spectral_norm(twin_is_rounded, o);
  const SpectralResult plain = spectral_norm(DiagonalWithTwin(s, s), lanczos_options(1e-10, 0));
  EXPECT_EQ(good.mixed, MixedPhase::Used);
  EXPECT_NEAR(good.lipschitz, 1.0, 1e-10);
  EXPECT_LT(good.relative_residual, 1e-10);
  const long good_f64 = good.matvecs - good.f32_matvecs;
  EXPECT_LE(good_f64, 5);  // the start and at most 4 corrections
  EXPECT_LT(good_f64, plain.matvecs / 3);
  // The certificate takes Jv and JᵀJv from the subspace's products: no J product of its own, and the
  // same lower bound as a fresh product at the vector.
  EXPECT_EQ(twin_is_rounded.applies(), good_f64);
  EXPECT_NEAR(good.lower, s.cwiseProduct(good.right_vector).norm(), 1e-14);
  VectorD wrong = s;
  for (Index i = 0; i < N; ++i)
    if (i != 7) wrong(i) *= 0.3;
  const SpectralResult fallback = spectral_norm(DiagonalWithTwin(s, wrong), o);
  EXPECT_EQ(fallback.mixed, MixedPhase::Rejected);
  EXPECT_TRUE(fallback.converged);
  EXPECT_NEAR(fallback.lipschitz, 1.0, 1e-10);
  EXPECT_LT(fallback.relative_residual, 1e-10);
  EXPECT_GE(fallback.matvecs - fallback.f32_matvecs, plain.matvecs);  // the corrections', then a fresh solve
  fmt::print("corrections: {} + {} products (float64 Lanczos alone {}); wrong twin: {} + {}\n", good_f64,
             good.f32_matvecs, plain.matvecs, fallback.matvecs - fallback.f32_matvecs, fallback.f32_matvecs);
}

// The start hint (docs/theory.md §4.6) is mixed with the Gaussian start, so a hint orthogonal to the
// top singular vector, even an exact singular vector of a lower value (from which Lanczos alone would
// never leave), still gives σ_max, in float64 and with mixed precision.
TEST(StartHint, AHintOrthogonalToTheTopVectorStillGivesTheTop) {
  const Index N = 3000;
  VectorD s = graded_spectrum(N, 7);
  s(100) = 0.99;
  for (const VectorD& hint : {VectorD(VectorD::Unit(N, 100)), VectorD(VectorD::Unit(N, 2000)),
                              VectorD(VectorD::Ones(N) - VectorD::Unit(N, 7))}) {
    for (double mixed_tol : {0.0, 1e-6}) {
      SpectralOptions o = lanczos_options(1e-10, mixed_tol);
      o.start_hint = hint;
      const SpectralResult r = spectral_norm(DiagonalWithTwin(s, s), o);
      EXPECT_TRUE(r.converged);
      EXPECT_NEAR(r.lipschitz, 1.0, 1e-10) << mixed_tol;
      o.method = SpectralMethod::Power;
      o.mixed_tol = 0;
      o.tol = 1e-6;
      EXPECT_NEAR(spectral_norm(DiagonalWithTwin(s, s), o).lipschitz, 1.0, 1e-6);
    }
  }
  SpectralOptions o;
  o.start_hint = VectorD::Ones(5);
  EXPECT_THROW(spectral_norm(DiagonalWithTwin(s, s), o), InputError);
  o.start_hint = VectorD::Zero(N);
  EXPECT_THROW(spectral_norm(DiagonalWithTwin(s, s), o), InputError);
}

// dominant_start on attention layers of every placement (the hint applies without a residual and is
// skipped with one): the same σ as dense, with and without mixed precision.
TEST(StartHint, DominantStartAgreesWithDenseOnLayers) {
  std::mt19937_64 rng(27);
  for (int trial = 0; trial < 6; ++trial) {
    AttentionOptions ao{3, 18, 6, 6, trial % 2 == 0, trial % 3 != 0, true, 18, 0.4 + 0.3 * (trial % 3)};
    LayerSpec spec;
    spec.attention = random_attention(rng, ao);
    if (trial >= 2) spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 18, true);
    spec.residual = trial >= 4;
    const MatrixD X = random_matrix(rng, 30, 18);
    SpectralOptions o;
    o.method = SpectralMethod::Dense;
    const double exact = measure_local_lipschitz(spec, X, o).lipschitz;
    o.method = SpectralMethod::Lanczos;
    o.tol = 1e-12;
    o.dominant_start = true;
    for (double mixed_tol : {0.0, 1e-6}) {
      o.mixed_tol = mixed_tol;
      const SpectralResult r = measure_local_lipschitz(spec, X, o);
      EXPECT_TRUE(r.converged) << trial;
      EXPECT_NEAR(r.lipschitz, exact, 1e-10 * exact) << trial << " " << mixed_tol;
    }
  }
}

namespace {

// σ and product count of one Lanczos solve, for the regression table below.
struct Solve {
  std::string name;
  double sigma = 0;
  long matvecs = 0;
};

// A fixed set of Lanczos solves spanning the solver's paths: random layers (seeds 0–19, some with
// N < 3, which fall back to dense), the restarts for every subspace size, the larger layer, and the
// diagonal operators over many row chunks at 1e-12 and run on past convergence (the rank-3 one
// takes the fresh-direction path).
std::vector<Solve> regression_solves() {
  std::vector<Solve> out;
  auto add = [&](std::string name, const LinearOperator& op, SpectralOptions o) {
    o.method = SpectralMethod::Lanczos;
    const SpectralResult r = spectral_norm(op, o);
    out.push_back({std::move(name), r.lipschitz, r.matvecs});
  };
  std::mt19937_64 rng(21);
  for (int t = 0; t < 20; ++t) {
    const RandomLayer layer = random_layer(rng, t);
    SpectralOptions o;
    o.seed = t;
    add(fmt::format("random layer {}", t), Linearization<double>(build_map<double>(layer.spec), layer.X), o);
  }
  std::mt19937_64 rng23(23);
  AttentionOptions small{2, 10, 4, 4, true, true, true, 10, 0.9};
  LayerSpec spec;
  spec.attention = random_attention(rng23, small);
  spec.post_norm = random_norm(rng23, NormKind::RmsNorm, 10, false);
  const Linearization<double> lin(build_map<double>(spec), random_matrix(rng23, 30, 10, 1.5));
  for (int krylov : {3, 4, 5, 6, 9, 20, 60}) {
    SpectralOptions o;
    o.krylov_dim = krylov;
    add(fmt::format("krylov {}", krylov), lin, o);
  }
  std::mt19937_64 rng22(22);
  AttentionOptions larger{4, 24, 6, 6, true, true, true, 24, 0.5};
  LayerSpec spec22;
  spec22.attention = random_attention(rng22, larger);
  spec22.pre_norm = random_norm(rng22, NormKind::LayerNorm, 24, true);
  spec22.residual = true;
  add("larger layer", Linearization<double>(build_map<double>(spec22), random_matrix(rng22, 40, 24)), {});
  const Index N = 50000;
  VectorD graded(N), rank3 = VectorD::Zero(N), cluster(N);
  for (Index i = 0; i < N; ++i) {
    graded(i) = 1.0 / (1.0 + static_cast<double>(i) / 10.0);
    cluster(i) = 0.5 / (1.0 + static_cast<double>(i));
  }
  rank3.head(3) << 2.0, -1.5, 0.7;
  cluster(N - 1) = 1.0;
  cluster(N / 2) = 1.0 - 1e-3;
  for (const auto& [name, s, krylov] :
       {std::tuple{"graded", graded, 20}, std::tuple{"rank 3", rank3, 20}, std::tuple{"cluster", cluster, 6}}) {
    SpectralOptions o;
    o.krylov_dim = krylov;
    o.tol = 1e-12;
    add(name, DiagonalOperator(s), o);
    o.tol = 1e-300;
    o.max_iter = 3;
    add(fmt::format("{}, on past convergence", name), DiagonalOperator(s), o);
  }
  return out;
}

}  // namespace

// Recorded with the solver of commit 2311a07, which subclassed Spectra::Lanczos; the solver that owns
// its factorization (docs/theory.md §4) must give the same σ to 1e-12 and the same product counts.
// bench/lanczos_regression.sh checks the same on `lipattn measure` runs of GPT-2- and BERT-shaped layers.
TEST(LanczosRegression, SameSigmaAndProductsAsBefore) {
  const std::vector<Solve> recorded = {
      {"random layer 0", 34.051078602439212, 7},
      {"random layer 1", 21.897844310582869, 14},
      {"random layer 2", 7.6529058918079524, 9},
      {"random layer 3", 94.961306513019821, 9},
      {"random layer 4", 4.8136855547736586, 16},
      {"random layer 5", 1.2862641814395934, 2},
      {"random layer 6", 44.75665274556097, 9},
      {"random layer 7", 1.6339989428043475, 11},
      {"random layer 8", 15.544185502565284, 8},
      {"random layer 9", 3.0903680287009903, 5},
      {"random layer 10", 2.160023618790476, 3},
      {"random layer 11", 247.28397173683794, 8},
      {"random layer 12", 0, 2},
      {"random layer 13", 0, 1},
      {"random layer 14", 9.1609849370530689, 15},
      {"random layer 15", 7.1449541036893035e-05, 8},
      {"random layer 16", 5.1712931211080457, 8},
      {"random layer 17", 20.956689536968337, 6},
      {"random layer 18", 5.8055675343575945, 17},
      {"random layer 19", 3.4441048153934379, 10},
      {"krylov 3", 15.653278521719336, 23},
      {"krylov 4", 15.653278521719333, 18},
      {"krylov 5", 15.653278521719329, 17},
      {"krylov 6", 15.653278521719333, 17},
      {"krylov 9", 15.653278521719328, 15},
      {"krylov 20", 15.653278521719331, 13},
      {"krylov 60", 15.653278521719331, 13},
      {"larger layer", 136.27954882632642, 14},
      {"graded", 1, 21},
      {"graded, on past convergence", 1.0000000000000007, 50},
      {"rank 3", 2.0000000000000004, 4},
      {"rank 3, on past convergence", 2.0000000000000004, 5},
      {"cluster", 1, 11},
      {"cluster, on past convergence", 1.0000000000000002, 15},
  };
  const std::vector<Solve> now = regression_solves();
  ASSERT_EQ(now.size(), recorded.size());
  double largest = 0;
  for (size_t i = 0; i < now.size(); ++i) {
    EXPECT_EQ(now[i].name, recorded[i].name);
    EXPECT_NEAR(now[i].sigma, recorded[i].sigma, 1e-12 * recorded[i].sigma) << now[i].name;
    EXPECT_EQ(now[i].matvecs, recorded[i].matvecs) << now[i].name;
    if (recorded[i].sigma > 0) largest = std::max(largest, std::abs(now[i].sigma / recorded[i].sigma - 1));
  }
  fmt::print("{} solves, largest relative difference in σ {:.2g}\n", now.size(), largest);
}
