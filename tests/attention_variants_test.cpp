// The one attention's LLaMA-family options (docs/theory.md §2.6–§2.8): grouped K/V heads, rotary
// embeddings in both conventions, QK-norm. Forward against an independent loop; derivatives against
// finite differences, the adjoint identity and second-order finite differences; stored against
// streaming; float32 against float64; σ_max by Lanczos against the dense SVD.
#include <cmath>
#include <random>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "attention/attention.h"
#include "common/error.h"
#include "spectral/operator.h"
#include "spectral/spectral_norm.h"
#include "test_support.h"

namespace lipattn {
namespace {

using testing::finite_difference;
using testing::random_matrix;
using testing::random_vector;
using testing::relative_error;

struct Variant {
  Index heads, kv_heads;
  RopeStyle rope;
  bool qk_norm, causal, biases, w_o;
  std::string name() const {
    return fmt::format("H={} H_kv={} rope={} qknorm={} causal={} biases={} W_O={}", heads, kv_heads, to_string(rope),
                       qk_norm, causal, biases, w_o);
  }
};

std::vector<Variant> variants() {
  std::vector<Variant> out;
  for (Index kv : {1, 2, 4})
    for (RopeStyle rope : {RopeStyle::None, RopeStyle::Interleaved, RopeStyle::RotateHalf})
      for (bool qk_norm : {false, true})
        for (bool causal : {false, true}) out.push_back({4, kv, rope, qk_norm, causal, kv == 2, kv != 1});
  return out;
}

constexpr Index kD = 6, kK = 4, kKv = 3;

AttentionWeights random_variant(std::mt19937_64& rng, const Variant& v) {
  AttentionWeights w;
  w.heads = v.heads;
  w.kv_heads = v.kv_heads;
  w.causal = v.causal;
  w.w_q = random_matrix(rng, v.heads * kK, kD, 0.6);
  w.w_k = random_matrix(rng, v.kv_heads * kK, kD, 0.6);
  w.w_v = random_matrix(rng, v.kv_heads * kKv, kD, 0.6);
  if (v.w_o) w.w_o = random_matrix(rng, kD, v.heads * kKv, 0.6);
  if (v.biases) {
    w.b_q = random_vector(rng, v.heads * kK, 0.4);
    w.b_k = random_vector(rng, v.kv_heads * kK, 0.4);
    w.b_v = random_vector(rng, v.kv_heads * kKv, 0.4);
  }
  w.rope.style = v.rope;
  w.rope.theta = 50.0;  // a small base turns even the last pair noticeably over a few positions
  if (v.qk_norm) {
    w.q_norm = testing::random_norm(rng, NormKind::RmsNorm, kK, false);
    w.k_norm = testing::random_norm(rng, NormKind::RmsNorm, kK, false);
  }
  return w;
}

// q (a head's row, width k) after QK-norm and RoPE at position i, written out independently.
VectorD transformed(VectorD q, Index i, const AttentionWeights& w, const std::optional<NormWeights>& norm) {
  const Index k = q.size();
  if (norm) q = norm->gamma.cwiseProduct(q) / std::sqrt(q.squaredNorm() / k + norm->eps);
  if (!w.rope.enabled()) return q;
  VectorD out = q;
  for (Index j = 0; j < k / 2; ++j) {
    const double angle = i * std::pow(w.rope.theta, -2.0 * j / k);
    const Index a = w.rope.style == RopeStyle::Interleaved ? 2 * j : j;
    const Index b = w.rope.style == RopeStyle::Interleaved ? 2 * j + 1 : j + k / 2;
    out(a) = q(a) * std::cos(angle) - q(b) * std::sin(angle);
    out(b) = q(a) * std::sin(angle) + q(b) * std::cos(angle);
  }
  return out;
}

MatrixD direct_attention(const AttentionWeights& w, const MatrixD& X) {
  const Index n = X.rows(), H = w.heads, G = w.kv_head_count(), k = w.key_dim(), kv = w.value_dim();
  auto linear = [&](const MatrixD& W, const VectorD& b) {
    MatrixD Y = X * W.transpose();
    if (b.size()) Y.rowwise() += b.transpose();
    return Y;
  };
  const MatrixD Q = linear(w.w_q, w.b_q), K = linear(w.w_k, w.b_k), V = linear(w.w_v, w.b_v);
  MatrixD O(n, H * kv);
  for (Index h = 0; h < H; ++h) {
    const Index g = h / (H / G);
    for (Index i = 0; i < n; ++i) {
      const VectorD q = transformed(Q.row(i).segment(h * k, k).transpose(), i, w, w.q_norm);
      VectorD s(n);
      for (Index j = 0; j < n; ++j) {
        const VectorD kj = transformed(K.row(j).segment(g * k, k).transpose(), j, w, w.k_norm);
        s(j) = (w.causal && j > i) ? -INFINITY : w.effective_scale() * q.dot(kj);
      }
      const VectorD p = (s.array() - s.maxCoeff()).exp().matrix() / (s.array() - s.maxCoeff()).exp().sum();
      O.row(i).segment(h * kv, kv) = p.transpose() * V.middleCols(g * kv, kv);
    }
  }
  if (!w.w_o.size()) return O;
  return O * w.w_o.transpose();
}

TEST(AttentionVariants, ForwardMatchesDirectLoop) {
  std::mt19937_64 rng(2601);
  for (const Variant& v : variants()) {
    const AttentionWeights w = random_variant(rng, v);
    const MatrixD X = random_matrix(rng, 7, kD);
    const MatrixD Y = MultiHeadAttention<double>(w).forward(X)->output;
    EXPECT_LT(relative_error(Y, direct_attention(w, X)), 1e-13) << v.name();
  }
}

TEST(AttentionVariants, DerivativesMatchFiniteDifferencesAndAdjoint) {
  std::mt19937_64 rng(2602);
  for (const Variant& v : variants()) {
    const MultiHeadAttention<double> map(random_variant(rng, v));
    const MatrixD X = random_matrix(rng, 6, kD), dX = random_matrix(rng, 6, kD);
    const MatrixD dY = random_matrix(rng, 6, map.output_dim());
    const auto cache = map.forward(X);
    const MatrixD Jv = map.jvp(*cache, dX), JtdY = map.vjp(*cache, dY);
    EXPECT_LT(relative_error(Jv, finite_difference<double>(map, X, dX, 1e-5)), 1e-7) << v.name();
    const double lhs = (Jv.array() * dY.array()).sum(), rhs = (dX.array() * JtdY.array()).sum();
    EXPECT_LE(std::abs(lhs - rhs), 1e-12 * Jv.norm() * dY.norm()) << v.name();
    EXPECT_LT(relative_error(map.normal_product(*cache, dX), map.vjp(*cache, Jv)), 1e-13) << v.name();
  }
}

TEST(AttentionVariants, SecondOrderMatchesFiniteDifferences) {
  std::mt19937_64 rng(2603);
  for (const Variant& v : variants()) {
    const MultiHeadAttention<double> map(random_variant(rng, v));
    EXPECT_LE(testing::second_order_error(map, random_matrix(rng, 5, kD), rng), 1e-6) << v.name();
  }
}

TEST(AttentionVariants, StreamingEqualsStored) {
  std::mt19937_64 rng(2604);
  const AttentionMemory stored{AttentionStorage::Stored, 0}, streamed{AttentionStorage::Streaming, 0};
  for (const Variant& v : variants()) {
    const AttentionWeights w = random_variant(rng, v);
    const MultiHeadAttention<double> a(w, stored), b(w, streamed);
    const Index n = 300;  // three causal row blocks, two key tiles
    const MatrixD X = random_matrix(rng, n, kD), dX = random_matrix(rng, n, kD);
    const MatrixD dY = random_matrix(rng, n, a.output_dim());
    const auto ca = a.forward(X), cb = b.forward(X);
    ASSERT_TRUE(b.is_streaming(*cb));
    EXPECT_LT(relative_error(ca->output, cb->output), 1e-13) << v.name();
    EXPECT_LT(relative_error(a.jvp(*ca, dX), b.jvp(*cb, dX)), 1e-12) << v.name();
    EXPECT_LT(relative_error(a.vjp(*ca, dY), b.vjp(*cb, dY)), 1e-12) << v.name();
  }
}

TEST(AttentionVariants, Float32FollowsFloat64) {
  std::mt19937_64 rng(2605);
  for (const Variant& v : variants()) {
    const AttentionWeights w = random_variant(rng, v);
    const MultiHeadAttention<double> d64(w);
    const MultiHeadAttention<float> d32(w);
    const MatrixD X = random_matrix(rng, 9, kD), dX = random_matrix(rng, 9, kD);
    const auto c64 = d64.forward(X);
    const auto c32 = d32.forward(X.cast<float>());
    EXPECT_LT(relative_error(c32->output.cast<double>(), c64->output), 1e-5) << v.name();
    const MatrixD j32 = d32.jvp(*c32, dX.cast<float>()).cast<double>();
    EXPECT_LT(relative_error(j32, d64.jvp(*c64, dX)), 1e-4) << v.name();
  }
}

// GQA is MHA with each K/V head's weights repeated for the query heads that read it.
TEST(AttentionVariants, GroupedHeadsEqualRepeatedKeyValueHeads) {
  std::mt19937_64 rng(2606);
  for (Index kv : {1, 2}) {
    const AttentionWeights w = random_variant(rng, {4, kv, RopeStyle::RotateHalf, true, true, true, true});
    AttentionWeights full = w;
    full.kv_heads = 0;
    full.w_k.resize(4 * kK, kD);
    full.w_v.resize(4 * kKv, kD);
    full.b_k.resize(4 * kK);
    full.b_v.resize(4 * kKv);
    for (Index h = 0; h < 4; ++h) {
      const Index g = h / (4 / kv);
      full.w_k.middleRows(h * kK, kK) = w.w_k.middleRows(g * kK, kK);
      full.w_v.middleRows(h * kKv, kKv) = w.w_v.middleRows(g * kKv, kKv);
      full.b_k.segment(h * kK, kK) = w.b_k.segment(g * kK, kK);
      full.b_v.segment(h * kKv, kKv) = w.b_v.segment(g * kKv, kKv);
    }
    const MultiHeadAttention<double> grouped(w), repeated(full);
    const MatrixD X = random_matrix(rng, 8, kD), dX = random_matrix(rng, 8, kD);
    const auto cg = grouped.forward(X), cr = repeated.forward(X);
    EXPECT_LT(relative_error(cg->output, cr->output), 1e-14);
    EXPECT_LT(relative_error(grouped.jvp(*cg, dX), repeated.jvp(*cr, dX)), 1e-13);
    // The vjp differs in shape (dX only): the gradient of a shared K/V head is the sum of the copies'.
    EXPECT_LT(relative_error(grouped.vjp(*cg, cg->output), repeated.vjp(*cr, cr->output)), 1e-13);
  }
}

// Hugging Face's rotate-half layout is llama2.c's interleaved one with each head's q/k rows permuted
// (view(heads, k/2, 2, d).transpose(1, 2)): the same layer in both must give the same numbers.
TEST(AttentionVariants, RotaryConventionsAgreeUnderTheRowPermutation) {
  std::mt19937_64 rng(2607);
  const AttentionWeights inter = random_variant(rng, {4, 2, RopeStyle::Interleaved, false, true, false, true});
  AttentionWeights half = inter;
  half.rope.style = RopeStyle::RotateHalf;
  auto permute = [](const MatrixD& W, Index heads) {
    MatrixD out(W.rows(), W.cols());
    for (Index h = 0; h < heads; ++h)
      for (Index j = 0; j < kK / 2; ++j)
        for (Index parity = 0; parity < 2; ++parity)
          out.row(h * kK + parity * (kK / 2) + j) = W.row(h * kK + 2 * j + parity);
    return out;
  };
  half.w_q = permute(inter.w_q, 4);
  half.w_k = permute(inter.w_k, 2);
  const MatrixD X = random_matrix(rng, 10, kD);
  const MultiHeadAttention<double> a(inter), b(half);
  const auto ca = a.forward(X), cb = b.forward(X);
  EXPECT_LT(relative_error(ca->output, cb->output), 1e-14);
  for (Index h = 0; h < 4; ++h) EXPECT_LT(relative_error(a.attention_matrix(*ca, h), b.attention_matrix(*cb, h)), 1e-14);
}

TEST(AttentionVariants, LanczosMatchesDenseSvd) {
  std::mt19937_64 rng(2608);
  for (const Variant& v : variants()) {
    if (v.kv_heads != 2) continue;
    const auto map = std::make_shared<MultiHeadAttention<double>>(random_variant(rng, v));
    const Linearization<double> op(map, random_matrix(rng, 8, kD));
    SpectralOptions dense, lanczos;
    dense.method = SpectralMethod::Dense;
    lanczos.method = SpectralMethod::Lanczos;
    lanczos.tol = 1e-12;
    const double exact = spectral_norm(op, dense).lipschitz;
    EXPECT_NEAR(spectral_norm(op, lanczos).lipschitz, exact, 1e-9 * exact) << v.name();
  }
}

TEST(AttentionVariants, BadShapesNameTheTensor) {
  std::mt19937_64 rng(2609);
  AttentionWeights w = random_variant(rng, {4, 2, RopeStyle::None, false, false, false, false});
  w.kv_heads = 3;
  EXPECT_THROW(w.validate(), InputError);
  w.kv_heads = 2;
  w.w_k = random_matrix(rng, 4 * kK, kD);
  try {
    w.validate();
    FAIL() << "a k.weight of H·k rows with 2 K/V heads must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("k.weight"), std::string::npos) << e.what();
  }
  AttentionWeights odd = random_variant(rng, {1, 1, RopeStyle::Interleaved, false, false, false, false});
  odd.w_q = random_matrix(rng, 3, kD);
  odd.w_k = random_matrix(rng, 3, kD);
  EXPECT_THROW(odd.validate(), InputError);  // RoPE needs an even head width
}

}  // namespace
}  // namespace lipattn
