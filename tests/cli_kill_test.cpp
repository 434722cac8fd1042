// Kills lose nothing: `lipattn reproduce --quick` on a few cheap experiments, killed with SIGKILL at
// seeded pseudo-random moments and rerun after each kill, then run to the end, alone and under
// `mpirun -np 2`. Afterwards every results file holds every job of an uninterrupted run with the same
// seed exactly once (no torn line, no part file, no temporary file left), with the same results, and the
// report and fits.json are the uninterrupted run's. Where a kill lands (before the first job, while a
// record or a merge is written, during the figures or the report, after the end) changes nothing that
// is asserted. scripts/kill_soak.sh does the same on the whole --quick grid, 20 kills each
// (docs/experiments.md, "Kills lose nothing").
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bytes_support.h"
#include "cli_support.h"
#include "file_support.h"
#include "json_support.h"
#include "process_support.h"
#include "requirement_support.h"
#include "shared_data.h"

namespace lipattn {
namespace {

namespace fs = std::filesystem;
using testing::expect_same_result;
using testing::launch_marked;
using testing::processes_with;
using testing::read_bytes;
using testing::scratch_dir;
using testing::wait_for_exit;
using testing::wait_until_gone;

// Three cheap experiments of the three job kinds: the trained stories260K's layer 0 on TinyStories
// windows (window), the construction on its head 0 (construction) and masked mean-field points (regime).
// About 10 s of CPU uninterrupted.
const std::vector<std::string> kSubset = {"--only", "trained-l0",          "--only", "trained-adv-l0h0",
                                          "--only", "mf-iid-masked"};
constexpr int kKills = 4;                       // per mode (alone, mpirun)
constexpr std::uint64_t kKillSeed = 20261202;  // the kill moments

std::vector<std::string> reproduce_argv(const fs::path& out, const std::string& jobs) {
  std::vector<std::string> argv = {LIPATTN_BINARY, "reproduce", "--out", out.string(), "--quick", "--seed", "7",
                                   "--jobs",       jobs,        "--no-progress"};
  argv.insert(argv.end(), kSubset.begin(), kSubset.end());
  return argv;
}

std::vector<std::string> under_mpirun(const std::string& mpirun, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {mpirun, "--oversubscribe", "-np", "2"});
  return argv;
}

// One run to its end; its wait status.
int run_to_end(const std::vector<std::string>& argv, const std::string& marker, const fs::path& log) {
  const pid_t pid = launch_marked(argv, marker, log);
  int status = -1;
  if (pid > 0) ::waitpid(pid, &status, 0);
  return status;
}

// Starts `argv`, waits `delay` seconds and, if it still runs, SIGKILLs every process carrying `marker`
// at once (mpirun and its ranks: a machine or a job killed), or only rank `victim` (>= 0) and lets
// mpirun stop the others (60 s, then they are killed too). Returns whether the kill came before the end.
bool run_and_kill(const std::vector<std::string>& argv, const std::string& marker, const fs::path& log, double delay,
                  int victim) {
  const pid_t pid = launch_marked(argv, marker, log);
  if (pid <= 0) return false;
  int status = 0;
  if (wait_for_exit(pid, delay, &status)) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a run ended badly; see " << log;
    return false;
  }
  const std::vector<pid_t> targets = victim >= 0 ? processes_with(marker, victim) : processes_with(marker);
  for (const pid_t target : targets) ::kill(target, SIGKILL);
  if (!wait_for_exit(pid, 60, &status)) {
    ADD_FAILURE() << "mpirun did not stop within 60 s after rank " << victim << " was killed; see " << log;
    for (const pid_t rest : processes_with(marker)) ::kill(rest, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  EXPECT_TRUE(wait_until_gone(marker, 60)) << "processes outlived the kill";
  return true;
}

// The record lines of a results file by job; every line must be a whole record, and each job once.
std::map<std::string, nlohmann::json> records_by_job(const fs::path& path) {
  std::map<std::string, nlohmann::json> out;
  const std::string content = read_bytes(path);
  EXPECT_TRUE(content.empty() || content.back() == '\n') << path << " ends in a torn line";
  std::size_t begin = 0;
  for (std::size_t nl = content.find('\n'); nl != std::string::npos; nl = content.find('\n', begin)) {
    const std::string line = content.substr(begin, nl - begin);
    begin = nl + 1;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(!j.is_discarded() && j.contains("job")) << path << ": a broken line: " << line;
    if (j.is_discarded() || !j.contains("job")) continue;
    EXPECT_TRUE(out.emplace(j["job"].dump(), j).second) << path << ": job twice: " << j["job"].dump();
  }
  return out;
}

// report.md without what differs between two runs of the same jobs: the output folder's name, how long
// this run's sweeps took, and its notes (a torn last line repaired, part files merged); blank lines
// dropped (a note is a paragraph).
std::string report_numbers(const fs::path& dir) {
  std::string report = read_bytes(dir / "report.md"), out;
  for (std::size_t at; (at = report.find(dir.string())) != std::string::npos;) report.replace(at, dir.string().size(), "OUT");
  std::size_t begin = 0;
  while (begin < report.size()) {
    std::size_t nl = report.find('\n', begin);
    if (nl == std::string::npos) nl = report.size();
    const std::string line = report.substr(begin, nl - begin);
    begin = nl + 1;
    if (line.empty() || line.rfind("The sweeps of this run took", 0) == 0 || line.rfind("Note: ", 0) == 0) continue;
    out += line;
    out += '\n';
  }
  return out;
}

// Everything `dir` ended with equals what the uninterrupted run left in `reference`.
void expect_same_as_reference(const fs::path& reference, const fs::path& dir, std::size_t* jobs) {
  *jobs = 0;
  for (const auto& entry : fs::directory_iterator(dir / "results"))
    EXPECT_EQ(entry.path().extension(), ".jsonl") << "left behind: " << entry.path();
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_NE(entry.path().extension(), ".tmp") << "left behind: " << entry.path();
  for (const auto& entry : fs::directory_iterator(reference / "results")) {
    const auto name = entry.path().filename();
    const auto expected = records_by_job(entry.path());
    const auto got = records_by_job(dir / "results" / name);
    EXPECT_EQ(got.size(), expected.size()) << name;
    for (const auto& [job, record] : expected) {
      const auto it = got.find(job);
      if (it == got.end()) {
        ADD_FAILURE() << name << " lost job " << job;
        continue;
      }
      expect_same_result(record["result"], it->second["result"], name.string() + " " + job);
    }
    *jobs += got.size();
  }
  EXPECT_EQ(report_numbers(dir), report_numbers(reference)) << "the reports differ";
  expect_same_result(nlohmann::json::parse(read_bytes(reference / "fits.json")),
                     nlohmann::json::parse(read_bytes(dir / "fits.json"), nullptr, false), "fits.json");
}

// The uninterrupted run: its folder and how long it took.
struct Reference {
  fs::path dir;
  double seconds = 0;
};

Reference& reference() {
  static Reference r = [] {
    Reference ref;
    ref.dir = scratch_dir("kill-reference") / "out";
    const std::string marker = "LIPATTN_KILL_TEST=" + std::to_string(::getpid()) + "-reference";
    const auto start = std::chrono::steady_clock::now();
    const int status = run_to_end(reproduce_argv(ref.dir, "2"), marker, ref.dir.parent_path() / "log");
    ref.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_bytes(ref.dir.parent_path() / "log");
    return ref;
  }();
  return r;
}

// kKills runs killed at seeded moments in [0, 2/kKills × the uninterrupted time) (so that the kills fall
// across the whole run, each rerun resuming the last), a rerun after each, then
// one to the end; `victim_of(i)` picks what the i-th kill hits (−1: everything).
void kill_and_rerun(const std::string& name, const std::function<std::vector<std::string>(const fs::path&)>& argv_of,
                    const std::function<int(int)>& victim_of, std::uint64_t seed) {
  LIPATTN_REQUIRE_SHARED_DATA(fs::path(testing::kSharedData) / "stories260K" / "stories260K.bin");
  LIPATTN_REQUIRE_SHARED_DATA(fs::path(testing::kSharedData) / "text" / "tinystories-valid-head.txt");
  const Reference& ref = reference();
  ASSERT_TRUE(fs::exists(ref.dir / "report.md"));
  const fs::path scratch = scratch_dir("kill-" + name), out = scratch / "out", log = scratch / "log";
  const std::string marker = "LIPATTN_KILL_TEST=" + std::to_string(::getpid()) + "-" + name;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> moment(0.0, 2.0 * ref.seconds / kKills);
  int kills = 0;
  for (int i = 0; i < kKills; ++i) {
    const double delay = moment(rng);
    if (run_and_kill(argv_of(out), marker, log, delay, victim_of(i))) ++kills;
  }
  const int status = run_to_end(argv_of(out), marker, log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_bytes(log);
  std::size_t jobs = 0;
  expect_same_as_reference(ref.dir, out, &jobs);
  std::cout << name << ": " << kills << " of " << kKills << " kills landed before the end, " << kKills + 1 << " reruns, " << jobs
            << " jobs; the uninterrupted run took " << ref.seconds << " s\n";
  EXPECT_GT(jobs, 0u);
}

TEST(CliKill, ReproduceKilledAndRerunEndsAsAnUninterruptedRun) {
  kill_and_rerun(
      "alone", [](const fs::path& out) { return reproduce_argv(out, "2"); }, [](int) { return -1; }, kKillSeed);
}

TEST(CliKill, ReproduceUnderMpirunKilledAndRerunEndsAsAnUninterruptedRun) {
  LIPATTN_REQUIRE_MPI(mpirun);
  // Even kills hit mpirun and both ranks at once, odd ones one rank (mpirun then stops the other).
  kill_and_rerun(
      "mpi", [&](const fs::path& out) { return under_mpirun(mpirun, reproduce_argv(out, "1")); },
      [](int i) { return i % 2 == 0 ? -1 : (i / 2) % 2; }, kKillSeed + 1);
}

}  // namespace
}  // namespace lipattn
