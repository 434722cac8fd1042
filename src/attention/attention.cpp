// Multi-head softmax attention. Formulas: docs/theory.md §2 (forward §2.1, jvp §2.2, vjp §2.3).
//
// Shapes (one head h; k = key width, kv = value width, n tokens):
//   X (n × d) → QKV = X W_qkvᵀ + b (n × (2Hk + Hkv)) → Q_h, K_h (n × k), V_h (n × kv)
//   S_h = scale Q_h K_hᵀ (n × n), masked; P_h = softmax_rows(S_h); O_h = P_h V_h (n × kv)
//   O = [O_1 … O_H] (n × Hkv); Y = O W_Oᵀ + b_O (n × d_out), or Y = O without W_O.
#include "attention/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/core.h>

#include "attention/accumulate.h"
#include "attention/streaming.h"
#include "common/error.h"

namespace lipattn {

namespace {
template <class T>
struct AttentionCache : Cache<T> {
  explicit AttentionCache(KeyMask<T> m) : mask(std::move(m)) {}
  KeyMask<T> mask;                            // the additive score tensor of this n (§2.7)
  typename QkTransform<T>::State transform;  // QK-norm caches, RoPE table (§2.6)
  Matrix<T> qkv;               // n × (Hk + H_kv·k + H_kv·kv): Q, K, V after the QK transform
  std::vector<Matrix<T>> p;    // stored mode: H attention matrices, n × n, rows sum to 1 (0 where masked)
  bool streaming = false;      // streaming mode (§8): no p; instead
  Matrix<T> o;                 //   the heads' outputs before W_O, n × H·kv
  std::vector<Vector<T>> lse;  //   and per head the log-sum-exp of each query's scores (n)
};

template <class T>
const AttentionCache<T>& as_attention(const Cache<T>& cache) {
  return static_cast<const AttentionCache<T>&>(cache);
}

// Threads pay off only when a head's n×n work outweighs waking them: on small maps (tests, attacks
// on tiny heads) a parallel region costs far more than the products it splits.
inline bool parallel_over_heads(Index heads, Index n, Index k) {
  constexpr Index kMinWorkPerHead = Index(1) << 18;  // n²·k, e.g. n = 64 with k = 64
  return heads > 1 && n * n * std::max<Index>(k, 1) >= kMinWorkPerHead;
}

// Under a prefix mask (causal) P, dP and dS vanish past each query's last key, so the per-head
// products run over row blocks of this height and stop at the block's last visible column: the n²
// part of a product drops to about half (docs/performance.md).
constexpr Index kCausalBlock = 128;

// Calls f(r0, rows, c_end) per row block; columns ≥ c_end of those rows are zero. Masks that are not
// prefix ones have one block with c_end = n.
template <class T, class F>
void for_row_blocks(const KeyMask<T>& mask, F&& f) {
  const Index n = mask.size();
  const Index b = mask.prefix() ? kCausalBlock : std::max<Index>(n, 1);
  for (Index r0 = 0; r0 < n; r0 += b) {
    const Index rows = std::min(b, n - r0);
    f(r0, rows, mask.columns_end(r0, rows));
  }
}

// Rows r0..r0+rows of G, columns < c_end: G ← P ⊙ (G − rowsum(P ⊙ G) 1ᵀ), zero past each row's keys.
template <class T>
void softmax_jacobian_rows(const Matrix<T>& P, Matrix<T>& G, Index r0, Index rows, Index c_end,
                           const KeyMask<T>& mask) {
  for (Index i = r0; i < r0 + rows; ++i) {
    const Index width = std::min(mask.end(i), c_end);
    softmax_jacobian_row(P.row(i).head(width), G.row(i).head(width));
    if (width < c_end) G.row(i).segment(width, c_end - width).setZero();
  }
}

template <class T>
void softmax_jacobian_inplace(const Matrix<T>& P, Matrix<T>& G, const KeyMask<T>& mask) {
  softmax_jacobian_rows(P, G, 0, P.rows(), P.rows(), mask);
}

// dst = src on a group's first query head, dst += src on the others: a K/V head's gradient is the
// sum over the query heads that read it (§2.8).
template <class Dst, class Src>
void assign_or_add(Dst&& dst, const Src& src, bool first) {
  if (first)
    dst.noalias() = src;
  else
    dst.noalias() += src;
}

// Rows of the softmax of the scores block (r0.., columns < c_end) in place: masked and biased by
// the score tensor, shifted by the row max, zero past each row's keys (§2.1).
template <class T>
void softmax_rows(Matrix<T>& P, Index r0, Index rows, Index c_end, const KeyMask<T>& mask) {
  const Index n = P.cols();
  if (mask.has_bias() || !mask.prefix())
    mask.apply(P.block(r0, 0, rows, c_end), r0, 0, -std::numeric_limits<T>::infinity());
  for (Index i = r0; i < r0 + rows; ++i) {
    const Index width = mask.end(i);
    auto row = P.row(i).head(width);
    row = (row.array() - row.maxCoeff()).exp().matrix();
    row /= static_cast<T>(sum64(row));
    if (width < n) P.row(i).tail(n - width).setZero();
  }
}
}  // namespace

template <class T>
MultiHeadAttention<T>::MultiHeadAttention(const AttentionWeights& w, const AttentionMemory& memory,
                                          const ScoreOptions& scores)
    : proj_(w), transform_(w), memory_(memory), scores_(scores), causal_(w.causal) {
  if (scores.key_bias.size() && scores.positions.size() && scores.key_bias.size() != scores.positions.size())
    throw InputError(fmt::format("the score options give {} key biases but {} positions", scores.key_bias.size(),
                                 scores.positions.size()));
  if (scores.positions.size() && !w.causal)
    throw InputError("positions mask the attention only when it is causal (the layer's causal flag is off)", "causal");
  // n·(H·k_v)² flops for dO·(W_OᵀW_O) against 2·n·H·k_v·d_out for the two W_O products (§2.5).
  use_w_o_gram_ = proj_.w_o.size() && proj_.w_o.cols() < 2 * proj_.w_o.rows();
}

template <class T>
std::string MultiHeadAttention<T>::describe() const {
  std::string scores;
  if (scores_.key_bias.size()) scores += ", key bias";
  if (scores_.positions.size()) scores += ", masked by position";
  return fmt::format("attention(H={}{}, d={}, k={}, k_v={}{}{}{}{})", proj_.heads,
                     proj_.groups != proj_.heads ? fmt::format(", H_kv={}", proj_.groups) : "", proj_.d, proj_.k,
                     proj_.kv, causal_ && !scores_.positions.size() ? ", causal" : "", transform_.describe(), scores,
                     proj_.w_o.size() ? ", W_O" : "");
}

namespace {
template <class T>
const AttentionCache<T>& stored_cache(const Cache<T>& cache, const char* what) {
  const auto& c = as_attention(cache);
  if (c.streaming)
    throw InputError(fmt::format("{} needs the stored n × n attention matrices, but this pass streams them (n = {}): "
                                 "raise the memory budget or ask for stored attention",
                                 what, c.qkv.rows()),
                     "storage");
  return c;
}
}  // namespace

template <class T>
Matrix<T> MultiHeadAttention<T>::attention_matrix(const Cache<T>& cache_base, Index h) const {
  const auto& cache = as_attention(cache_base);
  if (h < 0 || h >= proj_.heads)
    throw InputError(fmt::format("head {} is out of range: the layer has {} heads (0..{})", h, proj_.heads,
                                 proj_.heads - 1),
                     "head");
  if (!cache.streaming) return cache.p[h];
  const Index g = proj_.group_of(h);
  const streaming::Head<T> head{proj_.q_of(cache.qkv, h), proj_.k_of(cache.qkv, g), proj_.v_of(cache.qkv, g),
                                proj_.scale, cache.mask};
  return streaming::attention_matrix<T>(head, cache.lse[h]);
}

template <class T>
bool MultiHeadAttention<T>::is_streaming(const Cache<T>& cache) const {
  return as_attention(cache).streaming;
}

// §2.1; streaming §8.1
template <class T>
std::unique_ptr<Cache<T>> MultiHeadAttention<T>::forward(const MatrixView<T>& X) const {
  const Index n = X.rows();
  if (X.cols() != proj_.d)
    throw InputError(fmt::format("attention expects {} features per token, the input has {}", proj_.d, X.cols()));
  if (fixed_tokens() && n != fixed_tokens())
    throw InputError(fmt::format("the input has {} tokens, the score options (masses, positions) {}", n,
                                 fixed_tokens()));
  auto cache = std::make_unique<AttentionCache<T>>(KeyMask<T>(n, causal_, scores_));
  cache->qkv = proj_.qkv(X);  // n × (Hk + H_kv·k + H_kv·kv)
  if (!transform_.identity()) transform_.forward(cache->qkv, cache->transform);
  const Matrix<T>& qkv = cache->qkv;
  const KeyMask<T>& mask = cache->mask;
  if (use_streaming(memory_, proj_.heads, n, sizeof(T))) {
    cache->streaming = true;
    cache->o.resize(n, proj_.heads * proj_.kv);
    cache->lse.resize(proj_.heads);
    for (Index h = 0; h < proj_.heads; ++h) {  // the kernels parallelise over query blocks inside a head
      const Index g = proj_.group_of(h);
      const streaming::Head<T> head{proj_.q_of(qkv, h), proj_.k_of(qkv, g), proj_.v_of(qkv, g), proj_.scale, mask};
      streaming::forward<T>(head, cache->o.middleCols(h * proj_.kv, proj_.kv), cache->lse[h]);
    }
    cache->output = proj_.output(cache->o);
    return cache;
  }
  cache->p.resize(proj_.heads);
  Matrix<T> O(n, proj_.heads * proj_.kv);
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.heads, n, proj_.k))
  for (Index h = 0; h < proj_.heads; ++h) {
    const Index g = proj_.group_of(h);
    auto Q = proj_.q_of(qkv, h), K = proj_.k_of(qkv, g), V = proj_.v_of(qkv, g);
    Matrix<T>& P = cache->p[h];
    P.resize(n, n);
    auto Oh = O.middleCols(h * proj_.kv, proj_.kv);
    // Row blocks, as in the products: under a prefix mask a block's scores stop at its last column.
    for_row_blocks(mask, [&](Index r0, Index rows, Index c_end) {
      P.block(r0, 0, rows, c_end).noalias() = proj_.scale * (Q.middleRows(r0, rows) * K.topRows(c_end).transpose());
      softmax_rows(P, r0, rows, c_end, mask);
      Oh.middleRows(r0, rows).noalias() = P.block(r0, 0, rows, c_end) * V.topRows(c_end);
    });
  }
  cache->output = proj_.output(std::move(O));
  return cache;
}

