// A request to stop a long computation early, made from another thread: the Python module's Ctrl-C
// (run_interruptible, python/bindings.h) sets it while the computation runs on a thread of its own.
// Long loops check it at their natural boundaries: between two JᵀJ products (src/spectral), before
// each job of a sweep (src/experiments/sweep.cpp), between two tensors of a model being loaded and
// two layers of a forward pass (src/models); they end by throwing Stopped; what was finished stays finished
// (a sweep's results file keeps every record written). The CLI never requests a stop: SIGINT ends
// the process, with the same effect on results files.
#pragma once

#include <atomic>
#include <stdexcept>

namespace lipattn {

class Stopped : public std::runtime_error {
 public:
  Stopped() : std::runtime_error("stopped on request") {}
};

namespace stop {

inline std::atomic<bool>& flag() {
  static std::atomic<bool> requested{false};
  return requested;
}

// Process-wide: every computation running in the process stops at its next check.
inline void request() { flag().store(true, std::memory_order_relaxed); }
inline void clear() { flag().store(false, std::memory_order_relaxed); }
inline bool requested() { return flag().load(std::memory_order_relaxed); }
inline void throw_if_requested() {
  if (requested()) throw Stopped();
}

}  // namespace stop
}  // namespace lipattn
