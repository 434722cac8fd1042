// A sequence seen as a measure (docs/theory.md, mean-field §MF.1): a weighted point cloud
// μ = Σ_i m_i δ_{x_i}, and for masked attention the positions s_i ∈ [0, 1] carried with the tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "common/types.h"

namespace lipattn::meanfield {

struct Measure {
  MatrixD points;    // n × d, one token x_i per row
  VectorD masses;    // n, positive; only ratios matter (normalised to Σ m_i = 1 by validate_and_normalise)
  VectorD positions; // n values in [0, 1], or empty: unmasked. Token i attends to j iff s_j ≤ s_i.

  Index size() const { return points.rows(); }
  bool masked() const { return positions.size() != 0; }

  // The empirical measure of a sequence: m_i = 1/n, and when causal the positions s_i = (i+1)/n, so
  // that s_j ≤ s_i ⟺ j ≤ i (the causal mask).
  static Measure uniform(const MatrixD& X, bool causal);

  // Throws InputError (naming `what`, e.g. a file) unless the masses are positive and finite and
  // the positions lie in [0, 1]; rescales the masses to sum to 1.
  void validate_and_normalise(const std::string& what = "measure");
};

// Token `token` (mass m) replaced by `copies` tokens of mass m/copies each, at x_token + offsets.row(c)
// (offsets empty: all at x_token, "splitting without moving"); they keep the token's position. The
// copies take the token's place in the order; the other tokens keep theirs.
Measure split_token(const Measure& mu, Index token, Index copies, const MatrixD& offsets = {});
// Offsets that move `copies` copies apart: i.i.d. N(0, spread²) entries (copies × d), drawn in
// row-major order from a generator seeded with `seed`. spread must be > 0.
MatrixD gaussian_offsets(Index copies, Index d, double spread, std::uint64_t seed);

// The same sequence with every token of mass 1/N, N = size(): what the Euclidean n-token constant
// sees when each copy counts as a token of its own.
Measure as_uniform_tokens(const Measure& mu);

// Tokens that coincide exactly (same point, same position) merged into one point carrying their
// total mass (§MF.4). group[i] is the merged index of token i; members[g] lists the tokens of group g.
struct MergedMeasure {
  Measure measure;
  std::vector<Index> group;
  std::vector<std::vector<Index>> members;
};
MergedMeasure merge_identical(const Measure& mu);

}  // namespace lipattn::meanfield
