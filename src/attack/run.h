// The attack as one call (docs/theory.md, attack): the set, the heads attacked, the paper's
// construction on each head, the projected ascent, and the best upper bound on a ball holding the
// set. Callers (the CLI, the experiments) describe the request and read back a typed report.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "attack/optimize.h"
#include "attention/construction.h"

namespace lipattn::attack {

// Which starts the ascent uses: the paper's input(s) only, random starts only, or both.
enum class ConstructionUse { Paper, Optimize, Both };
ConstructionUse parse_construction_use(const std::string& name);  // InputError with field "construction"
std::string to_string(ConstructionUse use);

struct AttackRequest {
  SetKind set = SetKind::Ball;
  Index n = 0;        // tokens per input (AroundInput: 0 or the centre's token count)
  double radius = 0;  // Ball: B_R^n
  MatrixD center;     // AroundInput: ‖X − X0‖_F ≤ eps
  double eps = 0;
  std::optional<Index> head;  // attack head h alone (with its W_O block); default: the whole layer
  ConstructionUse construction = ConstructionUse::Both;
  AttackOptions options;  // restarts and steps are ignored with ConstructionUse::Paper
};

struct HeadConstruction {
  Index head = 0;
  Construction construction;
  double value = 0;  // certified σ_max at the construction's input (when it applies)
};

struct AttackReport {
  LayerSpec spec;  // the map attacked: head h alone, and without the pre-norm when that is the set
  ConstraintSet set;
  double enclosing_radius = 0;                        // every attention-input token of the set has norm ≤ this
  std::vector<HeadConstruction> constructions;        // Ball only: one per head attacked
  std::optional<HeadConstruction> best_construction;  // the applying one of largest value
  AttackResult result;
  std::optional<double> upper;  // the best bound on B_R^n with R = enclosing_radius, when one exists
  std::string upper_name;
  std::string no_upper_reason;  // why there is none
};

// Runs the request on the layer `spec` (as loaded: all heads, its norms and residual). InputError
// with the request's field ("n", "radius", "eps", "head", "center", "set") when it does not fit.
AttackReport run_attack(LayerSpec spec, const AttackRequest& request);

// R with ‖x_i‖ ≤ R for every token of every X in the set: R (Ball), √d‖γ‖_∞ + ‖β‖ (the LayerNorm
// image, as bounds' norm_image_radius), max_i ‖x0_i‖ + ε (AroundInput).
double enclosing_radius(const ConstraintSet& set);

}  // namespace lipattn::attack
