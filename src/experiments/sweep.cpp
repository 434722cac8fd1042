#include "experiments/sweep.h"

#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include <Eigen/Core>
#include <fmt/core.h>

#include "common/error.h"
#include "common/progress.h"
#include "common/stop.h"

namespace lipattn::experiments {

namespace {

// A sweep file is untrusted input: a range or a grid may claim any number of jobs, so the count is
// checked before anything is allocated for it.
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr double kMaxSweepJobs = 1e5;
constexpr double kMaxSweepBytes = 64e6;
#else
// The fuzz build (tests/fuzz/flags.cmake) runs the same checks against smaller caps, so an input that
// plans a sweep at the cap costs milliseconds instead of a second (docs/fuzzing.md).
constexpr double kMaxSweepJobs = 1e3;
constexpr double kMaxSweepBytes = 1e6;
#endif

std::string too_many(const std::string& field, double count) {
  return fmt::format("sweep field '{}': {:.4g} values, more than the {:.0f} jobs a sweep may hold", field, count,
                     kMaxSweepJobs);
}

}  // namespace

std::vector<double> expand_range(const nlohmann::json& value, const std::string& field) {
  std::vector<double> out;
  if (value.is_array()) {
    for (const auto& v : value) {
      if (!v.is_number())
        throw InputError(fmt::format("sweep field '{}': expected numbers, got {}", field, v.dump()), field);
      out.push_back(v.get<double>());
    }
    return out;
  }
  if (value.is_object() && value.contains("from")) {
    if (!value.contains("to") || !value.contains("step") || !value["from"].is_number() || !value["to"].is_number() ||
        !value["step"].is_number())
      throw InputError(
          fmt::format("sweep field '{}': a range needs numbers from, to, step; got {}", field, value.dump()), field);
    const double from = value["from"], to = value["to"], step = value["step"];
    if (!(step > 0))
      throw InputError(fmt::format("sweep field '{}': step must be positive, got {}", field, step), field);
    // from + i·step for i = 0, 1, ... while ≤ to (with a relative slack for rounding): counted first,
    // and not accumulated, so a step below the spacing of doubles near `from` cannot loop forever.
    const double count = std::floor((to - from) / step + 1e-9) + 1;
    if (!std::isfinite(count)) throw InputError(too_many(field, count), field);
    if (count > kMaxSweepJobs) throw InputError(too_many(field, count), field);
    for (double i = 0; i < count; ++i) out.push_back(from + i * step);
    return out;
  }
  if (value.is_object() && value.contains("log_from")) {
    if (!value.contains("log_to") || !value.contains("count") || !value["log_from"].is_number() ||
        !value["log_to"].is_number() || !value["count"].is_number_integer())
      throw InputError(
          fmt::format("sweep field '{}': a log range needs numbers log_from, log_to and an integer count; got {}",
                      field, value.dump()),
          field);
    const double from = value["log_from"], to = value["log_to"];
    const bool count_ok = value["count"].is_number_unsigned() ? value["count"].get<std::uint64_t>() <= kMaxSweepJobs
                                                              : value["count"].get<std::int64_t>() <= kMaxSweepJobs;
    if (!count_ok) throw InputError(too_many(field, value["count"].get<double>()), field);
    const auto count = static_cast<int>(value["count"].get<std::int64_t>());
    if (!(from > 0) || !(to >= from) || !std::isfinite(to) || count < 1)
      throw InputError(
          fmt::format("sweep field '{}': need 0 < log_from ≤ log_to < ∞ and count ≥ 1; got {}", field, value.dump()),
          field);
    for (int i = 0; i < count; ++i) {
      const double t = count == 1 ? 0.0 : static_cast<double>(i) / (count - 1);
      const double x = std::round(std::exp(std::log(from) + t * (std::log(to) - std::log(from))));
      if (out.empty() || x != out.back()) out.push_back(x);
    }
    return out;
  }
  throw InputError(fmt::format("sweep field '{}': expected an array or a range object, got {}", field, value.dump()),
                   field);
}

std::vector<nlohmann::json> expand_grid(const nlohmann::json& grid, const std::vector<std::string>& axis_order) {
  if (!grid.is_object()) throw InputError("a sweep must be a JSON object, got " + grid.dump());
  nlohmann::json base = nlohmann::json::object();
  std::map<std::string, std::vector<nlohmann::json>> axes;
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    const std::string& field = it.key();
    const nlohmann::json& value = it.value();
    if (field == "samples") {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
          (value.is_number_unsigned() && value.get<std::uint64_t>() > kMaxSweepJobs) ||
          value.get<std::int64_t>() > kMaxSweepJobs)
        throw InputError(fmt::format("sweep field 'samples': expected a positive integer up to {:.0f}, got {}",
                                     kMaxSweepJobs, value.dump()),
                         "samples");
      std::vector<nlohmann::json> samples;
      for (int s = 0; s < value.get<int>(); ++s) samples.emplace_back(s);
      axes["sample"] = samples;
    } else if (value.is_array()) {
      if (value.empty()) throw InputError(fmt::format("sweep field '{}': an empty list gives no jobs", field), field);
      axes[field] = std::vector<nlohmann::json>(value.begin(), value.end());
    } else if (value.is_object() && (value.contains("from") || value.contains("log_from"))) {
      std::vector<nlohmann::json> values;
      for (double x : expand_range(value, field)) {
        if (x == std::floor(x) && std::abs(x) < 1e15)
          values.emplace_back(static_cast<long long>(x));
        else
          values.emplace_back(x);
      }
      if (values.empty())
        throw InputError(fmt::format("sweep field '{}': the range {} is empty", field, value.dump()), field);
      axes[field] = values;
    } else {
      base[field] = value;
    }
  }
  std::vector<std::string> order;
  for (const auto& name : axis_order)
    if (axes.count(name)) order.push_back(name);
  for (const auto& [name, values] : axes)
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  double total = 1;
  for (const auto& [name, values] : axes) {
    total *= static_cast<double>(values.size());
    if (total > kMaxSweepJobs)
      throw InputError(fmt::format("the sweep's grid gives {:.4g} jobs or more (at '{}'), more than the {:.0f} a "
                                   "sweep may hold",
                                   total, name, kMaxSweepJobs),
                       name);
  }
  // Every job copies the grid's other fields: a small file with long fields and many short axes would
  // expand to jobs × (its size) bytes, so that product is bounded too.
  const double job_bytes = static_cast<double>(grid.dump().size());
  if (total * job_bytes > kMaxSweepBytes)
    throw InputError(fmt::format("the sweep's grid gives {:.0f} jobs of up to {:.0f} bytes each, more than the {:.0f} MB "
                                 "a sweep may expand to",
                                 total, job_bytes, kMaxSweepBytes / 1e6));
  std::vector<nlohmann::json> jobs{base};
  for (const auto& name : order) {
    std::vector<nlohmann::json> next;
    next.reserve(jobs.size() * axes[name].size());
    for (const auto& job : jobs)
      for (const auto& value : axes[name]) {
        nlohmann::json j = job;
        j[name] = value;
        next.push_back(std::move(j));
      }
    jobs = std::move(next);
  }
  return jobs;
}

