#include "spectral/measure.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

Precision parse_precision(const std::string& name) {
  if (name == "f64") return Precision::F64;
  if (name == "f32") return Precision::F32;
  throw InputError(fmt::format("--dtype must be f64 or f32, got '{}'", name));
}

std::string to_string(Precision precision) { return precision == Precision::F64 ? "f64" : "f32"; }


namespace {

// The top right singular vector of M (any shape) by 60 steps of power iteration on MᵀM from a fixed
// start: a guess, so its accuracy does not matter, only its cost (O(size of M) per step).
VectorD top_right_guess(const MatrixD& M) {
  VectorD v = VectorD::Ones(M.cols()) + 0.1 * random_unit_vector(M.cols(), 5);
  for (int step = 0; step < 60; ++step) {
    const VectorD w = M.transpose() * (M * v);
    if (!(w.norm() > 0)) break;
    v = w / w.norm();
  }
  return v;
}

// The start hint of docs/theory.md §4.6: J₁ = Σ_h P_h ⊗ V_h (U.1), with P_h ≈ P̄ (the heads' mean
// attention matrix) ≈ P̄ ⊗ Σ_h V_h, V = W_O·W_V (W_V alone without W_O), whose top right singular
// vector is u ⊗ w: u of P̄, w of V. Empty where the approximation has no footing: a residual (J is
// near I + …), streaming attention or n > 4096 (no room for n × n matrices), grouped K/V heads.
VectorD dominant_part_hint(const LayerSpec& spec, const MatrixView<double>& X, const AttentionMemory& memory) {
  const AttentionWeights& w = spec.attention;
  if (spec.residual || memory.storage != AttentionStorage::Stored || w.kv_head_count() != w.heads ||
      X.rows() > 4096)  // P̄ is one more n × n matrix
    return {};
  const MatrixD Z = spec.pre_norm ? MatrixD(Norm<double>(*spec.pre_norm).forward(X)->output) : MatrixD(X);
  const MultiHeadAttention<double> attention(w, memory);
  const auto cache = attention.forward(Z);
  MatrixD P_mean = MatrixD::Zero(X.rows(), X.rows());
  for (Index h = 0; h < attention.heads(); ++h) P_mean += attention.attention_matrix(*cache, h);
  const VectorD u = top_right_guess(P_mean);
  const VectorD v = top_right_guess(w.w_o.size() ? MatrixD(w.w_o * w.w_v) : w.w_v);
  VectorD hint(u.size() * v.size());  // row-major n × d: entry (i, j) is u_i v_j
  for (Index i = 0; i < u.size(); ++i) hint.segment(i * v.size(), v.size()) = u(i) * v;
  return hint;
}

}  // namespace

// Float32 products carry relative rounding of about 1e-7, so a float64 tolerance below this floor
// could never be met; the floor keeps f32 runs from spinning to --max-iter.
constexpr double kFloat32ToleranceFloor = 1e-6;

SpectralResult measure_local_lipschitz(const LayerSpec& spec, const MatrixView<double>& X,
                                       const SpectralOptions& options,
                                       Precision precision, const AttentionMemory& memory) {
  MapBuilder builder;
  builder.attention_heads = spec.attention.heads;
  builder.f64 = [&spec](const AttentionMemory& m) { return build_map<double>(spec, m); };
  builder.f32 = [&spec](const AttentionMemory& m) { return build_map<float>(spec, m); };
  builder.start_hint = [&spec](const MatrixView<double>& X0, const AttentionMemory& m) {
    return dominant_part_hint(spec, X0, m);
  };
  return measure_local_lipschitz(builder, X, options, precision, memory);
}

SpectralResult measure_local_lipschitz(const MapBuilder& builder, const MatrixView<double>& X,
                                       const SpectralOptions& options,
                                       Precision precision, const AttentionMemory& memory) {
  const auto start = std::chrono::steady_clock::now();
  if (!X.allFinite()) throw InputError("the input X holds NaN or Inf");
  if (precision == Precision::F32 && !builder.f32)
    throw std::logic_error("measure_local_lipschitz: f32 asked of a map builder without a float32 map");
  // Decide stored or streaming once, so every map built below (and the report) agrees.
  AttentionMemory resolved = memory;
  const std::size_t scalar_bytes = precision == Precision::F64 ? sizeof(double) : sizeof(float);
  resolved.storage = use_streaming(memory, builder.attention_heads, X.rows(), scalar_bytes)
                         ? AttentionStorage::Streaming
                         : AttentionStorage::Stored;
  SpectralOptions hinted = options;
  if (options.dominant_start && builder.start_hint && options.start.size() == 0 && options.start_hint.size() == 0)
    hinted.start_hint = builder.start_hint(X, resolved);
  SpectralResult result;
  if (precision == Precision::F64 && options.mixed_tol > options.tol && builder.f32) {
    result = spectral_norm(TwinLinearization(builder.f64(resolved), builder.f32(resolved), X), hinted);
  } else if (precision == Precision::F64) {
    Linearization<double> lin(builder.f64(resolved), X);
    result = spectral_norm(lin, hinted);
  } else {
    SpectralOptions o = hinted;
    o.tol = std::max(o.tol, kFloat32ToleranceFloor);
    o.certify = false;  // certified below, in float64
    Linearization<float> lin32(builder.f32(resolved), X);
    result = spectral_norm(lin32, o);
    // Certify in float64 at the vector float32 found, and measure how far one float32 product is
    // from its float64 value there (§4.4).
    Linearization<double> lin64(builder.f64(resolved), X);
    const Certificate c = certify(lin64, result.right_vector);
    apply_certificate(result, c);
    if (result.right_vector.size() > 0 && result.right_vector.norm() > 0) {
      const VectorD& w64 = c.at_v.normal;  // JᵀJv in float64 at the unit v, from the certificate
      const VectorD w32 = lin32.apply_normal(result.right_vector.normalized());
      result.f32_check_difference = w64.norm() > 0 ? (w32 - w64).norm() / w64.norm() : (w32 - w64).norm();
    }
  }
  if (builder.attention_heads > 0) result.storage = to_string(resolved.storage);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace lipattn
