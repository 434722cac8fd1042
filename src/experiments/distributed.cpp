#include "experiments/distributed.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <Eigen/Core>
#include <fmt/core.h>

#include "common/error.h"

#ifdef LIPATTN_HAVE_MPI
// The C API only: the deprecated C++ bindings would drag in libmpi_cxx's headers and warnings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace lipattn::experiments {

namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

}  // namespace

bool mpi_built() {
#ifdef LIPATTN_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  // OpenMPI's mpirun sets OMPI_COMM_WORLD_*; PMIx launchers (OpenMPI ≥ 4, srun --mpi=pmix) PMIX_RANK;
  // MPICH's hydra and srun --mpi=pmi2 PMI_SIZE/PMI_RANK.
  return env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK") || env("PMI_SIZE") || env("PMI_RANK");
}

int launch_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* value = env(name)) return std::atoi(value);
  return 0;
}

std::string part_file_path(const std::string& out, int rank) { return out + ".part" + std::to_string(rank); }

std::vector<std::string> find_part_files(const std::string& out) {
  const std::filesystem::path path(out);
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const std::string prefix = path.filename().string() + ".part";
  std::vector<std::pair<long, std::string>> found;
  if (!std::filesystem::is_directory(dir)) return {};
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    found.emplace_back(std::stol(digits), (path.has_parent_path() ? dir / name : std::filesystem::path(name)).string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (auto& [rank, p] : found) paths.push_back(std::move(p));
  return paths;
}

MergeReport merge_part_files(const std::string& out) {
  MergeReport report;
  ResultsFile results(out);  // creates OUT, cuts a torn last line, refuses a damaged middle line
  if (results.repaired()) report.notes.push_back(results.repair_note());
  for (const std::string& part : find_part_files(out)) {
    {
      ResultsFile records(part);
      if (records.repaired()) report.notes.push_back(records.repair_note());
      for (const nlohmann::json& record : records.records()) {
        Job job;
        job.spec = record["job"];
        if (results.done(job)) {
          ++report.duplicates;
        } else {
          results.append(record);
          ++report.merged;
        }
      }
    }
    // Deleted only once every record is in OUT: a crash before this line merges the file again next
    // time, and the records already appended are then skipped as duplicates.
    std::filesystem::remove(part);
    ++report.files;
  }
  return report;
}

#ifndef LIPATTN_HAVE_MPI

namespace {
[[noreturn]] void no_mpi() {
  throw InputError(
      "this lipattn was built without MPI, so it cannot share a sweep between the processes of mpirun: install "
      "openmpi-bin and libopenmpi-dev (scripts/setup.sh) and reconfigure, or run the sweep without mpirun");
}
}  // namespace

MpiSession::MpiSession() { no_mpi(); }
MpiSession::~MpiSession() = default;
void MpiSession::abort(int exit_code) { std::exit(exit_code); }
void on_all_ranks(const std::function<void()>& step) { step(); }
DistributedSummary run_distributed(const std::vector<PlannedSweep>&, const Executor&, const std::string&,
                                   const DistributedOptions&) {
  no_mpi();
}

#else  // LIPATTN_HAVE_MPI

namespace {

enum Tag : int { kRequest = 101, kReply = 102, kSummary = 103 };
constexpr int kPhases = 2;  // 0: side by side (1 thread per job), 1: one at a time (every thread)

// Waits for a request by testing it every 200 µs. A blocking MPI wait busy-polls a core; on a machine
// whose cores are all computing (the point of the sweep) that would slow the jobs down.
void wait_polling(MPI_Request* request) {
  int done = 0;
  while (true) {
    MPI_Test(request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void polling_bcast(void* data, int count, MPI_Datatype type, int root) {
  MPI_Request request;
  MPI_Ibcast(data, count, type, root, MPI_COMM_WORLD, &request);
  wait_polling(&request);
}

void bcast_string(std::string& text, int root) {
  long long length = static_cast<long long>(text.size());
  polling_bcast(&length, 1, MPI_LONG_LONG, root);
  text.resize(static_cast<std::size_t>(length));
  if (length > 0) polling_bcast(text.data(), static_cast<int>(length), MPI_CHAR, root);
}

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Ranks on this machine (sharing its memory): they share its cores.
int ranks_on_this_machine() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int size = 1;
  MPI_Comm_size(node, &size);
  MPI_Comm_free(&node);
  return size;
}

// The CPUs this process may run on. OpenMPI binds each rank to one core when a machine has at most two
// ranks (to a package above that, to nothing when oversubscribed); threads beyond those CPUs would only
// take turns on them.
int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, CPU_COUNT(&set));
}

// FNV-1a: a fingerprint of the pending job list, to check that every rank planned the same one.
std::uint64_t fingerprint(const std::vector<std::vector<std::pair<const Job*, std::string>>>& phases) {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
  };
  for (std::size_t p = 0; p < phases.size(); ++p) {
    mix("phase" + std::to_string(p));
    for (const auto& [job, sweep] : phases[p]) {
      mix(sweep);
      mix(job->key());
    }
  }
  return h;
}

}  // namespace

