// The maps: forward against direct computations, jvp against finite differences, vjp against jvp
// (adjoint identity), causality, permutation equivariance, n = 1.
#include <gtest/gtest.h>

#include <cmath>

#include "attention/layer.h"
#include <fmt/core.h>

#include "common/error.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;

namespace {

// A direct, loop-by-loop multi-head attention written from the definition (docs/theory.md §2.1),
// sharing no code with src/attention.
MatrixD direct_attention(const AttentionWeights& w, const MatrixD& X) {
  const Index n = X.rows(), H = w.heads, k = w.key_dim(), kv = w.value_dim();
  const double scale = std::isnan(w.scale) ? 1.0 / std::sqrt(double(k)) : w.scale;
  MatrixD O = MatrixD::Zero(n, H * kv);
  for (Index h = 0; h < H; ++h) {
    for (Index i = 0; i < n; ++i) {
      std::vector<double> s(n, -INFINITY);
      double smax = -INFINITY;
      for (Index j = 0; j < n; ++j) {
        if (w.causal && j > i) continue;
        double dot = 0;
        for (Index a = 0; a < k; ++a) {
          double q = w.b_q.size() ? w.b_q(h * k + a) : 0.0, kk = w.b_k.size() ? w.b_k(h * k + a) : 0.0;
          for (Index c = 0; c < X.cols(); ++c) {
            q += w.w_q(h * k + a, c) * X(i, c);
            kk += w.w_k(h * k + a, c) * X(j, c);
          }
          dot += q * kk;
        }
        s[j] = scale * dot;
        smax = std::max(smax, s[j]);
      }
      double z = 0;
      for (Index j = 0; j < n; ++j) z += std::exp(s[j] - smax);
      for (Index j = 0; j < n; ++j) {
        const double p = std::exp(s[j] - smax) / z;
        for (Index b = 0; b < kv; ++b) {
          double v = w.b_v.size() ? w.b_v(h * kv + b) : 0.0;
          for (Index c = 0; c < X.cols(); ++c) v += w.w_v(h * kv + b, c) * X(j, c);
          O(i, h * kv + b) += p * v;
        }
      }
    }
  }
  if (w.w_o.size() == 0) return O;
  MatrixD Y = O * w.w_o.transpose();
  if (w.b_o.size()) Y.rowwise() += w.b_o.transpose();
  return Y;
}

struct Case {
  std::string name;
  LayerSpec spec;
};

// Every map and composition the CLI can build, over a grid of options.
std::vector<Case> all_cases(std::mt19937_64& rng) {
  std::vector<Case> cases;
  for (int causal = 0; causal < 2; ++causal)
    for (int biases = 0; biases < 2; ++biases)
      for (int w_o = 0; w_o < 2; ++w_o)
        for (int placement = 0; placement < 6; ++placement) {
          AttentionOptions o;
          o.heads = 1 + (placement + biases) % 3;
          o.d = 5;
          o.k = 2 + causal;
          o.kv = w_o ? 3 : 5 / 1;
          if (!w_o) o.kv = (placement >= 2) ? 5 / o.heads : 2;  // residual needs H·k_v = d without W_O
          o.causal = causal;
          o.biases = biases;
          o.w_o = w_o;
          LayerSpec spec;
          spec.attention = random_attention(rng, o);
          const Index d_out = spec.attention.output_dim();
          std::string name = fmt::format("causal{}_bias{}_wo{}_placement{}", causal, biases, w_o, placement);
          switch (placement) {
            case 0: break;  // attention alone
            case 1: spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 5, biases); break;
            case 2: spec.residual = true; break;
            case 3: spec.pre_norm = random_norm(rng, NormKind::RmsNorm, 5, biases); spec.residual = true; break;
            case 4: spec.residual = true; spec.post_norm = random_norm(rng, NormKind::LayerNorm, d_out, biases); break;
            case 5:
              spec.pre_norm = random_norm(rng, NormKind::LayerNorm, 5, biases);
              spec.residual = true;
              spec.post_norm = random_norm(rng, NormKind::RmsNorm, d_out, biases);
              break;
          }
          if (spec.residual && d_out != 5) continue;
          cases.push_back({name, spec});
        }
  // The paper's single-head form, masked and not.
  for (int causal = 0; causal < 2; ++causal) {
    LayerSpec spec;
    spec.attention = AttentionWeights::paper_form(random_matrix(rng, 4, 4, 0.6), random_matrix(rng, 3, 4), causal);
    cases.push_back({fmt::format("paper_form_causal{}", causal), spec});
  }
  return cases;
}

}  // namespace

