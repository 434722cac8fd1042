// lipattn reproduce: every experiment of the paper and past it, from one command, into a report.
#include <iostream>

#include <fmt/core.h>

#include "cli/command.h"
#include "cli/run_flags.h"
#include "common/error.h"
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

int run(const ReproduceFlags& f) {
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
  experiments::ReproduceSummary s;
  if (f.analyse_only) {
    s = experiments::analyse(o, experiments::reproduce_experiments(o));
  } else {
    s = experiments::reproduce(o);
    for (const auto& note : s.notes) std::cerr << "lipattn: note: " << note << "\n";
    std::cerr << fmt::format("lipattn: {} jobs: {} ran, {} already done, {} failed, in {:.0f} s\n", s.jobs, s.ran,
                             s.skipped, s.failed, s.seconds);
  }
  std::cout << "fits:   " << s.fits_json.string() << "\n";
  std::cout << "report: " << s.report_md.string() << "\n";
  std::cout << "report: " << s.report_html.string() << "\n";
  return s.failed ? 1 : 0;
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
