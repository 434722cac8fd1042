// Corpus windows: consecutive, non-overlapping runs of n token ids cut from one tokenised text, as the
// experiments feed real sequences of every length n to a model (docs/formats.md, "Tokenizer files").
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lipattn::text {

struct Window {
  int n = 0;               // window length (tokens)
  int sample = 0;          // 0 .. per_length-1 within this n
  std::size_t start = 0;   // offset of the first id in the whole token sequence
  std::vector<int> ids;    // ids[start .. start+n)
};

struct WindowPlan {
  std::vector<Window> windows;  // every window that fits, in request order
  bool complete = true;         // all lengths.size() * per_length windows fit
  std::string message;          // empty when complete; otherwise what ran out (as make_windows throws)
};

// For each n in `lengths`, in the order given, `per_length` windows of n tokens; one cursor runs over
// `ids` from 0 and on across the lengths, so no token is used twice. n must be >= 1 and per_length
// >= 0 (InputError otherwise). When the tokens run out the plan stops at the first window that does
// not fit and says how many tokens there are, how many the request needs and how many windows (up to
// which n and sample) it could make.
WindowPlan plan_windows(const std::vector<int>& ids, const std::vector<int>& lengths, int per_length);

// As plan_windows, but a text that runs out throws lipattn::InputError with the plan's message.
std::vector<Window> make_windows(const std::vector<int>& ids, const std::vector<int>& lengths, int per_length);

// Tokens the request needs: per_length * sum(lengths).
std::size_t tokens_needed(const std::vector<int>& lengths, int per_length);

}  // namespace lipattn::text
