// Stored against streaming attention (docs/theory.md §8, docs/performance.md "Long sequences"):
// time of the forward pass, time per JᵀJ product, Lanczos to a tolerance, and the peak resident
// memory of the process. One configuration per process, so the peak belongs to it:
//
//   streaming_bench --n 65536 --storage streaming [--heads 1 --d 64 --k 64] [--tol 1e-6]
//                   [--products 1] [--solve] [--krylov 20] [--gpt2] [--dtype f64|f32] [--causal]
//                   [--mixed-tol T]
//
// --gpt2 is the GPT-2-shaped layer of the issue-2 benchmark (d = 768, 12 heads, causal, W_O, biases,
// weights N(0, 0.02²)); otherwise one head with W_Q, W_K, W_V ~ N(0, 1/d) (scores of order 1, so the
// attention is far from uniform) and no W_O. X ~ N(0, 1). Prints one JSON line.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "common/allocator.h"
#include "attention/layer.h"
#include "spectral/measure.h"
#include "spectral/operator.h"

using namespace lipattn;

namespace {

MatrixD gaussian(std::mt19937_64& rng, Index rows, Index cols, double sd) {
  std::normal_distribution<double> normal(0.0, sd);
  MatrixD m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux: KiB
}

template <class T>
nlohmann::json products(const LayerSpec& spec, const MatrixD& X, const AttentionMemory& memory, int count) {
  auto t0 = std::chrono::steady_clock::now();
  Linearization<T> lin(build_map<T>(spec, memory), X);
  const double forward = seconds_since(t0);
  std::mt19937_64 rng(7);
  VectorD v = gaussian(rng, lin.input_size(), 1, 1.0).col(0);
  v /= v.norm();
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) v = lin.apply_normal(v).normalized();
  return {{"forward_seconds", forward}, {"product_seconds", seconds_since(t0) / count}};
}

}  // namespace

int main(int argc, char** argv) {
  lipattn::keep_freed_buffers_for_reuse();  // as the CLI does
  Index n = 4096, heads = 1, d = 64, k = 64;
  std::string storage = "streaming", dtype = "f64";
  double tol = 1e-6, mixed_tol = 0;  // mixed_tol > tol: a float32 phase first (docs/theory.md §4.5)
  int product_count = 1, krylov = 20;
  bool solve = false, gpt2 = false, causal = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::string(argv[++i]); };
    if (a == "--n") n = std::stol(next());
    else if (a == "--storage") storage = next();
    else if (a == "--heads") heads = std::stol(next());
    else if (a == "--d") d = std::stol(next());
    else if (a == "--k") k = std::stol(next());
    else if (a == "--tol") tol = std::stod(next());
    else if (a == "--mixed-tol") mixed_tol = std::stod(next());
    else if (a == "--products") product_count = std::stoi(next());
    else if (a == "--krylov") krylov = std::stoi(next());
    else if (a == "--dtype") dtype = next();
    else if (a == "--solve") solve = true;
    else if (a == "--gpt2") gpt2 = true;
    else if (a == "--causal") causal = true;
    else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  std::mt19937_64 rng(2024);
  LayerSpec spec;
  AttentionWeights& w = spec.attention;
  if (gpt2) {
    d = 768;
    heads = 12;
    k = 64;
    causal = true;
    w.w_q = gaussian(rng, d, d, 0.02);
    w.w_k = gaussian(rng, d, d, 0.02);
    w.w_v = gaussian(rng, d, d, 0.02);
    w.w_o = gaussian(rng, d, d, 0.02);
    w.b_q = gaussian(rng, d, 1, 0.02).col(0);
    w.b_k = gaussian(rng, d, 1, 0.02).col(0);
    w.b_v = gaussian(rng, d, 1, 0.02).col(0);
    w.b_o = gaussian(rng, d, 1, 0.02).col(0);
  } else {
    const double sd = 1.0 / std::sqrt(static_cast<double>(d));
    w.w_q = gaussian(rng, heads * k, d, sd);
    w.w_k = gaussian(rng, heads * k, d, sd);
    w.w_v = gaussian(rng, heads * k, d, sd);
  }
  w.heads = heads;
  w.causal = causal;
  const MatrixD X = gaussian(rng, n, d, 1.0);
  const AttentionMemory memory{parse_attention_storage(storage), 0};
  const Precision precision = parse_precision(dtype);

  nlohmann::json out = {{"n", n},         {"d", d},         {"heads", heads}, {"k", k},
                        {"causal", causal}, {"storage", storage}, {"dtype", dtype},
                        {"threads", omp_get_max_threads()}};
  if (product_count > 0) {
    const nlohmann::json p = precision == Precision::F64 ? products<double>(spec, X, memory, product_count)
                                                         : products<float>(spec, X, memory, product_count);
    out.update(p);
  }
  if (solve) {
    SpectralOptions o;
    o.method = SpectralMethod::Lanczos;
    o.tol = tol;
    o.krylov_dim = krylov;
    o.mixed_tol = mixed_tol;
    const SpectralResult r = measure_local_lipschitz(spec, X, o, precision, memory);
    out["solve"] = {{"lipschitz", r.lipschitz}, {"lower", r.lower},         {"matvecs", r.matvecs},
                    {"converged", r.converged}, {"relative_residual", r.relative_residual},
                    {"seconds", r.seconds},     {"tol", tol},               {"krylov", krylov},
                    {"mixed_tol", mixed_tol},   {"f32_matvecs", r.f32_matvecs}};
  }
  out["peak_rss_mib"] = peak_rss_mib();
  std::cout << out.dump() << std::endl;
  return 0;
}
