// SpectralResult to and from JSON, the one serialisation (the CLI's results and the experiments'
// records). Keys: lipschitz, lower, method, matvecs, converged, relative_residual, seconds, and
// f32_check_difference / storage / mixed and f32_matvecs when set. The right vector is not written. nlohmann writes a
// non-finite double as null, which reads back as NaN. Header-only, so the
// spectral library itself does not depend on nlohmann-json.
#pragma once

#include <nlohmann/json.hpp>

#include "common/json.h"
#include "spectral/spectral_norm.h"

namespace lipattn {

inline void to_json(nlohmann::json& j, const SpectralResult& r) {
  j = {{"lipschitz", r.lipschitz}, {"lower", r.lower},         {"method", to_string(r.method)},
       {"matvecs", r.matvecs},     {"converged", r.converged}, {"relative_residual", r.relative_residual},
       {"seconds", r.seconds}};
  if (r.f32_check_difference) j["f32_check_difference"] = *r.f32_check_difference;
  if (!r.storage.empty()) j["storage"] = r.storage;
  if (r.mixed != MixedPhase::Off) {
    j["mixed"] = to_string(r.mixed);
    j["f32_matvecs"] = r.f32_matvecs;
  }
}

inline void from_json(const nlohmann::json& j, SpectralResult& r) {
  r = SpectralResult{};
  r.lipschitz = number_from_json(j.at("lipschitz"), "lipschitz");
  r.lower = number_from_json(j.at("lower"), "lower");
  r.method = parse_spectral_method(j.at("method").get<std::string>());
  r.matvecs = j.at("matvecs").get<long>();
  r.converged = j.at("converged").get<bool>();
  r.relative_residual = number_from_json(j.at("relative_residual"), "relative_residual");
  r.seconds = number_from_json(j.at("seconds"), "seconds");
  if (j.contains("f32_check_difference")) r.f32_check_difference = j["f32_check_difference"].get<double>();
  if (j.contains("storage")) r.storage = j["storage"].get<std::string>();
  if (j.contains("mixed")) {
    r.mixed = parse_mixed_phase(j["mixed"].get<std::string>());
    r.f32_matvecs = j.at("f32_matvecs").get<long>();
  }
}

}  // namespace lipattn
