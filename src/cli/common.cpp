#include "cli/common.h"

#include <algorithm>
#include <iostream>
#include <map>

#include <fmt/core.h>

#include "common/error.h"
#include "common/progress.h"

namespace lipattn::cli {

void SolverFlags::add_to(CLI::App& app) {
  app.add_option("--method", method, "auto | dense | lanczos | power (auto: dense when n·d ≤ 768)")
      ->capture_default_str();
  app.add_option("--tol", tol, "relative residual ‖JᵀJv − θv‖/θ to stop at")->capture_default_str();
  app.add_option("--max-iter", max_iter, "Lanczos restarts or power steps (0: 1000 / 100000)")->capture_default_str();
  app.add_option("--seed", seed, "seed of the start vector (and of random models)")->capture_default_str();
  app.add_option("--krylov", krylov, "Lanczos subspace size (vectors kept); past it the subspace restarts at half")
      ->capture_default_str();
  app.add_option("--mixed-tol", mixed_tol,
                 "mixed precision (f64 only): a float32 Lanczos phase to this looser tolerance, then float32 "
                 "corrections with float64 Rayleigh-Ritz to --tol (0: off)")
      ->capture_default_str();
  app.add_flag("--dominant-start", dominant_start,
               "start Lanczos from the top singular vector of the attention Jacobian's dominant part "
               "P̄ ⊗ W_O W_V, mixed with the seeded Gaussian vector");
  app.add_option("--dtype", dtype, "f64 | f32: precision of the products (results are float64)")
      ->capture_default_str();
  app.add_option("--max-memory", max_memory,
                 "memory the n × n attention matrices may take, e.g. 2G (default: what the machine has "
                 "available); past it attention streams in tiles");
  app.add_option("--storage", storage, "auto | stored | streaming: force how attention matrices are held")
      ->capture_default_str();
}

AttentionMemory SolverFlags::memory() const {
  AttentionMemory m;
  m.storage = parse_attention_storage(storage);
  if (!max_memory.empty()) m.budget_bytes = parse_memory_size(max_memory, "max_memory");
  return m;
}

SpectralOptions SolverFlags::options() const {
  SpectralOptions o;
  o.method = parse_spectral_method(method);
  o.tol = tol;
  o.max_iter = max_iter;
  o.seed = seed;
  if (krylov < 3) throw InputError(fmt::format("krylov_dim must be at least 3, got {}", krylov), "krylov_dim");
  o.krylov_dim = krylov;
  o.mixed_tol = mixed_tol;
  o.dominant_start = dominant_start;
  // Progress on stderr (common/progress.h) once a solve gets long: a live line on a terminal after
  // 2 s, a plain line every 10 s after the first 10 s elsewhere. --quiet silences it.
  o.on_product = [](long products, double seconds) {
    if (seconds < (progress::stderr_is_terminal() ? 2 : 10)) return;
    progress::update(fmt::format("{} products, {:.0f} s ({:.2f} s per product)", products, seconds,
                                 seconds / static_cast<double>(products)));
  };
  return o;
}

void LayerFlags::add_to(CLI::App& app) {
  app.add_option("--heads", heads, "number of heads in q/k/v.weight")->capture_default_str();
  app.add_flag("--causal", causal, "causal mask: token i attends to j ≤ i");
  app.add_option("--pre-norm", pre_norm, "layernorm | rmsnorm applied to X before attention");
  app.add_flag("--residual", residual, "add the layer's input: Y = X + attention(...)");
  app.add_option("--post-norm", post_norm, "layernorm | rmsnorm applied to the output");
  app.add_option("--norm-eps", norm_eps, "ε of the norms")->capture_default_str();
}

models::LayerFileOptions LayerFlags::options() const {
  models::LayerFileOptions o;
  o.heads = heads;
  o.causal = causal;
  if (!pre_norm.empty()) o.pre_norm = models::parse_norm_kind(pre_norm, "pre_norm");
  o.residual = residual;
  if (!post_norm.empty()) o.post_norm = models::parse_norm_kind(post_norm, "post_norm");
  o.norm_eps = norm_eps;
  return o;
}

std::string flag_for(const CLI::App& app, const std::string& field) {
  if (field.empty()) return "";
  // Library fields whose flag is not "--" + the field with '-' for '_'.
  static const std::map<std::string, std::string> renamed = {
      {"center", "--around"},           {"krylov_dim", "--krylov"},
      {"precision", "--dtype"},         {"layernorm_image", "--layernorm"},
      {"text_file", "--text"}};
  std::string flag;
  if (const auto it = renamed.find(field); it != renamed.end()) {
    flag = it->second;
  } else {
    flag = "--" + field;
    std::replace(flag.begin(), flag.end(), '_', '-');
  }
  return app.get_option_no_throw(flag) ? flag : "";
}

std::string input_error_message(const CLI::App& app, const std::string& message, const std::string& field) {
  const std::string flag = flag_for(app, field);
  if (!flag.empty()) return flag + ": " + message;
  return field.empty() || message.rfind(field, 0) == 0 ? message : field + ": " + message;
}

int mpi_failure_exit(const std::exception_ptr& error, experiments::MpiSession& session) {
  try {
    std::rethrow_exception(error);
  } catch (const experiments::CollectiveError& e) {
    if (session.rank() == 0)
      std::cerr << fmt::format("lipattn: {}: {}{}\n", e.exit_code == 2 ? "error" : "internal error",
                               e.failed_rank ? fmt::format("rank {}: ", e.failed_rank) : "", e.what());
    return e.exit_code;
  } catch (const std::exception& e) {
    const bool input = dynamic_cast<const InputError*>(&e) != nullptr;
    std::cerr << fmt::format("lipattn: {}: rank {}: {}\n", input ? "error" : "internal error", session.rank(),
                             e.what())
              << std::flush;
    session.abort(input ? 2 : 1);
  }
}

}  // namespace lipattn::cli
