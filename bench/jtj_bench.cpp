// The issue-2 benchmark (docs/performance.md): a GPT-2-shaped causal attention layer (d = 768,
// 12 heads, W_O, biases) at n = 64, 256, 1024, float64 and float32:
//   BM_Gemm      Eigen GEMM of the same scalar type, the machine's reference rate, in the same run;
//   BM_JtJ       one product v ↦ Jᵀ(J v) through Linearization (the solver's view; forward excluded);
//   BM_Jvp/Vjp   the two halves through the Map directly (no vector conversions);
//   BM_Lanczos   measure_local_lipschitz(tol 1e-8) end to end: forward, Lanczos, certificate.
// Run with OMP_NUM_THREADS=2 (bench/run.sh does). Times are wall-clock (UseRealTime); the CPU column
// is the whole process's CPU time (all threads), a cross-check that stays meaningful when other jobs
// load the machine (wall ≈ CPU/2 when the two threads run undisturbed).
//
// --export_dir=DIR writes the layer (layer.safetensors, F64) and each input (X_<n>.npy, float64)
// for the PyTorch peer (bench/peer_torch.py), and BM_Lanczos writes lanczos_<dtype>_<n>.json there
// with σ printed to 17 digits, so the two tools can be compared on exactly the same numbers.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "attention/layer.h"
#include "common/allocator.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "models/layer_file.h"
#include "spectral/measure.h"
#include "spectral/operator.h"

