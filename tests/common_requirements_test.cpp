// tests/requirement_support.h: a test whose requirement (chromium, mpirun, the shared data) is missing
// skips outside CI and fails under CI=true, with a message naming what is missing and how to get it.
#include <cstdlib>
#include <optional>
#include <string>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "requirement_support.h"

namespace {

using lipattn::testing::MissingOutcome;
using lipattn::testing::Requirement;

const Requirement kMissing{"the program no-such-program-xyz (not on PATH)",
                           "scripts/setup.sh installs it (Debian packages: no-such-package)"};

// Sets or unsets CI for one scope, restoring what was there.
class ScopedCi {
 public:
  explicit ScopedCi(const char* value) {
    if (const char* old = std::getenv("CI")) old_ = old;
    if (value)
      ::setenv("CI", value, 1);
    else
      ::unsetenv("CI");
  }
  ~ScopedCi() {
    if (old_)
      ::setenv("CI", old_->c_str(), 1);
    else
      ::unsetenv("CI");
  }

 private:
  std::optional<std::string> old_;
};

// A test body needing something: `reached` says whether it went on past the requirement.
void needs(bool present, bool* reached) {
  *reached = false;
  LIPATTN_REQUIRE(present, kMissing);
  *reached = true;
}

// The results `needs` reports, intercepted into `results` (so the outer test is neither skipped nor
// failed by them).
void intercept_needs(bool present, bool* reached, ::testing::TestPartResultArray* results) {
  ::testing::ScopedFakeTestPartResultReporter reporter(
      ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, results);
  needs(present, reached);
}

TEST(Requirements, OnlyCiTrueCountsAsCi) {
  {
    ScopedCi ci("true");
    EXPECT_TRUE(lipattn::testing::running_under_ci());
  }
  for (const char* value : {"", "false", "1", "TRUE"}) {
    ScopedCi ci(value);
    EXPECT_FALSE(lipattn::testing::running_under_ci()) << "CI=" << value;
  }
  ScopedCi unset(nullptr);
  EXPECT_FALSE(lipattn::testing::running_under_ci());
}

TEST(Requirements, MissingFailsUnderCiNamingWhatAndHow) {
  ScopedCi ci("true");
  bool reached = true;
  ::testing::TestPartResultArray results;
  intercept_needs(false, &reached, &results);
  EXPECT_FALSE(reached) << "the test went on without its requirement";
  ASSERT_EQ(results.size(), 1);
  const auto& r = results.GetTestPartResult(0);
  EXPECT_TRUE(r.fatally_failed()) << r.message();
  const std::string message = r.message();
  EXPECT_NE(message.find("no-such-program-xyz"), std::string::npos) << message;
  EXPECT_NE(message.find("scripts/setup.sh installs it"), std::string::npos) << message;
  EXPECT_NE(message.find("CI=true"), std::string::npos) << message;
}

TEST(Requirements, MissingSkipsOutsideCi) {
  ScopedCi ci(nullptr);
  bool reached = true;
  ::testing::TestPartResultArray results;
  intercept_needs(false, &reached, &results);
  EXPECT_FALSE(reached);
  ASSERT_EQ(results.size(), 1);
  const auto& r = results.GetTestPartResult(0);
  EXPECT_TRUE(r.skipped()) << r.message();
  EXPECT_NE(std::string(r.message()).find("no-such-program-xyz"), std::string::npos) << r.message();
}

TEST(Requirements, PresentRunsOnUnderCiAndOutside) {
  for (const char* value : {"true", static_cast<const char*>(nullptr)}) {
    ScopedCi ci(value);
    bool reached = false;
    ::testing::TestPartResultArray results;
    intercept_needs(true, &reached, &results);
    EXPECT_TRUE(reached);
    EXPECT_EQ(results.size(), 0);
  }
}

TEST(Requirements, FindsProgramsOnPathOnly) {
  EXPECT_FALSE(lipattn::testing::find_program("sh").empty()) << "sh is on every PATH";
  EXPECT_TRUE(lipattn::testing::find_program("no-such-program-xyz").empty());
  EXPECT_EQ(lipattn::testing::missing_outcome(true), MissingOutcome::Fail);
  EXPECT_EQ(lipattn::testing::missing_outcome(false), MissingOutcome::Skip);
}

TEST(Requirements, SharedDataMessageNamesTheFile) {
  const auto r = lipattn::testing::shared_data_requirement("/nowhere/shared/data/gpt2/vocab.json");
  EXPECT_NE(r.what.find("/nowhere/shared/data/gpt2/vocab.json"), std::string::npos) << r.what;
  EXPECT_NE(r.install.find("scripts/setup.sh"), std::string::npos) << r.install;
}

}  // namespace
