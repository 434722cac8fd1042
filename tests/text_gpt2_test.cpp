// GPT-2 byte-level BPE against the shipped vocab.json/merges.txt. Expected ids come from the ids the
// shared README documents, or from a deliberately naive reference BPE written here from the files
// (OpenAI's encoder.py loop over strings), never from the tokenizer under test.
#include "text/gpt2_tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <functional>
#include <iostream>
#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bytes_support.h"
#include "common/error.h"
#include "error_support.h"
#include "shared_data.h"

namespace {

using lipattn::InputError;
using lipattn::text::Gpt2Tokenizer;
using namespace lipattn::testing;  // error_of, read_bytes, write_bytes, kSharedData, kAliceText

const std::string kVocab = kSharedData + "/gpt2/vocab.json";
const std::string kMerges = kSharedData + "/gpt2/merges.txt";

std::string utf8_of(unsigned code_point) {
  std::string s;
  if (code_point < 0x80) {
    s += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    s += static_cast<char>(0xC0 | (code_point >> 6));
    s += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    s += static_cast<char>(0xE0 | (code_point >> 12));
    s += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (code_point & 0x3F));
  }
  return s;
}

// Reference GPT-2: OpenAI's bytes_to_unicode() built the way encoder.py builds it (list of kept
// bytes, then the rest appended as 256+n), and its bpe() loop on strings.
class ReferenceBpe {
 public:
  ReferenceBpe() {
    std::vector<int> bs, cs;
    for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
    cs = bs;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
        bs.push_back(b);
        cs.push_back(256 + extra++);
      }
    }
    for (std::size_t i = 0; i < bs.size(); ++i) byte_char[bs[i]] = utf8_of(static_cast<unsigned>(cs[i]));

    const nlohmann::json json = nlohmann::json::parse(read_bytes(kVocab));
    for (const auto& [token, id] : json.items()) vocab[token] = id.get<int>();
    std::istringstream merges_in(read_bytes(kMerges));
    std::string line;
    int rank = 0;
    std::getline(merges_in, line);  // "#version: 0.2"
    while (std::getline(merges_in, line)) {
      if (line.empty()) continue;
      const auto space = line.find(' ');
      ranks[{line.substr(0, space), line.substr(space + 1)}] = rank++;
    }
  }

  // Ids of one pre-token (the caller splits the text as GPT-2's regular expression would).
  std::vector<int> encode_pretoken(const std::string& bytes) const {
    std::vector<std::string> word;
    for (const unsigned char b : bytes) word.push_back(byte_char.at(b));
    while (word.size() > 1) {
      int best = INT_MAX;
      std::pair<std::string, std::string> best_pair;
      for (std::size_t i = 0; i + 1 < word.size(); ++i) {
        const auto found = ranks.find({word[i], word[i + 1]});
        if (found != ranks.end() && found->second < best) {
          best = found->second;
          best_pair = found->first;
        }
      }
      if (best == INT_MAX) break;
      std::vector<std::string> merged;
      for (std::size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == best_pair.first && word[i + 1] == best_pair.second) {
          merged.push_back(word[i] + word[i + 1]);
          i += 2;
        } else {
          merged.push_back(word[i]);
          i += 1;
        }
      }
      word = std::move(merged);
    }
    std::vector<int> ids;
    for (const auto& piece : word) ids.push_back(vocab.at(piece));
    return ids;
  }

  std::vector<int> encode_pretokens(const std::vector<std::string>& pretokens) const {
    std::vector<int> ids;
    for (const auto& p : pretokens) {
      const auto piece_ids = encode_pretoken(p);
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
    return ids;
  }

  std::map<std::string, int> vocab;
  std::map<int, std::string> byte_char;
  std::map<std::pair<std::string, std::string>, int> ranks;
};

class Gpt2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer = new Gpt2Tokenizer(kVocab, kMerges);
    reference = new ReferenceBpe();
  }
  static void TearDownTestSuite() {
    delete tokenizer;
    delete reference;
  }
  static Gpt2Tokenizer* tokenizer;
  static ReferenceBpe* reference;
};
Gpt2Tokenizer* Gpt2Test::tokenizer = nullptr;
ReferenceBpe* Gpt2Test::reference = nullptr;

