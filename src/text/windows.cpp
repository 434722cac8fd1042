#include "text/windows.h"

#include <fmt/format.h>

#include "common/error.h"

namespace lipattn::text {
namespace {

// "n = 2..502 step 10 (51 lengths)" for arithmetic progressions, otherwise the list (shortened).
std::string describe_lengths(const std::vector<int>& lengths) {
  if (lengths.empty()) return "no lengths";
  if (lengths.size() == 1) return fmt::format("n = {}", lengths.front());
  const long long step = static_cast<long long>(lengths[1]) - lengths[0];
  bool arithmetic = step != 0;
  for (std::size_t i = 2; i < lengths.size() && arithmetic; ++i) {
    arithmetic = static_cast<long long>(lengths[i]) - lengths[i - 1] == step;
  }
  if (arithmetic && lengths.size() > 2) {
    return fmt::format("n = {}..{} step {} ({} lengths)", lengths.front(), lengths.back(), step, lengths.size());
  }
  constexpr std::size_t kShown = 12;
  std::string listed;
  for (std::size_t i = 0; i < lengths.size() && i < kShown; ++i) {
    listed += (i == 0 ? "" : ", ") + std::to_string(lengths[i]);
  }
  if (lengths.size() > kShown) listed += fmt::format(", ... ({} lengths)", lengths.size());
  return "n = " + listed;
}

}  // namespace

std::size_t tokens_needed(const std::vector<int>& lengths, int per_length) {
  std::size_t per_sample = 0;
  for (const int n : lengths) per_sample += n > 0 ? static_cast<std::size_t>(n) : 0;
  return per_sample * static_cast<std::size_t>(per_length > 0 ? per_length : 0);
}

WindowPlan plan_windows(const std::vector<int>& ids, const std::vector<int>& lengths, int per_length) {
  if (per_length < 0) {
    throw InputError(fmt::format("windows: {} windows per length requested; expected a count >= 0", per_length));
  }
  for (const int n : lengths) {
    if (n < 1) throw InputError(fmt::format("windows: length n = {} requested; expected every n >= 1", n));
  }
  WindowPlan plan;
  plan.windows.reserve(lengths.size() * static_cast<std::size_t>(per_length));
  std::size_t cursor = 0;
  for (std::size_t length_index = 0; length_index < lengths.size(); ++length_index) {
    const int n = lengths[length_index];
    for (int sample = 0; sample < per_length; ++sample) {
      if (ids.size() - cursor < static_cast<std::size_t>(n)) {
        const std::size_t made = plan.windows.size();
        std::string made_what;
        if (made == 0) {
          made_what = "none";
        } else if (sample == 0) {
          made_what = fmt::format("all {} for every n before n = {}", per_length, n);
        } else if (length_index == 0) {
          made_what = fmt::format("{} of the {} for n = {}", sample, per_length, n);
        } else {
          made_what = fmt::format("all {} for every n before n = {}, and {} of the {} for n = {}", per_length,
                                  n, sample, per_length, n);
        }
        plan.complete = false;
        plan.message = fmt::format(
            "the text has {} tokens, but {} windows for each of {} need {} tokens; it could make {} of the "
            "{} windows ({}); it stopped at n = {}, sample {}, which would need tokens {}..{} but only {} "
            "are left. Use a longer text, fewer windows per length or smaller n",
            ids.size(), per_length, describe_lengths(lengths), tokens_needed(lengths, per_length), made,
            lengths.size() * static_cast<std::size_t>(per_length), made_what, n, sample, cursor,
            cursor + static_cast<std::size_t>(n) - 1, ids.size() - cursor);
        return plan;
      }
      Window window;
      window.n = n;
      window.sample = sample;
      window.start = cursor;
      window.ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(cursor),
                        ids.begin() + static_cast<std::ptrdiff_t>(cursor + static_cast<std::size_t>(n)));
      plan.windows.push_back(std::move(window));
      cursor += static_cast<std::size_t>(n);
    }
  }
  return plan;
}

std::vector<Window> make_windows(const std::vector<int>& ids, const std::vector<int>& lengths, int per_length) {
  WindowPlan plan = plan_windows(ids, lengths, per_length);
  if (!plan.complete) throw InputError("windows: " + plan.message);
  return std::move(plan.windows);
}

}  // namespace lipattn::text
