// The whole-block experiments of `lipattn reproduce` (docs/experiments.md, "Whole layers and whole
// models"): the catalogue's grids, kind "block" jobs (planning errors name the key; a stack of one
// layer is the layer; the composition's product bounds the exact value and is the product of its
// factors), and the report section on a tiny random GPT-2 (every number in its tables finite).
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "experiments/analysis.h"
#include "experiments/catalogue.h"
#include "experiments/jobs.h"
#include "models_fixture.h"

namespace lipattn::experiments {
namespace {

namespace fs = std::filesystem;

// A tiny random GPT-2 (d = 16, 4 heads, 3 layers, 32 positions): every block job runs in milliseconds.
std::string tiny_gpt2(const fs::path& dir) {
  fixture::Options o;
  o.layers = 3;
  fixture::write_config(dir, fixture::make(o).config);
  return "random:" + (dir / "config.json").string();
}

nlohmann::json block_spec(const std::string& model, nlohmann::json fields) {
  nlohmann::json spec = {{"name", "t"}, {"kind", "block"}, {"model", model}, {"ids_seed", 3}, {"tol", 1e-10}};
  spec.update(fields);
  return spec;
}

BlockResult run_one(JobRunner& runner, const nlohmann::json& spec) {
  const PlannedSweep plan = plan_sweep(spec);
  EXPECT_EQ(plan.jobs.size(), 1u);
  runner.prepare(plan.jobs);
  return std::get<BlockResult>(runner.compute(plan.jobs.at(0)));
}

TEST(BlocksCatalogue, GridsOfTheQuickAndFullRuns) {
  for (const bool quick : {false, true}) {
    ReproduceOptions o;
    o.quick = quick;
    o.only = {"blocks-"};
    std::map<std::string, std::size_t> jobs;
    std::set<std::string> depths;
    for (const auto& e : reproduce_experiments(o)) {
      EXPECT_EQ(e.group, ExperimentGroup::Blocks) << e.name;
      EXPECT_EQ(e.spec["kind"], "block") << e.name;
      // Real text windows whenever the shared text is there.
      const bool stories = e.name.rfind("blocks-stories", 0) == 0;
      if (stories || !blocks_text_file().empty()) {
        EXPECT_TRUE(e.spec.contains("text")) << e.name;
      }
      const PlannedSweep plan = plan_sweep(e.spec);
      jobs[e.name] = plan.jobs.size();
      if (e.name == "blocks-gpt2-depth")
        for (const auto& job : plan.jobs) depths.insert(job.spec["layers"].get<std::string>());
    }
    for (const char* model : {"gpt2", "bert"})
      for (const char* what : {"layer", "model", "depth"})
        EXPECT_TRUE(jobs.count(fmt::format("blocks-{}-{}", model, what))) << model << what;
    // docs/experiments.md: quick 3 n × layers 0, 11; 3 n; depths 1, 2, 4, 6 at n = 8. Full: 13 n × 2
    // windows × layers 0, 6, 11; 7 n × 2; depths 1..12 at n = 32, 2 windows.
    EXPECT_EQ(jobs["blocks-gpt2-layer"], quick ? 6u : 78u);
    EXPECT_EQ(jobs["blocks-bert-model"], quick ? 3u : 14u);
    EXPECT_EQ(jobs["blocks-gpt2-depth"], quick ? 4u : 24u);
    EXPECT_EQ(depths.size(), quick ? 4u : 12u);
    EXPECT_TRUE(depths.count(quick ? "0:6" : "0:12"));
    if (!trained_model_file().empty() && !trained_text_file().empty()) {
      EXPECT_EQ(jobs.at("blocks-stories-depth"), quick ? 10u : 20u);  // k = 1..5, 2 (4) windows
      EXPECT_EQ(jobs.at("blocks-stories-layer"), quick ? 14u : 18u * 2 * 5);
    }
  }
}

TEST(BlockJob, PlanningErrorsNameTheKey) {
  const fs::path dir = fixture::temp_dir("blocks-plan");
  const std::string model = tiny_gpt2(dir);
  const std::pair<nlohmann::json, std::string> cases[] = {
      {{{"block", "attn"}, {"n", {4}}}, "block"},
      {{{"block", "stack"}, {"n", {4}}}, "layers"},
      {{{"block", "stack"}, {"layers", "0:4"}, {"n", {4}}}, "layers"},
      {{{"block", "stack"}, {"layers", "2:2"}, {"n", {4}}}, "layers"},
      {{{"block", "layer"}, {"layer", 3}, {"n", {4}}}, "layer"},
      {{{"block", "model"}, {"n", {4}}, {"composition", "yes"}}, "composition"},
      {{{"block", "model"}, {"n", {64}}}, "n"},
  };
  for (const auto& [fields, key] : cases) {
    try {
      plan_sweep(block_spec(model, fields));
      ADD_FAILURE() << "no error for " << fields.dump();
    } catch (const InputError& e) {
      EXPECT_EQ(e.field(), key) << fields.dump() << ": " << e.what();
    }
  }
  fs::remove_all(dir);
}

TEST(BlockJob, StackOfOneLayerIsTheLayerAndTheProductBoundsTheModel) {
  const fs::path dir = fixture::temp_dir("blocks-jobs");
  const std::string model = tiny_gpt2(dir);
  JobRunner runner;
  const BlockResult layer = run_one(runner, block_spec(model, {{"block", "layer"}, {"layer", 0}, {"n", {12}}}));
  const BlockResult stack = run_one(runner, block_spec(model, {{"block", "stack"}, {"layers", "0:1"}, {"n", {12}}}));
  EXPECT_NEAR(stack.lipschitz, layer.lipschitz, 1e-8 * layer.lipschitz);
  ASSERT_TRUE(stack.composition);
  ASSERT_EQ(stack.composition->factors.size(), 1u);
  EXPECT_NEAR(stack.composition->ratio, 1.0, 1e-8);
  EXPECT_FALSE(layer.composition);

  const BlockResult whole = run_one(runner, block_spec(model, {{"block", "model"}, {"n", {12}}}));
  ASSERT_TRUE(whole.composition);
  EXPECT_EQ(whole.composition->factors.size(), 4u);  // 3 layers and ln_f
  double product = 1;
  for (const auto& f : whole.composition->factors) product *= f.lipschitz;
  EXPECT_NEAR(whole.composition->product, product, 1e-12 * product);
  EXPECT_GE(whole.composition->product, whole.lipschitz * (1 - 1e-8));
  EXPECT_GE(whole.concentration.effective_tokens, 1.0);
  EXPECT_LE(whole.concentration.effective_tokens, 12.0 + 1e-9);
  // The layer's first factor is the layer measured at the same window.
  EXPECT_NEAR(whole.composition->factors[0].lipschitz, layer.lipschitz, 1e-7 * layer.lipschitz);

  const BlockResult bare =
      run_one(runner, block_spec(model, {{"block", "model"}, {"n", {12}}, {"composition", false}}));
  EXPECT_FALSE(bare.composition);
  EXPECT_NEAR(bare.lipschitz, whole.lipschitz, 1e-8 * whole.lipschitz);
  // The record reads back as it was written.
  const JobResult back = result_from_json(JobKind::Block, result_to_json(whole));
  EXPECT_EQ(lipschitz(back), whole.lipschitz);
  EXPECT_EQ(std::get<BlockResult>(back).composition->product, whole.composition->product);
  EXPECT_THROW(result_from_json(JobKind::Block, nlohmann::json{{"lipschitz", 1.0}}), InputError);
  fs::remove_all(dir);
}

// The section on a tiny grid: sweeps of the three kinds of blocks experiment, then the analysis.
TEST(BlocksSection, TinyGridGivesFitsDepthAndCompositionTables) {
  const fs::path dir = fixture::temp_dir("blocks-section");
  const std::string model = tiny_gpt2(dir);
  ReproduceOptions o;
  o.out = dir / "out";
  fs::create_directories(o.out / "results");
  std::vector<Experiment> experiments;
  auto add = [&](const std::string& what, nlohmann::json fields) {
    Experiment e;
    e.name = "blocks-tiny-" + what;
    e.group = ExperimentGroup::Blocks;
    e.title = "tiny GPT-2, " + what;
    e.setting = "random ids";
    e.model = model;
    e.spec = block_spec(model, fields);
    e.spec["name"] = e.name;
    experiments.push_back(e);
  };
  add("layer", {{"block", "layer"}, {"layer", {0, 2}}, {"n", {2, 4, 8, 16}}, {"samples", 2}});
  add("model", {{"block", "model"}, {"n", {2, 4, 8, 16}}});
  add("depth", {{"block", "stack"}, {"layers", {"0:1", "0:2", "0:3"}}, {"n", {8}}, {"samples", 2}});
  std::vector<PlannedSweep> sweeps;
  for (const auto& e : experiments) sweeps.push_back(plan_sweep(e.spec));
  SweepsOptions run;
  run.run.workers = 1;
  run.run.progress = false;
  run.results_path = [&](const PlannedSweep& s) { return (o.out / "results" / (s.name + ".jsonl")).string(); };
  const SweepsSummary summary = run_sweeps(sweeps, run);
  ASSERT_EQ(summary.failed, 0);
  ASSERT_EQ(summary.ran, 16 + 4 + 6);

  Analysis a(o, experiments);
  const Section section = blocks_section(a);
  EXPECT_EQ(section.title, "Whole layers and whole models");
  std::set<std::string> quantities;
  for (const auto& f : a.fits) {
    quantities.insert(f.quantity);
    EXPECT_TRUE(std::isfinite(f.exponent)) << f.quantity;
    EXPECT_LT(f.ci_low, f.exponent);
    EXPECT_GT(f.ci_high, f.exponent);
  }
  EXPECT_EQ(quantities, (std::set<std::string>{"lipschitz_layer0", "lipschitz_layer2", "lipschitz", "product"}));
  std::vector<const Table*> tables;
  int figures = 0;
  for (const auto& b : section.blocks) {
    if (b.kind == Block::Kind::Table) tables.push_back(&b.table);
    if (b.kind == Block::Kind::Figure) ++figures;
  }
  ASSERT_EQ(tables.size(), 3u);  // L against n, depth, model composition
  EXPECT_EQ(tables[0]->rows.size(), 4u);
  ASSERT_EQ(tables[1]->rows.size(), 3u);  // k = 1, 2, 3
  EXPECT_EQ(tables[2]->rows.size(), 4u);  // n = 2, 4, 8, 16
  EXPECT_EQ(figures, 2);                  // L against n, L against depth
  // Depth k = 1: the product is the exact value; deeper, the ratio is at least 1. No cell is "–"
  // except the bound product (a bound exists or not) and the product row's effective tokens.
  EXPECT_EQ(tables[1]->rows[0][6], "1");
  for (const auto& row : tables[1]->rows) {
    for (std::size_t c : {4, 5, 6, 8}) EXPECT_TRUE(std::isfinite(std::stod(row[c]))) << row[c];
    EXPECT_GE(std::stod(row[6]), 1 - 1e-6);
  }
  for (const auto& row : tables[2]->rows)
    for (std::size_t c : {3, 4, 5, 7}) EXPECT_TRUE(std::isfinite(std::stod(row[c]))) << row[c];
  EXPECT_NE(section.blocks[1].text.find("L ∝ n^"), std::string::npos) << section.blocks[1].text;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lipattn::experiments
