// Sweeps: a list of jobs, run in parallel, each job's record appended as one JSON line to a results
// file that makes the sweep resumable (docs/experiments.md, "Sweeps").
//
// A job is a JSON object holding every input that defines it (model, seed, layer, head, block,
// source, n, sample, ...). Its key is its canonical dump (nlohmann sorts keys), so a record found in
// the results file with the same `job` object means the job is done.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lipattn::experiments {

struct Job {
  nlohmann::json spec;  // the defining inputs; spec["kind"] picks the executor
  double cost = 1;      // estimated work (flops of one Jacobian product); picks the parallel mode
  std::string key() const { return spec.dump(); }
};

// The cartesian product of a grid: every array-valued field is an axis, and
//   {"from": a, "to": b, "step": s}     → a, a+s, ..., ≤ b
//   {"log_from": a, "log_to": b, "count": m} → m integers spaced evenly in log between a and b (deduplicated)
//   "samples": K                         → an axis "sample" = 0..K−1 (the field "samples" is removed)
// expand to arrays first. Axes vary in the order of `axis_order` (outermost first), then the rest
// alphabetically. InputError naming the field for a malformed range.
std::vector<nlohmann::json> expand_grid(const nlohmann::json& grid, const std::vector<std::string>& axis_order = {});
std::vector<double> expand_range(const nlohmann::json& value, const std::string& field);

// The results file: JSON lines {"sweep", "job", "result", "seconds", "threads", "finished"}.
class ResultsFile {
 public:
  // Opens (creating folders and the file). Reads every line: a record is done when it parses and has
  // a "job" object. A last line that does not parse, or lacks its newline (a run killed while
  // writing), is cut off the file and its job redone; `repaired` says so. A bad line before the last
  // one is an InputError naming the file and line (the file was edited; we do not guess).
  explicit ResultsFile(const std::string& path);
  ~ResultsFile();
  ResultsFile(const ResultsFile&) = delete;
  ResultsFile& operator=(const ResultsFile&) = delete;

  bool done(const Job& job) const;
  // Appends one record as one line with a single write() and fsyncs nothing (the OS keeps it on
  // SIGKILL); thread-safe.
  void append(const nlohmann::json& record);
  const std::vector<nlohmann::json>& records() const { return records_; }
  const std::string& path() const { return path_; }
  bool repaired() const { return repaired_; }
  std::string repair_note() const { return repair_note_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::set<std::string> done_;
  std::vector<nlohmann::json> records_;
  bool repaired_ = false;
  std::string repair_note_;
  mutable std::mutex mutex_;
};

// The current UTC time as 2026-11-29T08:00:00Z: the "finished" field of a record.
std::string now_iso();

// Reads the records of a results file without changing it (a corrupt last line is skipped).
std::vector<nlohmann::json> read_records(const std::string& path);

enum class ParallelMode {
  Auto,     // jobs below RunOptions::side_by_side_below side by side (1 thread each), the rest one at a time
  Jobs,     // every job on one thread, `workers` jobs side by side
  Threads,  // one job at a time, `workers` threads inside it (Eigen/OpenMP)
};
ParallelMode parse_parallel_mode(const std::string& name);  // "auto" | "jobs" | "threads"
std::string to_string(ParallelMode mode);

struct RunOptions {
  int workers = 0;                 // 0: the machine's cores (std::thread::hardware_concurrency)
  ParallelMode mode = ParallelMode::Auto;
  // Measured on this machine (docs/experiments.md, "Parallel jobs"): side by side wins below this
  // cost (flops per Jacobian product), threads inside a job above it.
  double side_by_side_below = 2e10;
  bool progress = true;            // progress bar on stderr
  std::string label;               // shown before the bar
  std::string sweep;               // the "sweep" field of each record
};

struct RunSummary {
  int total = 0, skipped = 0, ran = 0, failed = 0;
  double seconds = 0;
  std::vector<std::string> errors;  // "job …: message" for each failed job
};

// The executor runs one job with `threads` threads available and returns its "result" object.
// It may throw: the job is then reported as failed (and not written, so a rerun retries it).
using Executor = std::function<nlohmann::json(const Job& job, int threads)>;

// Runs the jobs not yet in `results`, appending one record per finished job.
RunSummary run_jobs(const std::vector<Job>& jobs, const Executor& execute, ResultsFile& results,
                    const RunOptions& options = {});

// What run_jobs and run_distributed (distributed.h) share:
// - a job runs side by side with others (one thread) or alone with every thread (RunOptions::mode);
bool runs_side_by_side(const Job& job, ParallelMode mode, double side_by_side_below);
// - the threads of Eigen's and OpenMP's products inside a job;
void set_inner_threads(int threads);
// - running a job into its record {"sweep", "job", "result", "seconds", "threads", "finished"}.
nlohmann::json run_record(const Job& job, const std::string& sweep, const Executor& execute, int threads);

// Progress on stderr: "label [#####.....] 12/40 jobs  0.8 jobs/s  ETA 0:35". On a terminal it
// redraws one line; otherwise it prints a line every 10% or 30 s.
class ProgressBar {
 public:
  ProgressBar(std::string label, int total, bool enabled);
  void advance(int count = 1);
  void finish();
  static std::string format_duration(double seconds);

 private:
  void draw(bool final);
  std::string label_;
  int total_ = 0, done_ = 0;
  bool enabled_ = true, terminal_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::mutex mutex_;
};

}  // namespace lipattn::experiments
