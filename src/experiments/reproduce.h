// `lipattn reproduce`: every experiment of the paper (and past it) from one command: sweeps, fits,
// figures and a report (docs/experiments.md, "reproduce"). The experiments are catalogue.h's, the
// sweeps run through jobs.h's run_sweeps, and the report's sections are analysis.h's.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "experiments/analysis.h"
#include "experiments/catalogue.h"
#include "experiments/jobs.h"

namespace lipattn::experiments {

struct ReproduceSummary {
  std::filesystem::path report_md, report_html, fits_json;
  int jobs = 0, ran = 0, skipped = 0, failed = 0;
  double seconds = 0;
  std::vector<std::string> errors, notes;
  std::vector<FitRecord> fits;
};

// How the sweeps run: run_sweeps (jobs.h) in this process, or run_sweeps_distributed (distributed.h)
// shared by the ranks of mpirun.
using SweepsRunner = std::function<SweepsSummary(const std::vector<PlannedSweep>&, const SweepsOptions&)>;

// Runs (or resumes) every sweep into out/results/ with `run_all`, then, when `analyse_after`, fits,
// figures (out/figures/) and the report (under mpirun only rank 0 analyses).
ReproduceSummary reproduce(const ReproduceOptions& options, const SweepsRunner& run_all = run_sweeps,
                           bool analyse_after = true);

// The analysis alone, from the results files already in out/results (what `reproduce` does after
// its sweeps).
ReproduceSummary analyse(const ReproduceOptions& options, const std::vector<Experiment>& experiments,
                         const std::vector<std::string>& notes = {}, double sweep_seconds = -1);

}  // namespace lipattn::experiments
