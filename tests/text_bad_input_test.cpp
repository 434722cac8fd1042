// Bad tokenizer files through the tokenizers' in-memory entries (those the fuzz targets of tests/fuzz
// drive, and that the path constructors use): each is an InputError naming the file and the field.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "error_support.h"
#include "text/gpt2_tokenizer.h"
#include "text/llama2c_tokenizer.h"
#include "text/sentencepiece_bpe.h"
#include "text/wordpiece_tokenizer.h"

namespace lipattn::text {
namespace {

using namespace lipattn::testing;

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nexpected to contain: " << part;
}

// nlohmann's out_of_range (a number beyond a double) escaped as an uncaught exception.
TEST(TextBadInput, Gpt2VocabNumberBeyondDoubleRange) {
  expect_contains(error_of([] { Gpt2Tokenizer::from_text(R"({"a": 1e400})", "", "v.json", "m.txt"); }),
                  "v.json: not valid JSON");
  expect_contains(error_of([] { Gpt2Tokenizer::from_text(R"({"a": 0, "b": 0})", "", "v.json", "m.txt"); }),
                  "v.json: token \"b\" has id 0");
}

std::string tokenizer_json(const std::string& vocab, const std::string& post_processor = "null") {
  std::string s = R"({"model": {"type": "BPE", "vocab": )";
  s += vocab;
  s += R"(, "merges": []}, "post_processor": )";
  s += post_processor;
  s += "}";
  return s;
}

// An id of 2^31 - 1 made vocab_size = id + 1 overflow; ids past int wrapped.
TEST(TextBadInput, SentencePieceIdsAreBounded) {
  expect_contains(error_of([] { SentencePieceBpe::from_text(tokenizer_json(R"({"a": 2147483647})"), "tok.json"); }),
                  "tok.json: \"model.vocab.a\" must be a token id in 0..2147483646");
  expect_contains(error_of([] { SentencePieceBpe::from_text(tokenizer_json(R"({"a": -1})"), "tok.json"); }),
                  "\"model.vocab.a\" must be a token id");
  expect_contains(error_of([] { SentencePieceBpe::from_text(tokenizer_json(R"({"a": 4294967296})"), "tok.json"); }),
                  "\"model.vocab.a\" must be a token id");
  const SentencePieceBpe ok = SentencePieceBpe::from_text(tokenizer_json(R"({"a": 0, "b": 7})"), "tok.json");
  EXPECT_EQ(ok.vocab_size(), 8);
}

// Special tokens of the post_processor were pushed into every encoding unchecked: an id outside the
// vocabulary would index past the embedding table later.
TEST(TextBadInput, SentencePieceSpecialIdsLieInTheVocabulary) {
  const std::string post = R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}},
      {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"ids": [5]}}})";
  expect_contains(error_of([&] { SentencePieceBpe::from_text(tokenizer_json(R"({"a": 0})", post), "tok.json"); }),
                  "tok.json: \"post_processor.special_tokens.<s>\" id 5 is outside the vocabulary of 1");
  const std::string wrong_type = R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}],
      "special_tokens": {"<s>": {"ids": ["one"]}}})";
  expect_contains(error_of([&] { SentencePieceBpe::from_text(tokenizer_json(R"({"a": 0})", wrong_type), "tok.json"); }),
                  "tok.json: ");
}

std::string tokenizer_bin(std::int32_t max_length) {
  std::string bytes(4, '\0');
  std::memcpy(bytes.data(), &max_length, 4);
  return bytes;
}

TEST(TextBadInput, Llama2cMaxTokenLengthIsBounded) {
  expect_contains(error_of([] { Llama2cTokenizer::from_bytes(tokenizer_bin(1 << 30), "tok.bin"); }),
                  "tok.bin: max_token_length 1073741824 at byte 0 must lie in 0..1024");
  expect_contains(error_of([] { Llama2cTokenizer::from_bytes(tokenizer_bin(-1), "tok.bin"); }),
                  "max_token_length -1");
  expect_contains(error_of([] { Llama2cTokenizer::from_bytes(tokenizer_bin(16) + "abc", "tok.bin"); }),
                  "tok.bin: token 0 is truncated at byte 4");
}

// Scores rank the merges in an ordered map, where NaN (no order) has no place.
TEST(TextBadInput, Llama2cNanScoreIsRefused) {
  std::string bytes = tokenizer_bin(4);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::int32_t length = 1;
  bytes.append(reinterpret_cast<const char*>(&nan), 4);
  bytes.append(reinterpret_cast<const char*>(&length), 4);
  bytes += "a";
  expect_contains(error_of([&] { Llama2cTokenizer::from_bytes(bytes, "tok.bin"); }),
                  "tok.bin: token 0 has score NaN at byte 4");
}

TEST(TextBadInput, WordPieceVocabularyNamesTheLine) {
  expect_contains(error_of([] { WordPieceTokenizer::from_text("[UNK]\nok\n\xff\xfe\n", true, "vocab.txt"); }),
                  "vocab.txt:3");
  expect_contains(error_of([] { WordPieceTokenizer::from_text("a\nb\n", true, "vocab.txt"); }),
                  "vocab.txt: no [UNK] line");
}

}  // namespace
}  // namespace lipattn::text
