// A measurable layer: Z = pre_norm(X); Y = attention(Z); Y += X if residual; Y = post_norm(Y).
// It covers GPT-2's attn(ln_1(x)), BERT's BertSelfAttention and BertAttention, and pre-norm blocks.
#pragma once

#include <optional>

#include "attention/attention.h"
#include "attention/norm.h"

namespace lipattn {

struct LayerSpec {
  AttentionWeights attention;
  std::optional<NormWeights> pre_norm;
  bool residual = false;
  std::optional<NormWeights> post_norm;

  void validate() const;  // shapes agree between the pieces; throws InputError
  std::string describe() const;
};

// `memory` picks stored or streaming attention (docs/theory.md §8).
template <class T>
MapPtr<T> build_map(const LayerSpec& spec, const AttentionMemory& memory = {});

}  // namespace lipattn
