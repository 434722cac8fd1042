// Weighted (and position-masked) multi-head attention. Formulas: docs/theory.md §MF.2; they are
// those of §2.1–§2.3 with S_ij replaced by S_ij + log m_j. The offset does not depend on X, so
// dS — and with it every derivative formula — is unchanged; only P changes.
//
// Every pass works on row blocks of P (rows × n): a block comes from the cache when P is kept,
// else it is recomputed from Q, K and the offsets.
#include "meanfield/weighted_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/core.h>

#include "attention/accumulate.h"
#include "common/error.h"
#include "common/parallel.h"

namespace lipattn::meanfield {

namespace {

template <class T>
struct WeightedCache : Cache<T> {
  Matrix<T> qkv;             // n × (2Hk + Hkv)
  std::vector<Matrix<T>> p;  // H matrices n × n when cached, else empty
};

// P ⊙ (G − rowsum(P ⊙ G) 1ᵀ) on a block, in place on G (§2.2). Masked entries have P = 0.
template <class T>
void softmax_jacobian_inplace(const Eigen::Ref<const Matrix<T>>& P, Matrix<T>& G) {
  for (Index r = 0; r < P.rows(); ++r) softmax_jacobian_row(P.row(r), G.row(r));
}

// A parallel region costs a barrier, and a barrier on a busy machine can wait milliseconds for a
// descheduled thread: small products run on one thread.
bool parallel_worth_it(Index heads, Index blocks, Index n) {
  return heads * blocks > 1 && static_cast<double>(heads) * n * n >= static_cast<double>(1 << 18);
}

// A product's tasks, one per (head, row block), shared among the threads (common/parallel.h). Each
// thread makes its scratch once; body(h, i0, rows, P, scratch) gets rows i0..i0+rows of P_h, from the
// cache or recomputed by block_of(h, i0, rows, buffer); finish(scratch, thread) runs once per thread
// at the end.
template <class T, class BlockOf, class MakeScratch, class Body, class Finish>
void for_each_head_block(const WeightedCache<T>& cache, Index heads, Index n, Index block, Schedule schedule,
                         BlockOf&& block_of, MakeScratch&& make_scratch, Body&& body, Finish&& finish) {
  const Index blocks = (n + block - 1) / block;
  struct Scratch {
    Matrix<T> buffer;
    decltype(make_scratch()) user;
  };
  parallel_tasks(
      heads * blocks, schedule, parallel_worth_it(heads, blocks, n),
      [&] {
        return Scratch{Matrix<T>(), make_scratch()};
      },
      [&](Index task, Scratch& s) {
        const Index h = task / blocks, i0 = (task % blocks) * block, rows = std::min(block, n - i0);
        if (cache.p.empty()) block_of(h, i0, rows, s.buffer);
        const Eigen::Ref<const Matrix<T>> P = cache.p.empty()
                                                  ? Eigen::Ref<const Matrix<T>>(s.buffer)
                                                  : Eigen::Ref<const Matrix<T>>(cache.p[h].middleRows(i0, rows));
        body(h, i0, rows, P, s.user);
      },
      [&](Scratch& s, int thread) { finish(s.user, thread); });
}

}  // namespace

template <class T>
WeightedAttention<T>::WeightedAttention(const AttentionWeights& w, const VectorD& masses, const VectorD& positions,
                                        const WeightedOptions& options)
    : proj_(w), options_(options) {
  const Index n = masses.size();
  if (n < 1) throw InputError("weighted attention: the cloud has no tokens (no masses)");
  for (Index j = 0; j < n; ++j)
    if (!(masses(j) > 0) || !std::isfinite(masses(j)))
      throw InputError(fmt::format("weighted attention: mass {} of token {} must be positive and finite", masses(j), j));
  if (positions.size() != 0 && !w.causal)
    throw InputError("positions were given for a layer without the causal mask: add --causal to mask by position");
  if (positions.size() != 0 && positions.size() != n)
    throw InputError(fmt::format("weighted attention: {} positions for {} masses", positions.size(), n));
  // Only ratios of masses matter in the softmax; normalising keeps the offsets near 0.
  log_mass_ = (masses / masses.sum()).array().log().matrix().cast<T>();
  if (w.causal) {
    if (positions.size())
      positions_ = positions.cast<T>();
    else {
      positions_.resize(n);
      for (Index i = 0; i < n; ++i) positions_(i) = static_cast<T>(i + 1) / static_cast<T>(n);
    }
  }
}

template <class T>
std::string WeightedAttention<T>::describe() const {
  return fmt::format("weighted attention(n={}, H={}, d={}, k={}, k_v={}{}{})", tokens(), proj_.heads, proj_.d, proj_.k,
                     proj_.kv, masked() ? ", masked by position" : "", proj_.w_o.size() ? ", W_O" : "");
}

template <class T>
Index WeightedAttention<T>::block_rows() const {
  const Index n = tokens();
  return std::clamp<Index>(options_.block_entries / std::max<Index>(n, 1), 1, n);
}

// §MF.2: P_ij = m_j e^{S_ij} / Σ_{l: s_l ≤ s_i} m_l e^{S_il} over the j with s_j ≤ s_i.
template <class T>
void WeightedAttention<T>::compute_block(const Matrix<T>& qkv, Index h, Index i0, Index rows, Matrix<T>& out) const {
  const Index n = tokens();
  auto Q = proj_.q_of(qkv, h).middleRows(i0, rows);
  auto K = proj_.k_of(qkv, h);
  out.resize(rows, n);
  out.noalias() = proj_.scale * (Q * K.transpose());
  out.rowwise() += log_mass_.transpose();
  const T minus_inf = -std::numeric_limits<T>::infinity();
  for (Index r = 0; r < rows; ++r) {
    auto row = out.row(r);
    if (masked()) {
      const T s_i = positions_(i0 + r);
      for (Index j = 0; j < n; ++j)
        if (positions_(j) > s_i) row(j) = minus_inf;
    }
    // The row's own token is always allowed (s_i ≤ s_i), so the max is finite; exp(−∞) = 0.
    row = (row.array() - row.maxCoeff()).exp().matrix();
    row /= row.sum();
  }
}

template <class T>
std::unique_ptr<Cache<T>> WeightedAttention<T>::forward(const Matrix<T>& X) const {
  const Index n = X.rows();
  if (n != tokens())
    throw InputError(fmt::format("weighted attention: the input has {} tokens, the cloud's masses {}", n, tokens()));
  if (X.cols() != proj_.d)
    throw InputError(fmt::format("weighted attention: the input has {} features per token, the layer expects {}",
                                 X.cols(), proj_.d));
  auto cache = std::make_unique<WeightedCache<T>>();
  cache->qkv = proj_.qkv(X);
  const bool keep = static_cast<long double>(proj_.heads) * n * n <= static_cast<long double>(options_.cache_entries);
  if (keep) cache->p.assign(proj_.heads, Matrix<T>(n, n));
  const Index B = block_rows(), blocks = (n + B - 1) / B;
  Matrix<T> O(n, proj_.heads * proj_.kv);
  const Matrix<T>& qkv = cache->qkv;
#pragma omp parallel if (parallel_worth_it(proj_.heads, blocks, n))
  {
    Matrix<T> P;
#pragma omp for schedule(dynamic)
    for (Index task = 0; task < proj_.heads * blocks; ++task) {
      const Index h = task / blocks, i0 = (task % blocks) * B, rows = std::min(B, n - i0);
      compute_block(qkv, h, i0, rows, P);
      auto V = proj_.v_of(qkv, h);
      O.block(i0, h * proj_.kv, rows, proj_.kv).noalias() = P * V;
      if (keep) cache->p[h].middleRows(i0, rows) = P;
    }
  }
  cache->output = proj_.output(std::move(O));
  return cache;
}

template <class T>
Matrix<T> WeightedAttention<T>::attention_matrix(const Cache<T>& cache_base, Index h) const {
  const auto& cache = static_cast<const WeightedCache<T>&>(cache_base);
  if (h < 0 || h >= proj_.heads) throw InputError(fmt::format("head {} is out of range (0..{})", h, proj_.heads - 1));
  if (!cache.p.empty()) return cache.p[h];
  Matrix<T> P;
  compute_block(cache.qkv, h, 0, tokens(), P);
  return P;
}

// §2.2 per block: dS = c (dQ Kᵀ + Q dKᵀ); dP = P ⊙ (dS − rowsum(P ⊙ dS)); dO = dP V + P dV.
template <class T>
Matrix<T> WeightedAttention<T>::jvp(const Cache<T>& cache_base, const Matrix<T>& dX) const {
  const auto& cache = static_cast<const WeightedCache<T>&>(cache_base);
  const Index n = dX.rows();
  const Matrix<T> dqkv = proj_.qkv_tangent(dX);
  Matrix<T> dO(n, proj_.heads * proj_.kv);
  const Matrix<T>& qkv = cache.qkv;
  for_each_head_block<T>(
      cache, proj_.heads, n, block_rows(), Schedule::Dynamic,
      [&](Index h, Index i0, Index rows, Matrix<T>& out) { compute_block(qkv, h, i0, rows, out); },
      [] { return Matrix<T>(); },
      [&](Index h, Index i0, Index rows, const Eigen::Ref<const Matrix<T>>& P, Matrix<T>& G) {
        auto Q = proj_.q_of(qkv, h).middleRows(i0, rows), K = proj_.k_of(qkv, h), V = proj_.v_of(qkv, h);
        auto dQ = proj_.q_of(dqkv, h).middleRows(i0, rows), dK = proj_.k_of(dqkv, h), dV = proj_.v_of(dqkv, h);
        G.resize(rows, n);
        G.noalias() = dQ * K.transpose();
        G.noalias() += Q * dK.transpose();
        G *= proj_.scale;
        softmax_jacobian_inplace<T>(P, G);
        auto dOh = dO.block(i0, h * proj_.kv, rows, proj_.kv);
        dOh.noalias() = G * V;
        dOh.noalias() += P * dV;
      },
      [](Matrix<T>&, int) {});
  return proj_.output_tangent(std::move(dO));
}

// §2.3 per block: dP = dO Vᵀ; dV += Pᵀ dO; dS = c P ⊙ (dP − rowsum(P ⊙ dP)); dQ = dS K; dK += dSᵀ Q.
// The sums over blocks (dK, dV) go to one buffer per thread, added in thread order at the end; with
// the cyclic schedule a rerun repeats its bits (common/parallel.h).
template <class T>
Matrix<T> WeightedAttention<T>::vjp(const Cache<T>& cache_base, const Matrix<T>& dY) const {
  const auto& cache = static_cast<const WeightedCache<T>&>(cache_base);
  const Index n = dY.rows();
  const Matrix<T> dO = proj_.output_cotangent(dY);
  Matrix<T> dqkv = Matrix<T>::Zero(n, proj_.w_qkv.rows());
  const Matrix<T>& qkv = cache.qkv;
  struct Scratch {
    Matrix<T> G, local;  // local: this thread's sums over blocks of [dQ dK dV]
  };
  PartialsByThread<Matrix<T>> parts;
  for_each_head_block<T>(
      cache, proj_.heads, n, block_rows(), Schedule::Cyclic,
      [&](Index h, Index i0, Index rows, Matrix<T>& out) { compute_block(qkv, h, i0, rows, out); },
      [&] {
        return Scratch{Matrix<T>(), Matrix<T>::Zero(n, proj_.w_qkv.rows())};
      },
      [&](Index h, Index i0, Index rows, const Eigen::Ref<const Matrix<T>>& P, Scratch& t) {
        auto Q = proj_.q_of(qkv, h).middleRows(i0, rows), K = proj_.k_of(qkv, h), V = proj_.v_of(qkv, h);
        auto dOh = dO.block(i0, h * proj_.kv, rows, proj_.kv);
        t.G.resize(rows, n);
        t.G.noalias() = dOh * V.transpose();
        proj_.v_of(t.local, h).noalias() += P.transpose() * dOh;
        softmax_jacobian_inplace<T>(P, t.G);
        t.G *= proj_.scale;
        proj_.q_of(t.local, h).middleRows(i0, rows).noalias() += t.G * K;
        proj_.k_of(t.local, h).noalias() += t.G.transpose() * Q;
      },
      [&](Scratch& t, int thread) { parts.store(thread, std::move(t.local)); });
  parts.add_in_thread_order(dqkv);
  return proj_.qkv_cotangent(dqkv);
}

template class WeightedAttention<double>;
template class WeightedAttention<float>;

template <class T>
MapPtr<T> build_weighted_map(const LayerSpec& spec, const Measure& mu, const WeightedOptions& options) {
  spec.validate();
  if (mu.masked() && !spec.attention.causal)
    throw InputError("the measure carries positions but the layer is not causal: add --causal to mask by position");
  // The same assembly as build_map (docs/theory.md §1): the residual wraps the pre-norm.
  return assemble_layer<T>(spec,
                           std::make_shared<WeightedAttention<T>>(spec.attention, mu.masses, mu.positions, options));
}

template MapPtr<double> build_weighted_map<double>(const LayerSpec&, const Measure&, const WeightedOptions&);
template MapPtr<float> build_weighted_map<float>(const LayerSpec&, const Measure&, const WeightedOptions&);

}  // namespace lipattn::meanfield
