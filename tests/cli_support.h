// Running the built CLI from tests: exit code, stdout and stderr apart; the layer files it reads.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "attention/layer.h"
#include "bytes_support.h"  // read_bytes
#include "file_support.h"   // scratch_dir
#include "io/npy.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace lipattn::testing {

// What a command printed, kept apart: stdout holds results (JSON with --json), stderr progress, notes
// and errors, so a test that parses stdout also checks that nothing else went there.
struct CommandResult {
  int code = -1;    // exit code; -1 when killed by a signal (a crash)
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a shell command line; its stderr goes to a temporary file read back after it exits.
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  char err_path[] = "/tmp/lipattn-test-stderr-XXXXXX";
  const int fd = ::mkstemp(err_path);
  if (fd < 0) return r;
  ::close(fd);
  FILE* pipe = popen(("{ " + command + " ; } 2>'" + err_path + "'").c_str(), "r");
  if (pipe) {
    std::array<char, 4096> buffer;
    size_t got;
    while ((got = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.out.append(buffer.data(), got);
    const int status = pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  r.err = read_bytes(err_path);
  std::filesystem::remove(err_path);
  return r;
}

// build/lipattn with `arguments` (shell syntax: quote paths that may hold spaces).
inline CommandResult run_cli(const std::string& arguments) {
  std::string command = "'";  // appended piece by piece: GCC 12's -Wrestrict misfires on "'" + std::string&&
  command += LIPATTN_BINARY;
  command += "' ";
  command += arguments;
  return run_command(command);
}

// A matrix (row-major, shape [rows, cols]) or a vector (shape [size]) as a tensor to write.
inline io::TensorToWrite tensor(const std::string& name, const MatrixD& m) {
  return {name, {m.rows(), m.cols()}, std::vector<double>(m.data(), m.data() + m.size())};
}
inline io::TensorToWrite tensor(const std::string& name, const VectorD& v) {
  return {name, {v.size()}, std::vector<double>(v.data(), v.data() + v.size())};
}

// A layer with W_O and all four biases under the names `--weights` reads (q/k/v/o.weight, .bias),
// in that order; with `pre`, also its pre-norm (pre_norm.weight, pre_norm.bias). Spelled out here
// rather than written by the library, so the tests also check the names the CLI expects.
inline std::vector<io::TensorToWrite> layer_tensors(const AttentionWeights& w) {
  return {tensor("q.weight", w.w_q), tensor("k.weight", w.w_k), tensor("v.weight", w.w_v), tensor("o.weight", w.w_o),
          tensor("q.bias", w.b_q),   tensor("k.bias", w.b_k),   tensor("v.bias", w.b_v),   tensor("o.bias", w.b_o)};
}
inline std::vector<io::TensorToWrite> layer_tensors(const AttentionWeights& w, const NormWeights& pre) {
  std::vector<io::TensorToWrite> tensors = layer_tensors(w);
  tensors.push_back(tensor("pre_norm.weight", pre.gamma));
  tensors.push_back(tensor("pre_norm.bias", pre.beta));
  return tensors;
}

// A one-head layer in the paper's form (tensors A and V) as dir/paper.safetensors, and X as dir/x.npy.
inline void write_paper_files(const std::filesystem::path& dir, const MatrixD& A, const MatrixD& V, const MatrixD& X) {
  io::write_safetensors(dir / "paper.safetensors", {tensor("A", A), tensor("V", V)}, io::DType::F64);
  io::write_npy(dir / "x.npy", X);
}

// One layer and an input on disk, as `--weights` and `--input` read them, with the values written.
struct LayerFiles {
  std::filesystem::path dir, weights, input;  // scratch folder, layer.safetensors, x.npy
  AttentionWeights w;
  NormWeights pre;  // a LayerNorm, for --pre-norm layernorm
  MatrixD X;
};

// A causal 2-head layer (d = 6, k = 3) with W_O and all four biases (entries of sd `sd`), a LayerNorm
// with bias and a 5 × 6 input, drawn in that order from `seed`, written to the fresh scratch folder
// `name`: layer.safetensors in `dtype` (with the pre-norm's tensors when `with_pre_norm`) and x.npy.
inline LayerFiles write_layer_files(const std::string& name, std::uint64_t seed, double sd, bool with_pre_norm = true,
                                    io::DType dtype = io::DType::F64) {
  LayerFiles f;
  f.dir = scratch_dir(name);
  std::mt19937_64 rng(seed);
  f.w = random_attention(rng, AttentionOptions{2, 6, 3, 3, true, true, true, 6, sd});
  f.pre = random_norm(rng, NormKind::LayerNorm, 6, true);
  f.X = random_matrix(rng, 5, 6);
  f.weights = f.dir / "layer.safetensors";
  f.input = f.dir / "x.npy";
  io::write_safetensors(f.weights, with_pre_norm ? layer_tensors(f.w, f.pre) : layer_tensors(f.w), dtype);
  io::write_npy(f.input, f.X);
  return f;
}

}  // namespace lipattn::testing
