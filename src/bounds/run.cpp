#include "bounds/run.h"

#include "common/error.h"

namespace lipattn {
namespace {

void check_request(const BoundRequest& r) {
  if (r.input && r.ball)
    throw InputError("give either an input X (local bounds) or a set (n and radius), not both", "input");
  if (!r.input && !r.ball) throw InputError("give an input X (local bounds) or a set (n and radius)", "input");
  if (!r.input && r.exact) throw InputError("the exact constant is measured at an input X: give one", "exact");
  if (!r.input && !r.sweep.empty()) throw InputError("the sweep scales an input X: give one", "sweep");
}

}  // namespace

BoundRun run_bound(const LayerSpec& spec, const BoundRequest& request) {
  check_request(request);  // set_bounds and local_bounds check n, radius and X
  BoundRun run;
  run.local = request.input.has_value();
  run.report = run.local ? local_bounds(spec, *request.input) : set_bounds(spec, *request.ball);
  if (request.exact)
    run.exact = measure_local_lipschitz(spec, *request.input, request.options, request.precision);
  if (!request.sweep.empty()) run.sweep = hardmax_sweep(spec, *request.input, request.sweep, request.options);
  return run;
}

}  // namespace lipattn
