// Flags shared by several subcommands, and printing helpers.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "models/layer_file.h"
#include "spectral/measure.h"

namespace lipattn::cli {

// --method --tol --max-iter --seed --dtype
struct SolverFlags {
  std::string method = "auto";
  double tol = 1e-10;
  int max_iter = 0;
  std::uint64_t seed = 0;
  std::string dtype = "f64";
  void add_to(CLI::App& app);
  SpectralOptions options() const;
  Precision precision() const { return parse_precision(dtype); }
};

// --heads --causal --pre-norm --residual --post-norm --norm-eps
struct LayerFlags {
  Index heads = 1;
  bool causal = false;
  std::string pre_norm, post_norm;
  bool residual = false;
  double norm_eps = 1e-5;
  void add_to(CLI::App& app);
  models::LayerFileOptions options() const;
};

nlohmann::json to_json(const SpectralResult& result);

}  // namespace lipattn::cli
