// `lipattn attack` end to end: the witness it saves lies in its set, `measure` on the witness gives
// the value it reports, the optimised bound is ≥ the paper's construction and ≤ the upper bound,
// and bad input exits with 2 and a message naming the flag or file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attack/optimize.h"
#include "cli_support.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "models/layer_file.h"
#include "spectral/measure.h"
#include "test_support.h"

using namespace lipattn;
using namespace lipattn::testing;
namespace fs = std::filesystem;

namespace {

struct Fixture : LayerFiles {
  fs::path weights_norm;  // the layer plus its pre_norm.* tensors (weights has none)
};

// A 2-head layer (d = 6) with W_O, biases and LayerNorm weights for a pre-norm.
Fixture make_fixture(const std::string& name) {
  Fixture f{write_layer_files(name, 7, 0.6, /*with_pre_norm=*/false), {}};
  f.weights_norm = f.dir / "layer_norm.safetensors";
  io::write_safetensors(f.weights_norm, layer_tensors(f.w, f.pre), io::DType::F64);
  return f;
}

nlohmann::json run_json(const std::string& args) {
  const bool attack = args.rfind("attack", 0) == 0;  // only attack has --quiet (no progress on stderr)
  const CommandResult r = run_cli(args + (attack ? " --json --quiet" : " --json"));
  EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
  const auto line = r.out.substr(0, r.out.find('\n'));
  return nlohmann::json::parse(line, nullptr, false);
}

// `measure --method lanczos` on the witness with the given layer flags.
double measure_witness(const fs::path& weights, const fs::path& witness, const std::string& layer_flags) {
  const nlohmann::json m = run_json("measure --weights " + weights.string() + " --input " + witness.string() + " " +
                                    layer_flags + " --method lanczos");
  return m.at("lower").get<double>();
}

TEST(CliAttack, BallWitnessIsInTheSetAndMeasuresToTheReportedValue) {
  const Fixture f = make_fixture("attack-ball");
  const fs::path witness = f.dir / "witness.npy";
  const std::string layer = "--heads 2 --causal --residual";
  const nlohmann::json j = run_json("attack --weights " + f.weights.string() + " --n 7 --radius 2.5 " + layer +
                                    " --restarts 2 --steps 25 --out " + witness.string());
  ASSERT_TRUE(j.is_object());
  const double lower = j.at("lower").get<double>();
  EXPECT_EQ(j.at("n"), 7);
  EXPECT_EQ(j.at("radius"), 2.5);
  EXPECT_EQ(j.at("witness"), witness.string());
  ASSERT_FALSE(j.at("construction").is_null());
  EXPECT_GE(lower, j.at("construction").get<double>());
  EXPECT_EQ(j.at("constructions").size(), 2u);
  EXPECT_TRUE(j.contains("n_star") && j.contains("upper"));
  if (!j.at("upper").is_null()) {
    EXPECT_GE(j.at("upper").get<double>(), lower);
  }
  // The witness: every token of norm ≤ R (to 1e-12), and `measure` on it says `lower`.
  const MatrixD X = io::read_npy_matrix(witness);
  ASSERT_EQ(X.rows(), 7);
  for (Index i = 0; i < X.rows(); ++i) EXPECT_LE(X.row(i).norm(), 2.5 * (1 + 1e-12));
  EXPECT_NEAR(measure_witness(f.weights, witness, layer), lower, 1e-9 * lower);
  // And the library on the same file and flags.
  models::LayerFileOptions o;
  o.heads = 2, o.causal = true, o.residual = true;
  const LayerSpec spec = models::load_layer_file(f.weights, o);
  EXPECT_NEAR(measure_local_lipschitz(spec, X).lipschitz, lower, 1e-9 * lower);
}

TEST(CliAttack, LayerNormImageAndAroundAnInput) {
  const Fixture f = make_fixture("attack-sets");
  // --pre-norm layernorm --layernorm: the set is the pre-norm's image, the map what follows it.
  const fs::path ln_witness = f.dir / "ln.npy";
  const nlohmann::json ln = run_json("attack --weights " + f.weights_norm.string() +
                                     " --n 4 --layernorm --heads 2 --pre-norm layernorm --restarts 1 --steps 20 --out " +
                                     ln_witness.string());
  EXPECT_EQ(ln.at("set"), "layernorm");
  EXPECT_TRUE(ln.at("construction").is_null());
  const MatrixD Y = io::read_npy_matrix(ln_witness);
  const double root_d = std::sqrt(6.0);
  for (Index i = 0; i < Y.rows(); ++i) {
    const RowVector<double> z = (Y.row(i) - f.pre.beta.transpose()).cwiseQuotient(f.pre.gamma.transpose());
    EXPECT_NEAR(z.mean(), 0.0, 1e-12);
    EXPECT_NEAR(z.norm(), root_d, 1e-12 * root_d);
  }
  const double ln_lower = ln.at("lower").get<double>();
  EXPECT_NEAR(measure_witness(f.weights, ln_witness, "--heads 2"), ln_lower, 1e-9 * ln_lower);

  // --around X.npy --eps: ‖X − X0‖_F ≤ ε, and the value is at least σ at X0 itself.
  const fs::path around_witness = f.dir / "around.npy";
  const std::string layer = "--heads 2 --pre-norm layernorm --residual";
  const nlohmann::json around = run_json("attack --weights " + f.weights_norm.string() + " --around " + f.input.string() +
                                         " --eps 0.3 " + layer + " --restarts 1 --steps 20 --out " +
                                         around_witness.string());
  EXPECT_EQ(around.at("n"), 5);
  const MatrixD W = io::read_npy_matrix(around_witness);
  EXPECT_LE((W - f.X).norm(), 0.3 * (1 + 1e-12));
  const double around_lower = around.at("lower").get<double>();
  EXPECT_NEAR(measure_witness(f.weights_norm, around_witness, layer), around_lower, 1e-9 * around_lower);
  EXPECT_GE(around_lower, measure_witness(f.weights_norm, f.input, layer) * (1 - 1e-9));
}

TEST(CliAttack, PaperOnlyIsTheConstruction) {
  const Fixture f = make_fixture("attack-paper");
  const nlohmann::json j = run_json("attack --weights " + f.weights.string() +
                                    " --n 6 --radius 3 --heads 2 --head 1 --construction paper");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("constructions").size(), 1u);
  EXPECT_EQ(j.at("constructions")[0].at("head"), 1);
  // Without ascent the best start is the rule's branch or the other one: ≥ the rule's value.
  EXPECT_GE(j.at("lower").get<double>(), j.at("construction").get<double>() * (1 - 1e-9));
}

