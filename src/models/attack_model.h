// `attack --model`: the exact-gradient ascent (attack/optimize.h) on a block of a real model, over
// the ε-ball ‖X − X0‖_F ≤ ε around the input X0 the block sees on real text (docs/theory.md §10.3):
// how much larger can the block's local constant get near a real input?
#pragma once

#include <optional>
#include <string>

#include "attack/optimize.h"
#include "models/measure_model.h"

namespace lipattn::models {

struct ModelAttackReport : BlockIdentity {
  double eps = 0;
  MatrixD center;                 // X0: the block's input from the forward pass on the first window
  double unperturbed = 0;         // certified σ_max at X0 (lower of measure_local_lipschitz at final_tol)
  double distance = 0;            // ‖witness − X0‖_F ≤ ε
  attack::AttackResult result;    // lower, lipschitz, witness, certificate, starts
};

// Runs the ascent on the request's block (any block: attention blocks through their LayerSpec,
// whole blocks through their map) around its input on the first window, starting from X0 itself and
// options.restarts random points of the ball. InputError as measure_model, and field "eps" for ε ≤ 0
// or not finite.
ModelAttackReport attack_model(const ModelMeasureRequest& request, double eps, const attack::AttackOptions& options);

}  // namespace lipattn::models
