// The weighted attention as score options of the one attention (docs/theory.md §MF.2, §2.7).
#include "meanfield/weighted_attention.h"

#include <cmath>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn::meanfield {

ScoreOptions weighted_scores(const VectorD& masses, const VectorD& positions, bool causal) {
  const Index n = masses.size();
  if (n < 1) throw InputError("weighted attention: the cloud has no tokens (no masses)", "masses");
  for (Index j = 0; j < n; ++j)
    if (!(masses(j) > 0) || !std::isfinite(masses(j)))
      throw InputError(fmt::format("weighted attention: mass {} of token {} must be positive and finite", masses(j), j),
                       "masses");
  if (positions.size() != 0 && !causal)
    throw InputError("positions were given for a layer without the causal mask: make it causal to mask by position",
                     "causal");
  if (positions.size() != 0 && positions.size() != n)
    throw InputError(fmt::format("weighted attention: {} positions for {} masses", positions.size(), n), "positions");
  ScoreOptions scores;
  scores.key_bias = (masses / masses.sum()).array().log().matrix();
  scores.positions = positions;
  return scores;
}

template <class T>
std::shared_ptr<const MultiHeadAttention<T>> weighted_attention(const AttentionWeights& weights, const VectorD& masses,
                                                                const VectorD& positions,
                                                                const AttentionMemory& memory) {
  return std::make_shared<MultiHeadAttention<T>>(weights, memory, weighted_scores(masses, positions, weights.causal));
}

template <class T>
MapPtr<T> build_weighted_map(const LayerSpec& spec, const Measure& mu, const AttentionMemory& memory) {
  spec.validate();
  if (mu.masked() && !spec.attention.causal)
    throw InputError("the measure carries positions but the layer is not causal: make it causal to mask by position",
                     "causal");
  // The same assembly as build_map (docs/theory.md §1): the residual wraps the pre-norm.
  return assemble_layer<T>(spec, weighted_attention<T>(spec.attention, mu.masses, mu.positions, memory));
}

template std::shared_ptr<const MultiHeadAttention<double>> weighted_attention<double>(const AttentionWeights&,
                                                                                      const VectorD&, const VectorD&,
                                                                                      const AttentionMemory&);
template std::shared_ptr<const MultiHeadAttention<float>> weighted_attention<float>(const AttentionWeights&,
                                                                                    const VectorD&, const VectorD&,
                                                                                    const AttentionMemory&);
template MapPtr<double> build_weighted_map<double>(const LayerSpec&, const Measure&, const AttentionMemory&);
template MapPtr<float> build_weighted_map<float>(const LayerSpec&, const Measure&, const AttentionMemory&);

}  // namespace lipattn::meanfield
