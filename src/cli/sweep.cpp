// lipattn sweep: run the jobs of a sweep file into a JSON-lines results file, in parallel, resumable.
#include <iostream>

#include <fmt/core.h>

#include "cli/command.h"
#include "common/error.h"
#include "experiments/jobs.h"
#include "experiments/sweep.h"

namespace lipattn::cli {
namespace {

struct SweepFlags {
  std::string spec, out, parallel = "auto";
  int jobs = 0;
  bool list = false, no_progress = false;
};

int run(const SweepFlags& f) {
  using namespace experiments;
  const std::vector<PlannedSweep> sweeps = plan_sweep_file(f.spec);
  for (const auto& s : sweeps)
    for (const auto& note : s.notes) std::cerr << "lipattn: note: " << note << "\n";
  if (f.list) {
    for (const auto& s : sweeps)
      for (const auto& job : s.jobs) std::cout << job.spec.dump() << "\n";
    return 0;
  }
  if (f.out.empty()) throw InputError("sweep needs --out RESULTS.jsonl (or --list to print the jobs)");
  ResultsFile results(f.out);
  if (results.repaired()) std::cerr << "lipattn: note: " << results.repair_note() << "\n";
  JobRunner runner;
  for (const auto& s : sweeps) runner.prepare(s.jobs);
  int failed = 0, ran = 0, skipped = 0;
  for (const auto& s : sweeps) {
    RunOptions options;
    options.workers = f.jobs;
    options.mode = parse_parallel_mode(f.parallel);
    options.progress = !f.no_progress;
    options.sweep = s.name;
    options.label = s.name;
    const RunSummary r = run_jobs(s.jobs, runner.executor(), results, options);
    failed += r.failed;
    ran += r.ran;
    skipped += r.skipped;
    for (const auto& e : r.errors) std::cerr << "lipattn: error: " << e << "\n";
  }
  std::cerr << fmt::format("lipattn: {} jobs ran, {} already done, {} failed; results in {}\n", ran, skipped, failed,
                           f.out);
  return failed ? 1 : 0;
}

const Register registered{{"sweep", "run a sweep file's jobs into a resumable JSON-lines results file",
                           [](CLI::App& app) -> std::function<int()> {
                             auto f = std::make_shared<SweepFlags>();
                             app.add_option("spec", f->spec, "sweep file (JSON; see docs/experiments.md)")->required();
                             app.add_option("--out", f->out, "results file (JSON lines; reruns skip finished jobs)");
                             app.add_option("--jobs", f->jobs, "worker threads (default: the machine's cores)");
                             app.add_option("--parallel", f->parallel,
                                            "auto | jobs (side by side) | threads (inside each job)")
                                 ->capture_default_str();
                             app.add_flag("--list", f->list, "print the planned jobs (JSON lines) and exit");
                             app.add_flag("--no-progress", f->no_progress, "no progress bar on stderr");
                             return [f] { return run(*f); };
                           }}};

}  // namespace
}  // namespace lipattn::cli