TEST_F(Gpt2Test, KnownIdsFromTheReadme) {
  EXPECT_EQ(tokenizer->vocab_size(), 50257);
  EXPECT_EQ(tokenizer->encode("Hello"), std::vector<int>{15496});
  EXPECT_EQ(tokenizer->encode(" Hello"), std::vector<int>{18435});
  EXPECT_EQ(tokenizer->encode(" world"), std::vector<int>{995});
  EXPECT_EQ(tokenizer->encode("Hello world"), (std::vector<int>{15496, 995}));
  EXPECT_EQ(tokenizer->encode("<|endoftext|>"), std::vector<int>{50256});
  EXPECT_EQ(tokenizer->end_of_text_id(), 50256);
  EXPECT_EQ(tokenizer->token(995), "\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(tokenizer->id("\xC4\xA0world"), 995);
  EXPECT_FALSE(tokenizer->id("no such token here").has_value());
  EXPECT_EQ(tokenizer->decode({15496, 995, 50256}), "Hello world<|endoftext|>");
}

TEST_F(Gpt2Test, EndOfTextInsideTextIsOneSpecialId) {
  const auto& v = reference->vocab;
  EXPECT_EQ(tokenizer->encode("a<|endoftext|>b"), (std::vector<int>{v.at("a"), 50256, v.at("b")}));
  EXPECT_EQ(tokenizer->encode("<|endoftext|><|endoftext|>"), (std::vector<int>{50256, 50256}));
  // Not the special token: a broken spelling goes through BPE like any text.
  const std::string broken = "<|endoftext|";
  EXPECT_EQ(tokenizer->encode(broken), reference->encode_pretokens({"<|", "endoftext", "|"}));
}

// Each case lists the pre-tokens GPT-2's expression gives, worked out by hand from the pattern.
TEST_F(Gpt2Test, EdgeCasesMatchTheReferenceBpe) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"a   b", {"a", "  ", " b"}},  // \s+(?!\S) leaves the last space to lead "b"
      {"hello  ", {"hello", "  "}},  // trailing spaces stay one piece
      {"\n\n", {"\n\n"}},
      {"don't", {"don", "'t"}},
      {"I'll go", {"I", "'ll", " go"}},
      {"we're", {"we", "'re"}},
      {"12345", {"12345"}},
      {"Hello, world!", {"Hello", ",", " world", "!"}},
      {"caf\xC3\xA9 au lait", {"caf\xC3\xA9", " au", " lait"}},
      {"\xE4\xBD\xA0\xE5\xA5\xBD", {"\xE4\xBD\xA0\xE5\xA5\xBD"}},           // 你好: letters
      {"Hi \xF0\x9F\x98\x80!", {"Hi", " \xF0\x9F\x98\x80!"}},                 // 😀 and ! are both "other"
      {"x2y", {"x", "2", "y"}},
  };
  for (const auto& [text, pretokens] : cases) {
    EXPECT_EQ(tokenizer->encode(text), reference->encode_pretokens(pretokens)) << "text: " << text;
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
  }
}

TEST_F(Gpt2Test, WhitespaceBeforeAWord) {
  // "\n\n" before a letter: \s+(?!\S) takes "\n" (backtracking off the last one), then the second
  // "\n" is neither letter-led nor followed by whitespace, so \s+ takes it alone.
  EXPECT_EQ(tokenizer->encode("a\n\nb"), reference->encode_pretokens({"a", "\n", "\n", "b"}));
  EXPECT_EQ(tokenizer->encode("a \n b"), reference->encode_pretokens({"a", " \n", " b"}));
}

TEST_F(Gpt2Test, EmptyText) {
  EXPECT_TRUE(tokenizer->encode("").empty());
  EXPECT_EQ(tokenizer->decode({}), "");
}

TEST_F(Gpt2Test, RoundTripsEveryByteValueThatIsValidUtf8) {
  std::string text;
  for (int b = 1; b < 0x80; ++b) text += static_cast<char>(b);
  text += "\xC2\xA0\xC2\xAD\xE2\x80\x8B\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD zero\x00byte";
  text.push_back('\0');
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(text)), text);
}

TEST_F(Gpt2Test, AliceCountAndRoundTrip) {
  const std::string alice = read_bytes(kAliceText);
  ASSERT_EQ(alice.size(), 144396u);
  Gpt2Tokenizer fresh(kVocab, kMerges);  // empty cache: time the real work
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> ids = fresh.encode(alice);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ids.size(), 39622u);
  EXPECT_EQ(fresh.decode(ids), alice);
  std::cout << "GPT-2 tokenised Alice (" << ids.size() << " tokens) in " << seconds << " s\n";
#ifdef NDEBUG
  EXPECT_LT(seconds, 0.5);
#endif
}

