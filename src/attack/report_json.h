// AttackReport (attack/run.h) as JSON: the object `lipattn attack --json` prints and lipattn.attack's
// result holds. Header-only, as spectral/result_json.h, so the attack library does not depend on
// nlohmann-json. The witness itself is not written: `witness` is the path it was saved to, or null.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "attack/run.h"
#include "common/json.h"
#include "spectral/result_json.h"

namespace lipattn::attack {

inline nlohmann::json construction_json(const HeadConstruction& hc) {
  const Construction& c = hc.construction;
  nlohmann::json j = {{"head", hc.head}, {"applies", c.applies}};
  if (c.applies)
    j.update({{"lambda_max", c.lambda_max},
              {"lambda_min", c.lambda_min},
              {"branch", c.uses_lambda_max ? "lambda_max" : "lambda_min"},
              {"log_n_star", c.log_n_star},
              {"n_star", finite_or_null(c.n_star)},
              {"value", hc.value}});
  return j;
}

// `witness_path`: where the witness was saved ("" for null); `seconds`: the run's wall time.
inline nlohmann::json report_json(const AttackReport& r, const AttackRequest& request, const std::string& witness_path,
                                  double seconds) {
  const AttackResult& result = r.result;
  const auto or_null = [](bool present, const nlohmann::json& value) { return present ? value : nlohmann::json(); };
  nlohmann::json j;
  j["lower"] = result.lower;
  j["lipschitz"] = result.lipschitz;
  j["construction"] = or_null(r.best_construction.has_value(), r.best_construction ? r.best_construction->value : 0);
  j["constructions"] = nlohmann::json::array();
  for (const auto& hc : r.constructions) j["constructions"].push_back(construction_json(hc));
  j["witness"] = or_null(!witness_path.empty(), witness_path);
  j["upper"] = or_null(r.upper.has_value(), r.upper.value_or(0));
  j["upper_name"] = or_null(r.upper.has_value(), r.upper_name);
  j["n"] = r.set.n;
  j["d"] = r.set.d;
  j["set"] = to_string(r.set.kind);
  j["radius"] = or_null(request.set == SetKind::Ball, request.radius);
  j["eps"] = or_null(request.set == SetKind::AroundInput, request.eps);
  j["n_star"] = nullptr;
  j["log_n_star"] = nullptr;
  j["regime"] = nullptr;
  if (r.best_construction) {
    const Construction& c = r.best_construction->construction;
    j["n_star"] = finite_or_null(c.n_star);
    j["log_n_star"] = c.log_n_star;
    j["regime"] = c.below_n_star(r.set.n) ? "sqrt_n" : "saturated";
  }
  j["in_set"] = r.set.violation(result.witness);  // ≤ 1e-12
  j["certificate"] = result.certificate;
  j["starts"] = nlohmann::json::array();
  for (const auto& s : result.starts)
    j["starts"].push_back({{"name", s.name},
                           {"start", s.start_value},
                           {"final", s.final_value},
                           {"steps_kept", s.accepted_steps},
                           {"seconds", s.seconds}});
  j["seconds"] = seconds;
  return j;
}

}  // namespace lipattn::attack
