// The analysis of `lipattn reproduce`: the typed records of every experiment (records.h), the fits
// (fits.json) and the report, one function per section (docs/experiments.md, "lipattn reproduce").
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/catalogue.h"
#include "experiments/records.h"
#include "experiments/report.h"

namespace lipattn::experiments {

// One fit of fits.json.
struct FitRecord {
  std::string experiment, model, quantity;  // quantity: "lipschitz" | "authors" | "lipschitz_below_n_star" | ...
  int layer = -1;
  double exponent = 0, ci_low = 0, ci_high = 0, constant = 0, sqrt_constant = 0;
  int points = 0;
  double n_min = 0, n_max = 0;
  PaperReference reference;
  nlohmann::json to_json() const;
};

// A finished job of an experiment with a finite L, as the sections read it.
struct Point {
  double n = 0, value = 0;  // value: L = ‖Df(X)‖₂
  const Record* record = nullptr;
  template <class R>
  const R& result() const {
    return std::get<R>(record->result);
  }
};
using Points = std::vector<Point>;

// What the sections read, and the fits they add (in section order: real, adversarial, mean-field).
struct Analysis {
  ReproduceOptions options;
  std::vector<Experiment> experiments;
  std::map<std::string, std::vector<Record>> records;  // by experiment name; each by n, then job
  std::filesystem::path figures_dir;
  std::vector<FitRecord> fits;

  // Reads out/results/<experiment>.jsonl for every experiment.
  Analysis(const ReproduceOptions& options, const std::vector<Experiment>& experiments);
  // The experiment's points with a finite L, sorted by n.
  Points points(const Experiment& e) const;
  bool has_group(ExperimentGroup group) const;
};

Section intro_section(const Analysis& a, double sweep_seconds);
Section real_section(Analysis& a);  // adds the fits of L and of the authors' quantity
Section authors_section(const Analysis& a);
Section adversarial_section(Analysis& a);  // adds the fits below n*; the attack's tables
Section bounds_section(const Analysis& a);
Section meanfield_section(Analysis& a);  // adds the slopes below n*/10, above 10 n* and over the last decade
Section masked_section(const Analysis& a);
Section fits_section(const Analysis& a);
// The trained model (stories260K) on TinyStories: opens with the answer (‖J‖₂ against the released
// quantity, exponents with 95% CIs); adds the fits of every variant (whole layer, heads, RoPE removed).
Section trained_section(Analysis& a);
// Whole layers and whole models (kind "block"): L against n for whole layers and the whole model (adds
// the fits), L of the stack 0..k−1 against depth k, the exact constant against the product of the
// per-layer constants, and where the top singular vector lives.
Section blocks_section(Analysis& a);
Section reproducibility_section(const Analysis& a, const std::vector<std::string>& notes);

}  // namespace lipattn::experiments