TEST_F(Gpt2Test, PathologicalRunsStayFastAndExact) {
  const std::string spaces = std::string(100000, ' ') + "x";
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(spaces)), spaces);
  const std::string letters(100000, 'a');  // one 100 kB pre-token: BPE must not be quadratic
  const auto start = std::chrono::steady_clock::now();
  const auto ids = tokenizer->encode(letters);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(tokenizer->decode(ids), letters);
#ifdef NDEBUG
  EXPECT_LT(seconds, 1.0);
#endif
  // Against the naive reference on a shorter run (its loop is quadratic).
  const std::string some(300, 'a');
  EXPECT_EQ(tokenizer->encode(some), reference->encode_pretoken(some));
}

TEST_F(Gpt2Test, InvalidUtf8NamesTheByteOffset) {
  try {
    tokenizer->encode(std::string("ab\xFF" "cd"), "corpus.txt");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("corpus.txt"), std::string::npos) << message;
    EXPECT_NE(message.find("byte offset 2"), std::string::npos) << message;
  }
  EXPECT_THROW(tokenizer->encode("\xED\xA0\x80"), InputError);  // a UTF-16 surrogate
  EXPECT_THROW(tokenizer->encode("\xC0\xAF"), InputError);      // overlong "/"
  EXPECT_THROW(tokenizer->encode("caf\xC3"), InputError);       // cut in the middle of é
}

TEST_F(Gpt2Test, DecodeRejectsIdsOutsideTheVocabulary) {
  EXPECT_THROW(tokenizer->decode({50257}), InputError);
  EXPECT_THROW(tokenizer->decode({-1}), InputError);
  EXPECT_THROW(tokenizer->token(60000), InputError);
}

TEST(Gpt2Files, ErrorsNameTheFileAndLine) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "lipattn_text_gpt2";
  std::filesystem::create_directories(dir);

  std::string message = error_of([&] { Gpt2Tokenizer(dir / "missing.json", kMerges); });
  EXPECT_NE(message.find("missing.json"), std::string::npos) << message;

  write_bytes(dir / "bad.json", "{\n  \"a\": 0,\n  \"b\": 1,,\n}\n");
  message = error_of([&] { Gpt2Tokenizer(dir / "bad.json", kMerges); });
  EXPECT_NE(message.find("bad.json:3"), std::string::npos) << message;

  write_bytes(dir / "notint.json", "{\"a\": \"zero\"}");
  message = error_of([&] { Gpt2Tokenizer(dir / "notint.json", kMerges); });
  EXPECT_NE(message.find("notint.json"), std::string::npos) << message;
  EXPECT_NE(message.find("integer"), std::string::npos) << message;

  write_bytes(dir / "merges_bad.txt", "#version: 0.2\n\xC4\xA0 t\nnospace\n");
  message = error_of([&] { Gpt2Tokenizer(kVocab, dir / "merges_bad.txt"); });
  EXPECT_NE(message.find("merges_bad.txt:3"), std::string::npos) << message;

  write_bytes(dir / "merges_unknown.txt", "#version: 0.2\n\xC4\xA0 t\nzzzq qqqz\n");
  message = error_of([&] { Gpt2Tokenizer(kVocab, dir / "merges_unknown.txt"); });
  EXPECT_NE(message.find("merges_unknown.txt:3"), std::string::npos) << message;

  // A vocabulary lacking byte tokens is not byte-level.
  write_bytes(dir / "tiny.json", "{\"a\": 0}");
  message = error_of([&] { Gpt2Tokenizer(dir / "tiny.json", kMerges); });
  EXPECT_NE(message.find("tiny.json"), std::string::npos) << message;
  EXPECT_NE(message.find("byte"), std::string::npos) << message;
}

TEST(Gpt2Files, FirstMergesOnlyGiveAPartialButExactTokenizer) {
  // With only the first merge ("Ġ t"), " the" becomes "Ġt" + "h" + "e".
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "lipattn_text_gpt2";
  std::filesystem::create_directories(dir);
  write_bytes(dir / "one_merge.txt", "#version: 0.2\n\xC4\xA0 t\n");
  Gpt2Tokenizer partial(kVocab, dir / "one_merge.txt");
  const nlohmann::json vocab = nlohmann::json::parse(read_bytes(kVocab));
  EXPECT_EQ(partial.encode(" the"),
            (std::vector<int>{vocab.at("\xC4\xA0t").get<int>(), vocab.at("h").get<int>(), vocab.at("e").get<int>()}));
}

}  // namespace
