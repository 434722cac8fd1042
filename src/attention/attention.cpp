// Multi-head softmax attention. Formulas: docs/theory.md §2 (forward §2.1, jvp §2.2, vjp §2.3).
//
// Shapes (one head h; k = key width, kv = value width, n tokens):
//   X (n × d) → QKV = X W_qkvᵀ + b (n × (2Hk + Hkv)) → Q_h, K_h (n × k), V_h (n × kv)
//   S_h = scale Q_h K_hᵀ (n × n), masked; P_h = softmax_rows(S_h); O_h = P_h V_h (n × kv)
//   O = [O_1 … O_H] (n × Hkv); Y = O W_Oᵀ + b_O (n × d_out), or Y = O without W_O.
#include "attention/attention.h"

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "attention/accumulate.h"
#include "attention/streaming.h"
#include "common/error.h"

namespace lipattn {

// ---- weights --------------------------------------------------------------------------------

AttentionWeights AttentionWeights::paper_form(const MatrixD& A, const MatrixD& V, bool causal) {
  if (A.rows() != A.cols())
    throw InputError(fmt::format("tensor 'A' must be square (d × d), got {} × {}", A.rows(), A.cols()));
  if (V.cols() != A.cols())
    throw InputError(fmt::format("tensor 'V' must be (d_v × d) with d = {} (from 'A'), got {} × {}",
                                 A.cols(), V.rows(), V.cols()));
  AttentionWeights w;
  w.heads = 1;
  w.w_q = A;  // q_i = A x_i
  w.w_k = MatrixD::Identity(A.rows(), A.cols());  // k_j = x_j, so S_ij = ⟨A x_i, x_j⟩
  w.w_v = V;
  w.causal = causal;
  w.scale = 1.0;  // the paper's A already holds the temperature
  return w;
}

double AttentionWeights::effective_scale() const {
  return std::isnan(scale) ? 1.0 / std::sqrt(static_cast<double>(key_dim())) : scale;
}

std::string to_string(RopeStyle style) {
  switch (style) {
    case RopeStyle::None: return "none";
    case RopeStyle::Interleaved: return "interleaved";
    case RopeStyle::RotateHalf: return "rotate_half";
  }
  return "none";
}

RopeStyle parse_rope_style(const std::string& name) {
  if (name == "none") return RopeStyle::None;
  if (name == "interleaved") return RopeStyle::Interleaved;
  if (name == "rotate_half") return RopeStyle::RotateHalf;
  throw InputError(fmt::format("rotary style must be none, interleaved or rotate_half, got '{}'", name));
}

void AttentionWeights::validate() const {
  if (heads < 1) throw InputError(fmt::format("--heads must be at least 1, got {}", heads));
  if (kv_heads < 0 || (kv_heads > 0 && heads % kv_heads != 0))
    throw InputError(fmt::format("kv_heads = {} must divide the {} query heads", kv_heads, heads));
  const Index groups = kv_head_count();
  if (w_q.size() == 0) throw InputError("tensor 'q.weight' is empty or missing");
  const Index d = w_q.cols();
  if (w_q.rows() % heads != 0)
    throw InputError(fmt::format("tensor 'q.weight' has {} rows, not a multiple of --heads {}", w_q.rows(), heads));
  const Index k = w_q.rows() / heads;
  if (w_k.rows() != groups * k || w_k.cols() != d)
    throw InputError(fmt::format("tensor 'k.weight' must be ({} × {}): {} K/V heads of width {}, got {} × {}",
                                 groups * k, d, groups, k, w_k.rows(), w_k.cols()));
  if (w_v.cols() != d || w_v.rows() == 0 || w_v.rows() % groups != 0)
    throw InputError(fmt::format("tensor 'v.weight' must be (H_kv·k_v × {}) with H_kv = {}, got {} × {}", d, groups,
                                 w_v.rows(), w_v.cols()));
  auto check_bias = [](const VectorD& b, Index size, const char* name) {
    if (b.size() != 0 && b.size() != size)
      throw InputError(fmt::format("tensor '{}' must have {} entries, got {}", name, size, b.size()));
  };
  check_bias(b_q, w_q.rows(), "q.bias");
  check_bias(b_k, w_k.rows(), "k.bias");
  check_bias(b_v, w_v.rows(), "v.bias");
  if (w_o.size() != 0) {
    if (w_o.cols() != heads * value_dim())
      throw InputError(fmt::format("tensor 'o.weight' must be (d_out × {}): H·k_v columns, got {} × {}",
                                   heads * value_dim(), w_o.rows(), w_o.cols()));
    check_bias(b_o, w_o.rows(), "o.bias");
  } else if (b_o.size() != 0) {
    throw InputError("tensor 'o.bias' is given without 'o.weight'");
  }
  if (!(effective_scale() > 0) || !std::isfinite(effective_scale()))
    throw InputError(fmt::format("attention scale must be positive and finite, got {}", effective_scale()));
  if (rope.enabled() && (k % 2 != 0 || !(rope.theta > 1) || !std::isfinite(rope.theta)))
    throw InputError(fmt::format("rotary embeddings need an even head width and theta > 1, got k = {}, theta = {}", k,
                                 rope.theta));
  if (q_norm.has_value() != k_norm.has_value())
    throw InputError("QK-norm needs both tensors 'q_norm.weight' and 'k_norm.weight'");
  if (q_norm && (q_norm->gamma.size() != k || k_norm->gamma.size() != k))
    throw InputError(fmt::format("tensors 'q_norm.weight' and 'k_norm.weight' must have k = {} entries, got {} and {}",
                                 k, q_norm->gamma.size(), k_norm->gamma.size()));
}

AttentionWeights AttentionWeights::head(Index h) const {
  if (h < 0 || h >= heads)
    throw InputError(fmt::format("--head {} is out of range: the layer has {} heads (0..{})", h, heads, heads - 1));
  const Index k = key_dim(), kv = value_dim();
  const Index g = h / (heads / kv_head_count());  // the K/V head query head h reads
  AttentionWeights one;
  one.heads = 1;
  one.w_q = w_q.middleRows(h * k, k);
  one.w_k = w_k.middleRows(g * k, k);
  one.w_v = w_v.middleRows(g * kv, kv);
  if (b_q.size()) one.b_q = b_q.segment(h * k, k);
  if (b_k.size()) one.b_k = b_k.segment(g * k, k);
  if (b_v.size()) one.b_v = b_v.segment(g * kv, kv);
  one.rope = rope;
  one.q_norm = q_norm;
  one.k_norm = k_norm;
  if (w_o.size()) one.w_o = w_o.middleCols(h * kv, kv);
  one.b_o = b_o;  // a constant shift: it does not change the Jacobian
  one.causal = causal;
  one.scale = effective_scale();  // 1/√k of the full layer's k, which is the head's k too
  return one;
}

// ---- map ------------------------------------------------------------------------------------

namespace {
template <class T>
struct AttentionCache : Cache<T> {
  Matrix<T> qkv;               // n × (2Hk + Hkv): Q, K, V of every head
  std::vector<Matrix<T>> p;    // stored mode: H attention matrices, n × n, rows sum to 1 (zero above the diagonal if causal)
  bool streaming = false;      // streaming mode (§8): no p; instead
  Matrix<T> o;                 //   the heads' outputs before W_O, n × Hkv
  std::vector<Vector<T>> lse;  //   and per head the log-sum-exp of each query's scores (n)
};

// Threads pay off only when a head's n×n work outweighs waking them: on small maps (tests, attacks
// on tiny heads) a parallel region costs far more than the products it splits.
inline bool parallel_over_heads(Index heads, Index n, Index k) {
  constexpr Index kMinWorkPerHead = Index(1) << 18;  // n²·k, e.g. n = 64 with k = 64
  return heads > 1 && n * n * std::max<Index>(k, 1) >= kMinWorkPerHead;
}

// Under the causal mask P, dP and dS vanish above the diagonal, so the per-head products run over
// row blocks of this height and stop at the block's last column: the n² part of a product drops
// to about half (measured −35% per JᵀJ product at n = 256, docs/performance.md).
constexpr Index kCausalBlock = 128;

// Calls f(r0, rows, c_end) per row block; columns ≥ c_end of those rows are zero. Unmasked maps
// have one block with c_end = n.
template <class F>
void for_row_blocks(Index n, bool causal, F&& f) {
  const Index b = causal ? kCausalBlock : std::max<Index>(n, 1);
  for (Index r0 = 0; r0 < n; r0 += b) {
    const Index rows = std::min(b, n - r0);
    f(r0, rows, causal ? r0 + rows : n);
  }
}

// Rows r0..r0+rows of G, columns < c_end: G ← P ⊙ (G − rowsum(P ⊙ G) 1ᵀ), zero above the diagonal.
template <class T>
void softmax_jacobian_rows(const Matrix<T>& P, Matrix<T>& G, Index r0, Index rows, Index c_end, bool causal) {
  for (Index i = r0; i < r0 + rows; ++i) {
    const Index width = causal ? i + 1 : c_end;
    softmax_jacobian_row(P.row(i).head(width), G.row(i).head(width));
    if (width < c_end) G.row(i).segment(width, c_end - width).setZero();
  }
}

// P ⊙ (G − rowsum(P ⊙ G) 1ᵀ), in place on G: the softmax Jacobian applied row by row (§2.2).
template <class T>
void softmax_jacobian_inplace(const Matrix<T>& P, Matrix<T>& G, bool causal) {
  softmax_jacobian_rows(P, G, 0, P.rows(), P.rows(), causal);
}
}  // namespace

template <class T>
MultiHeadAttention<T>::MultiHeadAttention(const AttentionWeights& w, const AttentionMemory& memory)
    : proj_(w), memory_(memory), causal_(w.causal) {
  // n·(H·k_v)² flops for dO·(W_OᵀW_O) against 2·n·H·k_v·d_out for the two W_O products (§2.5).
  if (proj_.w_o.size() && proj_.w_o.cols() < 2 * proj_.w_o.rows()) w_o_gram_ = proj_.w_o.transpose() * proj_.w_o;
}

template <class T>
std::string MultiHeadAttention<T>::describe() const {
  return fmt::format("attention(H={}, d={}, k={}, k_v={}{}{})", proj_.heads, proj_.d, proj_.k, proj_.kv,
                     causal_ ? ", causal" : "", proj_.w_o.size() ? ", W_O" : "");
}

namespace {
template <class T>
const AttentionCache<T>& stored_cache(const Cache<T>& cache, const char* what) {
  const auto& c = static_cast<const AttentionCache<T>&>(cache);
  if (c.streaming)
    throw InputError(fmt::format(
        "{} needs the stored n × n attention matrices, but this pass streams them (n = {}): raise --max-memory "
        "or pass --storage stored",
        what, c.qkv.rows()));
  return c;
}
}  // namespace

template <class T>
const Matrix<T>& MultiHeadAttention<T>::attention_matrix(const Cache<T>& cache, Index h) const {
  return stored_cache(cache, "the attention matrix").p.at(h);
}

template <class T>
bool MultiHeadAttention<T>::is_streaming(const Cache<T>& cache) const {
  return static_cast<const AttentionCache<T>&>(cache).streaming;
}

// §2.1; streaming §8.1
template <class T>
std::unique_ptr<Cache<T>> MultiHeadAttention<T>::forward(const Matrix<T>& X) const {
  const Index n = X.rows();
  auto cache = std::make_unique<AttentionCache<T>>();
  cache->qkv = proj_.qkv(X);  // n × (2Hk + Hkv)
  if (use_streaming(memory_, proj_.heads, n, sizeof(T))) {
    cache->streaming = true;
    cache->o.resize(n, proj_.heads * proj_.kv);
    cache->lse.resize(proj_.heads);
    const Matrix<T>& qkv = cache->qkv;
    for (Index h = 0; h < proj_.heads; ++h) {  // the kernels parallelise over query blocks inside a head
      const streaming::Head<T> head{proj_.q_of(qkv, h), proj_.k_of(qkv, h), proj_.v_of(qkv, h), proj_.scale, causal_};
      streaming::forward<T>(head, cache->o.middleCols(h * proj_.kv, proj_.kv), cache->lse[h]);
    }
    cache->output = proj_.output(cache->o);
    return cache;
  }
  cache->p.resize(proj_.heads);
  Matrix<T> O(n, proj_.heads * proj_.kv);
  const Matrix<T>& qkv = cache->qkv;
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.heads, n, proj_.k))
  for (Index h = 0; h < proj_.heads; ++h) {
    auto Q = proj_.q_of(qkv, h), K = proj_.k_of(qkv, h), V = proj_.v_of(qkv, h);
    Matrix<T>& P = cache->p[h];
    P.resize(n, n);
    auto Oh = O.middleCols(h * proj_.kv, proj_.kv);
    // Row blocks, as in the products: under the mask a block's scores stop at its last column.
    for_row_blocks(n, causal_, [&](Index r0, Index rows, Index c_end) {
      P.block(r0, 0, rows, c_end).noalias() = proj_.scale * (Q.middleRows(r0, rows) * K.topRows(c_end).transpose());
      for (Index i = r0; i < r0 + rows; ++i) {  // row softmax, shifted by the row max for stability
        const Index width = causal_ ? i + 1 : n;
        auto row = P.row(i).head(width);
        row = (row.array() - row.maxCoeff()).exp().matrix();
        row /= static_cast<T>(sum64(row));
        if (width < n) P.row(i).tail(n - width).setZero();
      }
      Oh.middleRows(r0, rows).noalias() = P.block(r0, 0, rows, c_end) * V.topRows(c_end);
    });
  }
  cache->output = proj_.output(std::move(O));
  return cache;
}

