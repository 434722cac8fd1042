// Comparing results JSON between two runs of the same jobs (alone and under mpirun, killed and not).
// nlohmann-json and GoogleTest only.
#pragma once

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace lipattn::testing {

// Results equal up to rounding: numbers to `rtol` relative, everything else exactly; timings (any key
// containing "seconds") are not results. `where` names the place in failure messages.
inline void expect_same_result(const nlohmann::json& a, const nlohmann::json& b, const std::string& where,
                               double rtol = 1e-12) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_LE(std::abs(x - y), rtol * std::max(std::abs(x), std::abs(y))) << where << ": " << x << " vs " << y;
    return;
  }
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
    for (const auto& k : keys) {
      if (k.find("seconds") != std::string::npos) continue;
      ASSERT_TRUE(a.contains(k) && b.contains(k)) << where << ": field " << k << " only on one side";
      expect_same_result(a[k], b[k], where + "." + k, rtol);
    }
    return;
  }
  if (a.is_array() && b.is_array()) {
    ASSERT_EQ(a.size(), b.size()) << where;
    for (std::size_t i = 0; i < a.size(); ++i)
      expect_same_result(a[i], b[i], where + "[" + std::to_string(i) + "]", rtol);
    return;
  }
  EXPECT_EQ(a, b) << where;
}

}  // namespace lipattn::testing
