// `lipattn sweep` killed with SIGKILL midway and rerun (every job exactly once), a corrupt last line
// redone, `lipattn reproduce` on a small subset whose report.html renders in headless Chromium, and
// the quick run's whole-block section on stories260K (finite numbers; a rerun does nothing again).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bytes_support.h"
#include "cli_support.h"
#include "file_support.h"
#include "requirement_support.h"
#include "shared_data.h"

namespace lipattn {
namespace {

using testing::lines_of;
using testing::read_bytes;
using testing::run_cli;
using testing::scratch_dir;

// A sweep of toy-head construction jobs (each a Lanczos solve on a few thousand unknowns).
std::filesystem::path write_spec(const std::filesystem::path& dir, int jobs) {
  const nlohmann::json spec = {{"name", "toy-kill"}, {"kind", "construction"}, {"model", "toy"}, {"d", 8},
                               {"radius", 3.0},      {"n", {{"from", 200}, {"to", 200 + 10 * (jobs - 1)}, {"step", 10}}}};
  const auto path = dir / "spec.json";
  std::ofstream(path) << spec.dump(2);
  return path;
}

std::map<int, int> count_jobs(const std::filesystem::path& results) {
  std::map<int, int> seen;
  for (const auto& line : lines_of(results)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      ++seen[-1];  // a broken line
      continue;
    }
    ++seen[j["job"]["n"].get<int>()];
  }
  return seen;
}

TEST(CliSweep, KilledMidwayThenRerunHasEveryJobExactlyOnce) {
  const auto dir = scratch_dir("sweep-kill");
  const int total = 60;
  const auto spec = write_spec(dir, total);
  const auto results = dir / "results.jsonl";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(LIPATTN_BINARY, LIPATTN_BINARY, "sweep", spec.c_str(), "--out", results.c_str(), "--jobs", "2",
          "--no-progress", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill as soon as a few records are there.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  std::size_t before_kill = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    before_kill = std::filesystem::exists(results) ? lines_of(results).size() : 0;
    if (before_kill >= 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the sweep finished before it could be killed";
  const auto after_kill = count_jobs(results);
  int complete = 0;
  for (const auto& [n, c] : after_kill)
    if (n >= 0) complete += c;
  ASSERT_GE(complete, 5);
  ASSERT_LT(complete, total) << "the kill came too late to test a resume";

  const auto rerun = run_cli("sweep " + spec.string() + " --out " + results.string() + " --jobs 2");
  ASSERT_EQ(rerun.code, 0) << rerun.err;
  EXPECT_NE(rerun.err.find("already done"), std::string::npos) << rerun.err;
  const auto final_counts = count_jobs(results);
  EXPECT_EQ(final_counts.count(-1), 0u) << "a broken line survived";
  ASSERT_EQ(final_counts.size(), static_cast<std::size_t>(total));
  for (const auto& [n, c] : final_counts) EXPECT_EQ(c, 1) << "n = " << n;
  // The records written before the kill were kept, not recomputed.
  const auto lines = lines_of(results);
  EXPECT_EQ(lines.size(), static_cast<std::size_t>(total));
}

TEST(CliSweep, CorruptLastLineIsRedone) {
  const auto dir = scratch_dir("sweep-corrupt");
  const auto spec = write_spec(dir, 4);
  const auto results = dir / "results.jsonl";
  auto r = run_cli("sweep " + spec.string() + " --out " + results.string() + " --no-progress");
  ASSERT_EQ(r.code, 0) << r.err;
  auto lines = lines_of(results);
  ASSERT_EQ(lines.size(), 4u);
  const std::string last = lines.back();
  {
    std::ofstream out(results, std::ios::trunc);
    for (int i = 0; i < 3; ++i) out << lines[i] << "\n";
    out << last.substr(0, last.size() - 20);  // a record cut short, no newline
  }
  r = run_cli("sweep " + spec.string() + " --out " + results.string() + " --no-progress");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("redone"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 jobs ran, 3 already done"), std::string::npos) << r.err;
  lines = lines_of(results);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(nlohmann::json::parse(lines.back())["job"], nlohmann::json::parse(last)["job"]);
  for (const auto& [n, c] : count_jobs(results)) EXPECT_EQ(c, 1);
}

TEST(CliSweep, BadSpecIsAnInputError) {
  const auto dir = scratch_dir("sweep-bad");
  std::ofstream(dir / "bad.json") << R"({"kind": "nope", "model": "toy", "n": [2]})";
  const auto r = run_cli("sweep " + (dir / "bad.json").string() + " --out " + (dir / "r.jsonl").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown kind 'nope'"), std::string::npos) << r.err;
}

// PNG width and height from the IHDR chunk (bytes 16..23, big-endian).
std::pair<unsigned, unsigned> png_size(const std::string& png) {
  if (png.size() < 24 || png.compare(1, 3, "PNG") != 0) return {0, 0};
  auto be32 = [&](std::size_t at) {
    return (static_cast<unsigned>(static_cast<unsigned char>(png[at])) << 24) |
           (static_cast<unsigned>(static_cast<unsigned char>(png[at + 1])) << 16) |
           (static_cast<unsigned>(static_cast<unsigned char>(png[at + 2])) << 8) |
           static_cast<unsigned>(static_cast<unsigned char>(png[at + 3]));
  };
  return {be32(16), be32(20)};
}

std::string chromium_binary() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (std::filesystem::exists(candidate)) return candidate;
  return {};
}

// Screenshots `html` at 1200×2000; returns the PNG bytes ("" on failure, with the log in `log`).
std::string screenshot(const std::string& chromium, const std::filesystem::path& html,
                       const std::filesystem::path& dir, const std::string& name, std::string& log) {
  const auto png = dir / (name + ".png");
  const auto profile = dir / ("profile-" + name);
  const std::string command = chromium +
                              " --headless --no-sandbox --disable-gpu --disable-background-networking "
                              "--disable-component-update --disable-sync --no-first-run --hide-scrollbars "
                              "--user-data-dir=" +
                              profile.string() + " --screenshot=" + png.string() +
                              " --window-size=1200,2000 file://" + html.string() + " > " +
                              (dir / (name + ".log")).string() + " 2>&1";
  const int status = std::system(command.c_str());
  log = read_bytes(dir / (name + ".log"));
  if (status != 0 || !std::filesystem::exists(png)) return {};
  return read_bytes(png);
}

TEST(CliReproduce, SmallSubsetWritesAReportThatRendersInChromium) {
  const auto dir = scratch_dir("reproduce");
  const auto out = dir / "out";
  const auto r = run_cli("reproduce --out " + out.string() +
                         " --quick --only adv-bert-l0 --only mf-iid --only mf-construction-masked --no-progress");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("report.html"), std::string::npos) << r.out;
  for (const char* file : {"report.md", "report.html", "fits.json", "results/adv-bert-l0h0.jsonl",
                           "results/mf-iid.jsonl", "figures/adversarial-L-n.svg", "figures/adversarial-L-n.png"})
    EXPECT_TRUE(std::filesystem::exists(out / file)) << file;
  // fits.json: one record per fit with the fields the issue names.
  const auto fits = nlohmann::json::parse(read_bytes(out / "fits.json"));
  ASSERT_TRUE(fits.is_array());
  bool found_adversarial = false;
  for (const auto& f : fits) {
    for (const char* field : {"experiment", "model", "layer", "exponent", "ci_low", "ci_high", "constant", "points"})
      EXPECT_TRUE(f.contains(field)) << field << " in " << f.dump();
    if (f["experiment"] == "adv-bert-l0h0") {
      found_adversarial = true;
      EXPECT_GE(f["exponent"].get<double>(), 0.4);
      EXPECT_LE(f["exponent"].get<double>(), 0.6);
      EXPECT_EQ(f["paper"]["constant"], 4.39);
    }
  }
  EXPECT_TRUE(found_adversarial);
  const std::string html = read_bytes(out / "report.html");
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_EQ(html.find("not rendered"), std::string::npos) << "a figure failed to render";
  EXPECT_EQ(html.find("src=\"figures/"), std::string::npos) << "the HTML must not depend on its folder";

  const std::string chromium = chromium_binary();
  LIPATTN_REQUIRE(!chromium.empty(), lipattn::testing::program_requirement("chromium", "chromium fonts-dejavu-core"));
  // The report, a page holding only its figures (the same <img> tags), and a blank page: the report
  // must not render blank, and the figures must render as images (a broken image is a small icon).
  std::string figures_only = "<!DOCTYPE html><html><body style=\"background:white\">";
  for (std::size_t at = 0; (at = html.find("<img", at)) != std::string::npos;) {
    const std::size_t end = html.find('>', at);
    figures_only += html.substr(at, end - at + 1);
    at = end;
  }
  figures_only += "</body></html>";
  std::ofstream(dir / "figures-only.html") << figures_only;
  std::ofstream(dir / "blank.html") << "<!DOCTYPE html><html><body style=\"background:white\"></body></html>";
  std::string log;
  const std::string shot = screenshot(chromium, out / "report.html", dir, "report", log);
  ASSERT_FALSE(shot.empty()) << log;
  const std::string shot_figures = screenshot(chromium, dir / "figures-only.html", dir, "figures-only", log);
  const std::string shot_blank = screenshot(chromium, dir / "blank.html", dir, "blank", log);
  ASSERT_FALSE(shot_figures.empty()) << log;
  ASSERT_FALSE(shot_blank.empty()) << log;
  EXPECT_EQ(png_size(shot), std::make_pair(1200u, 2000u));
  EXPECT_GT(shot.size(), 5 * shot_blank.size()) << "the report renders as a nearly blank page";
  EXPECT_GT(shot_figures.size(), 5 * shot_blank.size()) << "the figures do not render";
}

// The cells of the Markdown table rows of `section` that start with `| first |`.
std::vector<std::vector<std::string>> table_rows(const std::string& section, const std::string& first) {
  std::vector<std::vector<std::string>> rows;
  const std::string start = "| " + first + " |";
  for (std::size_t at = section.find(start); at != std::string::npos; at = section.find(start, at + 1)) {
    const std::string line = section.substr(at, section.find('\n', at) - at);
    std::vector<std::string> cells;
    for (std::size_t from = 1, bar; (bar = line.find('|', from)) != std::string::npos; from = bar + 1)
      cells.push_back(line.substr(from + 1, bar - from - 2));
    rows.push_back(cells);
  }
  return rows;
}

TEST(CliReproduce, QuickWholeBlocksSectionOnTheTrainedModelHasFiniteNumbers) {
  const std::filesystem::path data = testing::kSharedData;
  LIPATTN_REQUIRE_SHARED_DATA(data / "stories260K" / "stories260K.bin");
  LIPATTN_REQUIRE_SHARED_DATA(data / "text" / "tinystories-valid-head.txt");
  const auto dir = scratch_dir("reproduce-blocks");
  const auto out = dir / "out";
  const std::string command = "reproduce --out " + out.string() + " --quick --only blocks-stories --no-progress";
  auto r = run_cli(command);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string report = read_bytes(out / "report.md");
  const std::size_t begin = report.find("## Whole layers and whole models");
  ASSERT_NE(begin, std::string::npos) << report.substr(0, 2000);
  const std::string section = report.substr(begin, report.find("\n## ", begin) - begin);
  EXPECT_NE(section.find("**stories260K.** Layer 0: L ∝ n^"), std::string::npos) << section;
  EXPECT_EQ(section.find("No results"), std::string::npos) << section;
  // The depth table: k = 1..5, two windows at n = 128; exact, product and ratio finite, the ratio 1 at
  // k = 1 and at least 1 deeper. The model table: 7 n. The fits table: layers 0 and 4, model, product.
  const auto depth = table_rows(section, "stories260K");
  ASSERT_EQ(depth.size(), 5u + 7u);
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(depth[k][1], std::to_string(k + 1));
    for (int c : {4, 5, 6}) EXPECT_TRUE(std::isfinite(std::stod(depth[k][c]))) << depth[k][c];
    EXPECT_GE(std::stod(depth[k][6]), k == 0 ? 1 - 1e-6 : 1.0) << depth[k][6];
  }
  EXPECT_EQ(depth[0][6], "1");
  for (std::size_t i = 5; i < depth.size(); ++i)
    for (int c : {3, 4, 5, 7}) EXPECT_TRUE(std::isfinite(std::stod(depth[i][c]))) << depth[i][c];
  EXPECT_EQ(table_rows(section, "blocks-stories-layer").size(), 2u);
  EXPECT_EQ(table_rows(section, "blocks-stories-model").size(), 2u);
  for (const char* figure : {"figures/blocks-depth.png", "figures/blocks-stories-L-n.svg"})
    EXPECT_TRUE(std::filesystem::exists(out / figure)) << figure;
  std::set<std::string> fitted;
  for (const auto& f : nlohmann::json::parse(read_bytes(out / "fits.json")))
    if (f["experiment"].get<std::string>().rfind("blocks-stories", 0) == 0) {
      fitted.insert(f["quantity"].get<std::string>());
      EXPECT_TRUE(f["exponent"].is_number() && f["ci_low"].is_number() && f["ci_high"].is_number()) << f.dump();
    }
  EXPECT_EQ(fitted, (std::set<std::string>{"lipschitz_layer0", "lipschitz_layer4", "lipschitz", "product"}));
  // Every job is in the results: a rerun computes nothing.
  r = run_cli(command);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find(" 0 ran, 31 already done"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lipattn
