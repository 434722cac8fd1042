// The experiments of `lipattn reproduce` (docs/experiments.md, "lipattn reproduce"): a table of
// definitions in catalogue.cpp, each made into one sweep spec for the models and inputs asked for.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiments/sweep.h"

namespace lipattn::experiments {

struct ReproduceOptions {
  std::filesystem::path out;
  bool quick = false;
  std::string gpt2;  // pretrained GPT-2 folder or cached name; "" = random:gpt2
  std::string bert;  // pretrained BERT; "" = random:bert-base-uncased
  std::string text;  // text file for the real-data windows; "" = seeded random token ids
  int workers = 0;   // worker threads: 0 = the machine's cores
  std::uint64_t seed = 0;
  ParallelMode mode = ParallelMode::Auto;
  bool progress = true;
  // Only the experiments whose name starts with one of these (tests); empty: all.
  std::vector<std::string> only;
};

// What the paper's plots state, shown beside our fit.
struct PaperReference {
  std::string text;  // "14.3·n^0.24 (BERT layer 0)"
  std::optional<double> constant;
  std::optional<double> exponent;
};

// The groups of experiments; each has its report section.
enum class ExperimentGroup { Real, Bounds, Long, Adversarial, Attack, Meanfield, Trained, Blocks };
// "real", "bounds", "long", "adversarial", "attack", "meanfield", "trained", "blocks"
std::string to_string(ExperimentGroup group);

// One experiment = one sweep (one results file) plus how to read it.
struct Experiment {
  std::string name;  // results/<name>.jsonl
  ExperimentGroup group = ExperimentGroup::Real;
  std::string title;        // one line for the report
  std::string setting;      // the setting in words
  std::string model;        // as given to the jobs ("toy" for the toy head)
  int layer = -1;           // -1 when not a model layer
  nlohmann::json spec;      // the sweep spec (plan_sweep)
  double paper_radius = 0;  // adversarial: the paper's R (the report gives the n* it implies here)
  PaperReference reference;
};

std::vector<Experiment> reproduce_experiments(const ReproduceOptions& options);

// The trained model and its text (docs/experiments.md, "Trained model"): llama2.c's stories260K and
// the head of the TinyStories validation split, under models::default_data_root(); "" when absent.
std::filesystem::path trained_model_file();
std::filesystem::path trained_text_file();
// The real text the whole-block experiments read on GPT-2 and BERT when --text is not given:
// text/carroll-alice.txt under models::default_data_root(); "" when absent (then seeded random ids).
std::filesystem::path blocks_text_file();

// A model folder given as a relative path, made absolute (as the text is): the jobs, and so the
// results files a rerun resumes, must not depend on the directory reproduce runs from. Cached names
// and random:… are kept as written.
std::string model_argument(const std::string& model);

}  // namespace lipattn::experiments
