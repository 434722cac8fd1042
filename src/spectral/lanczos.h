// The restarted Lanczos method on JᵀJ (docs/theory.md §4). The factorization (basis, tridiagonal,
// residual), the three-term step with its reorthogonalisation and the restart compression are ours;
// Eigen (the tridiagonal's eigenpairs) and Spectra (TridiagQR, the shifted QR step of the implicit
// restart) are used only through their public API on the small tridiagonal matrix.
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>

#include "spectral/spectral_norm.h"

namespace lipattn {

// The Krylov space became invariant and no direction orthogonal to it could be found (JᵀJ is zero,
// or rounding hides every new direction): the caller falls back to power iteration.
struct KrylovBreakdown : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Judges the start after the first product from θ₀ = v₀ᵀJᵀJv₀ and ‖JᵀJv₀ − θ₀v₀‖/θ₀ (unit v₀); false
// abandons the solve (the mixed-precision check of §4.5).
using StartCheck = std::function<bool(double theta, double relative_residual)>;

// Counts a solve's JᵀJ products, of every operator it uses, in one numbering: after each one, a stop
// request ends the solve (common/stop.h) and options.on_product hears the count and the seconds since
// the counter was made. Lanczos and the float32 corrections (§4.7) count through it.
class ProductCounter {
 public:
  explicit ProductCounter(const SpectralOptions& options);
  void count();  // after each product
  long total() const { return total_; }

 private:
  const SpectralOptions& options_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  long total_ = 0;
};

// The Ritz pairs of a finished Lanczos factorization just below the top one: values descending, and
// their vectors V·y (N × count, orthonormal). The float32 corrections of a mixed-precision solve
// precondition with them (docs/theory.md §4.7).
struct RitzBlock {
  VectorD values;
  Eigen::MatrixXd vectors;
};

// σ_max of op by Lanczos on JᵀJ from the start vector v0 (any nonzero length), to options.tol, with
// options.krylov_dim vectors and at most options.max_iter restarts. Sets lipschitz, matvecs,
// converged and right_vector; the caller certifies. With a start check that refuses the start, returns
// after that one product with converged false and *rejected set. With `below`, fills it with the
// below_count Ritz pairs just below the top one (fewer if the subspace is smaller).
SpectralResult lanczos_method(const LinearOperator& op, const SpectralOptions& options, const VectorD& v0,
                              const StartCheck& check = {}, bool* rejected = nullptr, RitzBlock* below = nullptr,
                              Index below_count = 0);

}  // namespace lipattn
