// Attention on a weighted point cloud (docs/theory.md, mean-field §MF.2) is the one attention
// (attention/attention.h) configured by its score options: the softmax weights become
// m_j e^{S_ij} / Σ_l m_l e^{S_il}, i.e. the log-masses are added to the scores as a key bias, and a
// masked cloud lets token i attend to the tokens with s_j ≤ s_i (§2.7). Stored or streaming
// attention, float32, second order: whatever the attention does, the weighted one does.
#pragma once

#include "attention/attention.h"
#include "attention/layer.h"
#include "meanfield/measure.h"

namespace lipattn::meanfield {

// The score options of a cloud: key bias log(m_j / Σ m) (only ratios of masses matter; normalising
// keeps the offsets near 0) and the positions. InputError unless every mass is positive and finite,
// there are as many positions as masses, and positions come with a causal layer.
ScoreOptions weighted_scores(const VectorD& masses, const VectorD& positions, bool causal);

// The weighted attention of `weights` on a cloud of these masses and positions: inputs of n =
// masses.size() tokens. A causal layer without positions masks by index (s_i = (i+1)/n).
template <class T>
std::shared_ptr<const MultiHeadAttention<T>> weighted_attention(const AttentionWeights& weights, const VectorD& masses,
                                                                const VectorD& positions = {},
                                                                const AttentionMemory& memory = {});

// The layer of `spec` (norms, residual, W_O, all heads) with its attention weighted by the cloud
// `mu` (the points of mu are not used, only masses and positions): token-wise pieces are unchanged,
// since a pushforward acts token by token (§MF.2).
template <class T>
MapPtr<T> build_weighted_map(const LayerSpec& spec, const Measure& mu, const AttentionMemory& memory = {});

}  // namespace lipattn::meanfield
