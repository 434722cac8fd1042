// Streaming attention (docs/theory.md §8) against the stored mode: forward, jvp and vjp agree to
// 1e-10 relative on every case, including n that are not multiples of the tile sizes, the causal
// mask across tile borders, scores large enough to need the online softmax's rescaling, and the
// whole composed layer's σ_max. Also: the adjoint identity and finite differences on the streaming
// map alone, the vjp's bit-for-bit repeatability, the budget's choice, and the errors of modes that
// need the stored matrices.
#include <gtest/gtest.h>

#include <random>

#include "attention/layer.h"
#include "common/error.h"
#include "spectral/measure.h"
#include "spectral/operator.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;

namespace {

const AttentionMemory kStored{AttentionStorage::Stored, 0};
const AttentionMemory kStreaming{AttentionStorage::Streaming, 0};

struct StreamCase {
  Index n, heads, d, k, kv;
  bool causal, biases, w_o;
  double sd;  // weight scale: 1.5 makes scores of size ~10², which the online softmax must rescale
};

std::vector<StreamCase> cases() {
  return {
      {1, 1, 4, 3, 2, false, false, false, 0.5},    {5, 2, 6, 3, 3, true, true, true, 0.5},
      {127, 1, 8, 4, 4, false, true, false, 0.7},   {128, 2, 8, 4, 3, true, false, true, 0.7},
      {129, 1, 5, 5, 5, true, true, false, 0.7},    {257, 3, 6, 2, 4, false, false, true, 0.5},
      {300, 2, 6, 3, 3, true, true, true, 1.5},     {600, 1, 8, 8, 8, false, true, true, 1.5},
      {700, 1, 4, 4, 4, true, false, false, 1.5},   {513, 2, 6, 3, 2, false, true, true, 0.3},
  };
}

AttentionWeights weights_for(const StreamCase& c, std::mt19937_64& rng) {
  AttentionOptions o;
  o.heads = c.heads;
  o.d = c.d;
  o.k = c.k;
  o.kv = c.kv;
  o.causal = c.causal;
  o.biases = c.biases;
  o.w_o = c.w_o;
  o.sd = c.sd;
  return random_attention(rng, o);
}

// pre-LayerNorm → attention (k = k_v = 4, biases, W_O)
LayerSpec random_layer(std::mt19937_64& rng, Index heads, Index d, bool causal) {
  AttentionOptions o;
  o.heads = heads;
  o.d = d;
  o.k = 4;
  o.kv = 4;
  o.causal = causal;
  o.biases = true;
  o.w_o = true;
  LayerSpec spec;
  spec.attention = random_attention(rng, o);
  spec.pre_norm = random_norm(rng, NormKind::LayerNorm, d, true);
  return spec;
}

std::string name(const StreamCase& c) {
  return "n=" + std::to_string(c.n) + " H=" + std::to_string(c.heads) + (c.causal ? " causal" : "") +
         (c.biases ? " biases" : "") + (c.w_o ? " W_O" : "");
}

TEST(Streaming, ForwardJvpVjpEqualStored) {
  std::mt19937_64 rng(8101);
  for (const auto& c : cases()) {
    SCOPED_TRACE(name(c));
    const AttentionWeights w = weights_for(c, rng);
    const MultiHeadAttention<double> stored(w, kStored), streamed(w, kStreaming);
    const MatrixD X = random_matrix(rng, c.n, c.d);
    const auto cs = stored.forward(X), cf = streamed.forward(X);
    ASSERT_FALSE(stored.is_streaming(*cs));
    ASSERT_TRUE(streamed.is_streaming(*cf));
    EXPECT_LE(relative_error(cf->output, cs->output), 1e-12);
    for (int trial = 0; trial < 2; ++trial) {
      const MatrixD dX = random_matrix(rng, c.n, c.d);
      const MatrixD dY = random_matrix(rng, c.n, stored.output_dim());
      EXPECT_LE(relative_error(streamed.jvp(*cf, dX), stored.jvp(*cs, dX)), 1e-10);
      EXPECT_LE(relative_error(streamed.vjp(*cf, dY), stored.vjp(*cs, dY)), 1e-10);
    }
  }
}

// The vjp's dK and dV gather every query block; the per-thread sums are added in a fixed order,
// so repeating a product repeats its bits (a sweep's rerun gives the same numbers).
TEST(Streaming, VjpRepeatsItsBits) {
  std::mt19937_64 rng(8103);
  for (const StreamCase& c :
       {StreamCase{700, 2, 8, 4, 4, true, true, true, 0.7}, StreamCase{1100, 1, 6, 6, 6, false, false, false, 0.7}}) {
    SCOPED_TRACE(name(c));
    const AttentionWeights w = weights_for(c, rng);
    const MultiHeadAttention<double> streamed(w, kStreaming);
    const auto cache = streamed.forward(random_matrix(rng, c.n, c.d));
    const MatrixD dY = random_matrix(rng, c.n, streamed.output_dim());
    const MatrixD first = streamed.vjp(*cache, dY);
    for (int repeat = 0; repeat < 5; ++repeat) EXPECT_TRUE(streamed.vjp(*cache, dY) == first) << "repeat " << repeat;
  }
}

TEST(Streaming, AdjointIdentityAndFiniteDifferences) {
  std::mt19937_64 rng(8102);
  for (const auto& c : cases()) {
    if (c.n > 300) continue;  // finite differences of the direct forward are slow enough already
    SCOPED_TRACE(name(c));
    const AttentionWeights w = weights_for(c, rng);
    const MultiHeadAttention<double> streamed(w, kStreaming);
    const MatrixD X = random_matrix(rng, c.n, c.d);
    const auto cache = streamed.forward(X);
    const MatrixD u = random_matrix(rng, c.n, c.d), v = random_matrix(rng, c.n, streamed.output_dim());
    const MatrixD Ju = streamed.jvp(*cache, u), JTv = streamed.vjp(*cache, v);
    const double lhs = (Ju.array() * v.array()).sum(), rhs = (u.array() * JTv.array()).sum();
    EXPECT_LE(std::abs(lhs - rhs), 1e-12 * Ju.norm() * v.norm());
    const MatrixD fd = finite_difference<double>(streamed, X, u, 1e-5);
    EXPECT_LE(relative_error(Ju, fd), 1e-6);
  }
}

TEST(Streaming, Float32AgreesWithStoredFloat32) {
  std::mt19937_64 rng(8103);
  const StreamCase c{400, 2, 8, 4, 4, true, true, true, 0.7};
  const AttentionWeights w = weights_for(c, rng);
  const MultiHeadAttention<float> stored(w, kStored), streamed(w, kStreaming);
  const MatrixF X = random_matrix(rng, c.n, c.d).cast<float>(), dX = random_matrix(rng, c.n, c.d).cast<float>();
  const auto cs = stored.forward(X), cf = streamed.forward(X);
  const MatrixD a = streamed.vjp(*cf, streamed.jvp(*cf, dX)).cast<double>();
  const MatrixD b = stored.vjp(*cs, stored.jvp(*cs, dX)).cast<double>();
  EXPECT_LE(relative_error(a, b), 1e-5);
}

// The whole layer (pre-norm, attention, residual, post-norm) through the solver: same σ_max.
TEST(Streaming, LayerLipschitzEqualsStored) {
  std::mt19937_64 rng(8104);
  for (bool causal : {false, true}) {
    LayerSpec spec = random_layer(rng, 2, 8, causal);
    spec.residual = true;
    spec.post_norm = random_norm(rng, NormKind::RmsNorm, 8, false);
    const MatrixD X = random_matrix(rng, 333, 8);
    SpectralOptions opts;
    opts.method = SpectralMethod::Lanczos;
    opts.tol = 1e-12;
    const SpectralResult a = measure_local_lipschitz(spec, X, opts, Precision::F64, kStored);
    const SpectralResult b = measure_local_lipschitz(spec, X, opts, Precision::F64, kStreaming);
    EXPECT_TRUE(a.converged && b.converged);
    EXPECT_NEAR(a.lipschitz, b.lipschitz, 1e-10 * a.lipschitz) << (causal ? "causal" : "unmasked");
  }
}

// --dtype f32 (docs/theory.md §4.4): σ within 1e-5 of float64, and the check product's reported
// difference equals one recomputed here from the two precisions' products at the vector found.
TEST(Streaming, Float32MeasureReportsItsCheckProduct) {
  std::mt19937_64 rng(8107);
  for (AttentionStorage storage : {AttentionStorage::Stored, AttentionStorage::Streaming}) {
    const LayerSpec spec = random_layer(rng, 3, 12, true);
    const MatrixD X = random_matrix(rng, 150, 12);
    SpectralOptions opts;
    opts.method = SpectralMethod::Lanczos;
    opts.tol = 1e-8;
    const AttentionMemory memory{storage, 0};
    const SpectralResult r64 = measure_local_lipschitz(spec, X, opts, Precision::F64, memory);
    const SpectralResult r32 = measure_local_lipschitz(spec, X, opts, Precision::F32, memory);
    EXPECT_EQ(r64.storage, to_string(storage));
    EXPECT_FALSE(r64.f32_check_difference.has_value());
    ASSERT_TRUE(r32.f32_check_difference.has_value());
    EXPECT_NEAR(r32.lipschitz, r64.lipschitz, 1e-5 * r64.lipschitz);
    const VectorD v = r32.right_vector.normalized();
    const Linearization<double> lin64(build_map<double>(spec, memory), X);
    const Linearization<float> lin32(build_map<float>(spec, memory), X);
    const VectorD w64 = lin64.apply_normal(v), w32 = lin32.apply_normal(v);
    const double expected = (w32 - w64).norm() / w64.norm();
    EXPECT_GT(expected, 0);
    EXPECT_LE(expected, 1e-5);
    EXPECT_NEAR(*r32.f32_check_difference, expected, 1e-3 * expected);
  }
}

TEST(Streaming, BudgetChoosesTheMode) {
  std::mt19937_64 rng(8105);
  const StreamCase c{200, 2, 4, 2, 2, false, false, false, 0.5};
  const AttentionWeights w = weights_for(c, rng);
  const MatrixD X = random_matrix(rng, c.n, c.d);
  // 2 heads + ≤ 2 work matrices of 200² doubles: at most 4·320,000 bytes.
  const MultiHeadAttention<double> tight(w, {AttentionStorage::Auto, 100000});
  const MultiHeadAttention<double> roomy(w, {AttentionStorage::Auto, 2000000});
  EXPECT_TRUE(tight.is_streaming(*tight.forward(X)));
  EXPECT_FALSE(roomy.is_streaming(*roomy.forward(X)));
  EXPECT_EQ(stored_attention_bytes(2, 200, 8, 1), 3u * 200 * 200 * 8);
  EXPECT_EQ(stored_attention_bytes(12, 1000, 4, 2), 14u * 1000 * 1000 * 4);
  EXPECT_GT(available_memory_bytes(), 0u);
}

TEST(Streaming, StoredOnlyOperationsNameTheProblem) {
  std::mt19937_64 rng(8106);
  const StreamCase c{20, 1, 4, 2, 2, false, false, false, 0.5};
  const AttentionWeights w = weights_for(c, rng);
  const MultiHeadAttention<double> streamed(w, kStreaming);
  const MatrixD X = random_matrix(rng, c.n, c.d);
  const auto cache = streamed.forward(X);
  try {
    streamed.second_order(*cache, X, X);
    FAIL() << "second_order on a streaming cache must throw";
  } catch (const InputError& e) {
    // The library names the field; the CLI turns "storage" into --max-memory / --storage.
    EXPECT_EQ(e.field(), "storage") << e.what();
    EXPECT_NE(std::string(e.what()).find("memory budget"), std::string::npos) << e.what();
  }
  // The attention matrix of a streaming pass is recomputed from its log-sum-exps.
  const MultiHeadAttention<double> stored(w, kStored);
  EXPECT_LT(relative_error(streamed.attention_matrix(*cache, 0), stored.attention_matrix(*stored.forward(X), 0)),
            1e-14);
}

TEST(Streaming, MemorySizes) {
  EXPECT_EQ(parse_memory_size("2G", "--max-memory"), 2ull << 30);
  EXPECT_EQ(parse_memory_size("512M", "--max-memory"), 512ull << 20);
  EXPECT_EQ(parse_memory_size("1.5GB", "--max-memory"), 3ull << 29);
  EXPECT_EQ(parse_memory_size("4GiB", "--max-memory"), 4ull << 30);
  EXPECT_EQ(parse_memory_size("1000", "--max-memory"), 1000u);
  for (const char* bad : {"", "G", "-1G", "2X", "0", "nan"}) {
    try {
      parse_memory_size(bad, "--max-memory");
      FAIL() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--max-memory"), std::string::npos);
    }
  }
  EXPECT_EQ(parse_attention_storage("streaming"), AttentionStorage::Streaming);
  EXPECT_THROW(parse_attention_storage("flash"), InputError);
}

}  // namespace
