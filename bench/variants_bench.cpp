// Where the time of a JᵀJ product goes, and what the bench-only prototype (bench/fast_attention.h)
// gains over src/attention/attention.cpp on the GPT-2-shaped layer of bench/jtj_bench.cpp.
//   BM_Product/<variant>/n     one JᵀJ product through the Map (forward excluded); the GFLOP/s
//                              counter uses the dense count 16nd² + 16n²d for every variant, so it
//                              is a time ratio; rel_diff = ‖JᵀJv − baseline‖/‖baseline‖
//   BM_Piece/<piece>/n         the pieces of one product, timed alone
//   BM_Lanczos/<variant>/n     spectral_norm (Lanczos, tol 1e-8) with the variant, σ for comparison
// Run with OMP_NUM_THREADS=2.
#include <benchmark/benchmark.h>

#include <ctime>
#include <functional>
#include <map>
#include <random>
#include <string>

#include "fast_attention.h"
#include "models/layer_file.h"
#include "spectral/spectral_norm.h"

namespace {

using namespace lipattn;
constexpr Index kModelDim = 768, kHeads = 12;

double jtj_flops(Index n) {
  const double nn = static_cast<double>(n), d = static_cast<double>(kModelDim);
  return 16.0 * nn * d * d + 16.0 * nn * nn * d;
}

const AttentionWeights& weights() {
  static const AttentionWeights w = models::random_gpt2_attention_layer(0, kModelDim, kHeads).attention;
  return w;
}

template <class T>
Matrix<T> random_matrix(Index rows, Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(normal(rng));
  return m;
}

const MatrixD& input(Index n) {  // the same X as jtj_bench (seed 1000 + n)
  static std::map<Index, MatrixD> inputs;
  auto it = inputs.find(n);
  if (it == inputs.end()) it = inputs.emplace(n, random_matrix<double>(n, kModelDim, 1000 + n)).first;
  return it->second;
}

template <class T>
MapPtr<T> make_variant(const std::string& name) {
  if (name == "baseline") return std::make_shared<MultiHeadAttention<T>>(weights());
  bench::FastOptions o;
  if (name == "fast") return std::make_shared<bench::FastAttention<T>>(weights(), o);
  if (name == "fast_b64") o.block = 64;
  if (name == "fast_b256") o.block = 256;
  if (name == "no_causal_blocks") o.causal_blocks = false;
  if (name == "no_fuse") o.fuse_scores = false;
  if (name == "no_workspace") o.reuse_workspace = false;
  if (name == "heads_serial") o.heads_parallel = false;
  if (name == "dense_only_workspace") {  // attention.cpp + workspace reuse only
    o.causal_blocks = false;
    o.fuse_scores = false;
  }
  return std::make_shared<bench::FastAttention<T>>(weights(), o);
}

template <class T>
Matrix<T> jtj(const Map<T>& map, const Cache<T>& cache, const Matrix<T>& v) {
  return map.vjp(cache, map.jvp(cache, v));
}

template <class T>
void BM_Product(benchmark::State& state, std::string variant) {
  const Index n = state.range(0);
  const Matrix<T> X = input(n).template cast<T>();
  const Matrix<T> v = random_matrix<T>(n, kModelDim, 7);
  const MapPtr<T> map = make_variant<T>(variant), base = make_variant<T>("baseline");
  const auto cache = map->forward(X);
  const auto base_cache = base->forward(X);
  const Matrix<T> reference = jtj(*base, *base_cache, v);
  const double rel_diff = static_cast<double>((jtj(*map, *cache, v) - reference).norm() / reference.norm());
  for (auto _ : state) {
    Matrix<T> w = jtj(*map, *cache, v);
    benchmark::DoNotOptimize(w.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(jtj_flops(n) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["rel_diff"] = rel_diff;
}

// The pieces of one float64 product of attention.cpp, timed alone.
void BM_Piece(benchmark::State& state, std::string piece) {
  const Index n = state.range(0), d = kModelDim, k = d / kHeads;
  const MatrixD A = random_matrix<double>(n, d, 1), W3 = random_matrix<double>(3 * d, d, 2),
                W = random_matrix<double>(d, d, 3), QKV = random_matrix<double>(n, 3 * d, 4),
                Pn = random_matrix<double>(n, n, 5).cwiseAbs();
  MatrixD out;
  std::function<void()> body;
  double flops = 0;
  if (piece == "qkv_gemm") {  // dX W_qkvᵀ and dQKV W_qkv: 2 × 2·n·d·3d
    body = [&] {
      MatrixD a;
      a.noalias() = A * W3.transpose();
      out.noalias() = a * W3;
    };
    flops = 12.0 * n * d * d;
  } else if (piece == "wo_gemm") {  // dO W_Oᵀ and dY W_O
    body = [&] {
      MatrixD a;
      a.noalias() = A * W.transpose();
      out.noalias() = a * W;
    };
    flops = 4.0 * n * d * d;
  } else if (piece == "head_gemms") {  // the 8 n×n×k GEMMs per head, heads in parallel
    body = [&] {
      MatrixD dO(n, d), dq(n, 3 * d);
#pragma omp parallel for schedule(dynamic)
      for (Index h = 0; h < kHeads; ++h) {
        auto Q = QKV.middleCols(h * k, k), K = QKV.middleCols(d + h * k, k), V = QKV.middleCols(2 * d + h * k, k);
        MatrixD G(n, n);
        G.noalias() = Q * K.transpose();
        G.noalias() += K * Q.transpose();
        dO.middleCols(h * k, k).noalias() = G * V;
        dO.middleCols(h * k, k).noalias() += Pn * V;
        G.noalias() = Q * V.transpose();
        dq.middleCols(h * k, k).noalias() = Pn.transpose() * V;
        dq.middleCols(d + h * k, k).noalias() = G * K;
        dq.middleCols(2 * d + h * k, k).noalias() = G.transpose() * Q;
      }
      benchmark::DoNotOptimize(dO.data());
      benchmark::DoNotOptimize(dq.data());
    };
    flops = 16.0 * n * n * d;
  } else if (piece == "softmax_jacobian") {  // 2 passes per head (jvp and vjp), causal rows
    body = [&] {
#pragma omp parallel for schedule(dynamic)
      for (Index h = 0; h < 2 * kHeads; ++h) {
        MatrixD G = Pn;
        for (Index i = 0; i < n; ++i) {
          auto p = Pn.row(i).head(i + 1);
          auto g = G.row(i).head(i + 1);
          const double c = p.dot(g);
          g = p.cwiseProduct((g.array() - c).matrix());
          G.row(i).tail(n - i - 1).setZero();
        }
        benchmark::DoNotOptimize(G.data());
      }
    };
  } else if (piece == "alloc_nn") {  // 2·H fresh n × n buffers, written once (page faults included)
    body = [&] {
#pragma omp parallel for schedule(dynamic)
      for (Index h = 0; h < 2 * kHeads; ++h) {
        MatrixD G(n, n);
        G.setZero();
        benchmark::DoNotOptimize(G.data());
      }
    };
  }
  for (auto _ : state) body();
  if (flops > 0)
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void BM_Lanczos(benchmark::State& state, std::string variant) {
  const Index n = state.range(0);
  SpectralOptions o;
  o.method = SpectralMethod::Lanczos;
  o.tol = sizeof(T) == 8 ? 1e-8 : 1e-6;
  SpectralResult r;
  for (auto _ : state) {
    Linearization<T> lin(make_variant<T>(variant), input(n));
    r = spectral_norm(lin, o);
  }
  state.counters["matvecs"] = static_cast<double>(r.matvecs);
  state.counters["sigma"] = r.lipschitz;
  state.counters["sigma_x1e12"] = (r.lipschitz - 0.25) * 1e12;  // shows digits the console rounds away
}

// Matvecs Spectra needs to reach tol 1e-8 for a given Krylov subspace size (ncv): Spectra checks
// convergence only after each restart, so the count is quantised by ncv.
void BM_LanczosKrylov(benchmark::State& state) {
  const Index n = state.range(0);
  SpectralOptions o;
  o.method = SpectralMethod::Lanczos;
  o.tol = 1e-8;
  o.krylov_dim = static_cast<int>(state.range(1));
  SpectralResult r;
  for (auto _ : state) {
    Linearization<double> lin(make_variant<double>("baseline"), input(n));
    r = spectral_norm(lin, o);
  }
  state.counters["matvecs"] = static_cast<double>(r.matvecs);
  state.counters["sigma_x1e12"] = (r.lipschitz - 0.25) * 1e12;
}

void register_all() {
  for (Index n : {64, 256})
    for (Index ncv : {6, 10, 15, 20, 30, 45})
      benchmark::RegisterBenchmark("BM_LanczosKrylov", BM_LanczosKrylov)->Args({n, ncv})->UseRealTime()
          ->MeasureProcessCPUTime()->Iterations(1)->Unit(benchmark::kSecond);
  const std::vector<std::string> variants = {"baseline", "fast", "fast_b64", "fast_b256", "no_causal_blocks",
                                             "no_fuse", "no_workspace", "heads_serial", "dense_only_workspace"};
  for (Index n : {64, 256, 1024}) {
    const int it = n <= 64 ? 40 : n <= 256 ? 10 : 3;
    for (const auto& v : variants) {
      benchmark::RegisterBenchmark(("BM_Product<f64>/" + v).c_str(), BM_Product<double>, v)
          ->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it)->Unit(benchmark::kMillisecond);
    }
    for (const auto& v : {std::string("baseline"), std::string("fast")})
      benchmark::RegisterBenchmark(("BM_Product<f32>/" + v).c_str(), BM_Product<float>, v)
          ->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it)->Unit(benchmark::kMillisecond);
    for (const auto& p : {"qkv_gemm", "wo_gemm", "head_gemms", "softmax_jacobian", "alloc_nn"})
      benchmark::RegisterBenchmark((std::string("BM_Piece/") + p).c_str(), BM_Piece, std::string(p))
          ->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(it)->Unit(benchmark::kMillisecond);
  }
  for (Index n : {64, 256, 1024})
    for (const auto& v : {std::string("baseline"), std::string("fast")})
      benchmark::RegisterBenchmark(("BM_Lanczos<f64>/" + v).c_str(), BM_Lanczos<double>, v)
          ->Arg(n)->UseRealTime()->MeasureProcessCPUTime()->Iterations(1)->Unit(benchmark::kSecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