namespace {

// Splits the file into complete lines; `tail` is what follows the last newline.
struct FileLines {
  std::vector<std::string> lines;
  std::vector<std::size_t> ends;  // byte offset just past each line's newline
  std::string tail;
};

FileLines split_lines(const std::string& content) {
  FileLines f;
  std::size_t begin = 0;
  while (begin < content.size()) {
    const std::size_t newline = content.find('\n', begin);
    if (newline == std::string::npos) {
      f.tail = content.substr(begin);
      break;
    }
    f.lines.push_back(content.substr(begin, newline - begin));
    f.ends.push_back(newline + 1);
    begin = newline + 1;
  }
  return f;
}

bool is_record(const nlohmann::json& j) { return j.is_object() && j.contains("job") && j["job"].is_object(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

ResultsFile::ResultsFile(const std::string& path) : path_(path) {
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::size_t keep = 0;  // bytes of the file that hold good records
  if (std::filesystem::exists(p)) {
    const std::string content = read_file(path);
    FileLines f = split_lines(content);
    for (std::size_t i = 0; i < f.lines.size(); ++i) {
      const std::string& line = f.lines[i];
      if (line.find_first_not_of(" \t\r") == std::string::npos) {
        keep = f.ends[i];
        continue;
      }
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      const bool good = !j.is_discarded() && is_record(j);
      if (!good) {
        const bool last = i + 1 == f.lines.size() && f.tail.empty();
        if (!last)
          throw InputError(fmt::format("{}: line {} is not a results record (JSON with a \"job\" object); the file "
                                       "was edited or damaged — remove that line to resume",
                                       path, i + 1));
        repaired_ = true;
        repair_note_ = fmt::format("{}: the last line ({} bytes) is not a complete record (a killed run?); it was "
                                   "removed and its job will be redone",
                                   path, line.size());
        break;
      }
      done_.insert(j["job"].dump());
      records_.push_back(std::move(j));
      keep = f.ends[i];
    }
    if (!f.tail.empty() && !repaired_) {
      repaired_ = true;
      repair_note_ = fmt::format("{}: the last line ({} bytes) has no newline (a run killed while writing); it was "
                                 "removed and its job will be redone",
                                 path, f.tail.size());
    }
    if (repaired_) std::filesystem::resize_file(p, keep);
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
}

ResultsFile::~ResultsFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool ResultsFile::done(const Job& job) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_.count(job.key()) > 0;
}

void ResultsFile::append(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  // One write() per record: a killed run leaves at most one partial line, at the end.
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t w = ::write(fd_, line.data() + written, line.size() - written);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw InputError(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
    }
    written += static_cast<std::size_t>(w);
  }
  done_.insert(record["job"].dump());
  records_.push_back(record);
}

std::vector<nlohmann::json> read_records(const std::string& path) {
  std::vector<nlohmann::json> out;
  if (!std::filesystem::exists(path)) return out;
  FileLines f = split_lines(read_file(path));
  for (const auto& line : f.lines) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && is_record(j)) out.push_back(std::move(j));
  }
  return out;
}

