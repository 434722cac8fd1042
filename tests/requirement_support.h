// What a test needs from outside the build (chromium, mpirun, the shared data): on a developer's
// machine a missing one skips the test with the reason; under CI (CI=true, as .ci/run sets it) it
// fails the test, since a CI run that quietly skips proves nothing. One helper for every such test.
// Standard library and GoogleTest only.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace lipattn::testing {

// True under CI: the environment variable CI is "true" (.ci/run, scripts/test.sh under CI=true).
inline bool running_under_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// A thing a test needs: what it is (for the message) and how to get it.
struct Requirement {
  std::string what;     // "chromium (/usr/bin/chromium)", "mpirun", "the shared data (…/gpt2/vocab.json)"
  std::string install;  // "scripts/setup.sh installs it (apt: chromium)"
};

inline Requirement program_requirement(const std::string& program, const std::string& packages) {
  return {program + " (not on PATH)", "scripts/setup.sh installs it (Debian packages: " + packages + ")"};
}

inline Requirement shared_data_requirement(const std::filesystem::path& file) {
  return {"the shared data file " + file.lexically_normal().string(),
          "it lives in ../shared/data beside the checkout (shared/README.md); scripts/setup.sh checks for it and "
          "names what is missing"};
}

// What happens to a test whose requirement is missing: skip it outside CI, fail it under CI.
enum class MissingOutcome { Skip, Fail };
inline MissingOutcome missing_outcome(bool under_ci) { return under_ci ? MissingOutcome::Fail : MissingOutcome::Skip; }

inline std::string missing_message(const Requirement& r, MissingOutcome outcome) {
  std::string message = "missing: ";  // built piece by piece (GCC 12's -Wrestrict on string + chains)
  message += r.what;
  message += "; ";
  message += r.install;
  message += outcome == MissingOutcome::Fail ? " (CI=true: a missing requirement fails the test instead of skipping it)"
                                             : " (skipped; under CI=true this fails)";
  return message;
}

// The folders of PATH, in order.
inline std::vector<std::string> path_dirs() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::vector<std::string> out;
  for (std::string dir; std::getline(dirs, dir, ':');) out.push_back(dir.empty() ? "." : dir);
  return out;
}
// `name` found on PATH as an executable file, or "".
inline std::string find_program(const std::string& name) {
  for (const auto& dir : path_dirs()) {
    const auto candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

}  // namespace lipattn::testing

// In a TEST body (or a void helper it calls): when `present` is false, skip the test with the reason,
// or under CI=true fail it, naming what is missing and how to install it.
#define LIPATTN_REQUIRE(present, requirement)                                                               \
  do {                                                                                                      \
    if (!(present)) {                                                                                       \
      const auto lipattn_outcome = ::lipattn::testing::missing_outcome(::lipattn::testing::running_under_ci()); \
      const std::string lipattn_message = ::lipattn::testing::missing_message((requirement), lipattn_outcome); \
      if (lipattn_outcome == ::lipattn::testing::MissingOutcome::Fail) FAIL() << lipattn_message;            \
      GTEST_SKIP() << lipattn_message;                                                                      \
    }                                                                                                       \
  } while (0)

// The shared data file `file` (a std::filesystem::path) must exist.
#define LIPATTN_REQUIRE_SHARED_DATA(file) \
  LIPATTN_REQUIRE(std::filesystem::exists(file), ::lipattn::testing::shared_data_requirement(file))
