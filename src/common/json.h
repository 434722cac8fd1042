// JSON has no infinity and no NaN. The two ways lipattn writes such a number, in one place:
//   finite_or_null: a non-finite value is null (a value that was not computed or has no limit);
//   number_or_string: NaN is null, ±∞ is the string "inf" / "-inf" (an unbounded factor or bound,
//     which a reader must tell apart from "not computed").
// number_from_json reads both forms back.
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace lipattn {

inline nlohmann::json finite_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); }

inline nlohmann::json number_or_string(double x) {
  if (std::isnan(x)) return nullptr;
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

// null is NaN, "inf" / "-inf" are ±∞; anything else must be a number (InputError naming `what`).
inline double number_from_json(const nlohmann::json& j, const std::string& what) {
  if (j.is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (j.is_number()) return j.get<double>();
  if (j.is_string() && (j == "inf" || j == "-inf"))
    return j == "inf" ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  throw InputError(what + ": expected a number, null, \"inf\" or \"-inf\", got " + j.dump(), what);
}

}  // namespace lipattn
