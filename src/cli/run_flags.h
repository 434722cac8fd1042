// The flags `sweep` and `reproduce` share: how the jobs run (workers, parallel mode, progress bar).
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "common/error.h"
#include "experiments/sweep.h"

namespace lipattn::cli {

struct RunFlags {
  int jobs = 0;
  std::string parallel = "auto";
  bool no_progress = false;

  void add(CLI::App& app, const std::string& jobs_help) {
    app.add_option("--jobs", jobs, jobs_help);
    app.add_option("--parallel", parallel, "auto | jobs (side by side) | threads (inside each job)")
        ->capture_default_str();
    app.add_flag("--no-progress", no_progress, "no progress bar on stderr");
  }

  // The library names the field ("parallel"); here it was the flag.
  experiments::ParallelMode mode() const {
    try {
      return experiments::parse_parallel_mode(parallel);
    } catch (const InputError& e) {
      throw InputError(fmt::format("--parallel '{}': expected auto, jobs or threads", parallel), e.field());
    }
  }

  experiments::RunOptions options() const {
    experiments::RunOptions o;
    o.workers = jobs;
    o.mode = mode();
    o.progress = !no_progress;
    return o;
  }
};

}  // namespace lipattn::cli
