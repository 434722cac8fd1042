// ‖D model(X)‖₂ of a whole random GPT-2 (12 layers, d = 768, `random:gpt2` seed 0 as lipattn builds it)
// from the embedding output (layer 0's block_in) to the final LayerNorm's output (models::model_map),
// at n tokens, to a tolerance: issue 15's speed benchmark (docs/performance.md, "Whole model").
// bench/whole_model.sh runs it beside the PyTorch peer (bench/peer_whole_model.py).
//   whole_model_bench [--n 128] [--tol 1e-8] [--mixed-tol T] [--products K] [--export DIR] [--solve 0|1]
// Prints one JSON line: the measured dgemm rate of this build (Eigen, the product's own GEMM shapes
// and 2048³), K timed JᵀJ products in float64 and float32 with their GFLOP/s, and the solve (σ to 17
// digits, products of each precision, seconds). solve_seconds is the whole library call `measure
// --block model` makes (measure_local_lipschitz on the model's MapBuilder): building the maps, the
// forward pass in each precision the solve uses, the solve and the float64 certificate; the peer's
// eigsh_seconds likewise includes its forward pass and graph (peer_torch.make_products). The token
// ids are seeded uniform draws from the
// vocabulary (seed 0), so the input needs no tokenizer. --export DIR writes model.safetensors (every
// tensor the peer needs, float64), X.npy (the embedding output) and ids.json.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "common/allocator.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "models/blocks.h"
#include "models/forward.h"
#include "models/weights.h"
#include "spectral/measure.h"
#include "spectral/operator.h"
#include "spectral/spectral_norm.h"

