// The mean-field results (meanfield/analysis.h) as JSON: the objects `lipattn meanfield --json`
// prints and lipattn.meanfield's results hold. Header-only, as spectral/result_json.h, so the
// meanfield library does not depend on nlohmann-json.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "common/json.h"
#include "meanfield/analysis.h"
#include "spectral/result_json.h"

namespace lipattn::meanfield {

inline nlohmann::json to_json(const CloudReport& r) {
  nlohmann::json j;
  j["n"] = r.n;
  j["d"] = r.d;
  j["masked"] = r.masked;
  j["euclidean"] = r.euclidean.lipschitz;
  j["meanfield"] = r.meanfield.lipschitz;
  j["euclidean_detail"] = r.euclidean;
  j["meanfield_detail"] = r.meanfield;
  if (r.reduced)
    j["reduced"] = {{"distinct_points", r.reduced->distinct_points},
                    {"merged", r.reduced->merged},
                    {"query", r.reduced->query},
                    {"value", r.reduced->value}};
  if (r.split) {
    const SplitEffect& s = *r.split;
    j["split"] = {{"token", r.split_token},
                  {"copies", r.copies},
                  {"spread", r.spread},
                  {"meanfield_before", s.meanfield_before},
                  {"meanfield_split", s.meanfield_split},
                  {"meanfield_split_moved", number_or_string(s.meanfield_split_moved)},
                  {"query_norm", s.query_norm},
                  {"euclidean_before", s.euclidean_before},
                  {"euclidean_split", s.euclidean_split},
                  {"euclidean_split_moved", number_or_string(s.euclidean_split_moved)}};
  }
  return j;
}

inline nlohmann::json to_json(const RegimePoint& p) {
  return {{"n", p.n},
          {"lipschitz", number_or_string(p.lipschitz)},
          {"merged", number_or_string(p.merged)},
          {"query", number_or_string(p.query)},
          {"full", number_or_string(p.full)},
          {"seconds", p.seconds},
          {"converged", p.converged}};
}

// `head`: the head the construction was built on (construction curves only).
inline nlohmann::json to_json(const RegimeCurve& curve, Index head) {
  nlohmann::json j;
  j["regime"] = curve.regime;
  j["radius"] = curve.radius;
  j["points"] = nlohmann::json::array();
  for (const auto& p : curve.points) j["points"].push_back(to_json(p));
  if (curve.regime == "construction") {
    const auto& c = curve.construction;
    j["head"] = head;
    j["applies"] = c.applies;
    j["lambda_max"] = c.lambda_max;
    j["lambda_min"] = c.lambda_min;
    j["uses_lambda_max"] = c.uses_lambda_max;
    j["log_n_star"] = c.log_n_star;
    j["n_star"] = number_or_string(c.n_star);
    j["slope_below_n_star"] = number_or_string(curve.slope_below);
    j["slope_above_n_star"] = number_or_string(curve.slope_above);
    j["peak"] = {{"n", curve.peak_n}, {"lipschitz", number_or_string(curve.peak_value)}};
  } else {
    j["sigma"] = curve.sigma;
    j["slope"] = number_or_string(curve.slope_all);
    j["slope_last_decade"] = number_or_string(curve.slope_last_decade);
  }
  return j;
}

}  // namespace lipattn::meanfield