MpiSession::MpiSession() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  rank_ = world_rank();
  size_ = world_size();
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    throw InputError(
        "the MPI library does not support threads (MPI_THREAD_SERIALIZED), which the sweep's worker threads need");
  }
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiSession::abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

void on_all_ranks(const std::function<void()>& step) {
  int code = 0;
  std::string message;
  try {
    step();
  } catch (const InputError& e) {
    code = 2;
    message = e.what();
  } catch (const std::exception& e) {
    code = 1;
    message = e.what();
  }
  const int rank = world_rank(), size = world_size();
  // One reduction gives the worst code and the lowest failing rank (max of −rank).
  int local[2] = {code, code ? -rank : -size};
  int global[2] = {0, 0};
  MPI_Allreduce(local, global, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (global[0] == 0) return;
  const int failed_rank = -global[1];
  bcast_string(message, failed_rank);
  throw CollectiveError(global[0], failed_rank, message);
}

namespace {

using Phases = std::vector<std::vector<std::pair<const Job*, std::string>>>;  // (job, its sweep) per phase

// 1. Rank 0 folds what a killed run left in part files into OUT (every rank then reads OUT).
void merge_leftovers(const std::string& out, int rank, DistributedSummary& summary) {
  on_all_ranks([&] {
    if (rank != 0) return;
    const MergeReport merge = merge_part_files(out);
    summary.notes = merge.notes;
    if (merge.files > 0)
      summary.notes.push_back(fmt::format("{}: merged {} records ({} already there) from {} part files of an "
                                          "interrupted run",
                                          out, merge.merged, merge.duplicates, merge.files));
  });
}

// 2. The pending jobs, in plan order, split as run_jobs splits them; the same list on every rank
// (checked). Opens this rank's part file.
Phases pending_phases(const std::vector<PlannedSweep>& sweeps, const std::string& out,
                      const DistributedOptions& options, int rank, std::unique_ptr<ResultsFile>& part,
                      DistributedSummary& summary) {
  Phases phases(kPhases);
  on_all_ranks([&] {
    std::set<std::string> done;
    for (const auto& record : read_records(out)) done.insert(record["job"].dump());
    for (const auto& sweep : sweeps)
      for (const auto& job : sweep.jobs) {
        ++summary.total;
        if (!done.insert(job.key()).second) {
          ++summary.skipped;
          continue;
        }
        phases[runs_side_by_side(job, options.mode, options.side_by_side_below) ? 0 : 1].emplace_back(&job, sweep.name);
      }
    part = std::make_unique<ResultsFile>(part_file_path(out, rank));
  });
  const std::uint64_t mine = fingerprint(phases);
  const unsigned long long local[2] = {mine, ~mine};
  unsigned long long global[2] = {0, 0};
  MPI_Allreduce(local, global, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
  if (global[0] != mine || global[1] != ~mine)
    throw CollectiveError(2, rank,
                          fmt::format("the ranks planned different pending jobs: every machine must see the same "
                                      "sweep file, texts and models, and the same {} (put it in a shared folder)",
                                      out));
  return phases;
}

// Default threads per rank: the cores the launcher bound this rank to, or, unbound, an equal share of
// the machine among the ranks on it.
int threads_per_rank(const DistributedOptions& options) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int usable = usable_cpus();
  return options.threads > 0 ? options.threads : usable < cores ? usable : std::max(1, cores / ranks_on_this_machine());
}

// 3. The jobs of one rank. A worker asks for the next index of its phase, reporting the job it just
// finished (so rank 0's progress bar counts every rank's jobs), until it gets −1. Rank 0 holds the
// counters: its main thread only answers requests (serve) while its own jobs run on a worker thread,
// so the others never wait for rank 0's jobs.
class RankWork {
 public:
  RankWork(const Phases& phases, const Executor& execute, ResultsFile& part, int rank, int size, int threads,
           const DistributedOptions& options)
      : phases_(phases), execute_(execute), part_(part), rank_(rank), size_(size), threads_(threads) {
    if (rank != 0) return;
    const std::string label =
        options.label.empty() ? fmt::format("{} ranks", size) : fmt::format("{} ({} ranks)", options.label, size);
    bar_ =
        std::make_unique<ProgressBar>(label, static_cast<int>(phases[0].size() + phases[1].size()), options.progress);
  }

  void run() {
    const int saved_eigen_threads = Eigen::nbThreads();
    if (rank_ == 0)
      serve();
    else
      work();
    set_inner_threads(saved_eigen_threads);
    if (bar_) bar_->finish();
  }

  int ran = 0, failed = 0;
  std::vector<std::string> errors;

 private:
  // Every rank passes through both phases (each worker stops at its phase's first −1), so each rank
  // gets exactly one −1 for the last phase: rank 0 counts those to know when everyone is done.
  void work() {
    set_inner_threads(1);
    work_phase(0, threads_, 1);
    set_inner_threads(threads_);
    work_phase(1, 1, threads_);
  }

  void work_phase(int phase, int workers, int job_threads) {
    auto worker = [&] {
      omp_set_num_threads(job_threads);  // OpenMP's thread count is per thread: set it in each worker
      int finished = 0;
      for (long long i = next_index(phase, finished); i >= 0; i = next_index(phase, finished)) {
        const auto& [job, sweep] = phases_[phase][static_cast<std::size_t>(i)];
        run_one(*job, sweep, job_threads);
        finished = 1;
      }
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < workers; ++w) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
  }

  void run_one(const Job& job, const std::string& sweep, int job_threads) {
    try {
      nlohmann::json record = run_record(job, sweep, execute_, job_threads);
      record["rank"] = rank_;
      part_.append(record);
      std::lock_guard<std::mutex> lock(mutex_);
      ++ran;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++failed;
      errors.push_back(fmt::format("rank {}: job {}: {}", rank_, job.key(), e.what()));
    }
  }

  long long take(int phase) {
    const long long i = next_[phase]++;
    return i < static_cast<long long>(phases_[phase].size()) ? i : -1;
  }

  // Rank 0 takes indices straight from its counters; the others ask rank 0, one request at a time per
  // rank (MPI_THREAD_SERIALIZED), so a reply always answers the request just sent.
  long long next_index(int phase, int finished) {
    if (rank_ == 0) {
      if (finished) bar_->advance(finished);
      return take(phase);
    }
    std::lock_guard<std::mutex> lock(mpi_mutex_);
    long long index = -1;
    MPI_Request reply;
    MPI_Irecv(&index, 1, MPI_LONG_LONG, 0, kReply, MPI_COMM_WORLD, &reply);
    int request[2] = {phase, finished};
    MPI_Send(request, 2, MPI_INT, 0, kRequest, MPI_COMM_WORLD);
    wait_polling(&reply);
    return index;
  }

  void serve() {
    std::atomic<bool> local_done{false};
    std::exception_ptr local_error;
    std::thread local([&] {
      try {
        work();
      } catch (...) {
        local_error = std::current_exception();
      }
      local_done = true;
    });
    int remote_left = size_ - 1;
    while (remote_left > 0 || !local_done) {
      int arrived = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kRequest, MPI_COMM_WORLD, &arrived, &status);
      if (!arrived) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      int request[2] = {0, 0};
      MPI_Recv(request, 2, MPI_INT, status.MPI_SOURCE, kRequest, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (request[1]) bar_->advance(request[1]);
      const int phase = std::clamp(request[0], 0, kPhases - 1);
      const long long index = take(phase);
      MPI_Send(&index, 1, MPI_LONG_LONG, status.MPI_SOURCE, kReply, MPI_COMM_WORLD);
      if (index < 0 && phase == kPhases - 1) --remote_left;
    }
    local.join();
    if (local_error) std::rethrow_exception(local_error);
  }

  const Phases& phases_;
  const Executor& execute_;
  ResultsFile& part_;
  const int rank_, size_, threads_;
  std::unique_ptr<ProgressBar> bar_;               // rank 0's
  std::atomic<long long> next_[kPhases] = {0, 0};  // rank 0's counters
  std::mutex mutex_, mpi_mutex_;
};

// 4. Rank 0 gathers what each rank ran and the errors.
void gather_summaries(const RankWork& work, int rank, int size, DistributedSummary& summary) {
  const nlohmann::json mine = {{"ran", work.ran}, {"failed", work.failed}, {"errors", work.errors}};
  if (rank != 0) {
    const std::string text = mine.dump();
    MPI_Request sent;
    MPI_Isend(text.data(), static_cast<int>(text.size()), MPI_CHAR, 0, kSummary, MPI_COMM_WORLD, &sent);
    wait_polling(&sent);
    return;
  }
  std::vector<nlohmann::json> per_rank{mine};
  for (int r = 1; r < size; ++r) {
    int arrived = 0;
    MPI_Status status;
    while (MPI_Iprobe(r, kSummary, MPI_COMM_WORLD, &arrived, &status), !arrived)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    int length = 0;
    MPI_Get_count(&status, MPI_CHAR, &length);
    std::string text(static_cast<std::size_t>(length), '\0');
    MPI_Recv(text.data(), length, MPI_CHAR, r, kSummary, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    per_rank.push_back(nlohmann::json::parse(text));
  }
  for (const auto& s : per_rank) {
    summary.ran += s["ran"].get<int>();
    summary.failed += s["failed"].get<int>();
    summary.ran_per_rank.push_back(s["ran"].get<int>());
    for (const auto& e : s["errors"]) summary.errors.push_back(e.get<std::string>());
  }
}

// 5. Rank 0 merges the part files into OUT.
void merge_parts(const std::string& out, int rank, int size, DistributedSummary& summary) {
  on_all_ranks([&] {
    if (rank != 0) return;
    // A rank's records reach OUT only through a part file rank 0 can see: on machines without a shared
    // folder they would be lost without a word.
    for (int r = 1; r < size; ++r)
      if (summary.ran_per_rank[static_cast<std::size_t>(r)] > 0 &&
          !std::filesystem::exists(part_file_path(out, r)))
        throw InputError(fmt::format("rank {} ran {} jobs but rank 0 does not see its {}: put {} in a folder every "
                                     "machine shares (the records are in that file on rank {}'s machine)",
                                     r, summary.ran_per_rank[static_cast<std::size_t>(r)], part_file_path(out, r),
                                     out, r));
    const MergeReport merge = merge_part_files(out);
    for (const auto& note : merge.notes) summary.notes.push_back(note);
    if (merge.duplicates > 0)
      summary.notes.push_back(fmt::format("{}: {} records of the part files were already in it", out,
                                          merge.duplicates));
  });
}

}  // namespace

DistributedSummary run_distributed(const std::vector<PlannedSweep>& sweeps, const Executor& execute,
                                   const std::string& out, const DistributedOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  DistributedSummary summary;
  const int rank = world_rank(), size = world_size();
  summary.ranks = size;
  merge_leftovers(out, rank, summary);
  std::unique_ptr<ResultsFile> part;
  const Phases phases = pending_phases(sweeps, out, options, rank, part, summary);
  RankWork work(phases, execute, *part, rank, size, threads_per_rank(options), options);
  work.run();
  part.reset();  // closed before rank 0 reads it
  gather_summaries(work, rank, size, summary);
  merge_parts(out, rank, size, summary);
  // Every rank tells the same totals.
  int counts[2] = {summary.ran, summary.failed};
  polling_bcast(counts, 2, MPI_INT, 0);
  summary.ran = counts[0];
  summary.failed = counts[1];
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

#endif  // LIPATTN_HAVE_MPI

SweepsSummary run_sweeps_distributed(const std::vector<PlannedSweep>& sweeps, const SweepsOptions& options) {
  JobRunner runner;
  for (const auto& s : sweeps) runner.prepare(s.jobs);
  SweepsSummary summary;
  for (std::size_t i = 0; i < sweeps.size(); ++i) {
    const PlannedSweep& sweep = sweeps[i];
    DistributedOptions d;
    d.threads = options.run.workers;
    d.mode = options.run.mode;
    d.side_by_side_below = options.run.side_by_side_below;
    d.progress = options.run.progress;
    d.label = options.numbered ? fmt::format("[{}/{}] {}", i + 1, sweeps.size(), sweep.name) : sweep.name;
    const DistributedSummary r = run_distributed({sweep}, runner.executor(), options.results_path(sweep), d);
    summary.total += r.total;
    summary.ran += r.ran;
    summary.skipped += r.skipped;
    summary.failed += r.failed;
    for (const auto& e : r.errors) summary.errors.push_back({sweep.name, e});
    if (options.on_note)
      for (const auto& note : r.notes) options.on_note(note);
  }
  return summary;
}

}  // namespace lipattn::experiments
