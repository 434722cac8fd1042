#include "common/threads.h"

#include <dirent.h>
#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// OpenBLAS's own thread count, when LIPATTN_USE_BLAS links it (weak: absent otherwise, and then
// there are no BLAS threads to set).
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace lipattn {
namespace {

// Reads a small /proc file into `buffer` (null-terminated); the length read, or -1.
long read_small_file(const char* path, char* buffer, long size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  const long got = ::read(fd, buffer, size - 1);
  ::close(fd);
  if (got < 0) return -1;
  buffer[got] = '\0';
  return got;
}

// The system's runnable threads now: the R of "R/T" in /proc/loadavg (ourselves included).
int runnable_threads_system() {
  char text[256];
  if (read_small_file("/proc/loadavg", text, sizeof text) <= 0) return -1;
  const char* slash = std::strchr(text, '/');
  if (!slash) return -1;
  const char* start = slash;
  while (start > text && start[-1] != ' ') --start;
  return std::atoi(start);
}

// This process's runnable threads: those of /proc/self/task/*/stat in state R.
int runnable_threads_own() {
  DIR* dir = ::opendir("/proc/self/task");
  if (!dir) return -1;
  int running = 0;
  char path[300], text[512];  // d_name holds at most 255 bytes
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::snprintf(path, sizeof path, "/proc/self/task/%s/stat", entry->d_name);
    if (read_small_file(path, text, sizeof text) <= 0) continue;
    const char* paren = std::strrchr(text, ')');  // the command name may hold spaces and ')'
    if (paren && paren[1] == ' ' && paren[2] == 'R') ++running;
  }
  ::closedir(dir);
  return running;
}

bool adaptation_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("LIPATTN_ADAPT_THREADS");
    return !(value && std::strcmp(value, "0") == 0);
  }();
  return enabled;
}

}  // namespace

namespace {

// Other processes' runnable threads now, or -1 when /proc cannot be read.
int others_runnable() {
  const int system = runnable_threads_system();
  const int own = runnable_threads_own();
  if (system < 0 || own < 0) return -1;
  return std::max(0, system - own);
}

int online_cores() { return static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))); }

}  // namespace

int free_cores() {
  const int others = others_runnable();
  return online_cores() - std::max(0, others);
}

namespace {
// Per calling thread, like OpenMP's thread count itself (a sweep runs jobs on several threads).
struct ThreadBudget {
  int cap = 0;      // the most threads the caller allows
  int applied = 0;  // the count this file set last; 0 before the first call
  std::chrono::steady_clock::time_point last_check;
  // Other processes' runnable threads at the last three checks. Their minimum is what counts: a
  // competing solve is runnable at every check, a short-lived process (a shell, a daemon waking
  // up) is not, and should not halve the threads of a long product.
  std::array<int, 3> others{};
  int next = -1;  // -1 before the first check
};
thread_local ThreadBudget t_budget;
}  // namespace

void set_thread_cap(int threads) {
  threads = std::max(1, threads);
  omp_set_num_threads(threads);
  t_budget.cap = threads;
  t_budget.applied = 0;  // check the load at the next product
}

void adapt_threads_to_load() {
  if (!adaptation_enabled() || omp_in_parallel()) return;
  ThreadBudget& b = t_budget;
  const int current = omp_get_max_threads();
  if (b.applied != 0 && current != b.applied) b.cap = current;  // the caller set a new count
  if (b.cap == 0) b.cap = current;
  const auto now = std::chrono::steady_clock::now();
  if (b.applied != 0 && now - b.last_check < std::chrono::milliseconds(20)) return;
  b.last_check = now;
  const int others = others_runnable();
  if (others < 0) return;  // no /proc: leave the count as the caller set it
  if (b.next < 0) b.others.fill(others);  // the first check: no history yet
  b.next = (b.next + 1) % static_cast<int>(b.others.size());
  b.others[b.next] = others;
  const int busy = *std::min_element(b.others.begin(), b.others.end());
  const int threads = std::clamp(online_cores() - busy, 1, b.cap);
  if (threads != current) omp_set_num_threads(threads);
  if (openblas_set_num_threads && threads != b.applied) openblas_set_num_threads(threads);
  b.applied = threads;
}

}  // namespace lipattn
