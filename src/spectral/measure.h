// The local Lipschitz constant ‖Df(X)‖₂ of a layer at X: the one call every command makes.
#pragma once

#include <functional>

#include "attention/layer.h"
#include "spectral/spectral_norm.h"

namespace lipattn {

enum class Precision { F64, F32 };
Precision parse_precision(const std::string& name);  // "f64" | "f32", throws InputError
std::string to_string(Precision precision);

// Builds the layer's map in the chosen precision, linearises it at X (one forward pass, reused by
// every product) and runs the solver. In f32 the certificate (lower, relative_residual) is still
// recomputed in float64 at the vector found, so `lower` stays a certified bound.
// `memory` picks stored or streaming attention (docs/theory.md §8).
SpectralResult measure_local_lipschitz(const LayerSpec& spec, const MatrixView<double>& X,
                                       const SpectralOptions& options = {},
                                       Precision precision = Precision::F64, const AttentionMemory& memory = {});

// Any map, given as a builder in both precisions for the attention storage the measurement picks
// (a transformer layer, a stack of layers, a whole model: models/blocks.h). The LayerSpec entry
// above is this one with build_map; f32 is certified in float64 the same way.
struct MapBuilder {
  // The n × n attention matrices the stored mode holds, over every attention inside the map (a
  // stack of L layers of H heads holds L·H): sizes the stored-or-streaming decision (§8).
  Index attention_heads = 0;
  std::function<MapPtr<double>(const AttentionMemory&)> f64;
  std::function<MapPtr<float>(const AttentionMemory&)> f32;  // may be empty when only f64 is asked for
  // The dominant-part start of docs/theory.md §4.6 at X, for SpectralOptions::dominant_start; may be
  // empty (one attention layer has it; a composed map has none).
  std::function<VectorD(const MatrixView<double>&, const AttentionMemory&)> start_hint;
};
SpectralResult measure_local_lipschitz(const MapBuilder& builder, const MatrixView<double>& X,
                                       const SpectralOptions& options = {},
                                       Precision precision = Precision::F64, const AttentionMemory& memory = {});

}  // namespace lipattn
