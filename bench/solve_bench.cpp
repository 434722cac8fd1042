// One σ_max solve of a GPT-2-shaped causal attention layer (d = 768, 12 heads, W_O, biases) to a
// tolerance, as `lipattn measure` runs it (measure_local_lipschitz: forward, Lanczos, float64
// certificate), for the peer comparison of bench/run.sh and the solver experiments of
// docs/performance.md ("Doing less work per digit"). Two layer kinds:
//   gpt2    models::random_gpt2_attention_layer(0): transformers' init, N(0, 0.02²) weights, W_O
//           N(0, (0.02/√24)²), zero biases (the issue-2 benchmark's layer);
//   biased  N(0, 0.02²) weights (W_O too) and N(0, 0.02²) biases on Q, K, V and W_O.
// X ~ N(0, 1), seed 1000 + n, for both. Prints one JSON line (σ to 17 digits).
//   solve_bench --kind gpt2|biased --n N [--tol 1e-8] [--mixed-tol T] [--krylov K] [--seed S]
//               [--export DIR] [--overlap C] [--start gaussian|dominant]
// --export DIR writes layer_<kind>.safetensors and X_<kind>_<n>.npy for bench/peer_torch.py.
// --overlap C (0 < C ≤ 1) measures what a better start vector could save: it first solves to 1e-13
// for the top right singular vector x₁, then starts from C·x₁ + √(1 − C²)·g (g a Gaussian vector
// orthogonal to x₁) instead of the Gaussian start. --start dominant sets SpectralOptions::dominant_start
// (the start hint from P̄ ⊗ W_O W_V, docs/theory.md §4.6).
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <random>
#include <string>

#include <fmt/core.h>

#include "attention/layer.h"
#include "common/allocator.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "models/layer_file.h"
#include "spectral/measure.h"

namespace {

using namespace lipattn;

constexpr Index kModelDim = 768, kHeads = 12;

MatrixD gaussian(Index rows, Index cols, double sd, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, sd);
  MatrixD m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

LayerSpec layer(const std::string& kind) {
  if (kind == "gpt2") return models::random_gpt2_attention_layer(0, kModelDim, kHeads);
  if (kind != "biased") throw std::runtime_error("--kind must be gpt2 or biased");
  LayerSpec s = models::random_gpt2_attention_layer(0, kModelDim, kHeads);
  AttentionWeights& w = s.attention;
  std::mt19937_64 rng(20261202);
  for (MatrixD* m : {&w.w_q, &w.w_k, &w.w_v, &w.w_o}) *m = gaussian(m->rows(), m->cols(), 0.02, rng);
  for (VectorD* b : {&w.b_q, &w.b_k, &w.b_v, &w.b_o}) *b = gaussian(b->size(), 1, 0.02, rng);
  return s;
}

MatrixD input(Index n) {
  std::mt19937_64 rng(1000 + n);
  return gaussian(n, kModelDim, 1.0, rng);
}

void export_layer(const std::filesystem::path& dir, const std::string& kind, const LayerSpec& spec, const MatrixD& X) {
  std::filesystem::create_directories(dir);
  const AttentionWeights& w = spec.attention;
  auto mat = [](const std::string& name, const MatrixD& m) {
    return io::TensorToWrite{name, {m.rows(), m.cols()}, std::vector<double>(m.data(), m.data() + m.size())};
  };
  auto vec = [](const std::string& name, const VectorD& v) {
    return io::TensorToWrite{name, {v.size()}, std::vector<double>(v.data(), v.data() + v.size())};
  };
  io::write_safetensors(dir / fmt::format("layer_{}.safetensors", kind),
                        {mat("q.weight", w.w_q), mat("k.weight", w.w_k), mat("v.weight", w.w_v),
                         mat("o.weight", w.w_o), vec("q.bias", w.b_q), vec("k.bias", w.b_k), vec("v.bias", w.b_v),
                         vec("o.bias", w.b_o)},
                        io::DType::F64, {{"heads", std::to_string(w.heads)}, {"causal", "true"}});
  io::write_npy(dir / fmt::format("X_{}_{}.npy", kind, X.rows()), X);
}

// C·x₁ + √(1 − C²)·g with g ⟂ x₁ Gaussian, unit.
VectorD start_with_overlap(const LayerSpec& spec, const MatrixD& X, double overlap) {
  SpectralOptions tight;
  tight.method = SpectralMethod::Lanczos;
  tight.tol = 1e-13;
  const VectorD x1 = measure_local_lipschitz(spec, X, tight).right_vector.normalized();
  VectorD g = random_unit_vector(x1.size(), 99);
  g -= x1.dot(g) * x1;
  g.normalize();
  return overlap * x1 + std::sqrt(std::max(0.0, 1 - overlap * overlap)) * g;
}

}  // namespace

int main(int argc, char** argv) {
  lipattn::keep_freed_buffers_for_reuse();  // as the CLI does
  std::string kind = "gpt2", export_dir;
  Index n = 256;
  double overlap = 0;
  std::string start = "gaussian";
  SpectralOptions o;
  o.method = SpectralMethod::Lanczos;
  o.tol = 1e-8;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--kind") kind = value;
    else if (flag == "--n") n = std::stol(value);
    else if (flag == "--tol") o.tol = std::stod(value);
    else if (flag == "--mixed-tol") o.mixed_tol = std::stod(value);
    else if (flag == "--krylov") o.krylov_dim = std::stoi(value);
    else if (flag == "--seed") o.seed = std::stoull(value);
    else if (flag == "--export") export_dir = value;
    else if (flag == "--overlap") overlap = std::stod(value);
    else if (flag == "--start") start = value;
    else {
      fmt::print(stderr, "solve_bench: unknown flag {}\n", flag);
      return 2;
    }
  }
  const LayerSpec spec = layer(kind);
  const MatrixD X = input(n);
  if (!export_dir.empty()) export_layer(export_dir, kind, spec, X);
  if (overlap > 0) o.start = start_with_overlap(spec, X, overlap);
  if (start == "dominant") o.dominant_start = true;
  const std::clock_t cpu0 = std::clock();
  const SpectralResult r = measure_local_lipschitz(spec, X, o);
  const double cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  fmt::print(
      "{{\"kind\": \"{}\", \"n\": {}, \"tol\": {:g}, \"mixed_tol\": {:g}, \"krylov\": {}, \"overlap\": {:g}, \"start\": \"{}\", "
      "\"sigma\": {:.17g}, \"lower\": {:.17g}, \"relative_residual\": {:.3g}, \"converged\": {}, \"matvecs\": {}, "
      "\"f32_matvecs\": {}, \"mixed\": \"{}\", \"seconds\": {:.4f}, \"cpu_seconds\": {:.4f}}}\n",
      kind, n, o.tol, o.mixed_tol, o.krylov_dim, overlap, start, r.lipschitz, r.lower, r.relative_residual,
      r.converged ? "true" : "false", r.matvecs, r.f32_matvecs, to_string(r.mixed), r.seconds, cpu);
  return 0;
}
