// Folders and text files for tests that write files: a fresh scratch folder (per name, or per test
// through the FileTest fixture) and a file's lines. Standard library and GoogleTest only.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

namespace lipattn::testing {

// A fresh, empty folder under the system temp dir. The process id keeps concurrent test processes
// (ctest -j) apart; whatever an earlier run left there is removed.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("lipattn-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Every line of a text file, without its '\n' (a last line without one included); none if the file
// cannot be opened.
inline std::vector<std::string> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Fixture: each test gets a scratch folder named after its suite and test, removed after it, and
// file(name) inside it.
class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = scratch_dir(std::string(info->test_suite_name()) + "-" + info->name());
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path file(const std::string& name) const { return dir_ / name; }

  std::filesystem::path dir_;
};

}  // namespace lipattn::testing
