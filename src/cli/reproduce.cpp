// lipattn reproduce: every experiment of the paper and past it, from one command, into a report; under
// mpirun the ranks share the jobs.
#include <iostream>

#include <fmt/core.h>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/run_flags.h"
#include "common/error.h"
#include "experiments/distributed.h"
#include "experiments/reproduce.h"

namespace lipattn::cli {
namespace {

struct ReproduceFlags {
  std::string out, gpt2, bert, text;
  RunFlags run;
  bool quick = false, analyse_only = false;
  std::uint64_t seed = 0;
  std::vector<std::string> only;
};

experiments::ReproduceOptions options_of(const ReproduceFlags& f) {
  experiments::ReproduceOptions o;
  o.out = f.out;
  o.quick = f.quick;
  o.gpt2 = f.gpt2;
  o.bert = f.bert;
  o.text = f.text;
  o.workers = f.run.jobs;
  o.seed = f.seed;
  o.mode = f.run.mode();
  o.progress = !f.run.no_progress;
  o.only = f.only;
  return o;
}

int print_summary(const experiments::ReproduceSummary& s, bool ran_sweeps) {
  if (ran_sweeps) {
    for (const auto& note : s.notes) std::cerr << "lipattn: note: " << note << "\n";
    std::cerr << fmt::format("lipattn: {} jobs: {} ran, {} already done, {} failed, in {:.0f} s\n", s.jobs, s.ran,
                             s.skipped, s.failed, s.seconds);
  }
  std::cout << "fits:   " << s.fits_json.string() << "\n";
  std::cout << "report: " << s.report_md.string() << "\n";
  std::cout << "report: " << s.report_html.string() << "\n";
  return s.failed ? 1 : 0;
}

// Under mpirun the ranks share each experiment's jobs (run_sweeps_distributed) and rank 0 alone writes
// fits, figures and report. Errors met by every rank together end each cleanly with rank 0's message;
// an error on one rank alone ends the run with MPI_Abort (the others would wait for it forever).
int run_mpi(const ReproduceFlags& f) {
  using namespace experiments;
  const ReproduceOptions o = options_of(f);
  MpiSession session;
  const bool lead = session.rank() == 0;
  try {
    if (f.analyse_only) return lead ? print_summary(analyse(o, reproduce_experiments(o)), false) : 0;
    const ReproduceSummary s = reproduce(o, run_sweeps_distributed, lead);
    return lead ? print_summary(s, true) : (s.failed ? 1 : 0);
  } catch (...) {
    return mpi_failure_exit(std::current_exception(), session);
  }
}

int run(const ReproduceFlags& f) {
  if (experiments::launched_by_mpi()) return run_mpi(f);
  const experiments::ReproduceOptions o = options_of(f);
  if (f.analyse_only) return print_summary(experiments::analyse(o, experiments::reproduce_experiments(o)), false);
  return print_summary(experiments::reproduce(o), true);
}

const Register registered{
    {"reproduce", "rerun the paper's experiments (sweeps, fits, figures) into DIR/report.html",
     [](CLI::App& app) -> std::function<int()> {
       auto f = std::make_shared<ReproduceFlags>();
       app.add_option("--out", f->out, "output folder: report.md, report.html, fits.json, results/, figures/")
           ->required();
       app.add_flag("--quick", f->quick, "a coarser grid that finishes in minutes");
       app.add_option("--gpt2", f->gpt2, "pretrained GPT-2 folder or cached name (default: random:gpt2)");
       app.add_option("--bert", f->bert, "pretrained BERT folder or cached name (default: random:bert-base-uncased)");
       app.add_option("--text", f->text, "text file cut into windows (default: seeded random token ids)");
       f->run.add(app, "worker threads (default: the machine's cores)");
       app.add_option("--seed", f->seed, "seed of the random models and inputs")->capture_default_str();
       app.add_option("--only", f->only, "run only the experiments whose names start with these prefixes");
       app.add_flag("--analyse-only", f->analyse_only, "redo fits, figures and report from DIR/results only");
       return [f] { return run(*f); };
     }}};

}  // namespace
}  // namespace lipattn::cli
