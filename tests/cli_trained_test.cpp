// `lipattn reproduce --only trained-l0 --quick`: the trained-model part on stories260K and TinyStories
// (docs/experiments.md, "Trained model"). The report's trained section follows the introduction and
// opens with the answer; fits.json has both quantities for every variant; a window's L is what
// `measure --model` gives on the same ids.
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bytes_support.h"
#include "cli_support.h"
#include "models_fixture.h"
#include "requirement_support.h"
#include "shared_data.h"

namespace {

namespace fs = std::filesystem;
using lipattn::testing::CommandResult;
using lipattn::testing::read_bytes;
using lipattn::testing::run_cli;

const fs::path kData = lipattn::testing::kSharedData;
const fs::path kModel = kData / "stories260K" / "stories260K.bin";
const fs::path kText = kData / "text" / "tinystories-valid-head.txt";

TEST(CliTrained, ReproduceOpensWithTheAnswerAndItsWindowsAreMeasureModels) {
  LIPATTN_REQUIRE_SHARED_DATA(kModel);
  LIPATTN_REQUIRE_SHARED_DATA(kText);
  const fs::path dir = fixture::temp_dir("cli_trained");
  const fs::path out = dir / "out";
  CommandResult r = run_cli("reproduce --out '" + out.string() + "' --quick --only trained-l0 --no-progress");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("report.md"), std::string::npos) << r.out;

  // The report: the trained section comes right after the introduction and opens with the answer.
  const std::string report = read_bytes(out / "report.md");
  const std::size_t trained = report.find("## A trained model on its own text: stories260K");
  ASSERT_NE(trained, std::string::npos) << report.substr(0, 2000);
  const std::size_t first_section = report.find("\n## ");
  EXPECT_EQ(report.find("\n## ", first_section + 1), trained - 1) << "the trained section is the second";
  EXPECT_EQ(report.find("**Answer.**", trained), report.find("\n\n", trained) + 2);
  EXPECT_NE(report.find("released quantity n^", trained), std::string::npos);

  // fits.json: L and the released quantity for the whole layer and head 0, as trained and without RoPE.
  const auto fits = nlohmann::json::parse(read_bytes(out / "fits.json"));
  std::set<std::string> quantities;
  for (const auto& f : fits)
    if (f["experiment"] == "trained-l0") {
      quantities.insert(f["quantity"].get<std::string>());
      EXPECT_EQ(f["points"], 7) << f.dump();
      EXPECT_TRUE(f["exponent"].is_number()) << f.dump();
    }
  EXPECT_EQ(quantities,
            (std::set<std::string>{"lipschitz", "authors", "lipschitz_head0", "authors_head0", "lipschitz_no_rope",
                                   "authors_no_rope", "lipschitz_no_rope_head0", "authors_no_rope_head0"}));

  // A whole-layer window as trained: measure --model on the same ids (tokenize's, from the record's
  // start) gives the same L; the RoPE-removed record of the same window differs.
  std::ifstream results(out / "results" / "trained-l0.jsonl");
  nlohmann::json with_rope, without_rope;
  for (std::string line; std::getline(results, line);) {
    const auto rec = nlohmann::json::parse(line);
    if (rec["job"]["n"] != 87 || !rec["job"]["head"].is_null()) continue;
    (rec["job"]["rope"] == "none" ? without_rope : with_rope) = rec;
  }
  ASSERT_FALSE(with_rope.is_null());
  ASSERT_FALSE(without_rope.is_null());
  EXPECT_EQ(with_rope["job"]["start"], without_rope["job"]["start"]);
  r = run_cli("tokenize --model '" + kModel.string() + "' --text '" + kText.string() + "' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto ids = nlohmann::json::parse(r.out).get<std::vector<int>>();
  const std::size_t start = with_rope["job"]["start"].get<std::size_t>();
  std::string window;
  for (std::size_t i = start; i < start + 87; ++i) {
    if (!window.empty()) window += ',';
    window += std::to_string(ids.at(i));
  }
  r = run_cli("measure --model '" + kModel.string() + "' --layer 0 --ids " + window + " --tol 1e-10 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const double L = nlohmann::json::parse(r.out).at("lipschitz").get<double>();
  EXPECT_NEAR(with_rope["result"]["lipschitz"].get<double>(), L, 1e-7 * L);
  EXPECT_GT(std::abs(without_rope["result"]["lipschitz"].get<double>() - L), 1e-3 * L);
  fs::remove_all(dir);
}

}  // namespace
