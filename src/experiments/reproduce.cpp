#include "experiments/reproduce.h"

#include <chrono>

#include "common/error.h"
#include "io/atomic_file.h"

namespace lipattn::experiments {

ReproduceSummary analyse(const ReproduceOptions& o, const std::vector<Experiment>& experiments,
                         const std::vector<std::string>& notes, double sweep_seconds) {
  Analysis a(o, experiments);
  std::filesystem::create_directories(a.figures_dir);
  // The sections that fit come first, in the order of fits.json: real data, adversarial, mean-field.
  const Section trained = trained_section(a);
  const Section real = real_section(a);
  const Section adversarial = adversarial_section(a);
  const Section meanfield = meanfield_section(a);
  const Section blocks = blocks_section(a);
  Report report;
  report.title = "lipattn reproduce: how smooth is attention?";
  report.sections = {intro_section(a, sweep_seconds),
                     fits_section(a),
                     real,
                     authors_section(a),
                     adversarial,
                     bounds_section(a),
                     meanfield,
                     masked_section(a)};
  if (a.has_group(ExperimentGroup::Blocks)) report.sections.push_back(blocks);
  report.sections.push_back(reproducibility_section(a, notes));
  // The trained model's answer comes right after the introduction, before the random models' fits.
  if (a.has_group(ExperimentGroup::Trained)) report.sections.insert(report.sections.begin() + 1, trained);

  ReproduceSummary summary;
  summary.notes = notes;
  summary.fits = a.fits;
  summary.fits_json = o.out / "fits.json";
  nlohmann::json fits = nlohmann::json::array();
  for (const auto& f : a.fits) fits.push_back(f.to_json());
  // Whole or not at all: a run killed while writing leaves the previous files (or none), never half of one.
  io::write_file_atomically(summary.fits_json, {fits.dump(2), "\n"});
  summary.report_md = o.out / "report.md";
  summary.report_html = o.out / "report.html";
  io::write_file_atomically(summary.report_md, {render_markdown(report, o.out)});
  io::write_file_atomically(summary.report_html, {render_html(report)});
  return summary;
}

ReproduceSummary reproduce(const ReproduceOptions& options, const SweepsRunner& run_all, bool analyse_after) {
  if (options.out.empty()) throw InputError("reproduce needs an output folder", "out");
  const auto start = std::chrono::steady_clock::now();
  std::filesystem::create_directories(options.out / "results");
  const std::vector<Experiment> experiments = reproduce_experiments(options);
  std::vector<PlannedSweep> sweeps;
  std::vector<std::string> notes;
  for (const auto& e : experiments) {
    sweeps.push_back(plan_sweep(e.spec));
    for (const auto& note : sweeps.back().notes) notes.push_back(note);
  }
  SweepsOptions run;
  run.run.workers = options.workers;
  run.run.mode = options.mode;
  run.run.progress = options.progress;
  run.numbered = true;
  run.results_path = [&](const PlannedSweep& s) { return (options.out / "results" / (s.name + ".jsonl")).string(); };
  run.on_note = [&](const std::string& note) { notes.push_back(note); };
  const SweepsSummary r = run_all(sweeps, run);
  ReproduceSummary summary;
  summary.jobs = r.total;
  summary.ran = r.ran;
  summary.skipped = r.skipped;
  summary.failed = r.failed;
  for (const auto& e : r.errors) summary.errors.push_back(e.sweep + ": " + e.message);
  for (const auto& e : summary.errors) notes.push_back("failed job: " + e);
  const double sweep_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.notes = notes;
  if (!analyse_after) return summary;
  const ReproduceSummary analysis = analyse(options, experiments, notes, sweep_seconds);
  summary.report_md = analysis.report_md;
  summary.report_html = analysis.report_html;
  summary.fits_json = analysis.fits_json;
  summary.fits = analysis.fits;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace lipattn::experiments
