// Job kinds: the authors' quantity against a dense Jacobian, a window job against `measure --model`'s
// library path, the adversarial growth exponent on the embedded default (random models), and the
// saturation of the construction past n*.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "attention/layer.h"
#include "common/error.h"
#include "experiments/fit.h"
#include "experiments/jobs.h"
#include "models/measure_model.h"
#include "models/tokenizer.h"
#include "models_fixture.h"
#include "spectral/operator.h"
#include "spectral/spectral_norm.h"

namespace lipattn::experiments {
namespace {

MatrixD random_matrix(Index rows, Index cols, std::uint64_t seed, double scale = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  MatrixD M(rows, cols);
  for (Index i = 0; i < M.size(); ++i) M.data()[i] = normal(rng);
  return M;
}

TEST(AuthorsQuantity, IsTheSquareRootOfTheNormOfJTransposeF) {
  LayerSpec spec;
  spec.attention.heads = 2;
  spec.attention.w_q = random_matrix(4, 5, 1, 0.7);
  spec.attention.w_k = random_matrix(4, 5, 2, 0.7);
  spec.attention.w_v = random_matrix(4, 5, 3);
  spec.attention.w_o = random_matrix(5, 4, 4);
  const MatrixD X = random_matrix(6, 5, 5);
  // Independent: the dense Jacobian, and f(X) from a fresh forward pass.
  Linearization<double> linear(build_map<double>(spec), X);
  const MatrixD J = assemble_dense(linear);
  const MatrixD Y = build_map<double>(spec)->forward(X)->output;
  const VectorD y = Eigen::Map<const VectorD>(Y.data(), Y.size());
  const AuthorsQuantity q = authors_quantity(spec, X);
  EXPECT_NEAR(q.value, std::sqrt((J.transpose() * y).norm()), 1e-12 * q.value);
  EXPECT_NEAR(q.output_norm, y.norm(), 1e-12 * y.norm());
  // It is not ‖J‖₂ (that is the point of reporting both).
  const double sigma = Eigen::JacobiSVD<MatrixD>(J).singularValues()(0);
  EXPECT_GT(std::abs(q.value - sigma), 1e-3 * sigma);
}

TEST(WindowJob, MatchesMeasureModelOnTheSameIds) {
  const nlohmann::json spec = {{"name", "t"}, {"kind", "window"}, {"model", "random:gpt2"}, {"layer", 0},
                               {"n", {5, 9}}, {"samples", 2},       {"ids_seed", 3}};
  const PlannedSweep plan = plan_sweep(spec);
  ASSERT_EQ(plan.jobs.size(), 4u);
  JobRunner runner;
  runner.prepare(plan.jobs);
  const Job& job = plan.jobs[3];
  EXPECT_EQ(job.spec["block"], "attn");
  EXPECT_EQ(job.spec["causal"], true);
  const nlohmann::json result = runner.run(job, 1);
  const std::vector<int> ids = runner.window_ids(job.spec);
  ASSERT_EQ(ids.size(), 9u);
  EXPECT_NE(ids, runner.window_ids(plan.jobs[2].spec));  // another sample, other ids
  models::ModelMeasureRequest request;
  request.model = "random:gpt2";
  request.layer = 0;
  request.ids = ids;
  SpectralOptions options;
  options.tol = 1e-10;
  double expected = 0, radius = 0;
  models::measure_model(request, options, Precision::F64, [&](const models::BlockMeasurement& r) {
    expected = r.lipschitz;
    radius = r.radius;
  });
  EXPECT_NEAR(result["lipschitz"].get<double>(), expected, 1e-6 * expected);
  EXPECT_NEAR(result["radius"].get<double>(), radius, 1e-12 * radius);
  EXPECT_GT(result["authors"].get<double>(), 0);
}

TEST(WindowJob, TextWindowsRunOnAcrossNAndStopWhenTheTextRunsOut) {
  const std::string text = std::string(LIPATTN_SOURCE_DIR) + "/../shared/data/text/carroll-alice.txt";
  // 36,705 BERT tokens: n = 400 and 500 with 50 windows each need 45,000.
  const nlohmann::json spec = {{"name", "t"}, {"kind", "window"}, {"model", "random:bert-base-uncased"},
                               {"layer", 0},  {"n", {400, 500}},  {"samples", 50},
                               {"text", text}};
  const PlannedSweep plan = plan_sweep(spec);
  ASSERT_FALSE(plan.notes.empty());
  EXPECT_LT(plan.jobs.size(), 100u);
  EXPECT_GT(plan.jobs.size(), 50u);
  std::size_t expected_start = 0;
  for (const auto& job : plan.jobs) {
    EXPECT_EQ(job.spec["start"].get<std::size_t>(), expected_start);
    expected_start += job.spec["n"].get<std::size_t>();
  }
}

// Two GPT-2 folders reading the same text with different tokenizers (the second keeps only the first
// 200 BPE merges, so it cuts the text into more, shorter tokens): each window holds its own folder's
// ids. Texts are tokenised once per process, so this checks the cache keeps them apart.
TEST(WindowJob, TextTokensComeFromEachModelsOwnTokenizer) {
  namespace fs = std::filesystem;
  const fs::path shared = fs::path(LIPATTN_SOURCE_DIR) / ".." / "shared" / "data";
  const std::string text = (shared / "text" / "carroll-alice.txt").string();
  fixture::Options o;
  o.vocab = 50257;
  o.positions = 64;
  const fixture::Checkpoint c = fixture::make(o);
  const fs::path full = fixture::write(c, io::DType::F32, "tok-full"), short_merges = fixture::write(c, io::DType::F32, "tok-short");
  for (const fs::path& dir : {full, short_merges}) fs::copy_file(shared / "gpt2" / "vocab.json", dir / "vocab.json");
  fs::copy_file(shared / "gpt2" / "merges.txt", full / "merges.txt");
  {
    std::ifstream in(shared / "gpt2" / "merges.txt");
    std::ofstream out(short_merges / "merges.txt");
    std::string line;
    for (int i = 0; i < 201 && std::getline(in, line); ++i) out << line << "\n";  // header + 200 merges
  }
  JobRunner runner;
  for (const fs::path& dir : {full, short_merges}) {
    const nlohmann::json spec = {{"name", "t"}, {"kind", "window"}, {"model", dir.string()}, {"layer", 0},
                                 {"n", {8, 40}}, {"samples", 2},     {"text", text}};
    const PlannedSweep plan = plan_sweep(spec);
    ASSERT_EQ(plan.jobs.size(), 4u);
    const std::vector<int> tokens =
        models::ModelTokenizer::load(models::ModelType::Gpt2, dir).encode(models::read_text(text));
    for (const auto& job : plan.jobs) {
      const std::size_t start = job.spec["start"].get<std::size_t>(), n = job.spec["n"].get<std::size_t>();
      const std::vector<int> expected(tokens.begin() + start, tokens.begin() + start + n);
      EXPECT_EQ(runner.window_ids(job.spec), expected) << dir << " at token " << start;
    }
  }
  // The two tokenizers do disagree on these windows (else the test could not fail).
  const auto a = models::ModelTokenizer::load(models::ModelType::Gpt2, full).encode(models::read_text(text));
  const auto b = models::ModelTokenizer::load(models::ModelType::Gpt2, short_merges).encode(models::read_text(text));
  EXPECT_NE(std::vector<int>(a.begin(), a.begin() + 40), std::vector<int>(b.begin(), b.begin() + 40));
  fs::remove_all(full);
  fs::remove_all(short_merges);
}

// The acceptance check on the embedded default: on random models, the construction's L grows like
// √n while n < n*, i.e. the fitted exponent lies in [0.4, 0.6].
TEST(ConstructionJob, AdversarialExponentIsAboutOneHalfBelowNStar) {
  struct Setting {
    nlohmann::json spec;
  };
  const std::vector<nlohmann::json> settings = {
      {{"model", "random:bert-base-uncased"}, {"layer", 0}, {"head", 0}, {"n_star", 1e6}},
      {{"model", "random:gpt2"}, {"layer", 0}, {"head", 0}, {"radius", 100}},
  };
  for (nlohmann::json spec : settings) {
    spec["name"] = "adv";
    spec["kind"] = "construction";
    spec["n"] = {{"from", 2}, {"to", 97}, {"step", 10}};  // the paper's grid, every other point
    const PlannedSweep plan = plan_sweep(spec);
    JobRunner runner;
    runner.prepare(plan.jobs);
    std::vector<double> n, L;
    for (const auto& job : plan.jobs) {
      const nlohmann::json r = runner.run(job, 1);
      ASSERT_TRUE(r["applies"].get<bool>());
      ASSERT_LT(job.spec["n"].get<double>(), std::exp(r["log_n_star"].get<double>()));
      n.push_back(job.spec["n"].get<double>());
      L.push_back(r["lipschitz"].get<double>());
      // The set bounds hold at the construction (it lies in B_R^n).
      EXPECT_GE(r["set_bounds"]["best"].get<double>(), r["lower"].get<double>() * (1 - 1e-9));
    }
    const PowerLawFit f = fit_power_law(n, L);
    EXPECT_GE(f.exponent, 0.4) << spec.dump();
    EXPECT_LE(f.exponent, 0.6) << spec.dump();
  }
}

TEST(RegimeJob, ConstructionSaturatesPastNStar) {
  const nlohmann::json spec = {{"name", "mf"},   {"kind", "regime"}, {"regime", "construction"}, {"model", "toy"},
                               {"d", 4},         {"n_star", 20},     {"full_max", 64},
                               {"n", {2, 3, 2000, 20000, 200000}}};
  const PlannedSweep plan = plan_sweep(spec);
  JobRunner runner;
  std::vector<double> L, full;
  for (const auto& job : plan.jobs) {
    const nlohmann::json r = runner.run(job, 1);
    L.push_back(r["lipschitz"].get<double>());
    if (r["full"].is_number()) {
      // The exact 2-point reduction agrees with the full n-token computation.
      EXPECT_NEAR(r["full"].get<double>(), r["lipschitz"].get<double>(), 1e-6 * r["lipschitz"].get<double>());
    }
  }
  // Past n* (20) the growth stops: from 2,000 to 200,000 tokens L changes by far less than √100 = 10.
  const double slope = std::log(L[4] / L[2]) / std::log(100.0);
  EXPECT_LT(slope, 0.1);
}

// A sweep's bad value is an InputError that names the JSON key it came from (not a CLI flag).
TEST(PlanSweep, ErrorsNameTheJsonKey) {
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"kind", "nope"}, {"model", "toy"}, {"n", {2}}}, "kind"},
      {{{"kind", "construction"}, {"model", "toy"}, {"n", {2}}}, "radius"},
      {{{"kind", "window"}, {"model", "toy"}, {"n", {2}}}, "model"},
      {{{"kind", "window"}, {"model", "random:gpt2"}, {"layer", 40}, {"n", {4}}}, "layer"},
      {{{"kind", "window"}, {"model", "random:gpt2"}, {"n", {4000}}}, "n"},
      {{{"kind", "construction"}, {"model", "toy"}, {"radius", 1.0}, {"n", {{"from", 2}, {"to", 9}, {"step", 0}}}},
       "n"},
      {{{"kind", "construction"}, {"model", "toy"}, {"radius", 1.0}, {"n", {2}}, {"samples", 0}}, "samples"},
      {{{"kind", "regime"}, {"regime", "both"}, {"model", "toy"}, {"radius", 1.0}, {"n", {2}}}, "regime"},
      {{{"kind", "construction"}, {"model", "random:gpt2"}, {"head", "all"}, {"radius", 1.0}, {"n", {2}}}, "head"},
  };
  for (const auto& [spec, field] : cases) {
    try {
      plan_sweep(spec);
      ADD_FAILURE() << "no error for " << spec.dump();
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), field) << spec.dump() << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();
    }
  }
  // Found when the job runs: the R a toy head's n* would need.
  const PlannedSweep plan = plan_sweep({{"kind", "construction"}, {"model", "toy"}, {"n_star", 0.5}, {"n", {2}}});
  JobRunner runner;
  try {
    runner.run(plan.jobs.front(), 1);
    ADD_FAILURE() << "no error for n_star = 0.5";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "n_star") << e.what();
  }
}

}  // namespace
}  // namespace lipattn::experiments
