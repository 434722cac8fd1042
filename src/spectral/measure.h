// The local Lipschitz constant ‖Df(X)‖₂ of a layer at X: the one call every command makes.
#pragma once

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
SpectralResult measure_local_lipschitz(const LayerSpec& spec, const MatrixD& X,
                                       const SpectralOptions& options = {},
                                       Precision precision = Precision::F64, const AttentionMemory& memory = {});

}  // namespace lipattn
