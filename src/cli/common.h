// Flags shared by several subcommands, and printing helpers.
#pragma once

#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "experiments/distributed.h"
#include "models/layer_file.h"
#include "models/measure_model.h"
#include "spectral/measure.h"

namespace lipattn::cli {

// --method --tol --max-iter --krylov --seed --mixed-tol --dominant-start --dtype --max-memory --storage
struct SolverFlags {
  std::string method = "auto";
  double tol = 1e-10;
  int max_iter = 0;
  int krylov = 20;
  double mixed_tol = 0;
  bool dominant_start = false;
  std::uint64_t seed = 0;
  std::string dtype = "f64";
  std::string max_memory;  // "" = what the machine has available
  std::string storage = "auto";
  void add_to(CLI::App& app);
  SpectralOptions options() const;
  Precision precision() const { return parse_precision(dtype); }
  AttentionMemory memory() const;
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

// The flag of subcommand `app` that sets the library field `field` (InputError::field()): "heads"
// → "--heads", "norm_eps" → "--norm-eps", and the few whose flag says it differently ("center" →
// "--around"). Empty when `app` has no such flag (the value then came from elsewhere, e.g. a
// sweep's JSON, and the message names the field itself).
std::string flag_for(const CLI::App& app, const std::string& field);

// The line printed for a bad input: "--heads: heads must be at least 1, got 0".
std::string input_error_message(const CLI::App& app, const std::string& message, const std::string& field);

// The request `measure --model` and `attack --model` both build from the flags they share (--model
// --layer --head --block --layers --text --tokenizer --n --ids --causal); `model_seed` initialises a
// random model.
template <class Flags>
models::ModelMeasureRequest model_request(const Flags& f, std::uint64_t model_seed) {
  models::ModelMeasureRequest request;
  request.model = f.model;
  request.seed = model_seed;
  request.layer = f.layer_index;
  request.head = f.head;
  request.block = f.block;
  if (!f.layers.empty()) request.layers = models::parse_layer_range(f.layers, "layers");
  request.text_file = f.text;
  request.tokenizer_dir = f.tokenizer;
  request.n = f.n;
  request.ids = f.ids;
  request.causal_override = f.layer.causal;
  return request;
}

// How an MPI rank ends a failed run (sweep, reproduce): a CollectiveError is agreed by every rank,
// so the lead prints it and each rank returns its code; any other exception is this rank's alone,
// so it prints it and aborts the whole job (exit 2 for bad input, 1 otherwise).
int mpi_failure_exit(const std::exception_ptr& error, experiments::MpiSession& session);

}  // namespace lipattn::cli