// §2.2: dS = scale (dQ Kᵀ + Q dKᵀ); dP = P ⊙ (dS − rowsum(P ⊙ dS)); dO = dP V + P dV; dY = dO W_Oᵀ.
template <class T>
Matrix<T> MultiHeadAttention<T>::head_jvp(const Cache<T>& cache_base, const Matrix<T>& dX) const {
  const auto& cache = static_cast<const AttentionCache<T>&>(cache_base);
  const Matrix<T> dqkv = proj_.qkv_tangent(dX);  // [dQ dK dV]
  if (cache.streaming) return streaming_jvp(cache, dqkv);
  const Index n = dX.rows();
  Matrix<T> dO(n, proj_.heads * proj_.kv);
  const Matrix<T>& qkv = cache.qkv;
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.heads, n, proj_.k))
  for (Index h = 0; h < proj_.heads; ++h) {
    auto Q = proj_.q_of(qkv, h), K = proj_.k_of(qkv, h), V = proj_.v_of(qkv, h);
    auto dQ = proj_.q_of(dqkv, h), dK = proj_.k_of(dqkv, h), dV = proj_.v_of(dqkv, h);
    const Matrix<T>& P = cache.p[h];
    Matrix<T> G(n, n);
    auto dOh = dO.middleCols(h * proj_.kv, proj_.kv);
    for_row_blocks(n, causal_, [&](Index r0, Index rows, Index c_end) {
      auto g = G.block(r0, 0, rows, c_end);
      g.noalias() = dQ.middleRows(r0, rows) * K.topRows(c_end).transpose();
      g.noalias() += Q.middleRows(r0, rows) * dK.topRows(c_end).transpose();
      g *= proj_.scale;
      softmax_jacobian_rows(P, G, r0, rows, c_end, causal_);  // g = dP
      dOh.middleRows(r0, rows).noalias() = g * V.topRows(c_end);
      dOh.middleRows(r0, rows).noalias() += P.block(r0, 0, rows, c_end) * dV.topRows(c_end);
    });
  }
  return dO;
}

