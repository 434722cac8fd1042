// σ_max(J) for any LinearOperator: dense SVD, Lanczos on JᵀJ (Spectra), power iteration on JᵀJ.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "spectral/operator.h"

namespace lipattn {

enum class SpectralMethod { Auto, Dense, Lanczos, Power };
SpectralMethod parse_spectral_method(const std::string& name);  // throws InputError
std::string to_string(SpectralMethod method);

struct SpectralOptions {
  SpectralMethod method = SpectralMethod::Auto;
  double tol = 1e-10;         // relative residual ‖JᵀJv − θv‖ ≤ tol·θ
  int max_iter = 0;           // 0: the method's default (Lanczos restarts 1000, power steps 100000)
  std::uint64_t seed = 0;     // start vector
  Index dense_max_size = 768; // auto picks dense when N_in and N_out are at most this
  int krylov_dim = 20;        // Lanczos subspace size (ncv)
  // false: skip the final certificate (one more product) because the caller certifies the vector
  // itself, as the float32 path does in float64; lower and relative_residual are then left at 0.
  bool certify = true;
  // Called after every JᵀJ product of lanczos and power with the products so far and the seconds
  // since the solve began: long solves (streaming at large n) report progress through it.
  std::function<void(long products, double seconds)> on_product;
};

struct SpectralResult {
  double lipschitz = 0;          // the estimate of ‖J‖₂ (the method's σ)
  double lower = 0;              // ‖Jv‖ for the unit vector v found: a certified lower bound
  double relative_residual = 0;  // ‖JᵀJv − θv‖/θ with θ = ‖Jv‖²
  SpectralMethod method = SpectralMethod::Dense;  // the method that actually ran
  long matvecs = 0;              // products with JᵀJ (dense: columns of J assembled)
  bool converged = false;
  double seconds = 0;
  VectorD right_vector;          // v, unit: the top right singular vector found
  // --dtype f32 only: ‖w₃₂ − w₆₄‖/‖w₆₄‖ for the check product w = JᵀJv at the vector found, computed
  // once in float32 and once in float64 (docs/theory.md §4.4).
  std::optional<double> f32_check_difference;
  std::string storage;           // "stored" | "streaming" when a measured layer reports it
};

SpectralResult spectral_norm(const LinearOperator& op, const SpectralOptions& options = {});

// The certificate of a unit vector v: lower = ‖Jv‖ and the relative residual of (θ, v).
struct Certificate {
  double lower = 0;
  double relative_residual = 0;
  VectorD normal_product;  // JᵀJv, the product the certificate was computed from
};
Certificate certify(const LinearOperator& op, const VectorD& v);
// Puts a certificate into a result: lower, relative_residual, and lipschitz raised to at least
// lower, since no estimate below a certified lower bound can be right (docs/theory.md §4).
void apply_certificate(SpectralResult& result, const Certificate& c);

// The full Jacobian (N_out × N_in), assembled column by column with apply().
MatrixD assemble_dense(const LinearOperator& op);

}  // namespace lipattn
