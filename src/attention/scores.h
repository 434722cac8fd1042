// What is added to the attention scores before the softmax: llama.cpp's one additive score tensor
// B (n × n), B_ij = b_j where query i sees key j and −∞ where it does not, held in O(n) numbers
// (docs/theory.md §2.7). It carries the causal mask, the mean-field log-masses b_j = log m_j and the
// mean-field position mask s_j ≤ s_i (§MF.2). B does not depend on X, so dS and every derivative
// formula are unchanged: only P changes.
//
// Both the stored and the streaming kernels ask it the same three questions: which keys a block of
// queries can see at all (to skip work), which queries a block of keys can reach, and how to bias and
// mask one tile of scores.
#pragma once

#include <algorithm>
#include <vector>

#include "common/types.h"

namespace lipattn {

struct ScoreOptions {
  VectorD key_bias;   // b_j, one per key (n); empty: no bias
  VectorD positions;  // s_j (n): query i sees key j iff s_j ≤ s_i; empty: j ≤ i when causal, else all
  bool empty() const { return key_bias.size() == 0 && positions.size() == 0; }
};

template <class T>
class KeyMask {
 public:
  // The mask of n tokens. `scores` must have n entries where given (the map checks that first).
  KeyMask(Index n, bool causal, const ScoreOptions& scores) : n_(n) {
    if (scores.key_bias.size()) bias_ = scores.key_bias.cast<T>();
    if (scores.positions.size()) {
      positions_ = scores.positions;
      const bool sorted = std::is_sorted(positions_.data(), positions_.data() + n);
      kind_ = sorted ? Kind::Prefix : Kind::General;
      if (sorted) {
        end_.resize(n);
        for (Index i = 0; i < n; ++i)
          end_[i] = std::upper_bound(positions_.data(), positions_.data() + n, positions_(i)) - positions_.data();
      }
    } else if (causal) {
      kind_ = Kind::Prefix;
      end_.resize(n);
      for (Index i = 0; i < n; ++i) end_[i] = i + 1;
    }
  }

  Index size() const { return n_; }
  bool has_bias() const { return bias_.size() != 0; }
  // Each query sees a prefix of the keys, longer for later queries (causal, sorted positions): work
  // on a block of queries stops at its last query's prefix.
  bool prefix() const { return kind_ == Kind::Prefix; }
  // Keys ≥ end(i) are hidden from query i (n when the mask is not a prefix one).
  Index end(Index i) const { return prefix() ? end_[i] : n_; }
  // Keys ≥ this are hidden from every query r0..r0+rows−1.
  Index columns_end(Index r0, Index rows) const { return prefix() ? end_[r0 + rows - 1] : n_; }
  // Queries before this one see no key ≥ c0.
  Index first_row(Index c0) const {
    if (!prefix()) return 0;
    return std::upper_bound(end_.begin(), end_.end(), c0) - end_.begin();
  }

  // Adds b and sets hidden entries to `hidden` on a tile of scores: rows r0.., columns c0...
  template <class Tile>
  void apply(Tile&& tile, Index r0, Index c0, T hidden) const {
    const Index rows = tile.rows(), cols = tile.cols();
    if (has_bias()) tile.rowwise() += bias_.segment(c0, cols).transpose();
    if (kind_ == Kind::Prefix) {
      for (Index a = 0; a < rows; ++a) {
        const Index first_hidden = std::max<Index>(end_[r0 + a] - c0, 0);
        if (first_hidden < cols) tile.row(a).tail(cols - first_hidden).setConstant(hidden);
      }
    } else if (kind_ == Kind::General) {
      for (Index a = 0; a < rows; ++a)
        for (Index b = 0; b < cols; ++b)
          if (positions_(c0 + b) > positions_(r0 + a)) tile(a, b) = hidden;
    }
  }
  // Whether apply() changes anything on a tile at (r0, c0) of `cols` columns.
  bool touches(Index r0, Index c0, Index cols) const {
    if (has_bias() || kind_ == Kind::General) return true;
    return kind_ == Kind::Prefix && c0 + cols > end_[r0];
  }

 private:
  enum class Kind { All, Prefix, General };
  Index n_;
  Kind kind_ = Kind::All;
  std::vector<Index> end_;  // Prefix: one past the last key each query sees
  Vector<T> bias_;          // b (n) or empty
  VectorD positions_;       // s (n) or empty
};

}  // namespace lipattn
