// `bound` as one call (docs/theory.md, "Upper bounds"): the bounds at an input X or on a set B_R^n,
// optionally the exact constant at X and the sweep X → rX towards the hardmax limit. The CLI's
// `bound` and the Python module's lipattn.bound make this call; bounds/report_json.h prints it.
#pragma once

#include <optional>
#include <vector>

#include "bounds/bounds.h"
#include "spectral/measure.h"

namespace lipattn {

struct BoundRequest {
  std::optional<MatrixD> input;    // local bounds at X (n × d) ...
  std::optional<TokenBall> ball;   // ... or bounds on a set: exactly one of the two
  bool exact = false;              // also ‖Df(X)‖₂ (needs input)
  std::vector<double> sweep;       // factors r: ‖Df(rX)‖₂ (needs input)
  SpectralOptions options;         // of the exact constant and the sweep
  Precision precision = Precision::F64;
};

struct BoundRun {
  bool local = false;
  BoundReport report;
  std::optional<SpectralResult> exact;
  std::vector<SweepPoint> sweep;
};

// InputError naming the request's field ("input", "n", "radius", "exact", "sweep") when the request
// does not describe one computation, or X does not fit the layer.
BoundRun run_bound(const LayerSpec& spec, const BoundRequest& request);

}  // namespace lipattn
