// The number of threads a product runs on, adapted to the cores other processes leave free
// (docs/performance.md, "Under load").
//
// Why: a parallel GEMM in Eigen synchronises its threads by spinning on shared counters, and an
// OpenMP barrier spins before it sleeps. When another process competes for the cores, a thread that
// waits for a descheduled partner burns its whole time slice, and a 16-token solve, made of many
// tiny parallel regions, ran 7–50× slower instead of the 2× that fair sharing would give. Running as
// many threads as there are free cores removes the waiting: two solves on two cores settle at one
// thread each.
#pragma once

namespace lipattn {

// Sets the calling thread's OpenMP thread count (which Eigen's products follow unless
// Eigen::setNbThreads was called) to min(cap, free cores), at least 1. The cap is the count the
// caller had set (OMP_NUM_THREADS, omp_set_num_threads, or all cores); it is noticed again whenever
// the caller changes it. Cheap enough for every product: the load is read at most every 20 ms.
// Does nothing inside a parallel region, or when LIPATTN_ADAPT_THREADS=0 is in the environment.
void adapt_threads_to_load();

// Sets the calling thread's cap (and its OpenMP thread count) to `threads`. Code that gives a worker
// thread its share of the cores calls this rather than omp_set_num_threads, so that the cap is
// known even when it equals the count adapt_threads_to_load had set.
void set_thread_cap(int threads);

// The cores not busy with other processes' runnable threads, now: the online cores less the
// system's runnable threads (/proc/loadavg) that are not this process's (/proc/self/task). May be
// zero or negative on an overloaded machine; the whole machine when /proc cannot be read.
int free_cores();

}  // namespace lipattn
