// The float64 phase of a mixed-precision solve by float32 corrections (docs/theory.md §4.7): from the
// float32 phase's Ritz vector, Rayleigh–Ritz in float64 on a small subspace that each step extends by
// a correction t ⟂ u solving (I − uuᵀ)(θ − JᵀJ)(I − uuᵀ) t = r, the residual, by conjugate gradients
// on the float32 twin's products. One float64 product per step instead of one per digit.
#pragma once

#include "spectral/lanczos.h"

namespace lipattn {

// How many of the float32 phase's Ritz pairs below the top the corrections precondition with: the first
// few carry the gain (measured with 2, 4, 6 and 9 on the benchmark layers: 43 float32 products on the
// biased one with any of them, 48 without), and each costs two passes over a vector per step.
constexpr Index kPreconditionerPairs = 4;

// Starts from x (any nonzero length) with one float64 product of op, judged by check as Lanczos's
// start is; the corrections use twin's products, preconditioned with ritz (the float32 phase's Ritz
// pairs below x) when given. Sets lipschitz, right_vector, matvecs (all) and
// f32_matvecs (the corrections'). converged: the float64 residual meets options.tol; false: the check
// refused the start, or a step did not shrink the residual enough (the twin is not J away from the
// top pair), and the caller solves afresh. *known gets J and JᵀJ at right_vector in float64,
// combinations of the float64 products the subspace holds: the certificate needs no more (§4.7).
SpectralResult correction_method(const LinearOperator& op, const LinearOperator& twin, const SpectralOptions& o,
                                 const VectorD& x, const StartCheck& check, const RitzBlock* ritz,
                                 ImageAndNormal* known);

}  // namespace lipattn