template <class T>
Matrix<T> MultiHeadAttention<T>::qkv_tangent(const Cache<T>& cache, const Matrix<T>& dX) const {
  Matrix<T> dqkv = proj_.qkv_tangent(dX);
  if (!transform_.identity()) transform_.tangent(dqkv, as_attention(cache).transform);
  return dqkv;
}

template <class T>
Matrix<T> MultiHeadAttention<T>::qkv_cotangent(const Cache<T>& cache, Matrix<T> dqkv) const {
  if (!transform_.identity()) transform_.cotangent(dqkv, as_attention(cache).transform);
  return proj_.qkv_cotangent(dqkv);
}

// §2.2: dS = scale (dQ Kᵀ + Q dKᵀ); dP = P ⊙ (dS − rowsum(P ⊙ dS)); dO = dP V + P dV.
template <class T>
Matrix<T> MultiHeadAttention<T>::head_jvp(const Cache<T>& cache_base, const Matrix<T>& dqkv) const {
  const auto& cache = as_attention(cache_base);
  if (cache.streaming) return streaming_jvp(cache, dqkv);
  const Index n = dqkv.rows();
  Matrix<T> dO(n, proj_.heads * proj_.kv);
  const Matrix<T>& qkv = cache.qkv;
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.heads, n, proj_.k))
  for (Index h = 0; h < proj_.heads; ++h) {
    const Index g = proj_.group_of(h);
    auto Q = proj_.q_of(qkv, h), K = proj_.k_of(qkv, g), V = proj_.v_of(qkv, g);
    auto dQ = proj_.q_of(dqkv, h), dK = proj_.k_of(dqkv, g), dV = proj_.v_of(dqkv, g);
    const Matrix<T>& P = cache.p[h];
    Matrix<T> G(n, n);
    auto dOh = dO.middleCols(h * proj_.kv, proj_.kv);
    for_row_blocks(cache.mask, [&](Index r0, Index rows, Index c_end) {
      auto block = G.block(r0, 0, rows, c_end);
      block.noalias() = dQ.middleRows(r0, rows) * K.topRows(c_end).transpose();
      block.noalias() += Q.middleRows(r0, rows) * dK.topRows(c_end).transpose();
      block *= proj_.scale;
      softmax_jacobian_rows(P, G, r0, rows, c_end, cache.mask);  // block = dP
      dOh.middleRows(r0, rows).noalias() = block * V.topRows(c_end);
      dOh.middleRows(r0, rows).noalias() += P.block(r0, 0, rows, c_end) * dV.topRows(c_end);
    });
  }
  return dO;
}

