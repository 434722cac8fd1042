// Tests that start lipattn (or mpirun and its ranks) in the background and kill it: starting a process
// marked by an environment variable, finding every process carrying the mark (mpirun's ranks too), and
// letting OpenMPI run as root; LIPATTN_REQUIRE_MPI. POSIX, the standard library and GoogleTest.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bytes_support.h"  // read_bytes
#include "requirement_support.h"

namespace lipattn::testing {

// OpenMPI refuses to run as root unless told it is on purpose (containers, CI).
inline void allow_mpi_as_root() {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
}

// The processes with `marker` ("NAME=VALUE") in their environment (a launched process and, under
// mpirun, its ranks), and OMPI_COMM_WORLD_RANK=rank unless rank < 0. This process is never listed.
inline std::vector<pid_t> processes_with(const std::string& marker, int rank = -1) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (dirent* entry = ::readdir(proc)) {
    const pid_t pid = std::atoi(entry->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    const std::string environ = read_bytes("/proc/" + std::string(entry->d_name) + "/environ");
    std::set<std::string> vars;
    std::size_t begin = 0;
    for (std::size_t end = environ.find('\0'); end != std::string::npos; end = environ.find('\0', begin)) {
      vars.insert(environ.substr(begin, end - begin));
      begin = end + 1;
    }
    if (!vars.count(marker)) continue;
    if (rank >= 0 && !vars.count("OMPI_COMM_WORLD_RANK=" + std::to_string(rank))) continue;
    out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

// Starts `argv` (argv[0] a path) with `marker` added to its environment, stdout and stderr appended to
// `log`. Returns the child's pid (−1 when fork fails).
inline pid_t launch_marked(const std::vector<std::string>& argv, const std::string& marker,
                           const std::filesystem::path& log) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
  }
  ::putenv(const_cast<char*>(marker.c_str()));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// Waits up to `seconds` for the child `pid` to exit; true (with its wait status) when it did.
inline bool wait_for_exit(pid_t pid, double seconds, int* status) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    if (::waitpid(pid, status, WNOHANG) == pid) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Waits up to `seconds` until no process carries `marker`; true when none is left.
inline bool wait_until_gone(const std::string& marker, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!processes_with(marker).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

#ifdef LIPATTN_HAVE_MPI
inline constexpr bool kBuiltWithMpi = true;
#else
inline constexpr bool kBuiltWithMpi = false;
#endif

}  // namespace lipattn::testing

// In a TEST body: `mpirun` (a new const std::string) is mpirun's path. Skips the test when MPI is not
// installed (fails it under CI=true); fails when it is but this build was configured without it.
#define LIPATTN_REQUIRE_MPI(mpirun)                                                                          \
  const std::string mpirun = ::lipattn::testing::find_program("mpirun");                                     \
  LIPATTN_REQUIRE(!mpirun.empty(), ::lipattn::testing::program_requirement("mpirun", "openmpi-bin libopenmpi-dev")); \
  if (!::lipattn::testing::kBuiltWithMpi)                                                                    \
    FAIL() << "mpirun is installed but this build has no MPI: rerun cmake so it finds MPI";                  \
  ::lipattn::testing::allow_mpi_as_root()
