// Sweeps across processes and machines with MPI (docs/experiments.md, "Sweeps across machines (MPI)").
//
//   mpirun -np K lipattn sweep SPEC.json --out OUT.jsonl
//
// Every rank plans the same jobs and reads OUT to know which are done. Rank 0 owns a counter per
// phase and hands out the next pending job index to whoever asks (dynamic sharing: a rank that
// finishes early takes more). Rank 0 computes too, on worker threads, while its main thread only
// answers requests, so a rank busy with a long job never holds up the others (a one-sided counter
// can stall there: OpenMPI's passive-target RMA over TCP progresses only when the owner calls MPI).
// Each rank appends its records to its own OUT.part<rank> (a ResultsFile), so a killed rank leaves
// complete lines; at the end rank 0 merges the part files into OUT and deletes them, and at the start
// it merges any part files a killed run left behind. The records are those of a single-process run
// plus a "rank" field.
//
// This header does not include <mpi.h>; without LIPATTN_HAVE_MPI the functions that need MPI throw
// InputError saying the build has no MPI.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "experiments/jobs.h"
#include "experiments/sweep.h"

namespace lipattn::experiments {

// True when this build links MPI (CMake found it: LIPATTN_HAVE_MPI).
bool mpi_built();

// True when the process was started by an MPI launcher (mpirun/mpiexec of OpenMPI or MPICH, srun with
// PMI/PMIx), read from the environment only: OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE or PMI_RANK.
// Plain runs never touch MPI.
bool launched_by_mpi();
// The rank the launcher gave this process (0 when not launched by MPI), from the same variables.
int launch_rank();

// MPI_Init_thread (MPI_THREAD_SERIALIZED: worker threads of a rank call MPI one at a time) on
// construction, MPI_Finalize on destruction. One per process. InputError when the build has no MPI.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // MPI_Abort on MPI_COMM_WORLD: the way out when one rank fails alone (the others would wait for it
  // forever in the next collective step).
  [[noreturn]] void abort(int exit_code);

 private:
  int rank_ = 0, size_ = 1;
};

// A step every rank takes together failed on at least one rank: every rank throws this, with the
// message of the lowest failing rank, so all of them can stop cleanly (no MPI_Abort needed).
struct CollectiveError : std::runtime_error {
  CollectiveError(int exit_code, int failed_rank, const std::string& message)
      : std::runtime_error(message), exit_code(exit_code), failed_rank(failed_rank) {}
  int exit_code;    // 2 for an InputError, 1 otherwise
  int failed_rank;  // the lowest rank that failed
};

// Runs `step` on every rank, then agrees (one Allreduce, one Bcast): when any rank threw, every rank
// throws CollectiveError. Call it on every rank at the same point.
void on_all_ranks(const std::function<void()>& step);

// The part files a rank writes beside OUT: "<OUT>.part<rank>".
std::string part_file_path(const std::string& out, int rank);
// The part files present beside OUT (any rank count), sorted by rank.
std::vector<std::string> find_part_files(const std::string& out);

struct MergeReport {
  int files = 0;    // part files merged (and deleted)
  int merged = 0;   // records appended to OUT
  int duplicates = 0;  // records whose job OUT already held (skipped)
  std::vector<std::string> notes;  // repairs of torn last lines
};
// Appends to OUT every record of the part files beside it whose job OUT does not hold yet, then
// deletes the part files. A torn last line (a rank killed while writing) is dropped, its job redone by
// the next run. Safe to repeat after a crash midway: what was merged is skipped the second time.
// Needs no MPI (plain file work; rank 0 calls it).
MergeReport merge_part_files(const std::string& out);

struct DistributedOptions {
  // Worker threads per rank; 0: the CPUs the launcher bound the rank to, or when unbound this machine's
  // cores / the ranks on this machine (≥ 1).
  int threads = 0;
  ParallelMode mode = ParallelMode::Auto;  // as in RunOptions, within each rank
  double side_by_side_below = RunOptions{}.side_by_side_below;
  bool progress = true;  // rank 0's progress bar on stderr, counting every rank's finished jobs
  std::string label;
};

struct DistributedSummary {
  int ranks = 1;
  int total = 0, skipped = 0, ran = 0, failed = 0;
  std::vector<int> ran_per_rank;    // on rank 0 only
  std::vector<std::string> errors;  // "rank r: job …: message", on rank 0 only
  std::vector<std::string> notes;   // merges and repairs, on rank 0 only
  double seconds = 0;
};

// Runs the jobs of every sweep (in order; a job planned twice runs once, recorded under its first
// sweep) across MPI_COMM_WORLD into `out`. Call on every rank inside an MpiSession, with the same
// sweeps. Counts in the summary are the same on every rank. Throws CollectiveError when a common
// step fails (unreadable OUT, the ranks planned different jobs, ...).
DistributedSummary run_distributed(const std::vector<PlannedSweep>& sweeps, const Executor& execute,
                                   const std::string& out, const DistributedOptions& options = {});

// run_sweeps (jobs.h) across MPI_COMM_WORLD: each sweep in turn into its own options.results_path
// through run_distributed, with one JobRunner. What `lipattn reproduce` runs under mpirun (one results
// file per experiment). Call on every rank inside an MpiSession, with the same sweeps; the counts are
// the same on every rank, the errors and notes (passed to options.on_note) rank 0's.
SweepsSummary run_sweeps_distributed(const std::vector<PlannedSweep>& sweeps, const SweepsOptions& options);

}  // namespace lipattn::experiments