// §2.3: dP = dO Vᵀ; dV = Pᵀ dO; dS = P ⊙ (dP − rowsum(P ⊙ dP)); dQ = scale dS K; dK = scale dSᵀ Q.
// A K/V head's dK and dV sum over its query heads (§2.8), so the threads take K/V heads.
template <class T>
Matrix<T> MultiHeadAttention<T>::head_vjp(const Cache<T>& cache_base, const Matrix<T>& dO) const {
  const auto& cache = as_attention(cache_base);
  if (cache.streaming) return streaming_vjp(cache, dO);
  const Index n = dO.rows(), per_group = proj_.heads / proj_.groups;
  Matrix<T> dqkv(n, proj_.qkv_width());
  const Matrix<T>& qkv = cache.qkv;
  const KeyMask<T>& mask = cache.mask;
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.groups, n, proj_.k))
  for (Index g = 0; g < proj_.groups; ++g) {
    auto K = proj_.k_of(qkv, g), V = proj_.v_of(qkv, g);
    auto dK = proj_.k_of(dqkv, g), dV = proj_.v_of(dqkv, g);
    Matrix<T> G(n, n);
    for (Index h = g * per_group; h < (g + 1) * per_group; ++h) {
      const bool first = h == g * per_group;
      // Two declarations: qkv is const and dqkv is not, so the blocks differ in type (clang rejects one
      // `auto` deducing two types).
      auto Q = proj_.q_of(qkv, h);
      auto dQ = proj_.q_of(dqkv, h);
      auto dOh = dO.middleCols(h * proj_.kv, proj_.kv);
      const Matrix<T>& P = cache.p[h];
      // Row blocks: G = dP = dO Vᵀ, then dS = scale P ⊙ (dP − rowsum(P ⊙ dP)), then dQ = dS K.
      for_row_blocks(mask, [&](Index r0, Index rows, Index c_end) {
        G.block(r0, 0, rows, c_end).noalias() = dOh.middleRows(r0, rows) * V.topRows(c_end).transpose();
        softmax_jacobian_rows(P, G, r0, rows, c_end, mask);
        G.block(r0, 0, rows, c_end) *= proj_.scale;
        dQ.middleRows(r0, rows).noalias() = G.block(r0, 0, rows, c_end) * K.topRows(c_end);
        // The column pass reads whole column blocks; past c_end this row block's dS is zero. (Causal
        // blocks end on a block boundary; sorted mean-field positions may not.)
        const Index pad = std::min(n, (c_end + kCausalBlock - 1) / kCausalBlock * kCausalBlock) - c_end;
        if (mask.prefix() && pad > 0) G.block(r0, c_end, rows, pad).setZero();
      });
      // Column blocks: under a prefix mask, the queries before first_row(c0) see none of its keys.
      for_row_blocks(mask, [&](Index c0, Index cols, Index) {
        const Index r0 = mask.first_row(c0);
        assign_or_add(dV.middleRows(c0, cols), P.block(r0, c0, n - r0, cols).transpose() * dOh.bottomRows(n - r0),
                      first);
        assign_or_add(dK.middleRows(c0, cols), G.block(r0, c0, n - r0, cols).transpose() * Q.bottomRows(n - r0),
                      first);
      });
    }
  }
  return dqkv;
}

