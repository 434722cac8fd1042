// σ_max(J) and its singular pair: for any LinearOperator (dense, our restarted Lanczos on JᵀJ, power
// iteration on JᵀJ; warm starts) and for a dense matrix. The one place the project computes a top
// singular value (docs/theory.md §4).
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
  Index dense_max_size = 768;  // auto picks dense when N_in and N_out are at most this and no start is given
  int krylov_dim = 20;        // Lanczos subspace size (ncv)
  // false: skip the final certificate (one more product) because the caller certifies the vector
  // itself, as the float32 path does in float64; lower and relative_residual are then left at 0.
  bool certify = true;
  // Called after every JᵀJ product of lanczos and power with the products so far and the seconds
  // since the solve began: long solves (streaming at large n) report progress through it.
  std::function<void(long products, double seconds)> on_product;
  // The start vector of lanczos and power (N_in entries, any nonzero length); empty: a Gaussian
  // vector from seed. A warm start, the top right singular vector of a nearby Jacobian (the previous
  // step of an ascent), converges in a few products; with one, auto picks lanczos (§4).
  VectorD start;
  // Mixed precision (docs/theory.md §4.5). When > tol and the operator has a float32 twin
  // (LinearOperator::float32_twin; measure_local_lipschitz attaches one), lanczos first runs on the twin
  // from the same start to this looser tolerance (at least 1e-6, float32's floor), then in float64 from
  // the twin's Ritz vector to tol. The float32 phase is given up, and the float64 solve runs from the
  // start as it would without it, when the phase does not converge within a few restarts (a stall) or
  // when the first float64 product contradicts it at its own vector (the twin is not J to that
  // tolerance). lipschitz, lower and relative_residual keep their float64 meaning. 0: off.
  double mixed_tol = 0;
  // A guess at the top right singular vector (N_in entries, any nonzero length), used when no start is
  // given: lanczos and power start from ĥ/‖ĥ‖ + g, g the seeded Gaussian unit vector, so that a guess
  // orthogonal to the top singular vector leaves the start as good as g/√2 (docs/theory.md §4.6).
  VectorD start_hint;
  // measure_local_lipschitz only: fill start_hint from the dominant part of an attention layer's
  // Jacobian, P̄ ⊗ W_O W_V (§4.6), where it applies (no residual, stored attention, one K/V head
  // per query head); elsewhere nothing changes.
  bool dominant_start = false;
};

// What the float32 phase of a mixed-precision solve came to (§4.5).
enum class MixedPhase {
  Off,       // not run: no mixed_tol, no float32 twin, or not lanczos
  Used,      // the float64 solve started from the float32 Ritz vector
  Stalled,   // the float32 phase did not converge within its budget: the float64 solve started afresh
  Rejected,  // the first float64 product contradicted the float32 answer, or the float32 corrections did not
             // shrink the float64 residual (§4.7): the float64 solve started afresh
};
std::string to_string(MixedPhase phase);
MixedPhase parse_mixed_phase(const std::string& name);  // throws InputError

struct SpectralResult {
  double lipschitz = 0;          // the estimate of ‖J‖₂ (the method's σ)
  double lower = 0;              // ‖Jv‖ for the unit vector v found: a certified lower bound
  double relative_residual = 0;  // ‖JᵀJv − θv‖/θ with θ = ‖Jv‖²
  SpectralMethod method = SpectralMethod::Dense;  // the method that actually ran
  long matvecs = 0;              // products with JᵀJ (dense: columns of J assembled), of either precision
  long f32_matvecs = 0;          // of those, the float32 phase's (mixed precision)
  MixedPhase mixed = MixedPhase::Off;
  bool converged = false;
  double seconds = 0;
  VectorD right_vector;          // v, unit: the top right singular vector found
  VectorD left_vector;           // u = Jv/‖Jv‖ from the certificate (empty when certify is false)
  // --dtype f32 only: ‖w₃₂ − w₆₄‖/‖w₆₄‖ for the check product w = JᵀJv at the vector found, computed
  // once in float32 and once in float64 (docs/theory.md §4.4).
  std::optional<double> f32_check_difference;
  std::string storage;           // "stored" | "streaming" when a measured layer reports it
};

SpectralResult spectral_norm(const LinearOperator& op, const SpectralOptions& options = {});

// The top singular pair of a dense matrix M: σ_max, the right vector v and the left vector
// u = Mv/σ (both unit), from the top eigenpair of the Gram matrix of M's smaller side (§4).
struct SingularPair {
  double sigma = 0;
  VectorD right, left;
};
SingularPair top_singular_pair(const MatrixD& M);
double top_singular_value(const MatrixD& M);  // σ_max(M) alone (eigenvalues only); 0 for an empty M

// The seeded Gaussian start vector of the iterative methods, unit.
VectorD random_unit_vector(Index size, std::uint64_t seed);

// The certificate of a unit vector v: lower = ‖Jv‖ and the relative residual of (θ, v).
struct Certificate {
  double lower = 0;
  double relative_residual = 0;
  ImageAndNormal at_v;  // Jv and JᵀJv at the unit v: the products the certificate was computed from
};
// `known` holds Jv and JᵀJv for this v (at its length) when the method has them in float64 from
// products it made, as the corrections of §4.7 do: what it holds is not computed again.
Certificate certify(const LinearOperator& op, const VectorD& v, const ImageAndNormal& known = {});
// Puts a certificate into a result: lower, relative_residual, left_vector = Jv/‖Jv‖, and lipschitz
// raised to at least lower, since no estimate below a certified lower bound can be right (docs/theory.md §4).
void apply_certificate(SpectralResult& result, const Certificate& c);

// The full Jacobian (N_out × N_in), assembled column by column with apply().
MatrixD assemble_dense(const LinearOperator& op);

}  // namespace lipattn
