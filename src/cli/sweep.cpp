// lipattn sweep: run the jobs of a sweep file into a JSON-lines results file, in parallel, resumable;
// under mpirun the ranks share the jobs.
#include <iostream>

#include <fmt/core.h>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/run_flags.h"
#include "common/error.h"
#include "experiments/distributed.h"
#include "experiments/jobs.h"
#include "experiments/sweep.h"

namespace lipattn::cli {
namespace {

struct SweepFlags {
  std::string spec, out;
  RunFlags run;
  bool list = false;
};

// Under mpirun: the ranks share the jobs (src/experiments/distributed.h). Errors every rank meets
// together (a bad sweep file, an unreadable results file) end every rank cleanly with rank 0's
// message; an error on one rank alone ends the whole run with MPI_Abort, since the others would wait
// for that rank forever.
int run_mpi(const SweepFlags& f) {
  using namespace experiments;
  if (f.out.empty()) throw InputError("sweep needs --out RESULTS.jsonl (or --list to print the jobs)");
  const ParallelMode mode = f.run.mode();
  MpiSession session;
  const bool lead = session.rank() == 0;
  try {
    std::vector<PlannedSweep> sweeps;
    on_all_ranks([&] { sweeps = plan_sweep_file(f.spec); });
    if (lead)
      for (const auto& s : sweeps)
        for (const auto& note : s.notes) std::cerr << "lipattn: note: " << note << "\n";
    JobRunner runner;
    for (const auto& s : sweeps) runner.prepare(s.jobs);
    DistributedOptions options;
    options.threads = f.run.jobs;
    options.mode = mode;
    options.progress = !f.run.no_progress;
    options.label = sweeps.size() == 1 ? sweeps.front().name : fmt::format("{} sweeps", sweeps.size());
    const DistributedSummary r = run_distributed(sweeps, runner.executor(), f.out, options);
    if (lead) {
      for (const auto& note : r.notes) std::cerr << "lipattn: note: " << note << "\n";
      for (const auto& e : r.errors) std::cerr << "lipattn: error: " << e << "\n";
      std::string per_rank;
      for (std::size_t k = 0; k < r.ran_per_rank.size(); ++k)
        per_rank += fmt::format("{}{}", k ? " " : "", r.ran_per_rank[k]);
      std::cerr << fmt::format("lipattn: {} jobs ran, {} already done, {} failed; results in {} ({} ranks ran {} "
                               "jobs; {:.1f} s)\n",
                               r.ran, r.skipped, r.failed, f.out, r.ranks, per_rank, r.seconds);
    }
    return r.failed ? 1 : 0;
  } catch (...) {
    return mpi_failure_exit(std::current_exception(), session);
  }
}

int run(const SweepFlags& f) {
  using namespace experiments;
  if (launched_by_mpi() && !f.list) return run_mpi(f);
  if (launched_by_mpi() && launch_rank() != 0) return 0;  // --list under mpirun: rank 0 prints the jobs
  const std::vector<PlannedSweep> sweeps = plan_sweep_file(f.spec);
  for (const auto& s : sweeps)
    for (const auto& note : s.notes) std::cerr << "lipattn: note: " << note << "\n";
  if (f.list) {
    for (const auto& s : sweeps)
      for (const auto& job : s.jobs) std::cout << job.spec.dump() << "\n";
    return 0;
  }
  if (f.out.empty()) throw InputError("sweep needs --out RESULTS.jsonl (or --list to print the jobs)");
  SweepsOptions options;
  options.run = f.run.options();
  options.results_path = [&](const PlannedSweep&) { return f.out; };
  options.on_note = [](const std::string& note) { std::cerr << "lipattn: note: " << note << "\n"; };
  const SweepsSummary r = run_sweeps(sweeps, options);
  for (const auto& e : r.errors) std::cerr << "lipattn: error: " << e.message << "\n";
  std::cerr << fmt::format("lipattn: {} jobs ran, {} already done, {} failed; results in {}\n", r.ran, r.skipped,
                           r.failed, f.out);
  return r.failed ? 1 : 0;
}

const Register registered{{"sweep", "run a sweep file's jobs into a resumable JSON-lines results file",
                           [](CLI::App& app) -> std::function<int()> {
                             auto f = std::make_shared<SweepFlags>();
                             app.add_option("spec", f->spec, "sweep file (JSON; see docs/experiments.md)")->required();
                             app.add_option("--out", f->out, "results file (JSON lines; reruns skip finished jobs)");
                             f->run.add(app,
                                        "worker threads (default: the machine's cores; under mpirun, per rank: "
                                        "the cores the rank is bound to, else the cores / the ranks on the "
                                        "machine)");
                             app.add_flag("--list", f->list, "print the planned jobs (JSON lines) and exit");
                             return [f] { return run(*f); };
                           }}};

}  // namespace
}  // namespace lipattn::cli