// Second order (docs/theory.md, attack §2.2): ∇_X φ with φ = ⟨u, Df(X) v⟩ = Σ_h ⟨Ū_h, dO_h⟩,
// Ū = u W_O (or u without W_O), Ū_h its head-h slice (n × kv). dQ, dK, dV = T′(v W_{Q,K,V}ᵀ) depend
// on X only through the QK transform T (its part is added at the end); Q, K, V, P and through them
// dS, dP do. Per head, with r = rowsum(P ⊙ dS), M = Ū Vᵀ (n × n), m = rowsum(P ⊙ M):
//   B   = P ⊙ (M − m 1ᵀ)                             the weight of d(dS) (the vjp's softmax step)
//   G_P = Ū dVᵀ + M ⊙ (dS − r 1ᵀ) − (m 1ᵀ) ⊙ dS      the weight of dP through P
//   E   = P ⊙ (G_P − rowsum(P ⊙ G_P) 1ᵀ)             the weight of dS through P
//   G_Q = scale (E K + B dK),  G_K = scale (Eᵀ Q + Bᵀ dQ),  G_V = dPᵀ Ū
// summed over the query heads of a K/V head for G_K and G_V. Then ∇_raw = T′ᵀ[G_Q G_K G_V] +
// T.second_order(v W_qkvᵀ, head_vjp(Ū)) and ∇_X φ = ∇_raw W_qkv. Masked entries carry P = 0 and drop
// out of B, E and dP.
template <class T>
Matrix<T> MultiHeadAttention<T>::second_order(const Cache<T>& cache_base, const Matrix<T>& v,
                                              const Matrix<T>& u) const {
  const auto& cache = stored_cache(cache_base, "the second-order product (attacks)");
  const Index n = v.rows(), per_group = proj_.heads / proj_.groups;
  const Matrix<T> raw_tangent = proj_.qkv_tangent(v);
  Matrix<T> dqkv = raw_tangent;  // [dQ dK dV] after the QK transform
  if (!transform_.identity()) transform_.tangent(dqkv, cache.transform);
  const Matrix<T> u_bar = proj_.output_cotangent(u);  // n × Hkv
  Matrix<T> grad_qkv(n, proj_.qkv_width());
  const Matrix<T>& qkv = cache.qkv;
  const KeyMask<T>& mask = cache.mask;
#pragma omp parallel for schedule(dynamic) if (parallel_over_heads(proj_.groups, n, proj_.k))
  for (Index g = 0; g < proj_.groups; ++g) {
    auto K = proj_.k_of(qkv, g), V = proj_.v_of(qkv, g);
    auto dK = proj_.k_of(dqkv, g), dV = proj_.v_of(dqkv, g);
    for (Index h = g * per_group; h < (g + 1) * per_group; ++h) {
      // Two declarations: qkv is const and dqkv is not, so the blocks differ in type (clang rejects one
      // `auto` deducing two types).
      auto Q = proj_.q_of(qkv, h);
      auto dQ = proj_.q_of(dqkv, h);
      auto Ub = u_bar.middleCols(h * proj_.kv, proj_.kv);
      const Matrix<T>& P = cache.p[h];
      Matrix<T> dS(n, n);  // scale (dQ Kᵀ + Q dKᵀ), n × n
      dS.noalias() = dQ * K.transpose();
      dS.noalias() += Q * dK.transpose();
      dS *= proj_.scale;
      Matrix<T> dP = dS;
      softmax_jacobian_inplace(P, dP, mask);  // dP = P ⊙ (dS − r 1ᵀ)
      Matrix<T> M(n, n);
      M.noalias() = Ub * V.transpose();  // Ū Vᵀ
      Matrix<T> B = M;
      softmax_jacobian_inplace(P, B, mask);  // B = P ⊙ (M − m 1ᵀ)
      Matrix<T> G(n, n);                     // G_P, then E
      G.noalias() = Ub * dV.transpose();
      for (Index i = 0; i < n; ++i) {
        const Index width = mask.end(i);
        auto p = P.row(i).head(width);
        const T r = static_cast<T>(dot64(p, dS.row(i).head(width)));
        const T m = static_cast<T>(dot64(p, M.row(i).head(width)));
        G.row(i).head(width).array() += M.row(i).head(width).array() * (dS.row(i).head(width).array() - r) -
                                        m * dS.row(i).head(width).array();
      }
      softmax_jacobian_inplace(P, G, mask);  // E
      const bool first = h == g * per_group;
      auto gQ = proj_.q_of(grad_qkv, h);
      gQ.noalias() = G * K;
      gQ.noalias() += B * dK;
      gQ *= proj_.scale;
      Matrix<T> gK(n, proj_.k);
      gK.noalias() = G.transpose() * Q;
      gK.noalias() += B.transpose() * dQ;
      gK *= proj_.scale;
      assign_or_add(proj_.k_of(grad_qkv, g), gK, first);
      assign_or_add(proj_.v_of(grad_qkv, g), dP.transpose() * Ub, first);
    }
  }
  if (transform_.identity()) return proj_.qkv_cotangent(grad_qkv);
  transform_.cotangent(grad_qkv, cache.transform);
  grad_qkv += transform_.second_order(cache.transform, raw_tangent, head_vjp(cache, u_bar));
  return proj_.qkv_cotangent(grad_qkv);
}