TEST(AttentionForward, MatchesDirectComputation) {
  std::mt19937_64 rng(1);
  for (int causal = 0; causal < 2; ++causal)
    for (int biases = 0; biases < 2; ++biases)
      for (int w_o = 0; w_o < 2; ++w_o) {
        AttentionOptions o{3, 7, 2, 4, bool(causal), bool(biases), bool(w_o), 5, 0.7};
        const AttentionWeights w = random_attention(rng, o);
        const MatrixD X = random_matrix(rng, 9, 7);
        const MatrixD Y = MultiHeadAttention<double>(w).forward(X)->output;
        EXPECT_LT(relative_error(Y, direct_attention(w, X)), 1e-13);
      }
}

TEST(AttentionForward, PaperFormIsSoftmaxOfAxDotX) {
  std::mt19937_64 rng(2);
  const MatrixD A = random_matrix(rng, 4, 4), V = random_matrix(rng, 2, 4), X = random_matrix(rng, 6, 4);
  const MatrixD Y = MultiHeadAttention<double>(AttentionWeights::paper_form(A, V)).forward(X)->output;
  for (Index i = 0; i < 6; ++i) {
    VectorD s(6);
    for (Index j = 0; j < 6; ++j) s(j) = (A * X.row(i).transpose()).dot(X.row(j).transpose());
    VectorD p = (s.array() - s.maxCoeff()).exp();
    p /= p.sum();
    VectorD expected = V * (X.transpose() * p);
    EXPECT_LT((Y.row(i).transpose() - expected).norm(), 1e-12 * expected.norm());
  }
}

TEST(NormForward, LayerNormAndRmsNormMatchDefinitions) {
  std::mt19937_64 rng(3);
  const MatrixD X = random_matrix(rng, 4, 6, 2.0);
  const NormWeights ln = random_norm(rng, NormKind::LayerNorm, 6, true);
  const NormWeights rms = random_norm(rng, NormKind::RmsNorm, 6, false);
  const MatrixD Yln = Norm<double>(ln).forward(X)->output, Yrms = Norm<double>(rms).forward(X)->output;
  for (Index i = 0; i < 4; ++i) {
    const double mean = X.row(i).mean();
    double var = 0;
    for (Index c = 0; c < 6; ++c) var += (X(i, c) - mean) * (X(i, c) - mean) / 6;
    double ms = X.row(i).squaredNorm() / 6;
    for (Index c = 0; c < 6; ++c) {
      EXPECT_NEAR(Yln(i, c), ln.gamma(c) * (X(i, c) - mean) / std::sqrt(var + ln.eps) + ln.beta(c), 1e-13);
      EXPECT_NEAR(Yrms(i, c), rms.gamma(c) * X(i, c) / std::sqrt(ms + rms.eps), 1e-13);
    }
  }
}

