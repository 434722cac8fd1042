// Attention on a weighted point cloud (docs/theory.md, mean-field §MF.2): the softmax weights
// become m_j e^{S_ij} / Σ_l m_l e^{S_il}, i.e. the log-masses are added to the scores, and a masked
// cloud lets token i attend to the tokens with s_j ≤ s_i.
//
// Large n: the n × n attention matrices are kept only while heads·n² ≤ cache_entries; beyond that
// every product recomputes them in row blocks (memory O(block·n)), so n = 10⁴–10⁵ fits in memory.
#pragma once

#include "attention/attention.h"
#include "attention/layer.h"
#include "meanfield/measure.h"

namespace lipattn::meanfield {

struct WeightedOptions {
  long long cache_entries = 1LL << 26;  // keep P (all heads) when heads·n² ≤ this (8 bytes each in f64)
  Index block_entries = 1 << 15;        // rows per block ≈ block_entries / n: a block of G stays in cache
};

template <class T>
class WeightedAttention final : public Map<T> {
 public:
  // The cloud's masses (and positions, when masked) fix n: forward() takes n × d inputs. A causal
  // `weights` without positions uses s_i = (i+1)/n; positions given with a non-causal `weights`
  // are an InputError (ask for --causal).
  WeightedAttention(const AttentionWeights& weights, const VectorD& masses, const VectorD& positions = {},
                    const WeightedOptions& options = {});
  Index input_dim() const override { return proj_.d; }
  Index output_dim() const override { return proj_.d_out; }
  std::string describe() const override;
  std::unique_ptr<Cache<T>> forward(const Matrix<T>& X) const override;
  Matrix<T> jvp(const Cache<T>& cache, const Matrix<T>& dX) const override;
  Matrix<T> vjp(const Cache<T>& cache, const Matrix<T>& dY) const override;

  Index tokens() const { return log_mass_.size(); }
  bool masked() const { return positions_.size() != 0; }
  // The weighted attention matrix of head h at the cached input (n × n, rows sum to 1), assembled
  // whether or not it is cached.
  Matrix<T> attention_matrix(const Cache<T>& cache, Index h) const;

 private:
  // Rows [i0, i0 + rows) of P_h into `out` (rows × n): the scores, log-masses added, masked, softmax.
  void compute_block(const Matrix<T>& qkv, Index h, Index i0, Index rows, Matrix<T>& out) const;
  Index block_rows() const;

  Projections<T> proj_;
  Vector<T> log_mass_;      // log m_j, added to column j of the scores
  Vector<T> positions_;     // empty: unmasked
  WeightedOptions options_;
};

// The layer of `spec` (norms, residual, W_O, all heads) with its attention replaced by the weighted
// one on the cloud `mu` (the points of mu are not used, only masses and positions): token-wise
// pieces are unchanged, since a pushforward acts token by token (§MF.2).
template <class T>
MapPtr<T> build_weighted_map(const LayerSpec& spec, const Measure& mu, const WeightedOptions& options = {});

}  // namespace lipattn::meanfield