// The message must mention every string given (the flag, and the value when it matters).
void expect_input_error(const std::string& args, const std::vector<std::string>& must_mention) {
  const CommandResult r = run_cli(args + " --quiet");
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  for (const auto& text : must_mention) EXPECT_NE(r.err.find(text), std::string::npos) << args << "\n" << r.err;
}
void expect_input_error(const std::string& args, const std::string& must_mention) {
  expect_input_error(args, std::vector<std::string>{must_mention});
}

TEST(CliAttack, BadInputExitsWithTwo) {
  const Fixture f = make_fixture("attack-errors");
  const std::string w = "attack --weights " + f.weights.string() + " --heads 2";
  expect_input_error(w + " --n 4", "choose exactly one set");
  expect_input_error(w + " --n 4 --radius 1 --layernorm", "choose exactly one set");
  expect_input_error(w + " --n 4 --radius 0", "--radius");
  expect_input_error(w + " --n 0 --radius 1", "--n");
  expect_input_error(w + " --n 4 --radius 1 --eps 0.1", "--eps");
  expect_input_error(w + " --around " + f.input.string(), "--eps");
  expect_input_error(w + " --around " + f.input.string() + " --eps -1", "--eps");
  expect_input_error(w + " --around " + f.input.string() + " --eps 0.1 --n 3", "--n");
  expect_input_error(w + " --around " + (f.dir / "missing.npy").string() + " --eps 0.1", "missing.npy");
  expect_input_error(w + " --n 4 --layernorm --construction paper", std::vector<std::string>{"--construction", "paper"});
  expect_input_error(w + " --n 4 --radius 1 --construction best", "--construction");
  expect_input_error(w + " --n 4 --radius 1 --head 2", std::vector<std::string>{"--head", "head 2"});
  expect_input_error(w + " --n 4 --radius 1 --restarts -1", "--restarts");
  const std::string wn = "attack --weights " + f.weights_norm.string() + " --heads 2";
  expect_input_error(wn + " --n 4 --layernorm --pre-norm rmsnorm", "rmsnorm");
  expect_input_error(wn + " --n 4 --layernorm --pre-norm layernorm --residual", "--residual");
  expect_input_error("attack --n 4 --radius 1", "--weights");
  expect_input_error("attack --weights " + (f.dir / "none.safetensors").string() + " --n 4 --radius 1",
                     "none.safetensors");
}

}  // namespace