ParallelMode parse_parallel_mode(const std::string& name) {
  if (name == "auto") return ParallelMode::Auto;
  if (name == "jobs") return ParallelMode::Jobs;
  if (name == "threads") return ParallelMode::Threads;
  throw InputError(fmt::format("parallel mode '{}': expected auto, jobs or threads", name), "parallel");
}

std::string to_string(ParallelMode mode) {
  switch (mode) {
    case ParallelMode::Auto: return "auto";
    case ParallelMode::Jobs: return "jobs";
    case ParallelMode::Threads: return "threads";
  }
  return "?";
}

ProgressBar::ProgressBar(std::string label, int total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled && total > 0 && !progress::quiet()),
      terminal_(progress::stderr_is_terminal()) {
  start_ = last_print_ = std::chrono::steady_clock::now();
  if (enabled_) draw(false);
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

void ProgressBar::advance(int count) {
  std::lock_guard<std::mutex> lock(mutex_);
  done_ += count;
  if (enabled_) draw(false);
}

void ProgressBar::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (enabled_) draw(true);
  enabled_ = false;
}

void ProgressBar::draw(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int decile = total_ ? done_ * 10 / total_ : 10;
  if (!terminal_ && !final) {
    // Logs get a line per tenth of the jobs or per 30 s, not a flood.
    const double since = std::chrono::duration<double>(now - last_print_).count();
    if (decile == last_decile_ && since < 30) return;
  }
  last_decile_ = decile;
  last_print_ = now;
  const double rate = elapsed > 0 ? done_ / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done_) / rate : std::nan("");
  constexpr int width = 30;
  const int filled = total_ ? done_ * width / total_ : width;
  const std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
  const std::string line =
      fmt::format("{}[{}] {}/{} jobs  {:.2f} jobs/s  {} {}", label_.empty() ? "" : label_ + " ", bar, done_, total_,
                  rate, final ? "took" : "ETA", format_duration(final ? elapsed : eta));
  if (terminal_)
    std::cerr << "\r" << line << "\033[K" << (final ? "\n" : "") << std::flush;
  else
    std::cerr << line << "\n" << std::flush;
}

