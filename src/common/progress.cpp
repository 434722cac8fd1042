#include "common/progress.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace lipattn::progress {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_quiet{false};

// One status line per process: updates may come from several threads (a sweep's workers).
struct LineState {
  std::mutex mutex;
  bool live = false;  // a live line is on the terminal, without its newline
  bool printed = false;
  Clock::time_point last;
};
LineState& state() {
  static LineState s;
  return s;
}

void end_line_locked(LineState& s) {
  if (s.live) std::fputs("\n", stderr);
  s.live = false;
}

}  // namespace

void set_quiet(bool quiet) { g_quiet = quiet; }
bool quiet() { return g_quiet; }

bool stderr_is_terminal() {
  static const bool terminal = ::isatty(STDERR_FILENO) != 0;
  return terminal;
}

void update(const std::string& text, double plain_every, bool final) {
  if (quiet()) return;
  LineState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - s.last).count();
  if (stderr_is_terminal()) {
    if (!final && s.live && since < 0.1) return;
    std::fprintf(stderr, "\rlipattn: %s\033[K", text.c_str());
    s.live = true;
    if (final) end_line_locked(s);
  } else {
    if (!final && s.printed && since < plain_every) return;
    std::fprintf(stderr, "lipattn: %s\n", text.c_str());
  }
  std::fflush(stderr);
  s.printed = true;
  s.last = now;
}

void end_line() {
  LineState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  end_line_locked(s);
  std::fflush(stderr);
}

void note(const std::string& text) {
  if (quiet()) return;
  LineState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  end_line_locked(s);
  std::fprintf(stderr, "lipattn: note: %s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace lipattn::progress