TEST(Derivatives, JvpMatchesCentralFiniteDifferences) {
  std::mt19937_64 rng(4);
  const auto cases = all_cases(rng);
  ASSERT_GE(cases.size(), 40u);
  for (const auto& c : cases)
    for (Index n : {1, 2, 5}) {
      const auto map = build_map<double>(c.spec);
      const MatrixD X = random_matrix(rng, n, map->input_dim());
      const MatrixD dX = random_matrix(rng, n, map->input_dim());
      const auto cache = map->forward(X);
      const MatrixD jvp = map->jvp(*cache, dX);
      const MatrixD fd = finite_difference<double>(*map, X, dX, 1e-5);
      EXPECT_LT(relative_error(jvp, fd), 1e-6) << c.name << " n=" << n;
    }
}

TEST(Derivatives, AdjointIdentity) {
  std::mt19937_64 rng(5);
  for (const auto& c : all_cases(rng))
    for (Index n : {1, 3, 8}) {
      const auto map = build_map<double>(c.spec);
      const MatrixD X = random_matrix(rng, n, map->input_dim());
      const MatrixD u = random_matrix(rng, n, map->input_dim());
      const MatrixD v = random_matrix(rng, n, map->output_dim());
      const auto cache = map->forward(X);
      const MatrixD Ju = map->jvp(*cache, u), Jtv = map->vjp(*cache, v);
      const double lhs = (Ju.array() * v.array()).sum(), rhs = (u.array() * Jtv.array()).sum();
      // Relative to the natural scale ‖Ju‖‖v‖ of the inner product.
      EXPECT_LE(std::abs(lhs - rhs), 1e-12 * Ju.norm() * v.norm()) << c.name << " n=" << n;
    }
}

TEST(Derivatives, PaperFormJacobianMatchesPaperFormula) {
  // (Df(X)[H])_i = V [Σ_j P_ij h_j + Cov_{P_i}(x) A h_i + Σ_j P_ij (x_j − m_i)(A x_i)ᵀ h_j]
  // (docs/theory.md §2.4), written independently of the multi-head code.
  std::mt19937_64 rng(6);
  const Index n = 7, d = 4;
  const MatrixD A = random_matrix(rng, d, d, 0.5), V = random_matrix(rng, 3, d);
  const MatrixD X = random_matrix(rng, n, d), H = random_matrix(rng, n, d);
  const auto map = std::make_shared<MultiHeadAttention<double>>(AttentionWeights::paper_form(A, V));
  const MatrixD jvp = map->jvp(*map->forward(X), H);
  for (Index i = 0; i < n; ++i) {
    VectorD s(n);
    const VectorD Axi = A * X.row(i).transpose();
    for (Index j = 0; j < n; ++j) s(j) = Axi.dot(X.row(j).transpose());
    VectorD p = (s.array() - s.maxCoeff()).exp();
    p /= p.sum();
    const VectorD m = X.transpose() * p;
    MatrixD cov = MatrixD::Zero(d, d);
    VectorD term1 = VectorD::Zero(d), term3 = VectorD::Zero(d);
    for (Index j = 0; j < n; ++j) {
      const VectorD xj = X.row(j).transpose(), hj = H.row(j).transpose();
      cov += p(j) * (xj - m) * (xj - m).transpose();
      term1 += p(j) * hj;
      term3 += p(j) * (xj - m) * Axi.dot(hj);
    }
    const VectorD expected = V * (term1 + cov * A * H.row(i).transpose() + term3);
    EXPECT_LT((jvp.row(i).transpose() - expected).norm(), 1e-12 * (1 + expected.norm())) << "row " << i;
  }
}

TEST(Structure, CausalJacobianIsBlockLowerTriangular) {
  std::mt19937_64 rng(7);
  for (const auto& c : all_cases(rng)) {
    if (!c.spec.attention.causal) continue;
    const auto map = build_map<double>(c.spec);
    const Index n = 6, d = map->input_dim();
    const MatrixD X = random_matrix(rng, n, d);
    const auto cache = map->forward(X);
    for (Index j = 0; j < n; ++j)
      for (Index a = 0; a < d; ++a) {
        MatrixD dX = MatrixD::Zero(n, d);
        dX(j, a) = 1;
        const MatrixD col = map->jvp(*cache, dX);
        for (Index i = 0; i < j; ++i) EXPECT_EQ(col.row(i).norm(), 0.0) << c.name << " ∂f_" << i << "/∂x_" << j;
        EXPECT_GT(col.bottomRows(n - j).norm(), 0.0) << c.name;  // the map does see x_j downstream
      }
  }
}