void set_inner_threads(int threads) {
  Eigen::setNbThreads(threads);
  omp_set_num_threads(threads);
}

bool runs_side_by_side(const Job& job, ParallelMode mode, double side_by_side_below) {
  return mode == ParallelMode::Jobs || (mode == ParallelMode::Auto && job.cost < side_by_side_below);
}

nlohmann::json run_record(const Job& job, const std::string& sweep, const Executor& execute, int threads) {
  const auto start = std::chrono::steady_clock::now();
  nlohmann::json record;
  record["sweep"] = sweep;
  record["job"] = job.spec;
  record["result"] = execute(job, threads);
  record["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  record["threads"] = threads;
  record["finished"] = now_iso();
  return record;
}

RunSummary run_jobs(const std::vector<Job>& jobs, const Executor& execute, ResultsFile& results,
                    const RunOptions& options) {
  RunSummary summary;
  summary.total = static_cast<int>(jobs.size());
  const auto start = std::chrono::steady_clock::now();
  std::vector<const Job*> side_by_side, one_at_a_time;
  std::set<std::string> seen;
  for (const auto& job : jobs) {
    const std::string key = job.key();
    if (results.done(job) || !seen.insert(key).second) {
      ++summary.skipped;
      continue;
    }
    (runs_side_by_side(job, options.mode, options.side_by_side_below) ? side_by_side : one_at_a_time).push_back(&job);
  }
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int workers = options.workers > 0 ? options.workers : cores;
  ProgressBar bar(options.label, static_cast<int>(side_by_side.size() + one_at_a_time.size()), options.progress);
  std::mutex summary_mutex;

  // A stop request (common/stop.h) ends the run between jobs, or inside one between products: the
  // job cut short is neither written nor counted as failed, so a rerun does it; Stopped is rethrown
  // once every worker has returned.
  std::atomic<bool> stopped{false};
  auto run_one = [&](const Job& job, int threads) {
    if (stopped || stop::requested()) {
      stopped = true;
      return;
    }
    try {
      results.append(run_record(job, options.sweep, execute, threads));
      std::lock_guard<std::mutex> lock(summary_mutex);
      ++summary.ran;
    } catch (const Stopped&) {
      stopped = true;
      return;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(summary_mutex);
      ++summary.failed;
      summary.errors.push_back(fmt::format("job {}: {}", job.key(), e.what()));
    }
    bar.advance();
  };

  const int saved_eigen_threads = Eigen::nbThreads();
  // Small jobs side by side: one thread each, `workers` of them pulling from a shared counter.
  if (!side_by_side.empty()) {
    set_inner_threads(1);
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
      omp_set_num_threads(1);  // OpenMP's thread count is per thread: set it in each worker
      for (std::size_t i = next++; i < side_by_side.size(); i = next++) run_one(*side_by_side[i], 1);
    };
    const int count = std::min<int>(workers, static_cast<int>(side_by_side.size()));
    std::vector<std::thread> threads;
    for (int w = 1; w < count; ++w) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
  }
  // Large jobs one at a time, every worker thread inside the job's products.
  if (!one_at_a_time.empty()) {
    set_inner_threads(workers);
    for (const Job* job : one_at_a_time) run_one(*job, workers);
  }
  set_inner_threads(saved_eigen_threads);
  bar.finish();
  if (stopped) throw Stopped();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace lipattn::experiments