// §2.3: dO = dY W_O; dP = dO Vᵀ; dV = Pᵀ dO; dS = P ⊙ (dP − rowsum(P ⊙ dP));
//       dQ = scale dS K; dK = scale dSᵀ Q; dX = [dQ dK dV] W_qkv.
template <class T>
Matrix<T> MultiHeadAttention<T>::head_vjp(const Cache<T>& cache_base, const Matrix<T>& dO) const {
  const auto& cache = static_cast<const AttentionCache<T>&>(cache_base);
  if (cache.streaming) return proj_.qkv_cotangent(streaming_vjp(cache, dO));
  const Index n = dO.rows();
  Matrix<T> dqkv(n, proj_.w_qkv.rows());
  const Matrix<T>& qkv = cache.qkv;
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.heads, n, proj_.k))
  for (Index h = 0; h < proj_.heads; ++h) {
    auto Q = proj_.q_of(qkv, h), K = proj_.k_of(qkv, h), V = proj_.v_of(qkv, h);
    auto dQ = proj_.q_of(dqkv, h), dK = proj_.k_of(dqkv, h), dV = proj_.v_of(dqkv, h);
    auto dOh = dO.middleCols(h * proj_.kv, proj_.kv);
    const Matrix<T>& P = cache.p[h];
    Matrix<T> G(n, n);
    // Row blocks: G = dP = dO Vᵀ, then dS = scale P ⊙ (dP − rowsum(P ⊙ dP)), then dQ = dS K.
    for_row_blocks(n, causal_, [&](Index r0, Index rows, Index c_end) {
      G.block(r0, 0, rows, c_end).noalias() = dOh.middleRows(r0, rows) * V.topRows(c_end).transpose();
      softmax_jacobian_rows(P, G, r0, rows, c_end, causal_);
      G.block(r0, 0, rows, c_end) *= proj_.scale;
      dQ.middleRows(r0, rows).noalias() = G.block(r0, 0, rows, c_end) * K.topRows(c_end);
    });
    // Column blocks: under the mask, rows above a column block are zero in P and dS.
    for_row_blocks(n, causal_, [&](Index c0, Index cols, Index) {
      const Index r0 = causal_ ? c0 : 0;
      dV.middleRows(c0, cols).noalias() = P.block(r0, c0, n - r0, cols).transpose() * dOh.bottomRows(n - r0);
      dK.middleRows(c0, cols).noalias() = G.block(r0, c0, n - r0, cols).transpose() * Q.bottomRows(n - r0);
    });
  }
  return proj_.qkv_cotangent(dqkv);
}

