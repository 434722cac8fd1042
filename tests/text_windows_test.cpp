// Corpus windows: cursor arithmetic on a synthetic id sequence (ids[i] = i, so a window's content
// shows where it was cut), the run-out message, and the Alice request the README describes.
#include "text/windows.h"

#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "bytes_support.h"
#include "common/error.h"
#include "shared_data.h"
#include "text/gpt2_tokenizer.h"
#include "text/wordpiece_tokenizer.h"

namespace {

using lipattn::InputError;
using lipattn::text::make_windows;
using lipattn::text::plan_windows;
using lipattn::text::tokens_needed;
using lipattn::testing::kAliceText;
using lipattn::testing::kSharedData;
using lipattn::testing::read_bytes;

std::vector<int> iota_ids(int count) {
  std::vector<int> ids(static_cast<std::size_t>(count));
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Windows, ConsecutiveNonOverlappingCursorRunsAcrossLengths) {
  const std::vector<int> ids = iota_ids(100);
  const auto windows = make_windows(ids, {2, 3, 5}, 4);
  ASSERT_EQ(windows.size(), 12u);
  // Starts by hand: n=2 at 0,2,4,6; n=3 at 8,11,14,17; n=5 at 20,25,30,35.
  const std::vector<std::size_t> starts = {0, 2, 4, 6, 8, 11, 14, 17, 20, 25, 30, 35};
  const std::vector<int> ns = {2, 2, 2, 2, 3, 3, 3, 3, 5, 5, 5, 5};
  for (std::size_t k = 0; k < windows.size(); ++k) {
    EXPECT_EQ(windows[k].start, starts[k]) << k;
    EXPECT_EQ(windows[k].n, ns[k]) << k;
    EXPECT_EQ(windows[k].sample, static_cast<int>(k % 4)) << k;
    ASSERT_EQ(windows[k].ids.size(), static_cast<std::size_t>(ns[k]));
    for (int j = 0; j < ns[k]; ++j) EXPECT_EQ(windows[k].ids[static_cast<std::size_t>(j)], static_cast<int>(starts[k]) + j);
  }
  EXPECT_EQ(tokens_needed({2, 3, 5}, 4), 40u);
}

TEST(Windows, LengthsKeepTheGivenOrder) {
  const auto windows = make_windows(iota_ids(20), {5, 2}, 2);
  ASSERT_EQ(windows.size(), 4u);
  EXPECT_EQ(windows[0].start, 0u);
  EXPECT_EQ(windows[1].start, 5u);
  EXPECT_EQ(windows[2].start, 10u);
  EXPECT_EQ(windows[2].n, 2);
  EXPECT_EQ(windows[3].start, 12u);
}

TEST(Windows, ExactFitIsComplete) {
  const auto plan = plan_windows(iota_ids(40), {2, 3, 5}, 4);
  EXPECT_TRUE(plan.complete);
  EXPECT_TRUE(plan.message.empty());
  ASSERT_EQ(plan.windows.size(), 12u);
  EXPECT_EQ(plan.windows.back().ids.back(), 39);
}

TEST(Windows, OneTokenShortStopsAtTheLastWindow) {
  const auto plan = plan_windows(iota_ids(39), {2, 3, 5}, 4);
  EXPECT_FALSE(plan.complete);
  EXPECT_EQ(plan.windows.size(), 11u);
  EXPECT_TRUE(contains(plan.message, "has 39 tokens")) << plan.message;
  EXPECT_TRUE(contains(plan.message, "need 40 tokens")) << plan.message;
  EXPECT_TRUE(contains(plan.message, "could make 11 of the 12 windows")) << plan.message;
  EXPECT_TRUE(contains(plan.message, "n = 5, sample 3")) << plan.message;
  try {
    make_windows(iota_ids(39), {2, 3, 5}, 4);
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    EXPECT_TRUE(contains(error.what(), "could make 11 of the 12 windows")) << error.what();
  }
}

TEST(Windows, RunningOutInTheFirstLength) {
  const auto plan = plan_windows(iota_ids(7), {3}, 5);
  EXPECT_FALSE(plan.complete);
  EXPECT_EQ(plan.windows.size(), 2u);
  EXPECT_TRUE(contains(plan.message, "2 of the 5 for n = 3")) << plan.message;
  const auto none = plan_windows(iota_ids(2), {3}, 1);
  EXPECT_TRUE(none.windows.empty());
  EXPECT_TRUE(contains(none.message, "could make 0 of the 1 windows")) << none.message;
}

TEST(Windows, DegenerateRequests) {
  EXPECT_TRUE(make_windows(iota_ids(5), {}, 3).empty());
  EXPECT_TRUE(make_windows(iota_ids(5), {2, 3}, 0).empty());
  EXPECT_TRUE(make_windows({}, {}, 0).empty());
  EXPECT_THROW(make_windows(iota_ids(5), {2, 0}, 1), InputError);
  EXPECT_THROW(make_windows(iota_ids(5), {-1}, 1), InputError);
  EXPECT_THROW(make_windows(iota_ids(5), {2}, -1), InputError);
  const auto whole = make_windows(iota_ids(5), {5}, 1);
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].ids, iota_ids(5));
}

