// BERT WordPiece (bert-base-uncased vocab.txt). Expected ids are looked up in vocab.txt here, or come
// from the ids the shared README documents, or from a plain greedy longest-match written here.
#include "text/wordpiece_tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bytes_support.h"
#include "common/error.h"
#include "error_support.h"
#include "shared_data.h"

namespace {

using lipattn::InputError;
using lipattn::text::WordPieceTokenizer;
using namespace lipattn::testing;  // error_of, read_bytes, write_bytes, kSharedData, kAliceText

const std::string kVocab = kSharedData + "/bert-base-uncased/vocab.txt";

// vocab.txt read independently: token -> line index.
std::map<std::string, int> load_vocab() {
  std::map<std::string, int> vocab;
  std::istringstream in(read_bytes(kVocab));
  std::string line;
  int id = 0;
  while (std::getline(in, line)) vocab[line] = id++;
  return vocab;
}

class WordPieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer = new WordPieceTokenizer(kVocab, true);
    vocab = new std::map<std::string, int>(load_vocab());
  }
  static void TearDownTestSuite() {
    delete tokenizer;
    delete vocab;
  }
  static int v(const std::string& token) { return vocab->at(token); }
  // Greedy longest-match-first on a word of ASCII characters, straight from the WordPiece definition.
  static std::vector<int> greedy_ascii(const std::string& word) {
    std::vector<int> ids;
    std::size_t start = 0;
    while (start < word.size()) {
      std::size_t end = word.size();
      int found = -1;
      for (; end > start; --end) {
        const std::string piece = (start > 0 ? "##" : "") + word.substr(start, end - start);
        if (const auto it = vocab->find(piece); it != vocab->end()) {
          found = it->second;
          break;
        }
      }
      if (found < 0) return {v("[UNK]")};
      ids.push_back(found);
      start = end;
    }
    return ids;
  }
  static WordPieceTokenizer* tokenizer;
  static std::map<std::string, int>* vocab;
};
WordPieceTokenizer* WordPieceTest::tokenizer = nullptr;
std::map<std::string, int>* WordPieceTest::vocab = nullptr;

TEST_F(WordPieceTest, KnownIdsFromTheReadme) {
  EXPECT_EQ(tokenizer->vocab_size(), 30522);
  EXPECT_EQ(tokenizer->pad_id(), 0);
  EXPECT_EQ(tokenizer->unk_id(), 100);
  EXPECT_EQ(tokenizer->cls_id(), 101);
  EXPECT_EQ(tokenizer->sep_id(), 102);
  EXPECT_EQ(tokenizer->mask_id(), 103);
  EXPECT_EQ(tokenizer->id("hello"), 7592);
  EXPECT_EQ(tokenizer->token(7592), "hello");
  EXPECT_EQ(tokenizer->id("no-such-token"), 100);
  EXPECT_FALSE(tokenizer->find("no-such-token").has_value());
  EXPECT_EQ(tokenizer->encode("hello"), std::vector<int>{7592});
  EXPECT_EQ(tokenizer->encode("Hello"), std::vector<int>{7592});
  EXPECT_EQ(tokenizer->encode("HELLO", true), (std::vector<int>{101, 7592, 102}));
}

TEST_F(WordPieceTest, EmptyAndWhitespaceOnly) {
  EXPECT_TRUE(tokenizer->encode("").empty());
  EXPECT_TRUE(tokenizer->encode("  \n\n \t\r ").empty());
  EXPECT_EQ(tokenizer->encode("", true), (std::vector<int>{101, 102}));
}

TEST_F(WordPieceTest, WhitespaceRunsSplitWords) {
  EXPECT_EQ(tokenizer->encode("a   b"), (std::vector<int>{v("a"), v("b")}));
  EXPECT_EQ(tokenizer->encode("hello  "), std::vector<int>{7592});
  EXPECT_EQ(tokenizer->encode("hello\n\nworld\u00A0again\u3000now"),  // NBSP and ideographic space are Zs
            (std::vector<int>{7592, v("world"), v("again"), v("now")}));
  EXPECT_EQ(tokenizer->encode("hello\u2028world"), (std::vector<int>{7592, v("world")}));  // line separator
}

