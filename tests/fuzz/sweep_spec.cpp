// Fuzz target: sweep spec JSON (plan_sweep_text, which plan_sweep_file runs on the file's text): the
// grid expansion, ranges and per-kind planning. Models are resolved by name, so the target runs with
// the Hugging Face cache pointed at a folder that does not exist: a name that is not random:… or a
// file fails as it would on a machine without that model.
#include <cstdlib>

#include "experiments/jobs.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool isolated = [] {
    setenv("HF_HUB_CACHE", "/nonexistent/lipattn-fuzz-hub", 1);
    setenv("HF_HOME", "/nonexistent/lipattn-fuzz-home", 1);
    return true;
  }();
  (void)isolated;
  lipattn::fuzz::accept_input_errors([&] {
    const auto sweeps = lipattn::experiments::plan_sweep_text(lipattn::fuzz::as_text(data, size), "fuzz-sweep.json");
    for (const auto& s : sweeps)
      for (const auto& job : s.jobs) (void)job.key();
  });
  return 0;
}