// §8.2: the same dQ, dK, dV as the stored jvp, with the head's dO from the tile pass.
template <class T>
Matrix<T> MultiHeadAttention<T>::streaming_jvp(const Cache<T>& cache_base, const Matrix<T>& dqkv) const {
  const auto& cache = as_attention(cache_base);
  Matrix<T> dO(dqkv.rows(), proj_.heads * proj_.kv);
  const Matrix<T>& qkv = cache.qkv;
  for (Index h = 0; h < proj_.heads; ++h) {
    const Index g = proj_.group_of(h);
    const streaming::Head<T> head{proj_.q_of(qkv, h), proj_.k_of(qkv, g), proj_.v_of(qkv, g), proj_.scale,
                                  cache.mask};
    streaming::jvp<T>(head, cache.o.middleCols(h * proj_.kv, proj_.kv), cache.lse[h], proj_.q_of(dqkv, h),
                      proj_.k_of(dqkv, g), proj_.v_of(dqkv, g), dO.middleCols(h * proj_.kv, proj_.kv));
  }
  return dO;
}

// §8.3; a K/V head's dK and dV add up over its query heads (§2.8).
template <class T>
Matrix<T> MultiHeadAttention<T>::streaming_vjp(const Cache<T>& cache_base, const Matrix<T>& dO) const {
  const auto& cache = as_attention(cache_base);
  const Index n = dO.rows(), per_group = proj_.heads / proj_.groups;
  Matrix<T> dqkv(n, proj_.qkv_width());
  Matrix<T> dK_h, dV_h;  // a later query head's share, when K/V heads are shared
  if (per_group > 1) {
    dK_h.resize(n, proj_.k);
    dV_h.resize(n, proj_.kv);
  }
  const Matrix<T>& qkv = cache.qkv;
  for (Index h = 0; h < proj_.heads; ++h) {
    const Index g = proj_.group_of(h);
    const bool first = h % per_group == 0;
    const streaming::Head<T> head{proj_.q_of(qkv, h), proj_.k_of(qkv, g), proj_.v_of(qkv, g), proj_.scale,
                                  cache.mask};
    auto dK = proj_.k_of(dqkv, g), dV = proj_.v_of(dqkv, g);
    const auto O_h = cache.o.middleCols(h * proj_.kv, proj_.kv);
    const auto dO_h = dO.middleCols(h * proj_.kv, proj_.kv);
    if (first) {
      streaming::vjp<T>(head, O_h, cache.lse[h], dO_h, proj_.q_of(dqkv, h), dK, dV);
    } else {
      streaming::vjp<T>(head, O_h, cache.lse[h], dO_h, proj_.q_of(dqkv, h), dK_h, dV_h);
      dK += dK_h;
      dV += dV_h;
    }
  }
  return dqkv;
}

