#include "spectral/measure.h"

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
                                       Precision precision) {
  const auto start = std::chrono::steady_clock::now();
  if (!X.allFinite()) throw InputError("the input X holds NaN or Inf");
  SpectralResult result;
  if (precision == Precision::F64) {
    Linearization<double> lin(build_map<double>(spec), X);
    result = spectral_norm(lin, options);
  } else {
    SpectralOptions o = options;
    o.tol = std::max(o.tol, kFloat32ToleranceFloor);
    Linearization<float> lin32(build_map<float>(spec), X);
    result = spectral_norm(lin32, o);
    // Re-certify in float64 at the vector float32 found.
    Linearization<double> lin64(build_map<double>(spec), X);
    const Certificate c = certify(lin64, result.right_vector);
    result.lower = c.lower;
    result.relative_residual = c.relative_residual;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace lipattn
