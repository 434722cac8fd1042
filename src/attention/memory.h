// Where the attention matrices live: stored (H·n² numbers, fastest) or streamed in tiles (O(n·d)
// memory, recomputed per product). Chosen per forward pass from a memory budget (docs/theory.md §8).
#pragma once

#include <cstdint>
#include <string>

#include "common/types.h"

namespace lipattn {

enum class AttentionStorage { Auto, Stored, Streaming };
AttentionStorage parse_attention_storage(const std::string& name);  // auto | stored | streaming
std::string to_string(AttentionStorage storage);

struct AttentionMemory {
  AttentionStorage storage = AttentionStorage::Auto;
  // Bytes the stored attention matrices may take; 0 means what this machine has available now
  // (MemAvailable of /proc/meminfo).
  std::uint64_t budget_bytes = 0;
};

// What the stored mode holds while products run: the H matrices P_h plus one n × n work matrix per
// thread (the jvp's and vjp's dS), in scalars of `scalar_bytes` bytes.
std::uint64_t stored_attention_bytes(Index heads, Index n, std::size_t scalar_bytes, int threads);

// MemAvailable from /proc/meminfo, else free physical pages; 0 if neither can be read.
std::uint64_t available_memory_bytes();

// True when this forward pass should stream: forced, or Auto and the stored bytes exceed the budget.
bool use_streaming(const AttentionMemory& memory, Index heads, Index n, std::size_t scalar_bytes);

// "2G", "512M", "1.5GB", "100000" (bytes); binary units (1K = 1024). InputError naming `field` (the CLI passes its flag).
std::uint64_t parse_memory_size(const std::string& text, const std::string& field);
std::string format_bytes(std::uint64_t bytes);

}  // namespace lipattn
