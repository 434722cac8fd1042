// The experiment catalogue of `lipattn reproduce` (src/experiments/catalogue.cpp): every definition
// makes a sweep that plans, of the kind its group reads, under a unique name; --quick drops the
// full-only experiments and coarsens the grids; --only keeps the prefixes asked for.
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "experiments/catalogue.h"
#include "experiments/jobs.h"

namespace lipattn::experiments {
namespace {

std::string kind_of(ExperimentGroup group) {
  switch (group) {
    case ExperimentGroup::Real:
    case ExperimentGroup::Bounds:
    case ExperimentGroup::Long:
      return "window";
    case ExperimentGroup::Adversarial:
    case ExperimentGroup::Attack:
      return "construction";
    case ExperimentGroup::Meanfield:
      return "regime";
    case ExperimentGroup::Trained:
      return "window";
    case ExperimentGroup::Blocks:
      return "block";
  }
  return "?";
}

TEST(Catalogue, EveryExperimentPlansUnderAUniqueNameWithItsGroupsKind) {
  // The trained-model experiments (present when the shared data are) are counted apart.
  std::map<std::string, std::size_t> jobs[2], trained[2];
  for (const bool quick : {false, true}) {
    ReproduceOptions o;
    o.quick = quick;
    std::set<std::string> names;
    for (const auto& e : reproduce_experiments(o)) {
      EXPECT_TRUE(names.insert(e.name).second) << e.name;
      EXPECT_EQ(e.spec["name"], e.name);
      EXPECT_EQ(e.spec["kind"], kind_of(e.group)) << e.name;
      EXPECT_EQ(e.spec["model"], e.model) << e.name;
      EXPECT_FALSE(e.title.empty()) << e.name;
      EXPECT_EQ(e.title.find('{'), std::string::npos) << e.title;  // every placeholder filled
      EXPECT_EQ(e.setting.find('{'), std::string::npos) << e.setting;
      EXPECT_EQ(e.spec.dump().find('$'), std::string::npos) << e.spec.dump();
      // docs/experiments.md, "Tolerances and grids": fitted windows and blocks to 1e-6 with a float32
      // phase; bounds, constructions and attacks at the planner's tighter defaults. The report says which.
      const bool fitted = e.group == ExperimentGroup::Real || e.group == ExperimentGroup::Long ||
                          e.group == ExperimentGroup::Trained || e.group == ExperimentGroup::Blocks;
      EXPECT_EQ(e.spec.contains("mixed_tol"), fitted) << e.name;
      if (fitted) {
        EXPECT_EQ(e.spec["tol"], 1e-6) << e.name;
      }
      EXPECT_NE(e.setting.find(fitted ? "relative residual 1e-06 (a float32 phase to 1e-05" : "relative residual 1e-0"),
                std::string::npos)
          << e.setting;
      const PlannedSweep plan = plan_sweep(e.spec);
      EXPECT_FALSE(plan.jobs.empty()) << e.name;
      if (e.group == ExperimentGroup::Blocks) continue;  // experiments_blocks_test.cpp counts them
      (e.name.rfind("trained-", 0) == 0 ? trained : jobs)[quick][e.name] = plan.jobs.size();
    }
  }
  EXPECT_EQ(jobs[0].size(), 19u);  // docs/experiments.md: 19 experiments in the full default run
  EXPECT_EQ(jobs[1].size(), 16u);
  std::size_t full = 0;
  for (const auto& [name, count] : jobs[0]) full += count;
  EXPECT_EQ(full, 4497u);  // docs/experiments.md: the full default run's 4,497 jobs (long windows: 44 n × 10)
  for (const auto& [name, count] : jobs[1]) EXPECT_LE(count, jobs[0].at(name)) << name;
  EXPECT_FALSE(jobs[1].count("real-bert-l0-self"));
  EXPECT_FALSE(jobs[1].count("long-bert-l6"));
  if (trained_model_file().empty() || trained_text_file().empty()) return;
  // docs/experiments.md: trained-l0..l4, trained-bounds-l0, trained-adv-l0h0 and -l2h3 in both runs.
  // Per layer, full: 35 n × 2 windows × 2 RoPE variants × 9 (the whole layer and 8 heads); quick: 7 n × 2 × 2.
  EXPECT_EQ(trained[0].size(), 8u);
  EXPECT_EQ(trained[1].size(), 8u);
  EXPECT_EQ(trained[0].at("trained-adv-l0h0"), 20u);  // n = 2..97 step 5
  EXPECT_EQ(trained[1].at("trained-adv-l2h3"), 20u);
  for (int l = 0; l < 5; ++l) {
    EXPECT_EQ(trained[0].at("trained-l" + std::to_string(l)), 35u * 2 * 2 * 9);
    EXPECT_EQ(trained[1].at("trained-l" + std::to_string(l)), 7u * 2 * 2);
  }
  EXPECT_EQ(trained[0].at("trained-bounds-l0"), 11u * 2);
  EXPECT_EQ(trained[1].at("trained-bounds-l0"), 4u * 2);
}

TEST(Catalogue, OnlyKeepsThePrefixesAskedFor) {
  ReproduceOptions o;
  o.quick = true;
  o.only = {"adv-", "mf-iid"};
  std::set<std::string> names;
  for (const auto& e : reproduce_experiments(o)) names.insert(e.name);
  EXPECT_EQ(names, (std::set<std::string>{"adv-bert-l0h0", "adv-bert-decoder-l6h7", "adv-random-gpt2-l6h0",
                                          "adv-gpt2-l0h0", "mf-iid", "mf-iid-masked"}));
}

TEST(Catalogue, SeedsReachEveryJob) {
  ReproduceOptions o;
  o.quick = true;
  o.seed = 7;
  for (const auto& e : reproduce_experiments(o)) {
    EXPECT_EQ(e.spec["model_seed"], 7) << e.name;
    if (e.spec["kind"] == "window" && e.group != ExperimentGroup::Trained) {
      EXPECT_EQ(e.spec["ids_seed"], 7) << e.name;
    }
    if (e.spec.value("regime", "") == "iid") {
      EXPECT_EQ(e.spec["seed"], 7) << e.name;
    }
  }
}

}  // namespace
}  // namespace lipattn::experiments
