// `lipattn measure` end to end: results equal the library's, and every bad input gets exit code 2
// with a message naming the file, tensor or flag.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "spectral/measure.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;
namespace fs = std::filesystem;

namespace {

using Fixture = LayerFiles;

// A 2-head layer with W_O, biases and a pre-norm, written as F32 like a real export.
Fixture make_fixture(const std::string& name, io::DType dtype = io::DType::F64) {
  return write_layer_files(name, 42, 0.5, /*with_pre_norm=*/true, dtype);
}

std::string flags(const Fixture& f) {
  return "measure --weights " + f.weights.string() + " --input " + f.input.string() +
         " --heads 2 --causal --pre-norm layernorm --residual";
}

void expect_input_error(const std::string& args, const std::string& must_mention) {
  const CommandResult r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(must_mention), std::string::npos) << "message should mention '" << must_mention << "':\n" << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

}  // namespace

TEST(CliMeasure, JsonMatchesTheLibraryForEveryMethod) {
  const Fixture f = make_fixture("json");
  LayerSpec spec;
  spec.attention = f.w;
  spec.attention.causal = true;
  spec.pre_norm = f.pre;
  spec.residual = true;
  SpectralOptions o;
  o.method = SpectralMethod::Dense;
  const double exact = measure_local_lipschitz(spec, f.X, o).lipschitz;
  for (std::string method : {"dense", "lanczos", "power", "auto"}) {
    const CommandResult r = run_cli(flags(f) + " --json --method " + method);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"lipschitz", "lower", "method", "matvecs", "converged", "relative_residual", "seconds",
                            "n", "d", "heads", "causal"})
      EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_NEAR(j["lipschitz"].get<double>(), exact, 1e-9 * exact) << method;
    EXPECT_LE(j["lower"].get<double>(), exact * (1 + 1e-12)) << method;
    EXPECT_EQ(j["n"], 5);
    EXPECT_EQ(j["d"], 6);
    EXPECT_EQ(j["heads"], 2);
    EXPECT_EQ(j["causal"], true);
    EXPECT_TRUE(j["converged"].get<bool>());
  }
  const CommandResult f32 = run_cli(flags(f) + " --json --dtype f32 --method lanczos");
  ASSERT_EQ(f32.code, 0) << f32.err;
  EXPECT_NEAR(nlohmann::json::parse(f32.out)["lipschitz"].get<double>(), exact, 1e-5 * exact);
}

// Streaming attention (docs/theory.md §8) from the CLI: forced, or chosen by a budget too small for
// the stored matrices; same σ as stored; the JSON says which mode ran; f32 reports its check product.
TEST(CliMeasure, StorageModesAgreeAndAreReported) {
  const Fixture f = make_fixture("storage");
  const std::string base = flags(f) + " --json --method lanczos --tol 1e-12";
  const auto stored = nlohmann::json::parse(run_cli(base + " --storage stored").out);
  const auto streamed = nlohmann::json::parse(run_cli(base + " --storage streaming").out);
  const auto budget = nlohmann::json::parse(run_cli(base + " --max-memory 100").out);  // 100 bytes
  EXPECT_EQ(stored["storage"], "stored");
  EXPECT_EQ(streamed["storage"], "streaming");
  EXPECT_EQ(budget["storage"], "streaming");
  EXPECT_NEAR(streamed["lipschitz"].get<double>(), stored["lipschitz"].get<double>(),
              1e-10 * stored["lipschitz"].get<double>());
  const auto f32 = nlohmann::json::parse(run_cli(flags(f) + " --json --dtype f32 --method lanczos").out);
  ASSERT_TRUE(f32.contains("f32_check_difference")) << f32.dump();
  EXPECT_GT(f32["f32_check_difference"].get<double>(), 0);
  EXPECT_LE(f32["f32_check_difference"].get<double>(), 1e-5);
  EXPECT_FALSE(stored.contains("f32_check_difference"));
}

TEST(CliMeasure, HalfPrecisionFilesAndTheReadableSummary) {
  for (io::DType dtype : {io::DType::F32, io::DType::F16, io::DType::BF16}) {
    const Fixture f = make_fixture("dtype" + io::to_string(dtype), dtype);
    const CommandResult r = run_cli(flags(f));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("lipschitz"), std::string::npos) << r.out;
  }
}

