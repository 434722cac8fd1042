// Work shared among the OpenMP threads whose sums come out the same in every run: tasks with a
// per-thread scratch and per-thread partial results, and fixed row chunks with per-chunk partials.
//
// Kernels that gather over tasks (the vjp's dK and dV sum over every query block) give each thread
// its own accumulator. With a dynamic schedule, which tasks a thread takes changes from run to run,
// and so do the rounding of its partial sum and the final bits. The cyclic schedule fixes the
// assignment (task t goes to thread t mod T), and add_in_thread_order fixes the order of the final
// sum, so a rerun repeats its bits for a given number of threads.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "common/types.h"

namespace lipattn {

// Dynamic: a free thread takes the next task, which keeps both cores busy when the host slows one
// down. Cyclic: task t goes to thread t mod T, the same in every run.
enum class Schedule { Dynamic, Cyclic };

// Runs body(task, scratch) for task = 0..tasks−1. Each thread makes its scratch once with
// make_scratch() and ends with finish(scratch, thread). With parallel = false one thread runs all.
template <class MakeScratch, class Body, class Finish>
void parallel_tasks(Index tasks, Schedule schedule, bool parallel, MakeScratch&& make_scratch, Body&& body,
                    Finish&& finish) {
#pragma omp parallel if (parallel)
  {
    auto scratch = make_scratch();
    if (schedule == Schedule::Dynamic) {
#pragma omp for schedule(dynamic)
      for (Index t = 0; t < tasks; ++t) body(t, scratch);
    } else {
#pragma omp for schedule(static, 1)
      for (Index t = 0; t < tasks; ++t) body(t, scratch);
    }
    finish(scratch, omp_get_thread_num());
  }
}

// One slot per thread for partial results, added in thread order at the end. Slots of threads the
// team did not use stay empty and are skipped.
template <class Part>
class PartialsByThread {
 public:
  PartialsByThread() : parts_(omp_get_max_threads()) {}
  void store(int thread, Part&& part) { parts_.at(thread) = std::move(part); }
  template <class Total>
  void add_in_thread_order(Total& total) const {
    for (const Part& p : parts_)
      if (p.size() != 0) total += p;
  }

 private:
  std::vector<Part> parts_;
};

// Runs f(r0, len, chunk) over the chunks of `rows` rows, chunk_rows each (the last may be shorter),
// in parallel with a static schedule. When f returns a double, the per-chunk values come back in
// chunk order: a sum over them is the same for any number of threads. A single chunk runs on the
// calling thread: a parallel region would cost more than a small sweep, and on a busy machine its
// barrier waits for descheduled threads (docs/theory.md §MF.7).
template <class F>
auto for_fixed_chunks(Index rows, Index chunk_rows, F&& f) {
  const Index chunks = (rows + chunk_rows - 1) / chunk_rows;
  const bool parallel = chunks > 1;
  using Result = std::invoke_result_t<F, Index, Index, Index>;
  if constexpr (std::is_void_v<Result>) {
#pragma omp parallel for schedule(static) if (parallel)
    for (Index c = 0; c < chunks; ++c) f(c * chunk_rows, std::min(chunk_rows, rows - c * chunk_rows), c);
  } else {
    VectorD partial(chunks);
#pragma omp parallel for schedule(static) if (parallel)
    for (Index c = 0; c < chunks; ++c) partial(c) = f(c * chunk_rows, std::min(chunk_rows, rows - c * chunk_rows), c);
    return partial;
  }
}

// dst = src in dst's scalar type, over row chunks in parallel: the copies of a map's weights into its
// own storage (hundreds of MB for a whole model) are bound by page faults and memory bandwidth, and run
// about twice as fast on two threads as on one (docs/performance.md, "Session 11"). Small matrices
// are one chunk, copied on the calling thread.
template <class Dst, class Src>
void convert_rows(Dst&& dst, const Src& src) {
  constexpr Index kChunkElements = 65536;
  const Index chunk_rows = std::max<Index>(1, kChunkElements / std::max<Index>(src.cols(), 1));
  for_fixed_chunks(src.rows(), chunk_rows, [&](Index r0, Index len, Index) {
    dst.middleRows(r0, len) = src.middleRows(r0, len).template cast<typename std::decay_t<Dst>::Scalar>();
  });
}

}  // namespace lipattn