TEST_F(WordPieceTest, ControlCharactersAreDropped) {
  EXPECT_EQ(tokenizer->encode(std::string("hel\0lo", 6)), std::vector<int>{7592});
  EXPECT_EQ(tokenizer->encode("hel\x01lo"), std::vector<int>{7592});
  EXPECT_EQ(tokenizer->encode("hel\xEF\xBF\xBDlo"), std::vector<int>{7592});  // U+FFFD
  EXPECT_EQ(tokenizer->encode("hel\xE2\x80\x8Blo"), std::vector<int>{7592});  // U+200B is Cf
}

TEST_F(WordPieceTest, AccentsAreStrippedWhenUncased) {
  EXPECT_EQ(tokenizer->encode("caf\xC3\xA9"), std::vector<int>{v("cafe")});       // café, precomposed
  EXPECT_EQ(tokenizer->encode("CAFE\xCC\x81"), std::vector<int>{v("cafe")});      // E + combining acute
  EXPECT_EQ(tokenizer->encode("Na\xC3\xAFve"), std::vector<int>{v("naive")});     // Naïve
  EXPECT_EQ(tokenizer->encode("\xC3\x85ngstr\xC3\xB6m"), greedy_ascii("angstrom"));  // Ångström
}

TEST_F(WordPieceTest, CjkCharactersAreTokensOfTheirOwn) {
  // 中文字 with no spaces: three words, each its vocabulary entry (or [UNK] if the vocab lacks it).
  const std::vector<std::string> chars = {"\xE4\xB8\xAD", "\xE6\x96\x87", "\xE5\xAD\x97"};
  std::vector<int> expected;
  for (const auto& c : chars) expected.push_back(vocab->count(c) ? v(c) : 100);
  EXPECT_EQ(tokenizer->encode("\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97"), expected);
  EXPECT_EQ(tokenizer->encode("a\xE4\xB8\xAD" "b"), (std::vector<int>{v("a"), expected[0], v("b")}));
}

TEST_F(WordPieceTest, EmojiIsItsVocabEntryOrUnknown) {
  const std::string grin = "\xF0\x9F\x98\x80";  // 😀 (So: neither punctuation nor CJK)
  const int expected = vocab->count(grin) ? v(grin) : 100;
  EXPECT_EQ(tokenizer->encode(grin), std::vector<int>{expected});
  // Glued to a word, the emoji joins it; the word is [UNK] unless some piece sequence covers it.
  EXPECT_EQ(tokenizer->encode("hi " + grin + " there"), (std::vector<int>{v("hi"), expected, v("there")}));
}

TEST_F(WordPieceTest, DigitsUseContinuationPieces) {
  EXPECT_EQ(tokenizer->encode("12345"), greedy_ascii("12345"));
  EXPECT_EQ(tokenizer->encode("unaffable"), greedy_ascii("unaffable"));
  EXPECT_GT(greedy_ascii("unaffable").size(), 1u);
}

TEST_F(WordPieceTest, PunctuationSplits) {
  EXPECT_EQ(tokenizer->encode("Hello, world!"), (std::vector<int>{7592, v(","), v("world"), v("!")}));
  EXPECT_EQ(tokenizer->encode("don't"), (std::vector<int>{v("don"), v("'"), v("t")}));
  EXPECT_EQ(tokenizer->encode("I'll"), (std::vector<int>{v("i"), v("'"), v("ll")}));
  // ASCII symbols that Unicode files under S* ($, ^, `) still split, as in HF's _is_punctuation.
  EXPECT_EQ(tokenizer->encode("$5^`"), (std::vector<int>{v("$"), v("5"), v("^"), v("`")}));
  // A Unicode P* character: the em dash and curly quotes.
  EXPECT_EQ(tokenizer->encode("a\xE2\x80\x94\xE2\x80\x9C" "b\xE2\x80\x9D"),
            (std::vector<int>{v("a"), v("\xE2\x80\x94"), v("\xE2\x80\x9C"), v("b"), v("\xE2\x80\x9D")}));
}

TEST_F(WordPieceTest, LiteralSpecialTokensStayWhole) {
  EXPECT_EQ(tokenizer->encode("hello [SEP] world[MASK]"), (std::vector<int>{7592, 102, v("world"), 103}));
  // Lower-case spelling is ordinary text: "[", "sep", "]".
  EXPECT_EQ(tokenizer->encode("[sep]"), (std::vector<int>{v("["), v("sep"), v("]")}));
}