std::vector<int> range_step(int first, int last, int step) {
  std::vector<int> lengths;
  for (int n = first; n <= last; n += step) lengths.push_back(n);
  return lengths;
}

TEST(Windows, AliceBertCannotGiveTenWindowsUpTo502) {
  const lipattn::text::WordPieceTokenizer bert(kSharedData + "/bert-base-uncased/vocab.txt");
  const std::vector<int> ids = bert.encode(read_bytes(kAliceText));
  ASSERT_EQ(ids.size(), 36703u);
  const std::vector<int> lengths = range_step(2, 502, 10);  // 51 lengths
  // By hand: 10 windows of each of the first m lengths use 10·Σ(2+10k) = 20m + 50m(m-1) tokens:
  // 35,640 for m = 27 (n up to 262), 38,360 for m = 28. So all of n = 2..262 fit, 1,063 tokens are
  // left, and n = 272 fits 3 times (816 tokens): 273 windows, stopping at n = 272, sample 3.
  // The whole request needs 10·51·252 = 128,520 tokens.
  const auto plan = plan_windows(ids, lengths, 10);
  EXPECT_FALSE(plan.complete);
  EXPECT_EQ(plan.windows.size(), 273u);
  EXPECT_EQ(plan.windows.back().n, 272);
  EXPECT_EQ(plan.windows.back().sample, 2);
  EXPECT_EQ(plan.windows.back().start + 272, 35640u + 816u);
  EXPECT_TRUE(contains(plan.message, "has 36703 tokens")) << plan.message;
  EXPECT_TRUE(contains(plan.message, "need 128520 tokens")) << plan.message;
  EXPECT_TRUE(contains(plan.message, "could make 273 of the 510 windows")) << plan.message;
  EXPECT_TRUE(contains(plan.message, "n = 272, sample 3")) << plan.message;
  EXPECT_TRUE(contains(plan.message, "n = 2..502 step 10")) << plan.message;
  EXPECT_THROW(make_windows(ids, lengths, 10), InputError);
}

TEST(Windows, AliceGivesTenWindowsOfEveryEvenNUpTo98) {
  // README: "enough for 10 windows of every n = 2..98 (24,500 tokens)", i.e. n = 2, 4, ..., 98.
  const std::string alice = read_bytes(kAliceText);
  const lipattn::text::Gpt2Tokenizer gpt2(kSharedData + "/gpt2/vocab.json", kSharedData + "/gpt2/merges.txt");
  const lipattn::text::WordPieceTokenizer bert(kSharedData + "/bert-base-uncased/vocab.txt");
  const std::vector<int> lengths = range_step(2, 98, 2);
  EXPECT_EQ(tokens_needed(lengths, 10), 24500u);
  for (const std::vector<int>& ids : {gpt2.encode(alice), bert.encode(alice)}) {
    const auto windows = make_windows(ids, lengths, 10);
    ASSERT_EQ(windows.size(), 490u);
    EXPECT_EQ(windows.back().start + 98, 24500u);
    EXPECT_EQ(windows.back().ids, std::vector<int>(ids.begin() + 24402, ids.begin() + 24500));
  }
}

}  // namespace
