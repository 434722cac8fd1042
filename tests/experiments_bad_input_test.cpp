// Bad sweep files (plan_sweep_text, which plan_sweep_file runs on the file's text; the fuzz target
// tests/fuzz/sweep_spec.cpp drives it): every error is an InputError naming the file, and no range,
// sample count or grid may claim more jobs than a sweep holds before anything is allocated for them.
#include <gtest/gtest.h>

#include <string>

#include "error_support.h"
#include "experiments/jobs.h"
#include "experiments/sweep.h"

namespace lipattn::experiments {
namespace {

using namespace lipattn::testing;

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nexpected to contain: " << part;
}

std::string plan_error(const std::string& text) {
  return error_of([&] { plan_sweep_text(text, "spec.json"); });
}

TEST(ExperimentsBadInput, RangesAreCountedBeforeTheyAreExpanded) {
  // 1e300 values, and a step below the spacing of doubles near 1e16 (x += step never moved: a hang).
  expect_contains(plan_error(R"({"kind": "construction", "model": "toy", "radius": 1,
                                 "n": {"from": 1, "to": 1e300, "step": 1}})"),
                  "spec.json: sweep field 'n': 1e+300 values, more than the 100000 jobs");
  EXPECT_EQ(expand_range(nlohmann::json::parse(R"({"from": 1e16, "to": 1.0000000000000004e16, "step": 1})"), "n")
                .size(),
            5u);
  EXPECT_EQ(expand_range(nlohmann::json::parse(R"({"from": 0, "to": 1, "step": 0.25})"), "x"),
            (std::vector<double>{0, 0.25, 0.5, 0.75, 1}));
}

TEST(ExperimentsBadInput, CountsAndGridsAreBounded) {
  expect_contains(plan_error(R"({"kind": "construction", "model": "toy", "radius": 1, "n": [2],
                                 "samples": 2147483647})"),
                  "sweep field 'samples': expected a positive integer up to 100000");
  expect_contains(plan_error(R"({"kind": "construction", "model": "toy", "radius": 1,
                                 "n": {"log_from": 1, "log_to": 10, "count": 1e300}})"),
                  "integer count");
  expect_contains(plan_error(R"({"kind": "construction", "model": "toy", "radius": 1,
                                 "n": {"log_from": 1, "log_to": 10, "count": 10000000000}})"),
                  "more than the 100000 jobs");
  std::string wide = "[";
  for (int i = 1; i <= 1001; ++i) {
    if (i > 1) wide += ",";
    wide += std::to_string(i);
  }
  wide += "]";
  std::string grid = R"({"kind": "construction", "model": "toy", "radius": 1, "n": )";
  grid += wide;
  grid += R"(, "d": )";
  grid += wide;
  grid += "}";
  expect_contains(plan_error(grid), "more than the 100000 a sweep may hold");
}

// 2^16 jobs, each copying a 3 kB field, expanded to 200 MB (found by tests/fuzz/sweep_spec as a timeout;
// regression input tests/fuzz/regressions/sweep_spec/grid_of_long_jobs_timeout).
TEST(ExperimentsBadInput, JobsTimesTheirSizeIsBounded) {
  std::string spec = R"({"kind": "construction", "model": "toy", "radius": 1, "n": [2], "note": ")";
  spec += std::string(3000, 'x');
  spec += "\"";
  for (int axis = 0; axis < 16; ++axis) {
    spec += ", \"a";
    spec += std::to_string(axis);
    spec += "\": [0, 1]";
  }
  spec += "}";
  expect_contains(plan_error(spec), "more than the 64 MB a sweep may expand to");
}

TEST(ExperimentsBadInput, WrongTypesNameTheFile) {
  expect_contains(plan_error(R"({"kind": "construction", "model": "toy", "n": ["two"], "radius": 1})"), "spec.json: ");
  expect_contains(plan_error(R"({"kind": "construction", "model": "toy", "n": [2], "radius": 1, "d": "four"})"),
                  "spec.json: ");
  expect_contains(plan_error(R"({"kind": "construction", "model": 3, "n": [2]})"), "spec.json: ");
  expect_contains(plan_error("{\"kind\": "), "spec.json: not valid JSON");
  expect_contains(plan_error(R"({"sweeps": 3})"), "spec.json: 'sweeps' must be a list of sweeps");
}

// The solver's fields were read only when a job ran, as nlohmann's type errors (exit 1, "internal
// error", once per job); they are checked when the sweep is planned and named.
TEST(ExperimentsBadInput, SolverFieldsAreCheckedWhenPlanned) {
  const std::string head = R"({"kind": "regime", "model": "toy", "regime": "iid", "radius": 1, "n": [4], )";
  const std::pair<const char*, const char*> cases[] = {
      {R"("tol": "x"})", "field 'tol' must be a finite number > 0, got \"x\""},
      {R"("tol": 0})", "field 'tol' must be a finite number > 0, got 0"},
      {R"("mixed_tol": -1})", "field 'mixed_tol' must be a finite number ≥ 0, got -1"},
      {R"("solver_seed": -3})", "field 'solver_seed' must be an integer ≥ 0, got -3"},
      {R"("solver_seed": 1.5})", "field 'solver_seed' must be an integer ≥ 0, got 1.5"},
      {R"("method": 4})", "field 'method' (a string) is required"},
      {R"("method": "qr"})", "qr"},
      {R"("attack_steps": "a"})", "field 'attack_steps' must be an integer from 0 to 2147483647, got \"a\""},
      {R"("attack_restarts": 4294967296})", "field 'attack_restarts' must be an integer from 0 to 2147483647"},
  };
  for (const auto& [fields, expected] : cases) {
    const std::string message = plan_error(head + fields);
    expect_contains(message, "spec.json: ");
    expect_contains(message, expected);
  }
  EXPECT_NO_THROW(plan_sweep_text(head + R"("tol": 1e-6, "mixed_tol": 1e-5, "solver_seed": 0})", "spec.json"));
}

}  // namespace
}  // namespace lipattn::experiments