TEST(CliMeasure, PaperFormFile) {
  const fs::path dir = scratch_dir("paper");
  std::mt19937_64 rng(3);
  const MatrixD A = random_matrix(rng, 4, 4), V = random_matrix(rng, 4, 4), X = random_matrix(rng, 7, 4);
  write_paper_files(dir, A, V, X);
  LayerSpec spec;
  spec.attention = AttentionWeights::paper_form(A, V);
  SpectralOptions o;
  o.method = SpectralMethod::Dense;
  const double exact = measure_local_lipschitz(spec, X, o).lipschitz;
  const CommandResult r = run_cli("measure --weights " + (dir / "paper.safetensors").string() + " --input " +
                                  (dir / "x.npy").string() + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR(nlohmann::json::parse(r.out)["lipschitz"].get<double>(), exact, 1e-9 * exact);
}

TEST(CliMeasure, EmbeddedDefaultRuns) {
  const CommandResult r = run_cli("measure --demo-n 16 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["d"], 768);
  EXPECT_EQ(j["heads"], 12);
  EXPECT_GT(j["lipschitz"].get<double>(), 0);
}

// With --json, stdout holds the JSON object and nothing else; a warning (here: the solver stops
// before --tol) goes to stderr, which --quiet does not silence.
TEST(CliMeasure, JsonStdoutHoldsOnlyJsonWarningsGoToStderr) {
  const Fixture f = make_fixture("stdout");
  for (const std::string quiet : {"", " --quiet"}) {
    const CommandResult r = run_cli(flags(f) + " --json --method power --max-iter 1 --tol 1e-15" + quiet);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);  // throws on anything but one JSON value
    EXPECT_FALSE(j["converged"].get<bool>());
    EXPECT_NE(r.err.find("warning: the solver did not reach --tol"), std::string::npos) << r.err;
  }
}

// --quiet leaves stderr empty on a successful run, whatever its duration, and every subcommand takes it.
TEST(CliMeasure, QuietLeavesStderrEmpty) {
  const Fixture f = make_fixture("quiet");
  const CommandResult r = run_cli(flags(f) + " --json --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_GT(nlohmann::json::parse(r.out)["lipschitz"].get<double>(), 0);
  for (const char* command : {"attack", "bound", "forward", "inspect", "meanfield", "measure", "reproduce", "sweep",
                              "tokenize"}) {
    const CommandResult help = run_cli(std::string(command) + " --help");
    EXPECT_EQ(help.code, 0) << command;
    EXPECT_NE(help.out.find("--quiet"), std::string::npos) << command << "\n" << help.out;
  }
}

TEST(CliMeasure, MissingTensor) {
  const fs::path dir = scratch_dir("missing");
  std::mt19937_64 rng(1);
  io::write_safetensors(dir / "l.safetensors", {tensor("q.weight", random_matrix(rng, 4, 4)),
                                                tensor("v.weight", random_matrix(rng, 4, 4))},
                        io::DType::F32);
  io::write_npy(dir / "x.npy", random_matrix(rng, 3, 4));
  expect_input_error("measure --weights " + (dir / "l.safetensors").string() + " --input " + (dir / "x.npy").string(),
                     "k.weight");
}

TEST(CliMeasure, ShapeMismatchBetweenTensors) {
  const fs::path dir = scratch_dir("mismatch");
  std::mt19937_64 rng(1);
  io::write_safetensors(dir / "l.safetensors",
                        {tensor("q.weight", random_matrix(rng, 4, 4)), tensor("k.weight", random_matrix(rng, 4, 5)),
                         tensor("v.weight", random_matrix(rng, 4, 4))},
                        io::DType::F32);
  io::write_npy(dir / "x.npy", random_matrix(rng, 3, 4));
  expect_input_error("measure --weights " + (dir / "l.safetensors").string() + " --input " + (dir / "x.npy").string(),
                     "k.weight");
  io::write_safetensors(dir / "o.safetensors",
                        {tensor("q.weight", random_matrix(rng, 4, 4)), tensor("k.weight", random_matrix(rng, 4, 4)),
                         tensor("v.weight", random_matrix(rng, 4, 4)), tensor("o.weight", random_matrix(rng, 4, 3))},
                        io::DType::F32);
  expect_input_error("measure --weights " + (dir / "o.safetensors").string() + " --input " + (dir / "x.npy").string(),
                     "o.weight");
}

TEST(CliMeasure, ShapeMismatchWithX) {
  const Fixture f = make_fixture("xshape");
  std::mt19937_64 rng(1);
  io::write_npy(f.dir / "x5.npy", random_matrix(rng, 3, 5));
  std::string args = flags(f);
  args.replace(args.find(f.input.string()), f.input.string().size(), (f.dir / "x5.npy").string());
  expect_input_error(args, "x5.npy");
  expect_input_error(flags(f) + " --heads 4", "--heads");  // 6 rows of q.weight do not split in 4 heads
}

TEST(CliMeasure, NonFiniteValues) {
  const Fixture f = make_fixture("nan");
  MatrixD X = f.X;
  X(2, 3) = std::numeric_limits<double>::quiet_NaN();
  {
    // Our writer refuses NaN, so write NumPy's layout by hand: magic, version 1.0, header, data.
    std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (5, 6), }";
    header.append(64 - (10 + header.size() + 1) % 64, ' ');
    header += '\n';
    std::ofstream out(f.dir / "nan.npy", std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    const std::uint16_t length = header.size();
    out.write(reinterpret_cast<const char*>(&length), 2);
    out << header;
    out.write(reinterpret_cast<const char*>(X.data()), X.size() * sizeof(double));
  }
  std::string args = flags(f);
  args.replace(args.find(f.input.string()), f.input.string().size(), (f.dir / "nan.npy").string());
  expect_input_error(args, "nan.npy");
  // A NaN inside a weight tensor: patch the bytes of an F64 file by hand.
  std::mt19937_64 rng(2);
  io::write_safetensors(f.dir / "w.safetensors",
                        {tensor("q.weight", random_matrix(rng, 6, 6)), tensor("k.weight", random_matrix(rng, 6, 6)),
                         tensor("v.weight", random_matrix(rng, 6, 6))},
                        io::DType::F64);
  {
    std::fstream file(f.dir / "w.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(0, std::ios::end);
    const auto size = static_cast<long>(file.tellg());
    const double nan = std::numeric_limits<double>::quiet_NaN();
    file.seekp(size - 8);  // the last value of v.weight
    file.write(reinterpret_cast<const char*>(&nan), 8);
  }
  expect_input_error("measure --weights " + (f.dir / "w.safetensors").string() + " --input " + f.input.string(),
                     "v.weight");
}

TEST(CliMeasure, TruncatedAndMalformedFiles) {
  const Fixture f = make_fixture("truncated");
  const auto size = fs::file_size(f.weights);
  fs::copy_file(f.weights, f.dir / "cut.safetensors");
  fs::resize_file(f.dir / "cut.safetensors", size - 100);
  expect_input_error("measure --weights " + (f.dir / "cut.safetensors").string() + " --input " + f.input.string(),
                     "cut.safetensors");
  std::ofstream(f.dir / "junk.safetensors") << "this is not a safetensors file";
  expect_input_error("measure --weights " + (f.dir / "junk.safetensors").string() + " --input " + f.input.string(),
                     "junk.safetensors");
  fs::copy_file(f.input, f.dir / "cut.npy");
  fs::resize_file(f.dir / "cut.npy", fs::file_size(f.input) - 9);
  expect_input_error(flags(f).replace(flags(f).find(f.input.string()), f.input.string().size(),
                                      (f.dir / "cut.npy").string()),
                     "cut.npy");
  expect_input_error("measure --weights " + (f.dir / "absent.safetensors").string() + " --input " + f.input.string(),
                     "absent.safetensors");
}

TEST(CliMeasure, UnknownFlagValues) {
  const Fixture f = make_fixture("flags");
  expect_input_error(flags(f) + " --method svd", "--method");
  expect_input_error(flags(f) + " --dtype f16", "--dtype");
  expect_input_error("measure --weights " + f.weights.string() + " --input " + f.input.string() +
                         " --heads 2 --pre-norm batchnorm",
                     "--pre-norm");
  expect_input_error(flags(f) + " --tol -1", "--tol");
  expect_input_error(flags(f) + " --max-memory lots", "--max-memory");
  expect_input_error(flags(f) + " --storage flash", "--storage");
  expect_input_error(flags(f) + " --krylov 2", "--krylov");
  expect_input_error(flags(f) + " --mixed-tol -1", "--mixed-tol");
  expect_input_error(flags(f) + " --frobnicate", "frobnicate");
  // The file holds pre_norm tensors: leaving out --pre-norm is an error, not a silent drop.
  expect_input_error("measure --weights " + f.weights.string() + " --input " + f.input.string() + " --heads 2",
                     "--pre-norm");
}

// --mixed-tol (docs/theory.md §4.5): a float32 phase, then float64; the JSON says so and counts the
// float32 products, and the value is the float64 solve's. --dominant-start gives the same value too.
TEST(MeasureCli, MixedPrecisionAndDominantStartGiveTheFloat64Value) {
  const std::string base = "measure --demo-n 24 --method lanczos --tol 1e-11 --json";
  const auto plain = nlohmann::json::parse(run_cli(base).out);
  const auto mixed = nlohmann::json::parse(run_cli(base + " --mixed-tol 1e-6").out);
  const auto hinted = nlohmann::json::parse(run_cli(base + " --dominant-start").out);
  EXPECT_FALSE(plain.contains("mixed"));
  EXPECT_EQ(mixed["mixed"], "used");
  EXPECT_GT(mixed["f32_matvecs"].get<long>(), 0);
  EXPECT_GT(mixed["matvecs"].get<long>(), mixed["f32_matvecs"].get<long>());
  const double sigma = plain["lipschitz"].get<double>();
  EXPECT_NEAR(mixed["lipschitz"].get<double>(), sigma, 1e-10 * sigma);
  EXPECT_NEAR(hinted["lipschitz"].get<double>(), sigma, 1e-10 * sigma);
  EXPECT_LT(mixed["relative_residual"].get<double>(), 1e-11);
}