namespace {

using namespace lipattn;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Flops of one JᵀJ product of the whole model, every GEMM dense (jtj_bench's count per attention
// block, 16nd² + 16n²d, plus the MLP's four GEMMs each way, 2·2·(2·n·d·4d) = 32nd²); norms and
// activations (O(nd) per layer) are not counted.
double model_flops(Index n, Index d, Index layers, Index hidden) {
  const double nn = static_cast<double>(n), dd = static_cast<double>(d), hh = static_cast<double>(hidden);
  return static_cast<double>(layers) * (16.0 * nn * dd * dd + 16.0 * nn * nn * dd + 8.0 * nn * dd * hh);
}

// The best Eigen dgemm rate (GFLOP/s) of C = A·B over the product's own shapes and 2048³, each
// repeated for at least 0.5 s.
template <class T>
double gemm_rate(Index n, Index d, Index hidden) {
  double best = 0;
  for (auto [m, k, c] : {std::tuple<Index, Index, Index>{n, d, hidden}, {n, hidden, d}, {n, d, 3 * d}, {2048, 2048, 2048}}) {
    std::mt19937_64 rng(1);
    std::normal_distribution<double> normal;
    Matrix<T> A(m, k), B(k, c), C(m, c);
    for (Index i = 0; i < A.size(); ++i) A.data()[i] = static_cast<T>(normal(rng));
    for (Index i = 0; i < B.size(); ++i) B.data()[i] = static_cast<T>(normal(rng));
    long reps = 0;
    const auto t0 = Clock::now();
    while (seconds_since(t0) < 0.5) {
      C.noalias() = A * B;
      ++reps;
    }
    best = std::max(best, 2.0 * static_cast<double>(m * k * c) * static_cast<double>(reps) / seconds_since(t0) * 1e-9);
  }
  return best;
}

// Median seconds of `count` JᵀJ products.
double time_products(const LinearOperator& op, int count) {
  const VectorD v = random_unit_vector(op.input_size(), 7);
  std::vector<double> times;
  for (int i = 0; i < count; ++i) {
    const auto t0 = Clock::now();
    const VectorD w = op.apply_normal(v);
    times.push_back(seconds_since(t0));
    if (!w.allFinite()) throw std::runtime_error("non-finite product");
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void export_model(const std::filesystem::path& dir, const models::ModelWeights& m, const MatrixD& X,
                  const std::vector<int>& ids) {
  std::filesystem::create_directories(dir);
  std::vector<io::TensorToWrite> tensors;
  auto mat = [&](const std::string& name, const MatrixD& a) {
    tensors.push_back({name, {a.rows(), a.cols()}, std::vector<double>(a.data(), a.data() + a.size())});
  };
  auto vec = [&](const std::string& name, const VectorD& v) {
    tensors.push_back({name, {v.size()}, std::vector<double>(v.data(), v.data() + v.size())});
  };
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const models::LayerWeights& L = m.layers[l];
    const std::string p = fmt::format("h.{}.", l);
    vec(p + "ln_1.weight", L.attention_norm.gamma);
    vec(p + "ln_1.bias", L.attention_norm.beta);
    mat(p + "q.weight", L.attention.w_q);
    mat(p + "k.weight", L.attention.w_k);
    mat(p + "v.weight", L.attention.w_v);
    mat(p + "o.weight", L.attention.w_o);
    vec(p + "q.bias", L.attention.b_q);
    vec(p + "k.bias", L.attention.b_k);
    vec(p + "v.bias", L.attention.b_v);
    vec(p + "o.bias", L.attention.b_o);
    vec(p + "ln_2.weight", L.mlp_norm.gamma);
    vec(p + "ln_2.bias", L.mlp_norm.beta);
    mat(p + "fc.weight", L.mlp.w_in);
    vec(p + "fc.bias", L.mlp.b_in);
    mat(p + "proj.weight", L.mlp.w_out);
    vec(p + "proj.bias", L.mlp.b_out);
  }
  vec("ln_f.weight", m.final_norm->gamma);
  vec("ln_f.bias", m.final_norm->beta);
  io::write_safetensors(dir / "model.safetensors", tensors, io::DType::F64,
                        {{"layers", std::to_string(m.layers.size())},
                         {"heads", std::to_string(m.layers[0].attention.heads)},
                         {"eps", fmt::format("{:.17g}", m.config.layer_norm_eps)}});
  io::write_npy(dir / "X.npy", X);
  std::ofstream(dir / "ids.json") << fmt::format("[{}]\n", fmt::join(ids, ", "));
}

}  // namespace

int main(int argc, char** argv) {
  lipattn::keep_freed_buffers_for_reuse();  // as the CLI does
  Index n = 128;
  int products = 3;
  bool solve = true;
  std::string export_dir;
  SpectralOptions o;
  o.method = SpectralMethod::Lanczos;
  o.tol = 1e-8;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--n") n = std::stol(value);
    else if (flag == "--tol") o.tol = std::stod(value);
    else if (flag == "--mixed-tol") o.mixed_tol = std::stod(value);
    else if (flag == "--krylov") o.krylov_dim = std::stoi(value);
    else if (flag == "--products") products = std::stoi(value);
    else if (flag == "--export") export_dir = value;
    else if (flag == "--solve") solve = value != "0";
    else {
      fmt::print(stderr, "whole_model_bench: unknown flag {}\n", flag);
      return 2;
    }
  }
  const auto t_load = Clock::now();
  const models::ModelWeights model = models::load_model("random:gpt2");  // seed 0
  std::mt19937_64 rng(0);
  std::uniform_int_distribution<int> token(0, static_cast<int>(model.config.vocab_size) - 1);
  std::vector<int> ids(static_cast<size_t>(n));
  for (int& id : ids) id = token(rng);
  const MatrixD X = models::run_forward(model, ids).layers.at(0).block_in;
  const double load_seconds = seconds_since(t_load);
  if (!export_dir.empty()) export_model(export_dir, model, X, ids);

  const Index d = X.cols(), hidden = model.layers[0].mlp.w_in.rows();
  const double flops = model_flops(n, d, static_cast<Index>(model.layers.size()), hidden);
  const double gemm64 = gemm_rate<double>(n, d, hidden), gemm32 = gemm_rate<float>(n, d, hidden);
  double linearize_seconds = 0, product64 = 0, product32 = 0;
  if (products > 0) {  // the products alone, on a linearization in both precisions
    const auto t_lin = Clock::now();
    const TwinLinearization op(models::model_map<double>(model), models::model_map<float>(model), X);
    linearize_seconds = seconds_since(t_lin);
    product64 = time_products(op, products);
    product32 = time_products(*op.float32_twin(), products);
  }

  // The solve as `measure --block model` runs it, from the weights and X to the certified result:
  // building the maps, the forward pass(es), the solve and the float64 certificate (r.seconds).
  SpectralResult r;
  double cpu = 0;
  if (solve) {
    const std::clock_t cpu0 = std::clock();
    r = measure_local_lipschitz(models::whole_block_builder(model, models::Block::Model, 0, std::nullopt), X, o);
    cpu = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  }
  fmt::print(
      "{{\"n\": {}, \"d\": {}, \"layers\": {}, \"tol\": {:g}, \"mixed_tol\": {:g}, \"load_seconds\": {:.3f}, "
      "\"linearize_seconds\": {:.3f}, \"gflop_per_product\": {:.3f}, \"gemm_f64_gflops\": {:.1f}, "
      "\"gemm_f32_gflops\": {:.1f}, \"product_f64_seconds\": {:.4f}, \"product_f32_seconds\": {:.4f}, "
      "\"product_f64_gflops\": {:.1f}, \"product_f32_gflops\": {:.1f}, \"sigma\": {:.17g}, \"lower\": {:.17g}, "
      "\"relative_residual\": {:.3g}, \"converged\": {}, \"matvecs\": {}, \"f32_matvecs\": {}, \"mixed\": \"{}\", "
      "\"solve_seconds\": {:.3f}, \"solve_cpu_seconds\": {:.3f}}}\n",
      n, d, model.layers.size(), o.tol, o.mixed_tol, load_seconds, linearize_seconds, flops * 1e-9, gemm64, gemm32,
      product64, product32, product64 > 0 ? flops * 1e-9 / product64 : 0.0,
      product32 > 0 ? flops * 1e-9 / product32 : 0.0, r.lipschitz, r.lower, r.relative_residual,
      r.converged ? "true" : "false", r.matvecs, r.f32_matvecs, to_string(r.mixed), r.seconds, cpu);
  return 0;
}