// dY = dO W_Oᵀ (§2.2)
template <class T>
Matrix<T> MultiHeadAttention<T>::jvp(const Cache<T>& cache, const Matrix<T>& dX) const {
  return proj_.output_tangent(head_jvp(cache, qkv_tangent(cache, dX)));
}

// dO = dY W_O (§2.3)
template <class T>
Matrix<T> MultiHeadAttention<T>::vjp(const Cache<T>& cache, const Matrix<T>& dY) const {
  return qkv_cotangent(cache, head_vjp(cache, proj_.output_cotangent(dY)));
}

// §2.5: JᵀJ dX = head_vjp(head_jvp(dX) · W_OᵀW_O), one (H·k_v)² GEMM instead of two with W_O.
template <class T>
Matrix<T> MultiHeadAttention<T>::normal_product(const Cache<T>& cache, const Matrix<T>& dX) const {
  if (!use_w_o_gram_) return vjp(cache, jvp(cache, dX));
  std::call_once(w_o_gram_->once, [this] { w_o_gram_->value.noalias() = proj_.w_o.transpose() * proj_.w_o; });
  Matrix<T> dO_back;
  dO_back.noalias() = head_jvp(cache, qkv_tangent(cache, dX)) * w_o_gram_->value;
  return qkv_cotangent(cache, head_vjp(cache, dO_back));
}

template class MultiHeadAttention<double>;
template class MultiHeadAttention<float>;

}  // namespace lipattn