TEST(Structure, UnmaskedMapIsPermutationEquivariant) {
  std::mt19937_64 rng(8);
  for (const auto& c : all_cases(rng)) {
    if (c.spec.attention.causal) continue;
    const auto map = build_map<double>(c.spec);
    const Index n = 7;
    const MatrixD X = random_matrix(rng, n, map->input_dim()), dX = random_matrix(rng, n, map->input_dim());
    Eigen::PermutationMatrix<Eigen::Dynamic> perm(n);
    perm.setIdentity();
    std::shuffle(perm.indices().data(), perm.indices().data() + n, rng);
    const MatrixD PX = perm * X, PdX = perm * dX;
    const auto cache = map->forward(X), pcache = map->forward(PX);
    EXPECT_LT(relative_error(pcache->output, perm * cache->output), 1e-13) << c.name;
    EXPECT_LT(relative_error(map->jvp(*pcache, PdX), perm * map->jvp(*cache, dX)), 1e-12) << c.name;
  }
}

TEST(Structure, SingleTokenAttentionIsLinear) {
  // n = 1: P = [1], so f(x) = W_O (W_V x + b_V) + b_O and Df = W_O W_V.
  std::mt19937_64 rng(9);
  AttentionOptions o{3, 5, 2, 2, false, true, true, 4, 0.8};
  const AttentionWeights w = random_attention(rng, o);
  const auto map = std::make_shared<MultiHeadAttention<double>>(w);
  const MatrixD x = random_matrix(rng, 1, 5);
  const auto cache = map->forward(x);
  const VectorD expected = w.w_o * (w.w_v * x.row(0).transpose() + w.b_v) + w.b_o;
  EXPECT_LT((cache->output.row(0).transpose() - expected).norm(), 1e-13 * expected.norm());
  MatrixD J(4, 5);
  for (Index a = 0; a < 5; ++a) {
    MatrixD e = MatrixD::Zero(1, 5);
    e(0, a) = 1;
    J.col(a) = map->jvp(*cache, e).row(0).transpose();
  }
  EXPECT_LT(relative_error(J, w.w_o * w.w_v), 1e-14);
}

TEST(Structure, HeadSliceEqualsThatHeadsShareOfTheLayer) {
  // With W_O, the layer's output is Σ_h W_O,h O_h + b_O: the heads' maps (each with its W_O block,
  // b_O left out) sum to the layer's map.
  std::mt19937_64 rng(10);
  AttentionOptions o{4, 6, 2, 3, true, true, true, 6, 0.6};
  AttentionWeights w = random_attention(rng, o);
  const MatrixD X = random_matrix(rng, 5, 6);
  MatrixD sum = MatrixD::Zero(5, 6);
  for (Index h = 0; h < 4; ++h) {
    AttentionWeights one = w.head(h);
    one.b_o.resize(0);
    sum += MultiHeadAttention<double>(one).forward(X)->output;
  }
  sum.rowwise() += w.b_o.transpose();
  EXPECT_LT(relative_error(sum, MultiHeadAttention<double>(w).forward(X)->output), 1e-13);
}

TEST(Float32, ProductsAgreeWithFloat64) {
  std::mt19937_64 rng(11);
  for (const auto& c : all_cases(rng)) {
    const auto m64 = build_map<double>(c.spec);
    const auto m32 = build_map<float>(c.spec);
    const MatrixD X = random_matrix(rng, 6, m64->input_dim()), dX = random_matrix(rng, 6, m64->input_dim());
    const MatrixD a = m64->jvp(*m64->forward(X), dX);
    const MatrixD b = m32->jvp(*m32->forward(X.cast<float>()), dX.cast<float>()).cast<double>();
    EXPECT_LT(relative_error(a, b), 1e-5) << c.name;
  }
}

