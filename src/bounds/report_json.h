// BoundRun (bounds/run.h) as JSON: the object `lipattn bound --json` prints and lipattn.bound's
// result holds. Unbounded values are "inf" (common/json.h). Header-only, as spectral/result_json.h,
// so the bounds library does not depend on nlohmann-json.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "bounds/run.h"
#include "common/json.h"
#include "spectral/result_json.h"

namespace lipattn {

inline nlohmann::json named_values_json(const std::map<std::string, double>& values) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : values) j[name] = number_or_string(value);
  return j;
}

inline nlohmann::json to_json(const BoundRun& run) {
  const BoundReport& report = run.report;
  nlohmann::json j;
  j["bounds"] = named_values_json(report.bounds);
  j["attention_bounds"] = named_values_json(report.attention);
  j["status"] = nlohmann::json::object();
  for (const auto& [name, status] : report.status) j["status"][name] = status.to_string();
  j["best"] = {{"name", report.best_name}, {"value", number_or_string(report.best)}};
  j["n"] = report.factors.tokens;
  j["radius"] = number_or_string(report.factors.attention_radius);
  j["mode"] = run.local ? "local" : "set";
  j["factors"] = {{"pre_norm", number_or_string(report.factors.pre_norm)},
                  {"residual", report.factors.residual},
                  {"post_norm", number_or_string(report.factors.post_norm)}};
  j["notes"] = report.notes;
  if (!report.structured_terms.empty()) j["structured_terms"] = named_values_json(report.structured_terms);
  if (report.hardmax)
    j["hardmax"] = {{"exists", report.hardmax->exists},
                    {"value", number_or_string(report.hardmax->value)},
                    {"max_in_degree", report.hardmax->max_in_degree},
                    {"note", report.hardmax->note}};
  if (run.exact) {
    j["exact"] = run.exact->lipschitz;
    j["exact_detail"] = *run.exact;
  }
  if (!run.sweep.empty()) {
    j["sweep"] = nlohmann::json::array();
    for (const auto& p : run.sweep) j["sweep"].push_back({{"factor", p.radius_factor}, {"exact", p.exact}});
  }
  return j;
}

}  // namespace lipattn
