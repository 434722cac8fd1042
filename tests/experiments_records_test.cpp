// Typed job results (src/experiments/records.h): records written before the types existed read back
// and write out the same JSON; every kind's struct survives to_json and from_json; the renamed bound
// reads under its new name; a bad field is an InputError naming its key.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "experiments/records.h"

namespace lipattn::experiments {
namespace {

using nlohmann::json;

// One record of each kind and variant, written by `reproduce --quick` before issue 13 (bound
// "paper_data_dependent", since renamed).
std::vector<json> old_records() {
  std::ifstream in(std::string(LIPATTN_SOURCE_DIR) + "/tests/data/experiments/records_before_issue13.jsonl");
  std::vector<json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// The JSON with the renamed bound under its new name (keys and values).
json renamed(const json& j) {
  const std::string old_name = "paper_data_dependent", new_name = "released_code_data_dependent";
  if (j.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : j.items()) out[key == old_name ? new_name : key] = renamed(value);
    return out;
  }
  if (j.is_array()) {
    json out = json::array();
    for (const auto& value : j) out.push_back(renamed(value));
    return out;
  }
  return j.is_string() && j == old_name ? json(new_name) : j;
}

template <class F>
void expect_input_error(F&& f, const std::string& field, const std::string& words) {
  try {
    f();
    ADD_FAILURE() << "no InputError (expected one about '" << field << "')";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(Records, OldRecordsReadBackAndWriteTheSameJson) {
  const std::vector<json> lines = old_records();
  ASSERT_EQ(lines.size(), 6u);
  int windows = 0, with_bounds = 0, constructions = 0, attacks = 0, regimes = 0, spheres = 0;
  for (const json& line : lines) {
    const Record r = record_from_json(line);
    EXPECT_EQ(result_to_json(r.result), renamed(line["result"])) << line.dump();
    EXPECT_EQ(r.job, line["job"]);
    EXPECT_EQ(r.n, line["job"]["n"].get<double>());
    EXPECT_EQ(r.sweep, line["sweep"]);
    EXPECT_EQ(r.seconds, line["seconds"].get<double>());
    if (const auto* w = std::get_if<WindowResult>(&r.result)) {
      ++windows;
      EXPECT_EQ(r.kind, JobKind::Window);
      EXPECT_EQ(w->solver.lipschitz, line["result"]["lipschitz"].get<double>());
      EXPECT_EQ(w->authors, line["result"]["authors"].get<double>());
      if (w->local_bounds) {
        ++with_bounds;
        const auto& b = w->local_bounds->bounds;
        ASSERT_TRUE(b.count("released_code_data_dependent"));
        EXPECT_FALSE(b.count("paper_data_dependent"));
        EXPECT_TRUE(b.at("released_code_data_dependent").status.refuted());
        EXPECT_FALSE(b.at("structured").status.refuted());
      }
    } else if (const auto* c = std::get_if<ConstructionResult>(&r.result)) {
      ++constructions;
      EXPECT_TRUE(c->applies);
      EXPECT_EQ(c->radius_used, line["result"]["radius_used"].get<double>());
      EXPECT_EQ(c->set_bounds.best, line["result"]["set_bounds"]["best"].get<double>());
      if (c->attack) {
        ++attacks;
        EXPECT_EQ(c->attack->lower, line["result"]["attack_lower"].get<double>());
      }
    } else {
      const auto& g = std::get<RegimeResult>(r.result);
      ++regimes;
      if (g.input == RegimeResult::Input::Sphere) {
        ++spheres;
        EXPECT_EQ(g.matvecs, line["result"]["matvecs"].get<long>());
      } else {
        EXPECT_TRUE(std::isnan(g.full));  // written null: not computed at n = 10⁶
        EXPECT_EQ(g.log_n_star, line["result"]["log_n_star"].get<double>());
      }
    }
  }
  EXPECT_EQ(windows, 2);
  EXPECT_EQ(with_bounds, 1);
  EXPECT_EQ(constructions, 2);
  EXPECT_EQ(attacks, 1);
  EXPECT_EQ(regimes, 2);
  EXPECT_EQ(spheres, 1);
}

BoundsRecord some_bounds() {
  BoundsRecord b;
  b.bounds["structured"] = {1.5, {}};
  b.bounds["released_code_data_dependent"] = {0.25, {BoundStatus::Kind::Refuted, "a counterexample"}};
  b.bounds["n_independent"] = {std::numeric_limits<double>::infinity(), {}};
  b.best = 1.5;
  b.best_name = "structured";
  return b;
}

// Every struct to JSON and back: the same JSON again, and the typed fields as set.
TEST(Records, EveryKindSurvivesToJsonAndBack) {
  ConstructionResult c;
  c.radius_used = 3.5;
  c.applies = true;
  c.lambda_max = 0.75;
  c.lambda_min = -0.5;
  c.uses_lambda_max = false;
  c.log_n_star = 1e4;
  c.n_star = std::numeric_limits<double>::infinity();
  c.solver = {2.0, 1.999, 1e-9, SpectralMethod::Lanczos, 41, true, 0.125};
  c.authors = 1.25;
  c.output_norm = 7;
  c.value_norm = 0.5;
  c.score_norm = 0.25;
  c.set_bounds = c.local_bounds = some_bounds();
  c.attack = AttackRecord{2.5, 0};
  ConstructionResult not_applying;
  not_applying.radius_used = 1;
  RegimeResult gaussian;
  gaussian.input = RegimeResult::Input::Gaussian;
  gaussian.radius_used = 2;
  gaussian.sigma = 0.5;
  gaussian.lipschitz = 1.5;
  gaussian.merged = 1.25;
  gaussian.converged = true;  // query and full not computed: NaN, written null
  WindowResult w;
  w.solver = {0.5, 0.5, 1e-11, SpectralMethod::Dense, 96, true, 0.01};
  w.radius = 3;
  w.local_bounds = some_bounds();
  for (const JobResult& x : std::vector<JobResult>{c, not_applying, gaussian, w}) {
    const json j = result_to_json(x);
    const JobKind kind = std::holds_alternative<WindowResult>(x)         ? JobKind::Window
                         : std::holds_alternative<ConstructionResult>(x) ? JobKind::Construction
                                                                         : JobKind::Regime;
    EXPECT_EQ(result_to_json(result_from_json(kind, json::parse(j.dump()))), j) << j.dump();
  }
  const json j = json::parse(result_to_json(c).dump());
  EXPECT_TRUE(j["n_star"].is_null());
  EXPECT_EQ(j["local_bounds"]["bounds"]["n_independent"], "inf");
  EXPECT_EQ(j["local_bounds"]["status"]["released_code_data_dependent"], "refuted: a counterexample");
  EXPECT_EQ(j["method"], "lanczos");
  const auto back = std::get<ConstructionResult>(result_from_json(JobKind::Construction, j));
  EXPECT_TRUE(std::isinf(back.n_star));
  EXPECT_FALSE(back.uses_lambda_max);
  EXPECT_EQ(back.solver.method, SpectralMethod::Lanczos);
  EXPECT_EQ(back.solver.matvecs, 41);
  EXPECT_TRUE(std::isinf(back.local_bounds.bounds.at("n_independent").value));
  EXPECT_EQ(back.local_bounds.bounds.at("released_code_data_dependent").status.reason, "a counterexample");
  EXPECT_EQ(result_to_json(not_applying), json({{"radius_used", 1.0}, {"applies", false}}));
  EXPECT_EQ(lipschitz(c), 2.0);
  EXPECT_EQ(lipschitz(w), 0.5);
  EXPECT_EQ(lipschitz(gaussian), 1.5);
  EXPECT_TRUE(std::isnan(lipschitz(not_applying)));
  EXPECT_TRUE(result_to_json(gaussian)["full"].is_null());
  EXPECT_EQ(result_to_json(gaussian)["law"], "gaussian");
}

TEST(Records, BoundStatusIsAnEnumWithItsReason) {
  EXPECT_FALSE(BoundStatus::parse("proved").refuted());
  const BoundStatus s = BoundStatus::parse("refuted: fails when ‖Aᵀ z‖ ≫ ‖A z‖");
  EXPECT_TRUE(s.refuted());
  EXPECT_EQ(s.reason, "fails when ‖Aᵀ z‖ ≫ ‖A z‖");
  EXPECT_EQ(s.to_string(), "refuted: fails when ‖Aᵀ z‖ ≫ ‖A z‖");
  EXPECT_TRUE(BoundStatus::parse("refuted").refuted());
  const BoundStatus outside = BoundStatus::parse("not covered: a post-norm");
  EXPECT_EQ(outside.kind, BoundStatus::Kind::NotCovered);
  EXPECT_EQ(outside.reason, "a post-norm");
  EXPECT_EQ(outside.to_string(), "not covered: a post-norm");
  EXPECT_FALSE(outside.proved());
  expect_input_error([] { BoundStatus::parse("probably"); }, "status", "probably");
  expect_input_error([] { BoundStatus::parse("unrefuted"); }, "status", "unrefuted");
}

TEST(Records, BadFieldsNameTheirKey) {
  expect_input_error([] { result_from_json(JobKind::Window, {{"lipschitz", "large"}}); }, "lipschitz", "lipschitz");
  expect_input_error([] { result_from_json(JobKind::Window, {{"converged", 1}}); }, "converged", "converged");
  expect_input_error([] { result_from_json(JobKind::Regime, {{"law", "cauchy"}}); }, "law", "cauchy");
  expect_input_error(
      [] {
        result_from_json(JobKind::Construction,
                         {{"applies", true}, {"set_bounds", {{"bounds", {{"structured", 1.0}}}}}});
      },
      "status", "structured");
  expect_input_error(
      [] {
        record_from_json({{"job", {{"kind", "nope"}, {"n", 2}}}, {"result", json::object()}});
      },
      "kind", "unknown kind 'nope'");
}

TEST(Records, ReadResultsNamesTheFileAndTheRecord) {
  const auto path = std::filesystem::temp_directory_path() / "lipattn-records-test.jsonl";
  const json good = old_records().front();
  json bad = good;
  bad["result"]["matvecs"] = 1.5;
  std::ofstream(path) << good.dump() << "\n" << bad.dump() << "\n";
  expect_input_error([&] { read_results(path.string()); }, "matvecs", path.string() + ": record 2");
  std::ofstream(path) << good.dump() << "\n";
  ASSERT_EQ(read_results(path.string()).size(), 1u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace lipattn::experiments
