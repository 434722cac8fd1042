#include "text/bpe.h"

#include <queue>

namespace lipattn::text::detail {

std::vector<int> apply_bpe_merges(std::vector<int> ids, const BpeMerges& merges) {
  // Symbols form a linked list; a min-heap of candidate pairs ordered by (rank, position) gives the
  // pair to merge next. Each merge only grows a symbol, so a heap entry whose two ids still match
  // is still current.
  const int n = static_cast<int>(ids.size());
  if (n < 2) return ids;
  std::vector<int> next(static_cast<std::size_t>(n)), prev(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    next[static_cast<std::size_t>(i)] = i + 1 < n ? i + 1 : -1;
    prev[static_cast<std::size_t>(i)] = i - 1;
  }
  struct Candidate {
    int rank, position, left_id, right_id, merged_id;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto push_pair = [&](int left) {
    const int right = next[static_cast<std::size_t>(left)];
    if (right < 0) return;
    const int left_id = ids[static_cast<std::size_t>(left)];
    const int right_id = ids[static_cast<std::size_t>(right)];
    const auto found = merges.find(bpe_pair_key(left_id, right_id));
    if (found != merges.end()) heap.push({found->second.rank, left, left_id, right_id, found->second.merged_id});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  while (!heap.empty()) {
    const Candidate candidate = heap.top();
    heap.pop();
    const auto left = static_cast<std::size_t>(candidate.position);
    const int right = next[left];
    if (ids[left] != candidate.left_id || right < 0 || ids[static_cast<std::size_t>(right)] != candidate.right_id)
      continue;  // stale: one side was merged since this entry was pushed
    ids[left] = candidate.merged_id;
    ids[static_cast<std::size_t>(right)] = -1;
    next[left] = next[static_cast<std::size_t>(right)];
    if (next[left] >= 0) prev[static_cast<std::size_t>(next[left])] = candidate.position;
    if (prev[left] >= 0) push_pair(prev[left]);
    push_pair(candidate.position);
  }
  std::vector<int> result;
  for (int i = 0; i >= 0; i = next[static_cast<std::size_t>(i)]) result.push_back(ids[static_cast<std::size_t>(i)]);
  return result;
}

}  // namespace lipattn::text::detail
