// Sweeps: grid expansion, the results file (resume, a corrupt last line redone, a damaged middle
// line refused), and the parallel runner (every job exactly once, in every mode).
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"
#include "experiments/sweep.h"
#include "file_support.h"

namespace lipattn::experiments {
namespace {

using testing::lines_of;
using testing::scratch_dir;

TEST(ExpandGrid, CartesianProductWithRangesAndSamples) {
  const nlohmann::json grid = {{"model", "m"},
                               {"layer", {0, 6}},
                               {"n", {{"from", 2}, {"to", 10}, {"step", 4}}},
                               {"samples", 3}};
  const auto jobs = expand_grid(grid, {"layer", "n", "sample"});
  ASSERT_EQ(jobs.size(), 2u * 3u * 3u);
  EXPECT_EQ(jobs.front(), (nlohmann::json{{"model", "m"}, {"layer", 0}, {"n", 2}, {"sample", 0}}));
  EXPECT_EQ(jobs.back(), (nlohmann::json{{"model", "m"}, {"layer", 6}, {"n", 10}, {"sample", 2}}));
  std::set<std::string> keys;
  for (const auto& j : jobs) keys.insert(j.dump());
  EXPECT_EQ(keys.size(), jobs.size());
  EXPECT_TRUE(jobs[1]["n"].is_number_integer());

  const auto log = expand_range({{"log_from", 2}, {"log_to", 1000}, {"count", 30}}, "n");
  EXPECT_EQ(log.front(), 2);
  EXPECT_EQ(log.back(), 1000);
  for (std::size_t i = 1; i < log.size(); ++i) EXPECT_LT(log[i - 1], log[i]);

  EXPECT_THROW(expand_grid({{"n", {{"from", 2}, {"to", 10}}}}), InputError);
  EXPECT_THROW(expand_grid({{"n", nlohmann::json::array()}}), InputError);
  EXPECT_THROW(expand_grid({{"samples", 0}}), InputError);
}

std::vector<Job> make_jobs(int count) {
  std::vector<Job> jobs;
  for (int i = 0; i < count; ++i) {
    Job j;
    j.spec = {{"kind", "fake"}, {"i", i}, {"x", 0.1 * i}};
    j.cost = i % 2 ? 1e3 : 1e12;  // half "small", half "large" for the auto mode
    jobs.push_back(j);
  }
  return jobs;
}

TEST(ResultsFile, ResumeSkipsFinishedJobs) {
  const auto dir = scratch_dir("resume");
  const auto path = (dir / "r.jsonl").string();
  const auto jobs = make_jobs(20);
  std::atomic<int> calls{0};
  Executor exec = [&](const Job& job, int) {
    ++calls;
    return nlohmann::json{{"value", job.spec["i"].get<int>() * 2}};
  };
  {
    ResultsFile results(path);
    std::vector<Job> first(jobs.begin(), jobs.begin() + 7);
    RunOptions o;
    o.progress = false;
    const RunSummary s = run_jobs(first, exec, results, o);
    EXPECT_EQ(s.ran, 7);
  }
  {
    ResultsFile results(path);
    EXPECT_FALSE(results.repaired());
    EXPECT_EQ(results.records().size(), 7u);
    RunOptions o;
    o.progress = false;
    const RunSummary s = run_jobs(jobs, exec, results, o);
    EXPECT_EQ(s.skipped, 7);
    EXPECT_EQ(s.ran, 13);
  }
  EXPECT_EQ(calls.load(), 20);
  std::map<int, int> seen;
  for (const auto& line : lines_of(path)) {
    const auto j = nlohmann::json::parse(line);
    ++seen[j["job"]["i"].get<int>()];
    EXPECT_EQ(j["result"]["value"], j["job"]["i"].get<int>() * 2);
    EXPECT_TRUE(j.contains("seconds"));
  }
  ASSERT_EQ(seen.size(), 20u);
  for (const auto& [i, count] : seen) EXPECT_EQ(count, 1) << "job " << i;
}

TEST(ResultsFile, CorruptLastLineIsCutAndRedone) {
  const auto dir = scratch_dir("corrupt");
  const auto path = (dir / "r.jsonl").string();
  const auto jobs = make_jobs(6);
  Executor exec = [](const Job& job, int) { return nlohmann::json{{"value", job.spec["i"]}}; };
  RunOptions o;
  o.progress = false;
  {
    ResultsFile results(path);
    run_jobs(jobs, exec, results, o);
  }
  // Cut the last record in the middle, as a SIGKILL during the write would.
  auto lines = lines_of(path);
  ASSERT_EQ(lines.size(), 6u);
  const int cut_job = nlohmann::json::parse(lines.back())["job"]["i"];
  {
    std::ofstream out(path, std::ios::trunc);
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) out << lines[i] << "\n";
    out << lines.back().substr(0, lines.back().size() / 2);
  }
  {
    ResultsFile results(path);
    EXPECT_TRUE(results.repaired());
    EXPECT_NE(results.repair_note().find("redone"), std::string::npos);
    EXPECT_EQ(results.records().size(), 5u);
    const RunSummary s = run_jobs(jobs, exec, results, o);
    EXPECT_EQ(s.ran, 1);
  }
  lines = lines_of(path);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(nlohmann::json::parse(lines.back())["job"]["i"], cut_job);
  // A complete but invalid last line (with its newline) is also redone.
  {
    std::ofstream out(path, std::ios::app);
    out << "{\"job\": not json}\n";
  }
  {
    ResultsFile results(path);
    EXPECT_TRUE(results.repaired());
    EXPECT_EQ(run_jobs(jobs, exec, results, o).ran, 0);
  }
  EXPECT_EQ(lines_of(path).size(), 6u);
  // A damaged line in the middle is not guessed at.
  {
    lines = lines_of(path);
    std::ofstream out(path, std::ios::trunc);
    out << lines[0] << "\ngarbage\n";
    for (std::size_t i = 1; i < lines.size(); ++i) out << lines[i] << "\n";
  }
  try {
    ResultsFile results(path);
    FAIL() << "a damaged middle line must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
}

TEST(RunJobs, EveryModeRunsEveryJobOnceWithTheRightThreads) {
  for (ParallelMode mode : {ParallelMode::Jobs, ParallelMode::Threads, ParallelMode::Auto}) {
    const auto dir = scratch_dir("modes-" + to_string(mode));
    const auto jobs = make_jobs(40);
    std::mutex mutex;
    std::map<int, int> calls, threads_seen;
    Executor exec = [&](const Job& job, int threads) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::lock_guard<std::mutex> lock(mutex);
      ++calls[job.spec["i"].get<int>()];
      threads_seen[job.spec["i"].get<int>()] = threads;
      if (job.spec["i"] == 13) throw std::runtime_error("boom");
      return nlohmann::json{{"ok", true}};
    };
    ResultsFile results((dir / "r.jsonl").string());
    RunOptions o;
    o.progress = false;
    o.mode = mode;
    o.workers = 2;
    o.side_by_side_below = 1e6;
    const RunSummary s = run_jobs(jobs, exec, results, o);
    EXPECT_EQ(s.ran, 39);
    EXPECT_EQ(s.failed, 1);
    ASSERT_EQ(s.errors.size(), 1u);
    EXPECT_NE(s.errors[0].find("boom"), std::string::npos);
    ASSERT_EQ(calls.size(), 40u);
    for (const auto& [i, c] : calls) EXPECT_EQ(c, 1);
    for (const auto& [i, t] : threads_seen) {
      const int expected = mode == ParallelMode::Jobs ? 1 : mode == ParallelMode::Threads ? 2 : (i % 2 ? 1 : 2);
      EXPECT_EQ(t, expected) << "job " << i << " mode " << to_string(mode);
    }
    EXPECT_EQ(results.records().size(), 39u);  // the failed job is not written: a rerun retries it
  }
}

TEST(ProgressBar, FormatsDurations) {
  EXPECT_EQ(ProgressBar::format_duration(0), "0:00");
  EXPECT_EQ(ProgressBar::format_duration(75), "1:15");
  EXPECT_EQ(ProgressBar::format_duration(3725), "1:02:05");
  EXPECT_EQ(ProgressBar::format_duration(std::nan("")), "?");
}

}  // namespace
}  // namespace lipattn::experiments