TEST(Validation, ShapeMismatchesNameTheTensor) {
  std::mt19937_64 rng(12);
  AttentionWeights w = random_attention(rng, AttentionOptions{});
  w.w_k = random_matrix(rng, 5, 6);
  try {
    w.validate();
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("k.weight"), std::string::npos) << e.what();
  }
  w = random_attention(rng, AttentionOptions{});
  w.b_v = random_vector(rng, 2);
  EXPECT_THROW(w.validate(), InputError);
  w = random_attention(rng, AttentionOptions{});
  w.heads = 4;  // 6 rows of q.weight do not split into 4 heads
  EXPECT_THROW(w.validate(), InputError);
  EXPECT_THROW(w.head(7), InputError);
}

TEST(Derivatives, CausalProductsAcrossSeveralRowBlocks) {
  // n = 300 spans three of the 128-row blocks in which causal products skip the masked zeros.
  std::mt19937_64 rng(13);
  for (int w_o = 0; w_o < 2; ++w_o) {
    AttentionOptions o{2, 5, 3, 3, true, true, bool(w_o), 5, 0.6};
    const auto map = std::make_shared<MultiHeadAttention<double>>(random_attention(rng, o));
    const MatrixD X = random_matrix(rng, 300, 5), dX = random_matrix(rng, 300, 5);
    const MatrixD v = random_matrix(rng, 300, map->output_dim());
    const auto cache = map->forward(X);
    const MatrixD Ju = map->jvp(*cache, dX), Jtv = map->vjp(*cache, v);
    EXPECT_LT(relative_error(Ju, finite_difference<double>(*map, X, dX, 1e-5)), 1e-6);
    const double lhs = (Ju.array() * v.array()).sum(), rhs = (dX.array() * Jtv.array()).sum();
    EXPECT_LE(std::abs(lhs - rhs), 1e-12 * Ju.norm() * v.norm());
  }
}

// normal_product reorders JᵀJ = vjp ∘ jvp (W_OᵀW_O once, docs/theory.md §2.5): it must equal the two calls, in
// both storage modes, with and without W_O, and for W_O wider than it is tall (no Gram matrix).
TEST(Derivatives, NormalProductEqualsVjpOfJvp) {
  std::mt19937_64 rng(14);
  struct Case {
    AttentionOptions o;
    AttentionStorage storage;
  };
  const std::vector<Case> cases = {
      {{3, 6, 4, 4, true, true, true, 6, 0.7}, AttentionStorage::Stored},     // H·kv = 12 < 2·6: Gram
      {{3, 6, 4, 4, true, true, true, 6, 0.7}, AttentionStorage::Streaming},
      {{4, 6, 2, 5, false, true, true, 3, 0.7}, AttentionStorage::Stored},    // H·kv = 20 ≥ 2·3: no Gram
      {{2, 6, 3, 3, false, false, false, 0, 0.7}, AttentionStorage::Stored},  // no W_O
      {{2, 6, 3, 3, true, false, false, 0, 0.7}, AttentionStorage::Streaming},
  };
  for (const Case& c : cases) {
    AttentionMemory memory;
    memory.storage = c.storage;
    const MultiHeadAttention<double> map(random_attention(rng, c.o), memory);
    const MatrixD X = random_matrix(rng, 140, 6), dX = random_matrix(rng, 140, 6);
    const auto cache = map.forward(X);
    const MatrixD expected = map.vjp(*cache, map.jvp(*cache, dX));
    EXPECT_LT(relative_error(map.normal_product(*cache, dX), expected), 1e-12)
        << "heads " << c.o.heads << " w_o " << c.o.w_o << " streaming " << (c.storage == AttentionStorage::Streaming);
  }
}