// Second order (docs/theory.md, attack §2.2): ∇_X φ with φ = ⟨u, Df(X) v⟩ = Σ_h ⟨Ū_h, dO_h⟩,
// Ū = u W_O (or u without W_O), Ū_h its head-h slice (n × kv). dQ, dK, dV = v W_{Q,K,V}ᵀ do not
// depend on X; Q, K, V, P and through them dS, dP do. Per head, with r = rowsum(P ⊙ dS),
// M = Ū Vᵀ (n × n), m = rowsum(P ⊙ M):
//   B   = P ⊙ (M − m 1ᵀ)                             the weight of d(dS) (the vjp's softmax step)
//   G_P = Ū dVᵀ + M ⊙ (dS − r 1ᵀ) − (m 1ᵀ) ⊙ dS      the weight of dP through P
//   E   = P ⊙ (G_P − rowsum(P ⊙ G_P) 1ᵀ)             the weight of dS through P
//   G_Q = scale (E K + B dK),  G_K = scale (Eᵀ Q + Bᵀ dQ),  G_V = dPᵀ Ū
// and ∇_X φ = [G_Q G_K G_V] W_qkv (the same assembly as the vjp). Masked entries carry P = 0 and
// drop out of B, E and dP.
template <class T>
Matrix<T> MultiHeadAttention<T>::second_order(const Cache<T>& cache_base, const Matrix<T>& v,
                                              const Matrix<T>& u) const {
  const auto& cache = stored_cache(cache_base, "the second-order product (attacks)");
  const Index n = v.rows();
  const Matrix<T> dqkv = proj_.qkv_tangent(v);        // [dQ dK dV], n × (2Hk + Hkv)
  const Matrix<T> u_bar = proj_.output_cotangent(u);  // n × Hkv
  Matrix<T> grad_qkv(n, proj_.w_qkv.rows());
  const Matrix<T>& qkv = cache.qkv;
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.heads, n, proj_.k))
  for (Index h = 0; h < proj_.heads; ++h) {
    auto Q = proj_.q_of(qkv, h), K = proj_.k_of(qkv, h), V = proj_.v_of(qkv, h);
    auto dQ = proj_.q_of(dqkv, h), dK = proj_.k_of(dqkv, h), dV = proj_.v_of(dqkv, h);
    auto Ub = u_bar.middleCols(h * proj_.kv, proj_.kv);
    const Matrix<T>& P = cache.p[h];
    Matrix<T> dS(n, n);  // scale (dQ Kᵀ + Q dKᵀ), n × n
    dS.noalias() = dQ * K.transpose();
    dS.noalias() += Q * dK.transpose();
    dS *= proj_.scale;
    Matrix<T> dP = dS;
    softmax_jacobian_inplace(P, dP, causal_);  // dP = P ⊙ (dS − r 1ᵀ)
    Matrix<T> M(n, n);
    M.noalias() = Ub * V.transpose();  // Ū Vᵀ
    Matrix<T> B = M;
    softmax_jacobian_inplace(P, B, causal_);  // B = P ⊙ (M − m 1ᵀ)
    Matrix<T> G(n, n);  // G_P, then E
    G.noalias() = Ub * dV.transpose();
    for (Index i = 0; i < n; ++i) {
      const Index width = causal_ ? i + 1 : n;
      auto p = P.row(i).head(width);
      const T r = static_cast<T>(dot64(p, dS.row(i).head(width)));
      const T m = static_cast<T>(dot64(p, M.row(i).head(width)));
      G.row(i).head(width).array() += M.row(i).head(width).array() * (dS.row(i).head(width).array() - r) -
                                      m * dS.row(i).head(width).array();
    }
    softmax_jacobian_inplace(P, G, causal_);  // E
    auto gQ = proj_.q_of(grad_qkv, h), gK = proj_.k_of(grad_qkv, h);
    gQ.noalias() = G * K;
    gQ.noalias() += B * dK;
    gQ *= proj_.scale;
    gK.noalias() = G.transpose() * Q;
    gK.noalias() += B.transpose() * dQ;
    gK *= proj_.scale;
    proj_.v_of(grad_qkv, h).noalias() = dP.transpose() * Ub;
  }
  return proj_.qkv_cotangent(grad_qkv);
}

