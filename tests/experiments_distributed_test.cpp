// The file side of MPI sweeps, which needs no MPI: part files found beside OUT (and only those), merged
// into OUT once each (a torn last line dropped, a job OUT already holds skipped), deleted after the
// merge, and a repeated merge a no-op; and the launch detection from the environment.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include <gtest/gtest.h>

#include "experiments/distributed.h"
#include "file_support.h"

namespace lipattn::experiments {
namespace {

using testing::lines_of;
using testing::scratch_dir;

std::string record_line(int i, int rank) {
  return nlohmann::json{{"sweep", "s"}, {"job", {{"kind", "fake"}, {"i", i}}}, {"result", {{"value", 10 * i}}},
                        {"rank", rank}}
      .dump();
}

TEST(PartFiles, FoundBesideTheResultsFileSortedByRank) {
  const auto dir = scratch_dir("find");
  const std::string out = (dir / "r.jsonl").string();
  for (const char* name : {"r.jsonl.part10", "r.jsonl.part2", "r.jsonl.part0", "r.jsonl.partx", "r.jsonl.part1.bak",
                           "other.jsonl.part3", "r.jsonl.part"})
    std::ofstream(dir / name) << "";
  const auto found = find_part_files(out);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0], part_file_path(out, 0));
  EXPECT_EQ(found[1], part_file_path(out, 2));
  EXPECT_EQ(found[2], part_file_path(out, 10));
  EXPECT_EQ(part_file_path(out, 7), out + ".part7");
}

TEST(PartFiles, MergedOnceEachThenDeleted) {
  const auto dir = scratch_dir("merge");
  const auto out = dir / "r.jsonl";
  std::ofstream(out) << record_line(0, 0) << "\n" << record_line(1, 1) << "\n" << record_line(2, 0) << "\n";
  // Rank 0's part: job 3 is new, job 1 is already in OUT (a merge interrupted after appending it).
  std::ofstream(part_file_path(out.string(), 0)) << record_line(3, 0) << "\n" << record_line(1, 0) << "\n";
  // Rank 2's part ends with a record cut short (the rank was killed while writing it).
  const std::string torn = record_line(6, 2);
  std::ofstream(part_file_path(out.string(), 2))
      << record_line(4, 2) << "\n" << record_line(5, 2) << "\n" << torn.substr(0, torn.size() / 2);
  std::ofstream(dir / "r.jsonl.partx") << "not mine\n";

  const MergeReport report = merge_part_files(out.string());
  EXPECT_EQ(report.files, 2);
  EXPECT_EQ(report.merged, 3);
  EXPECT_EQ(report.duplicates, 1);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("redone"), std::string::npos) << report.notes[0];

  std::map<int, int> count;
  std::map<int, int> rank_of;
  for (const auto& line : lines_of(out)) {
    const auto j = nlohmann::json::parse(line);
    const int i = j["job"]["i"];
    ++count[i];
    rank_of[i] = j["rank"];
    EXPECT_EQ(j["result"]["value"], 10 * i);
  }
  EXPECT_EQ(count, (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}}));
  EXPECT_EQ(rank_of[1], 1) << "the record OUT already held is kept, the part's copy dropped";
  EXPECT_EQ(rank_of[4], 2);
  EXPECT_TRUE(find_part_files(out.string()).empty());
  EXPECT_TRUE(std::filesystem::exists(dir / "r.jsonl.partx"));

  // Nothing left to merge: a second merge changes nothing.
  const MergeReport again = merge_part_files(out.string());
  EXPECT_EQ(again.files, 0);
  EXPECT_EQ(again.merged, 0);
  EXPECT_EQ(lines_of(out).size(), 6u);
}

TEST(PartFiles, MergeCreatesAMissingResultsFile) {
  const auto dir = scratch_dir("create");
  const auto out = dir / "sub" / "r.jsonl";
  std::filesystem::create_directories(out.parent_path());
  std::ofstream(part_file_path(out.string(), 1)) << record_line(7, 1) << "\n";
  const MergeReport report = merge_part_files(out.string());
  EXPECT_EQ(report.merged, 1);
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], record_line(7, 1));
}

// Sets environment variables for one test and puts the old values back.
class EnvGuard {
 public:
  explicit EnvGuard(std::vector<std::string> names) : names_(std::move(names)) {
    for (const auto& n : names_) {
      const char* v = std::getenv(n.c_str());
      saved_.push_back(v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(n.c_str());
    }
  }
  ~EnvGuard() {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (saved_[i])
        ::setenv(names_[i].c_str(), saved_[i]->c_str(), 1);
      else
        ::unsetenv(names_[i].c_str());
    }
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::optional<std::string>> saved_;
};

TEST(Launch, DetectedFromTheLaunchersVariables) {
  EnvGuard guard({"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"});
  EXPECT_FALSE(launched_by_mpi());
  EXPECT_EQ(launch_rank(), 0);
  ::setenv("PMI_SIZE", "", 1);  // empty counts as unset
  EXPECT_FALSE(launched_by_mpi());
  ::setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
  ::setenv("OMPI_COMM_WORLD_RANK", "2", 1);
  EXPECT_TRUE(launched_by_mpi());
  EXPECT_EQ(launch_rank(), 2);
  ::unsetenv("OMPI_COMM_WORLD_SIZE");
  ::unsetenv("OMPI_COMM_WORLD_RANK");
  ::setenv("PMIX_RANK", "1", 1);
  EXPECT_TRUE(launched_by_mpi());
  EXPECT_EQ(launch_rank(), 1);
  ::unsetenv("PMIX_RANK");
  ::setenv("PMI_RANK", "4", 1);
  EXPECT_TRUE(launched_by_mpi());
  EXPECT_EQ(launch_rank(), 4);
}

}  // namespace
}  // namespace lipattn::experiments