TEST_F(WordPieceTest, LongWordsBecomeUnknown) {
  const std::string hundred(100, 'a');
  EXPECT_EQ(tokenizer->encode(hundred), greedy_ascii(hundred));
  EXPECT_NE(tokenizer->encode(hundred), std::vector<int>{100});
  EXPECT_EQ(tokenizer->encode(hundred + "a"), std::vector<int>{100});
  // The limit counts characters, not bytes: 60 two-byte "é" are 60 characters ("e" after stripping).
  std::string accented;
  for (int i = 0; i < 60; ++i) accented += "\xC3\xA9";
  EXPECT_EQ(tokenizer->encode(accented), greedy_ascii(std::string(60, 'e')));
}

TEST_F(WordPieceTest, DecodeJoinsPieces) {
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("The quick brown fox.")), "the quick brown fox .");
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("unaffable", true)), "[CLS] unaffable [SEP]");
  EXPECT_THROW(tokenizer->decode({30522}), InputError);
}

TEST_F(WordPieceTest, CasedModeKeepsCaseAndAccents) {
  const WordPieceTokenizer cased(kVocab, false);
  EXPECT_FALSE(cased.lowercase());
  EXPECT_EQ(cased.encode("hello"), std::vector<int>{7592});
  // The uncased vocabulary has no "Hello"/"H..." pieces, so greedy matching fails: [UNK].
  EXPECT_EQ(cased.encode("Hello"), greedy_ascii("Hello"));
  const bool has_e_acute = vocab->count("\xC3\xA9") > 0;
  const std::vector<int> cafe = cased.encode("caf\xC3\xA9");
  if (!has_e_acute) {
    EXPECT_EQ(cafe, std::vector<int>{100});
  }
  EXPECT_NE(cafe, std::vector<int>{v("cafe")});
}

TEST_F(WordPieceTest, AliceCount) {
  const std::string alice = read_bytes(kAliceText);
  ASSERT_EQ(alice.size(), 144396u);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int> ids = tokenizer->encode(alice);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // shared/README.md says 36,705 bert-base-uncased tokens. That is the count with [CLS] and [SEP]
  // (what Hugging Face's tokenizer(text) returns by default): the text itself gives 36,703, and an
  // independent Python re-implementation of HF's BasicTokenizer + WordPiece gives the same 36,703 ids.
  EXPECT_EQ(ids.size(), 36703u);
  EXPECT_EQ(tokenizer->encode(alice, true).size(), 36705u);
  std::cout << "WordPiece tokenised Alice (" << ids.size() << " tokens) in " << seconds << " s\n";
#ifdef NDEBUG
  EXPECT_LT(seconds, 0.5);
#endif
}

TEST_F(WordPieceTest, InvalidUtf8NamesTheByteOffset) {
  try {
    tokenizer->encode("hello [SEP] w\xC3(", false, "corpus.txt");
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("corpus.txt"), std::string::npos) << message;
    EXPECT_NE(message.find("byte offset 13"), std::string::npos) << message;
  }
}

TEST(WordPieceFiles, ErrorsNameTheFile) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "lipattn_text_wordpiece";
  std::filesystem::create_directories(dir);
  std::string message = error_of([&] { WordPieceTokenizer(dir / "missing.txt"); });
  EXPECT_NE(message.find("missing.txt"), std::string::npos) << message;

  write_bytes(dir / "no_unk.txt", "[PAD]\nhello\n");
  message = error_of([&] { WordPieceTokenizer(dir / "no_unk.txt"); });
  EXPECT_NE(message.find("no_unk.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("[UNK]"), std::string::npos) << message;

  write_bytes(dir / "bad_utf8.txt", "[UNK]\nhel\xFFlo\n");
  message = error_of([&] { WordPieceTokenizer(dir / "bad_utf8.txt"); });
  EXPECT_NE(message.find("bad_utf8.txt:2"), std::string::npos) << message;

  // A tiny vocabulary: ids are line numbers; no [CLS] means special tokens cannot be added.
  write_bytes(dir / "tiny.txt", "[UNK]\nab\n##c\nx\r\n");
  const WordPieceTokenizer tiny(dir / "tiny.txt");
  EXPECT_EQ(tiny.encode("abc x abd"), (std::vector<int>{1, 2, 3, 0}));
  EXPECT_EQ(tiny.decode({1, 2, 3}), "abc x");
  EXPECT_EQ(tiny.cls_id(), -1);
  EXPECT_THROW(tiny.encode("abc", true), InputError);
}

}  // namespace
