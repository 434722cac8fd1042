// `lipattn reproduce`: every experiment of the paper (and past it) from one command: sweeps, fits,
// figures and a report (docs/experiments.md, "reproduce").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/jobs.h"
#include "experiments/sweep.h"

namespace lipattn::experiments {

struct ReproduceOptions {
  std::filesystem::path out;
  bool quick = false;
  std::string gpt2;   // pretrained GPT-2 folder or cached name; "" = random:gpt2
  std::string bert;   // pretrained BERT; "" = random:bert-base-uncased
  std::string text;   // text file for the real-data windows; "" = seeded random token ids
  int workers = 0;    // --jobs: 0 = the machine's cores
  std::uint64_t seed = 0;
  ParallelMode mode = ParallelMode::Auto;
  bool progress = true;
  // Only the experiments whose name starts with one of these (tests); empty: all.
  std::vector<std::string> only;
};

// What the paper's plots state, shown beside our fit.
struct PaperReference {
  std::string text;              // "14.3·n^0.24 (BERT layer 0)"
  std::optional<double> constant;
  std::optional<double> exponent;
};

// One experiment = one sweep (one results file) plus how to read it.
struct Experiment {
  std::string name;        // results/<name>.jsonl
  std::string group;       // "real" | "long" | "adversarial" | "attack" | "meanfield"
  std::string title;       // one line for the report
  std::string setting;     // the setting in words
  std::string model;       // as given to the jobs ("toy" for the toy head)
  int layer = -1;          // -1 when not a model layer
  nlohmann::json spec;     // the sweep spec (plan_sweep)
  double paper_radius = 0; // adversarial: the paper's R (the report gives the n* it implies here)
  PaperReference reference;
};

std::vector<Experiment> reproduce_experiments(const ReproduceOptions& options);

struct FitRecord {
  std::string experiment, model, quantity;  // quantity: "lipschitz" | "authors" | "lipschitz_below_n_star" | ...
  int layer = -1;
  double exponent = 0, ci_low = 0, ci_high = 0, constant = 0, sqrt_constant = 0;
  int points = 0;
  double n_min = 0, n_max = 0;
  PaperReference reference;
  nlohmann::json to_json() const;
};

struct ReproduceSummary {
  std::filesystem::path report_md, report_html, fits_json;
  int jobs = 0, ran = 0, skipped = 0, failed = 0;
  double seconds = 0;
  std::vector<std::string> errors, notes;
  std::vector<FitRecord> fits;
};

// Runs (or resumes) every sweep into out/results/, then fits, figures (out/figures/) and the report.
ReproduceSummary reproduce(const ReproduceOptions& options);

// The analysis alone, from the results files already in out/results (what `reproduce` does after
// its sweeps).
ReproduceSummary analyse(const ReproduceOptions& options, const std::vector<Experiment>& experiments,
                         const std::vector<std::string>& notes = {}, double sweep_seconds = -1);

}  // namespace lipattn::experiments
