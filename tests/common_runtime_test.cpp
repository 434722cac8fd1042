// common/progress (where progress lines go) and common/threads (the thread count under load).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

#include "bytes_support.h"
#include "common/progress.h"
#include "common/threads.h"
#include "file_support.h"

using namespace lipattn;

namespace {

// Runs f with stderr sent to a file and returns what it wrote there.
template <class F>
std::string capture_stderr(F&& f) {
  const auto path = lipattn::testing::scratch_dir("progress") / "stderr.txt";
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, STDERR_FILENO);
  ::close(fd);
  f();
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  return lipattn::testing::read_bytes(path);
}

}  // namespace

// Under ctest stderr is a file, not a terminal: plain lines, one per interval (here: an interval no
// test run reaches), `final` ones always; notes on their own line; --quiet silences both.
TEST(Progress, PlainLinesWhenStderrIsNotATerminal) {
  constexpr double kNever = std::numeric_limits<double>::infinity();
  const std::string err = capture_stderr([&] {
    ASSERT_FALSE(progress::stderr_is_terminal());
    progress::set_quiet(false);
    progress::update("first", kNever);
    progress::update("throttled", kNever);
    progress::update("last", kNever, /*final=*/true);
    progress::note("a note");
    progress::end_line();
    progress::set_quiet(true);
    progress::update("silenced", kNever, /*final=*/true);
    progress::note("silenced");
    progress::set_quiet(false);
  });
  EXPECT_EQ(err, "lipattn: first\nlipattn: last\nlipattn: note: a note\n");
}

TEST(Threads, FreeCoresNeverExceedTheMachine) {
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_LE(free_cores(), online);
}

// The adapted count stays within [1, cap]: a caller's lower count is a ceiling adaptation keeps.
TEST(Threads, AdaptationKeepsTheCallersCap) {
  const int all = omp_get_max_threads();
  set_thread_cap(1);
  adapt_threads_to_load();
  EXPECT_EQ(omp_get_max_threads(), 1);
  set_thread_cap(all);
  adapt_threads_to_load();
  EXPECT_GE(omp_get_max_threads(), 1);
  EXPECT_LE(omp_get_max_threads(), all);
  // A count set directly with omp_set_num_threads becomes the cap too.
  omp_set_num_threads(1);
  adapt_threads_to_load();
  EXPECT_EQ(omp_get_max_threads(), 1);
  set_thread_cap(all);
}
