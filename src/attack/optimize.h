// Adversarial lower bounds: maximise σ_max(Df(X)) over a set of inputs with the exact gradient
// ∇_X σ_max = ∇_X ⟨u, Df(X) v⟩ (docs/theory.md, attack §3). Every result is a certificate: the
// witness X lies in its set and the value reported is σ_max at X, recomputed to 1e-10.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "attention/layer.h"
#include "attention/construction.h"
#include "spectral/measure.h"
#include "spectral/spectral_norm.h"

namespace lipattn::attack {

enum class SetKind { Ball, LayerNormImage, AroundInput };
std::string to_string(SetKind kind);

// The set X ranges over, and its parametrisation by the optimisation variable Z (n × d):
//   Ball           B_R^n: ‖x_i‖ ≤ R for every token; Z = X, projection rescales long rows.
//   LayerNormImage x_i = γ ⊙ z_i + β with z_i ∈ 1^⊥ and ‖z_i‖ = √d (the image of LayerNorm as
//                  ε → 0; with ε > 0 LayerNorm's outputs lie just inside, ‖ẑ‖² = d·var/(var+ε));
//                  Z holds the z_i, projection centres each row and rescales it to √d.
//   AroundInput    ‖X − X0‖_F ≤ ε (Frobenius: one budget for the whole sentence, spent where it
//                  hurts most); Z = X, projection pulls X back on the segment towards X0.
struct ConstraintSet {
  SetKind kind = SetKind::Ball;
  Index n = 0, d = 0;
  double radius = 0;     // Ball
  VectorD gamma, beta;   // LayerNormImage (β may be empty)
  MatrixD center;        // AroundInput: X0
  double eps = 0;        // AroundInput

  static ConstraintSet ball(Index n, Index d, double radius);
  static ConstraintSet layernorm_image(Index n, const VectorD& gamma, const VectorD& beta);
  static ConstraintSet around(const MatrixD& X0, double eps);

  MatrixD project(const MatrixD& Z) const;   // the nearest point of the Z-set
  MatrixD to_input(const MatrixD& Z) const;  // X(Z)
  // ∇_Z from ∇_X, restricted to the directions that stay in the set to first order (the tangent
  // space of the spheres, and no outward push on active constraints).
  MatrixD ascent_direction(const MatrixD& Z, const MatrixD& grad_X) const;
  MatrixD random_point(std::mt19937_64& rng) const;
  double step_scale() const;  // a natural length in Z: R√n, √(n d) or ε
  // How far X is from the set: max_i (‖x_i‖ − R)₊ / R for Ball; for LayerNormImage, with
  // z = (x − β)/γ, max_i max(|mean z_i|, |‖z_i‖ − √d|/√d) (γ must have no zero entry);
  // (‖X − X0‖_F − ε)₊/ε for AroundInput. A witness is in its set when this is ≤ 1e-12.
  double violation(const MatrixD& X) const;
};

// ∇_X σ_max(Df(X)) = ∇_X ⟨u, Df(X) v⟩ for the top singular pair (u, v) that spectral_norm found at
// X (right_vector, left_vector), exact where σ_max is simple.
MatrixD sigma_gradient(const Linearization<double>& at, const SpectralResult& top);

struct AttackOptions {
  int restarts = 4;          // random starts
  int steps = 60;            // ascent steps per start (accepted or not)
  bool optimize = true;      // false: evaluate the starts only
  double inner_tol = 1e-9;   // the solver's tolerance inside the ascent (warm-started Lanczos)
  double final_tol = 1e-10;  // the certificate's tolerance
  std::uint64_t seed = 0;
  std::function<void(const std::string&)> progress;  // one line per start; may be empty
};

struct StartRecord {
  std::string name;      // "paper(head 0)", "random 3", ...
  double start_value = 0;  // σ at the start (after projection)
  double final_value = 0;  // σ at the end of the ascent, certified to final_tol
  int accepted_steps = 0;
  double seconds = 0;
};

struct AttackResult {
  double lower = 0;          // the best certified σ_max: SpectralResult.lower at the witness
  double lipschitz = 0;      // the solver's σ_max at the witness (agrees with lower to ~1e-10)
  MatrixD witness;           // X, n × d, in the set
  SpectralResult certificate;  // measure_local_lipschitz at the witness (final_tol)
  std::vector<StartRecord> starts;
};

struct NamedStart {
  std::string name;
  MatrixD Z;  // in the optimisation variable (projected onto the set before use)
};

// Runs the projected ascent from each start, plus options.restarts random starts, and returns the
// best certified point. The ascent is monotone (a step is taken only when σ grows), so the result is
// never below any start's value.
AttackResult maximize_lipschitz(const LayerSpec& spec, const ConstraintSet& set, const std::vector<NamedStart>& starts,
                                const AttackOptions& options);
// The same ascent on any map given as a builder (a transformer layer, a stack, a whole model:
// models/blocks.h); the LayerSpec entry is this one with build_map. Only builder.f64 is used; the
// witness is certified through measure_local_lipschitz(builder, ...).
AttackResult maximize_lipschitz(const MapBuilder& builder, const ConstraintSet& set,
                                const std::vector<NamedStart>& starts, const AttackOptions& options);

// The paper's construction(s) as starts for the Ball set: for each head given, the rule's branch and
// the other one. Heads whose A_h has no real eigenvalue are skipped.
std::vector<NamedStart> construction_starts(const AttentionWeights& weights, const std::vector<Index>& heads,
                                            Index n, double radius);

}  // namespace lipattn::attack
