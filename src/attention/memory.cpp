#include "attention/memory.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <omp.h>

#include "common/error.h"

namespace lipattn {

AttentionStorage parse_attention_storage(const std::string& name) {
  if (name == "auto") return AttentionStorage::Auto;
  if (name == "stored") return AttentionStorage::Stored;
  if (name == "streaming") return AttentionStorage::Streaming;
  throw InputError(fmt::format("storage must be auto, stored or streaming, got '{}'", name), "storage");
}

std::string to_string(AttentionStorage storage) {
  switch (storage) {
    case AttentionStorage::Auto: return "auto";
    case AttentionStorage::Stored: return "stored";
    case AttentionStorage::Streaming: return "streaming";
  }
  return "?";
}

std::uint64_t stored_attention_bytes(Index heads, Index n, std::size_t scalar_bytes, int threads) {
  const auto square = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n);
  const auto matrices = static_cast<std::uint64_t>(heads) + static_cast<std::uint64_t>(std::min<Index>(threads, heads));
  return matrices * square * scalar_bytes;
}

std::uint64_t available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

bool use_streaming(const AttentionMemory& memory, Index heads, Index n, std::size_t scalar_bytes) {
  if (memory.storage != AttentionStorage::Auto) return memory.storage == AttentionStorage::Streaming;
  const std::uint64_t stored = stored_attention_bytes(heads, n, scalar_bytes, omp_get_max_threads());
  // Small maps always store: no need to read /proc/meminfo on every forward pass of an attack.
  constexpr std::uint64_t kAlwaysStoredBytes = std::uint64_t(64) << 20;
  if (!memory.budget_bytes && stored <= kAlwaysStoredBytes) return false;
  const std::uint64_t budget = memory.budget_bytes ? memory.budget_bytes : available_memory_bytes();
  if (budget == 0) return false;  // unknown: keep the faster mode
  return stored > budget;
}

std::uint64_t parse_memory_size(const std::string& text, const std::string& field) {
  const auto fail = [&] {
    return InputError(fmt::format("{} must be a size such as 2G, 512M or 1000000 (bytes), got '{}'", field, text), field);
  };
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw fail();
  }
  std::string unit = text.substr(used);
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::toupper(c); });
  if (unit.size() == 2 && unit[1] == 'B') unit.pop_back();  // "GB" as "G"
  if (unit.size() == 3 && unit.substr(1) == "IB") unit = unit.substr(0, 1);  // "GiB" as "G"
  double factor = 1;
  if (unit.empty() || unit == "B") factor = 1;
  else if (unit == "K") factor = 1024.0;
  else if (unit == "M") factor = 1024.0 * 1024;
  else if (unit == "G") factor = 1024.0 * 1024 * 1024;
  else if (unit == "T") factor = 1024.0 * 1024 * 1024 * 1024;
  else throw fail();
  const double bytes = value * factor;
  if (!std::isfinite(bytes) || bytes < 1) throw fail();
  return static_cast<std::uint64_t>(bytes);
}

std::string format_bytes(std::uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

}  // namespace lipattn
