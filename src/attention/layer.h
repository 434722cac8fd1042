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

// The layer of `spec` around a given attention map (build_map's, or the mean-field weighted one):
// pre-norm, residual and post-norm as in docs/theory.md §1. `spec` must be valid.
template <class T>
MapPtr<T> assemble_layer(const LayerSpec& spec, MapPtr<T> attention);

}  // namespace lipattn
