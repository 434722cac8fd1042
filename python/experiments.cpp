// lipattn.sweep and lipattn.reproduce: the library calls `lipattn sweep` and `lipattn reproduce`
// make (experiments/jobs.h run_sweeps, experiments/reproduce.h), with the CLI's progress on stderr
// (docs/python.md, "Experiments"). An interrupted run keeps every finished job's record, as the CLI's.
#include <iostream>

#include <fmt/core.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "common/error.h"
#include "common/progress.h"
#include "experiments/jobs.h"
#include "experiments/reproduce.h"

namespace lipattn::python {
namespace {

using namespace pybind11::literals;

// quiet=True for the length of a call: no progress bar, progress lines or notes (errors still print).
struct QuietScope {
  bool saved;
  explicit QuietScope(bool quiet) : saved(progress::quiet()) { progress::set_quiet(quiet || saved); }
  ~QuietScope() { progress::set_quiet(saved); }
};

experiments::ParallelMode parallel_mode(const std::string& name) { return experiments::parse_parallel_mode(name); }

std::vector<experiments::PlannedSweep> plan(py::object spec) {
  if (is_path(spec)) return experiments::plan_sweep_file(path_string(spec));
  if (!py::isinstance<py::dict>(spec))
    throw InputError("spec: expected a dict (a sweep, or {'sweeps': [...]}) or the path of a sweep file", "spec");
  // NumPy scalars and arrays in the spec (np.arange for an axis) become JSON through their tolist().
  const py::object tolist = py::module_::import("operator").attr("methodcaller")("tolist");
  const std::string text = py::str(py::module_::import("json").attr("dumps")(spec, "default"_a = tolist));
  return experiments::plan_sweeps(nlohmann::json::parse(text), "spec");
}

py::object sweep(py::object spec, py::object out, int jobs, const std::string& parallel, bool quiet) {
  using namespace experiments;
  QuietScope scope(quiet);
  const std::vector<PlannedSweep> sweeps = plan(spec);
  const std::string results = path_string(out);
  std::vector<std::string> notes;
  for (const auto& s : sweeps)
    for (const auto& note : s.notes) notes.push_back(note);
  for (const auto& note : notes) progress::note(note);
  SweepsOptions options;
  options.run.workers = jobs;
  options.run.mode = parallel_mode(parallel);
  options.run.progress = !progress::quiet();
  options.results_path = [&](const PlannedSweep&) { return results; };
  options.on_note = [&](const std::string& note) {
    notes.push_back(note);
    progress::note(note);
  };
  const SweepsSummary r = run_interruptible([&] { return run_sweeps(sweeps, options); });
  nlohmann::json j;
  j["results"] = results;
  j["total"] = r.total;
  j["ran"] = r.ran;
  j["skipped"] = r.skipped;
  j["failed"] = r.failed;
  j["errors"] = nlohmann::json::array();
  for (const auto& e : r.errors) {
    std::cerr << "lipattn: error: " << e.message << "\n";
    j["errors"].push_back({{"sweep", e.sweep}, {"message", e.message}});
  }
  j["notes"] = notes;
  if (!progress::quiet())
    std::cerr << fmt::format("lipattn: {} jobs ran, {} already done, {} failed; results in {}\n", r.ran, r.skipped,
                             r.failed, results);
  return make<SweepSummary>(j);
}

py::object reproduce(py::object out, bool quick, std::optional<std::string> gpt2, std::optional<std::string> bert,
                     py::object text, int jobs, const std::string& parallel, std::uint64_t seed,
                     std::vector<std::string> only, bool analyse_only, bool quiet) {
  using namespace experiments;
  QuietScope scope(quiet);
  ReproduceOptions o;
  o.out = path_string(out);
  o.quick = quick;
  o.gpt2 = gpt2.value_or("");
  o.bert = bert.value_or("");
  o.text = text.is_none() ? "" : path_string(text);
  o.workers = jobs;
  o.seed = seed;
  o.mode = parallel_mode(parallel);
  o.progress = !progress::quiet();
  o.only = std::move(only);
  const experiments::ReproduceSummary s = run_interruptible([&] {
    return analyse_only ? analyse(o, reproduce_experiments(o)) : experiments::reproduce(o);
  });
  if (!analyse_only) {
    for (const auto& note : s.notes) progress::note(note);
    if (!progress::quiet())
      std::cerr << fmt::format("lipattn: {} jobs: {} ran, {} already done, {} failed, in {:.0f} s\n", s.jobs, s.ran,
                               s.skipped, s.failed, s.seconds);
  }
  nlohmann::json j;
  j["fits"] = s.fits_json.string();
  j["report_md"] = s.report_md.string();
  j["report_html"] = s.report_html.string();
  j["jobs"] = s.jobs;
  j["ran"] = s.ran;
  j["skipped"] = s.skipped;
  j["failed"] = s.failed;
  j["seconds"] = s.seconds;
  j["errors"] = s.errors;
  j["notes"] = s.notes;
  return make<ReproduceSummary>(j);
}

}  // namespace

void bind_experiments(py::module_& m) {
  m.def("sweep", &sweep,
        R"(sweep(spec, out, *, jobs=0, parallel='auto', quiet=False) -> SweepSummary

Runs a sweep's jobs into the JSON-lines results file `out`: `lipattn sweep SPEC --out OUT`.
spec: a dict (one sweep, or {'sweeps': [...]}; docs/experiments.md, "Sweep files") or the path of a
sweep file. Jobs already in `out` are skipped, so a rerun resumes. jobs: worker threads (0: the
machine's cores); parallel: 'auto' | 'jobs' | 'threads'. Progress (a bar), notes and the summary line
go to stderr as the CLI shows them; quiet=True silences them (errors still print).
Returns total, ran, skipped, failed, errors, notes and results (the file). Releases the GIL; Ctrl-C
stops it between jobs and products (KeyboardInterrupt) and every finished job stays in `out`.)",
        "spec"_a, "out"_a, py::kw_only(), "jobs"_a = 0, "parallel"_a = "auto", "quiet"_a = false);
  m.def("reproduce", &reproduce,
        R"(reproduce(out, quick=True, *, gpt2=None, bert=None, text=None, ...) -> ReproduceSummary

Reruns the paper's experiments into the folder `out` (results/, figures/, fits.json, report.md,
report.html): `lipattn reproduce --out OUT [--quick]`. quick: the coarser grid that finishes in
minutes. gpt2, bert: pretrained folders or cached names (default: random models); text: a text
file cut into windows (default: seeded random ids); jobs, parallel: as sweep; seed: of the random
models and inputs; only: run only the experiments whose names start with these prefixes;
analyse_only: redo fits, figures and report from out/results only. Progress on stderr as the CLI
shows it; quiet=True silences it. Returns the report's paths (fits, report_md, report_html) and the
jobs' counts. Releases the GIL; Ctrl-C stops it between jobs and products (KeyboardInterrupt); the
finished jobs stay in out/results and a rerun resumes.)",
        "out"_a, "quick"_a = true, py::kw_only(), "gpt2"_a = py::none(), "bert"_a = py::none(),
        "text"_a = py::none(), "jobs"_a = 0, "parallel"_a = "auto", "seed"_a = 0,
        "only"_a = std::vector<std::string>{}, "analyse_only"_a = false, "quiet"_a = false);
}

}  // namespace lipattn::python