namespace {

using namespace lipattn;

constexpr Index kModelDim = 768;
constexpr Index kHeads = 12;
constexpr std::uint64_t kLayerSeed = 0;
std::filesystem::path g_export_dir;

// Flops of one JᵀJ product as executed (every GEMM dense, n × n blocks included although the upper
// triangle of P is zero under the causal mask). With Hk = Hk_v = d:
//   jvp: dQKV = dX W_qkvᵀ          2·n·d·3d
//        per head dS = dQ Kᵀ + Q dKᵀ  2·(2n²k);  dO_h = dP V + P dV  2·(2n²k)
//        dY = dO W_Oᵀ              2·n·d·d
//   vjp: dO = dY W_O               2·n·d·d
//        per head dP = dO_h Vᵀ, dV = Pᵀ dO_h, dQ = dS K, dK = dSᵀ Q   4·(2n²k)
//        dX = dQKV W_qkv            2·n·3d·d
//   total = 16·n·d² + 16·n²·d  (the softmax-Jacobian and scaling passes, O(H·n²), are not counted).
double jtj_flops(Index n, Index d = kModelDim) {
  const double nn = static_cast<double>(n), dd = static_cast<double>(d);
  return 16.0 * nn * dd * dd + 16.0 * nn * nn * dd;
}

const LayerSpec& layer() {
  static const LayerSpec spec = [] {
    LayerSpec s = models::random_gpt2_attention_layer(kLayerSeed, kModelDim, kHeads);
    return s;
  }();
  return spec;
}

const MatrixD& input(Index n) {
  static std::map<Index, MatrixD> inputs;
  auto it = inputs.find(n);
  if (it != inputs.end()) return it->second;
  std::mt19937_64 rng(1000 + n);
  std::normal_distribution<double> normal;  // X ~ N(0, 1)
  MatrixD X(n, kModelDim);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(rng);
  return inputs.emplace(n, std::move(X)).first->second;
}

template <class T>
Matrix<T> random_matrix(Index rows, Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(normal(rng));
  return m;
}

template <class T>
const char* dtype_name() {
  return sizeof(T) == 8 ? "f64" : "f32";
}

// C = A B, row-major as everywhere in lipattn: the reference GEMM rate of this build.
template <class T>
void BM_Gemm(benchmark::State& state) {
  const Index m = state.range(0), k = state.range(1), n = state.range(2);
  const Matrix<T> A = random_matrix<T>(m, k, 1), B = random_matrix<T>(k, n, 2);
  Matrix<T> C(m, n);
  for (auto _ : state) {
    C.noalias() = A * B;
    benchmark::DoNotOptimize(C.data());
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(dtype_name<T>());
}

template <class T>
void BM_JtJ(benchmark::State& state) {
  const Index n = state.range(0);
  Linearization<T> lin(build_map<T>(layer()), input(n));
  VectorD v = random_matrix<double>(lin.input_size(), 1, 7);
  v /= v.norm();
  for (auto _ : state) {
    VectorD w = lin.apply_normal(v);
    benchmark::DoNotOptimize(w.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(jtj_flops(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP"] = jtj_flops(n) * 1e-9;
  state.SetLabel(dtype_name<T>());
}

// The halves through the Map, without Linearization's vector copies and casts.
template <class T, bool Forward>
void BM_Half(benchmark::State& state) {
  const Index n = state.range(0);
  const MapPtr<T> map = build_map<T>(layer());
  const auto cache = map->forward(input(n).cast<T>());
  const Matrix<T> dX = random_matrix<T>(n, kModelDim, 9);
  for (auto _ : state) {
    Matrix<T> out = Forward ? map->jvp(*cache, dX) : map->vjp(*cache, dX);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(0.5 * jtj_flops(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(dtype_name<T>());
}
template <class T>
void BM_Jvp(benchmark::State& state) { BM_Half<T, true>(state); }
template <class T>
void BM_Vjp(benchmark::State& state) { BM_Half<T, false>(state); }

template <class T>
void BM_Forward(benchmark::State& state) {
  const Index n = state.range(0);
  const MapPtr<T> map = build_map<T>(layer());
  const Matrix<T> X = input(n).cast<T>();
  for (auto _ : state) {
    auto cache = map->forward(X);
    benchmark::DoNotOptimize(cache->output.data());
  }
  state.SetLabel(dtype_name<T>());
}

// Lanczos on JᵀJ to relative tolerance 1e-8, end to end as `lipattn measure` runs it.
template <class T>
void BM_Lanczos(benchmark::State& state) {
  const Index n = state.range(0);
  SpectralOptions options;
  options.method = SpectralMethod::Lanczos;
  options.tol = 1e-8;
  options.seed = 0;
  const Precision precision = sizeof(T) == 8 ? Precision::F64 : Precision::F32;
  SpectralResult r;
  double cpu_seconds = 0;
  for (auto _ : state) {
    const std::clock_t cpu0 = std::clock();
    r = measure_local_lipschitz(layer(), input(n), options, precision);
    // No DoNotOptimize(r.lipschitz): r is read after the loop, and Debian's Google Benchmark 1.7.1
    // clobbered the double through its "+m,r" asm constraint (σ came out as 6.9e-310).
    cpu_seconds = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
  }
  state.counters["matvecs"] = static_cast<double>(r.matvecs);
  state.counters["sigma"] = r.lipschitz;
  state.counters["converged"] = r.converged ? 1 : 0;
  state.counters["rel_residual"] = r.relative_residual;
  state.counters["solver_s"] = r.seconds;
  state.counters["cpu_s"] = cpu_seconds;
  state.SetLabel(dtype_name<T>());
  if (!g_export_dir.empty()) {
    std::ofstream out(g_export_dir / fmt::format("lanczos_{}_{}.json", dtype_name<T>(), n));
    out << fmt::format(
        "{{\"dtype\": \"{}\", \"n\": {}, \"sigma\": {:.17g}, \"lower\": {:.17g}, \"matvecs\": {}, "
        "\"converged\": {}, \"relative_residual\": {:.6g}, \"seconds\": {:.6f}, \"cpu_seconds\": {:.6f}, \"tol\": {:g}}}\n",
        dtype_name<T>(), n, r.lipschitz, r.lower, r.matvecs, r.converged ? "true" : "false", r.relative_residual,
        r.seconds, cpu_seconds, precision == Precision::F64 ? options.tol : std::max(options.tol, 1e-6));
  }
}

void export_inputs(const std::vector<Index>& sizes) {
  std::filesystem::create_directories(g_export_dir);
  const AttentionWeights& w = layer().attention;
  auto mat = [](const std::string& name, const MatrixD& m) {
    return io::TensorToWrite{name, {m.rows(), m.cols()}, std::vector<double>(m.data(), m.data() + m.size())};
  };
  auto vec = [](const std::string& name, const VectorD& v) {
    return io::TensorToWrite{name, {v.size()}, std::vector<double>(v.data(), v.data() + v.size())};
  };
  io::write_safetensors(g_export_dir / "layer.safetensors",
                        {mat("q.weight", w.w_q), mat("k.weight", w.w_k), mat("v.weight", w.w_v),
                         mat("o.weight", w.w_o), vec("q.bias", w.b_q), vec("k.bias", w.b_k), vec("v.bias", w.b_v),
                         vec("o.bias", w.b_o)},
                        io::DType::F64, {{"heads", std::to_string(w.heads)}, {"causal", "true"}});
  for (Index n : sizes) io::write_npy(g_export_dir / fmt::format("X_{}.npy", n), input(n));
}

const std::vector<Index> kSizes = {64, 256, 1024};

void register_all() {
  // Few iterations at n = 1024 keep bench/run.sh within its time budget.
  auto iterations = [](Index n) { return n <= 64 ? 40 : n <= 256 ? 10 : 3; };
  for (auto [m, k, n] : {std::tuple<Index, Index, Index>{1024, 768, 768}, {1024, 768, 2304}, {2048, 2048, 2048}}) {
    benchmark::RegisterBenchmark("BM_Gemm<f64>", BM_Gemm<double>)->Args({m, k, n})->UseRealTime()->MeasureProcessCPUTime()->MinTime(1.0);
    benchmark::RegisterBenchmark("BM_Gemm<f32>", BM_Gemm<float>)->Args({m, k, n})->UseRealTime()->MeasureProcessCPUTime()->MinTime(1.0);
  }
  for (Index n : kSizes) {
    const int it = iterations(n);
    benchmark::RegisterBenchmark("BM_JtJ<f64>", BM_JtJ<double>)->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it);
    benchmark::RegisterBenchmark("BM_JtJ<f32>", BM_JtJ<float>)->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it);
    benchmark::RegisterBenchmark("BM_Jvp<f64>", BM_Jvp<double>)->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it);
    benchmark::RegisterBenchmark("BM_Vjp<f64>", BM_Vjp<double>)->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it);
    benchmark::RegisterBenchmark("BM_Forward<f64>", BM_Forward<double>)->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it);
  }
  for (Index n : kSizes) {
    benchmark::RegisterBenchmark("BM_Lanczos<f64>", BM_Lanczos<double>)->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(1)
        ->Unit(benchmark::kSecond);
    benchmark::RegisterBenchmark("BM_Lanczos<f32>", BM_Lanczos<float>)->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(1)
        ->Unit(benchmark::kSecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  lipattn::keep_freed_buffers_for_reuse();  // as the CLI does
  // Our own flag first; Google Benchmark rejects flags it does not know.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    constexpr const char* kFlag = "--export_dir=";
    if (std::strncmp(argv[i], kFlag, std::strlen(kFlag)) == 0)
      g_export_dir = argv[i] + std::strlen(kFlag);
    else
      args.push_back(argv[i]);
  }
  int count = static_cast<int>(args.size());
  if (!g_export_dir.empty()) export_inputs(kSizes);
  register_all();
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
