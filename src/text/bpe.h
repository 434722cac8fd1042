// The one BPE merge loop, shared by GPT-2's byte-level BPE, llama2.c's tokenizer.bin and Hugging
// Face's byte-fallback BPE (tokenizer.json): start from a row of symbol ids and repeatedly merge the
// adjacent pair of lowest rank, the leftmost among equal ranks, until no pair has a merge.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace lipattn::text::detail {

struct BpeMerge {
  int rank;       // lower merges first; equal ranks merge left to right
  int merged_id;  // the symbol the pair becomes
};

struct BpePairHash {
  std::size_t operator()(std::uint64_t key) const noexcept {
    return std::hash<std::uint64_t>{}(key * 0x9E3779B97F4A7C15ULL);
  }
};

using BpeMerges = std::unordered_map<std::uint64_t, BpeMerge, BpePairHash>;

inline std::uint64_t bpe_pair_key(int left, int right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

// The merged row. With GPT-2's ranks this is OpenAI's "merge every occurrence of the best pair, left
// to right"; with ranks ordered by score it is llama2.c's "merge the best-scoring pair, the first
// one found" (ties broken by position in both).
std::vector<int> apply_bpe_merges(std::vector<int> ids, const BpeMerges& merges);

}  // namespace lipattn::text::detail
