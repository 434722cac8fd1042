#include "spectral/measure.h"

#include <algorithm>
#include <chrono>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

Precision parse_precision(const std::string& name) {
  if (name == "f64") return Precision::F64;
  if (name == "f32") return Precision::F32;
  throw InputError(fmt::format("--dtype must be f64 or f32, got '{}'", name));
}

std::string to_string(Precision precision) { return precision == Precision::F64 ? "f64" : "f32"; }


// Float32 products carry relative rounding of about 1e-7, so a float64 tolerance below this floor
// could never be met; the floor keeps f32 runs from spinning to --max-iter.
constexpr double kFloat32ToleranceFloor = 1e-6;

SpectralResult measure_local_lipschitz(const LayerSpec& spec, const MatrixD& X, const SpectralOptions& options,
                                       Precision precision, const AttentionMemory& memory) {
  const auto start = std::chrono::steady_clock::now();
  if (!X.allFinite()) throw InputError("the input X holds NaN or Inf");
  // Decide stored or streaming once, so every map built below (and the report) agrees.
  AttentionMemory resolved = memory;
  const std::size_t scalar_bytes = precision == Precision::F64 ? sizeof(double) : sizeof(float);
  resolved.storage = use_streaming(memory, spec.attention.heads, X.rows(), scalar_bytes) ? AttentionStorage::Streaming
                                                                                        : AttentionStorage::Stored;
  SpectralResult result;
  if (precision == Precision::F64 && options.mixed_tol > options.tol) {
    result = spectral_norm(TwinLinearization(build_map<double>(spec, resolved), build_map<float>(spec, resolved), X), options);
  } else if (precision == Precision::F64) {
    Linearization<double> lin(build_map<double>(spec, resolved), X);
    result = spectral_norm(lin, options);
  } else {
    SpectralOptions o = options;
    o.tol = std::max(o.tol, kFloat32ToleranceFloor);
    o.certify = false;  // certified below, in float64
    Linearization<float> lin32(build_map<float>(spec, resolved), X);
    result = spectral_norm(lin32, o);
    // Certify in float64 at the vector float32 found, and measure how far one float32 product is
    // from its float64 value there (§4.4).
    Linearization<double> lin64(build_map<double>(spec, resolved), X);
    const Certificate c = certify(lin64, result.right_vector);
    apply_certificate(result, c);
    if (result.right_vector.size() > 0 && result.right_vector.norm() > 0) {
      const VectorD& w64 = c.normal_product;  // JᵀJv in float64 at the unit v, from the certificate
      const VectorD w32 = lin32.apply_normal(result.right_vector.normalized());
      result.f32_check_difference = w64.norm() > 0 ? (w32 - w64).norm() / w64.norm() : (w32 - w64).norm();
    }
  }
  result.storage = to_string(resolved.storage);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace lipattn