// §8.2: the same dQ, dK, dV as the stored jvp, with the head's dO from the tile pass.
template <class T>
Matrix<T> MultiHeadAttention<T>::streaming_jvp(const Cache<T>& cache_base, const Matrix<T>& dqkv) const {
  const auto& cache = static_cast<const AttentionCache<T>&>(cache_base);
  Matrix<T> dO(dqkv.rows(), proj_.heads * proj_.kv);
  const Matrix<T>& qkv = cache.qkv;
  for (Index h = 0; h < proj_.heads; ++h) {
    const streaming::Head<T> head{proj_.q_of(qkv, h), proj_.k_of(qkv, h), proj_.v_of(qkv, h), proj_.scale, causal_};
    streaming::jvp<T>(head, cache.o.middleCols(h * proj_.kv, proj_.kv), cache.lse[h], proj_.q_of(dqkv, h),
                      proj_.k_of(dqkv, h), proj_.v_of(dqkv, h), dO.middleCols(h * proj_.kv, proj_.kv));
  }
  return dO;
}

// §8.3
template <class T>
Matrix<T> MultiHeadAttention<T>::streaming_vjp(const Cache<T>& cache_base, const Matrix<T>& dO) const {
  const auto& cache = static_cast<const AttentionCache<T>&>(cache_base);
  Matrix<T> dqkv(dO.rows(), proj_.w_qkv.rows());
  const Matrix<T>& qkv = cache.qkv;
  for (Index h = 0; h < proj_.heads; ++h) {
    const streaming::Head<T> head{proj_.q_of(qkv, h), proj_.k_of(qkv, h), proj_.v_of(qkv, h), proj_.scale, causal_};
    streaming::vjp<T>(head, cache.o.middleCols(h * proj_.kv, proj_.kv), cache.lse[h],
                      dO.middleCols(h * proj_.kv, proj_.kv), proj_.q_of(dqkv, h), proj_.k_of(dqkv, h),
                      proj_.v_of(dqkv, h));
  }
  return dqkv;
}

// dY = dO W_Oᵀ (§2.2)
template <class T>
Matrix<T> MultiHeadAttention<T>::jvp(const Cache<T>& cache, const Matrix<T>& dX) const {
  return proj_.output_tangent(head_jvp(cache, dX));
}

// dO = dY W_O (§2.3)
template <class T>
Matrix<T> MultiHeadAttention<T>::vjp(const Cache<T>& cache, const Matrix<T>& dY) const {
  return head_vjp(cache, proj_.output_cotangent(dY));
}

// §2.5: JᵀJ dX = head_vjp(head_jvp(dX) · W_OᵀW_O), one (H·k_v)² GEMM instead of two with W_O.
template <class T>
Matrix<T> MultiHeadAttention<T>::normal_product(const Cache<T>& cache, const Matrix<T>& dX) const {
  if (!w_o_gram_.size()) return vjp(cache, jvp(cache, dX));
  Matrix<T> dO_back;
  dO_back.noalias() = head_jvp(cache, dX) * w_o_gram_;
  return head_vjp(cache, dO_back);
}

template class MultiHeadAttention<double>;
template class MultiHeadAttention<float>;

}  // namespace lipattn
