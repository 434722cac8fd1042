// llama2.c's tokenizer.bin against ids computed by tests/tools/llama2c_encode.py (an independent
// transcription of run.c's encode), and a tokenizer.json converted from it (tests/llama_tokenizer_
// fixture.h) against the llama2.c tokenizer on TinyStories text.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "error_support.h"
#include "llama_tokenizer_fixture.h"
#include "shared_data.h"
#include "text/llama2c_tokenizer.h"
#include "text/sentencepiece_bpe.h"

namespace {

using namespace lipattn;
using lipattn::testing::error_of;
using text::Llama2cTokenizer;
using text::SentencePieceBpe;
namespace fs = std::filesystem;

const std::string kTok512 = lipattn::testing::kSharedData + "/stories260K/tok512.bin";
const std::string kStories = lipattn::testing::kSharedData + "/text/tinystories-valid-head.txt";

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("lipattn_text_llama_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

std::vector<std::string> story_lines(std::size_t count) {
  std::ifstream in(kStories);
  std::vector<std::string> lines;
  for (std::string line; lines.size() < count && std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

TEST(Llama2cTokenizer, EncodesAsRunC) {
  const Llama2cTokenizer t(kTok512);
  EXPECT_EQ(t.vocab_size(), 512);
  // python3 tests/tools/llama2c_encode.py ../shared/data/stories260K/tok512.bin TEXT
  EXPECT_EQ(t.encode("Once upon a time, there was a little girl named Lily."),
            (std::vector<int>{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426}));
  EXPECT_EQ(t.encode(""), (std::vector<int>{1}));  // no dummy prefix for empty text
  EXPECT_EQ(t.encode("Hi"), (std::vector<int>{1, 320, 417}));
  // Code points without a token fall back to their bytes (id byte + 3): ï, é, —, 日本, ✓, '\n' (13).
  EXPECT_EQ(t.encode("naïve café — 日本 ✓\nnew line"),
            (std::vector<int>{1,   297, 412, 198, 178, 360, 280, 412, 431, 485, 410, 481, 410, 233, 154,
                              168, 233, 159, 175, 410, 229, 159, 150, 13,  416, 411, 424, 278, 271, 411}));
  EXPECT_EQ(t.encode("  two  spaces"), (std::vector<int>{1, 410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419}));
  EXPECT_EQ(t.encode("Lily's mom said, \"No!\""),
            (std::vector<int>{1, 317, 439, 419, 357, 336, 432, 313, 458, 414, 443, 436}));
  EXPECT_EQ(t.encode("Hi", false, true), (std::vector<int>{320, 417, 2}));
}

TEST(Llama2cTokenizer, DecodesAsRunCPrints) {
  const Llama2cTokenizer t(kTok512);
  // After BOS the dummy-prefix space is dropped; byte pieces become their bytes.
  EXPECT_EQ(t.decode(1, 403), "Once");
  EXPECT_EQ(t.decode(403, 407), " upon");
  EXPECT_EQ(t.decode(5, 13), "\n");
  for (const auto& line : story_lines(200)) EXPECT_EQ(t.decode(t.encode(line)), line);
  EXPECT_NE(error_of([&] { t.decode(1, 512); }).find("512"), std::string::npos);
}

TEST(SentencePieceBpe, ConvertedTok512AgreesWithLlama2cOnTinyStories) {
  const Llama2cTokenizer bin(kTok512);
  const auto converted = llama_fixture::read_tokenizer_bin(kTok512);
  for (const std::string form : {"normalizer", "metaspace"}) {
    const SentencePieceBpe json(
        llama_fixture::write_tokenizer_json(scratch(form + ".json"), llama_fixture::tokenizer_json(converted, form)));
    EXPECT_EQ(json.vocab_size(), 512);
    std::size_t checked = 0;
    for (const auto& line : story_lines(400)) {
      ASSERT_EQ(json.encode(line), bin.encode(line)) << form << ": " << line;
      ++checked;
    }
    EXPECT_EQ(checked, 400u);
    // Special tokens in the text are cut out first; no template without `special`.
    EXPECT_EQ(json.encode("Hi</s>"), (std::vector<int>{1, 320, 417, 2}));
    EXPECT_EQ(json.encode("Hi", false), (std::vector<int>{320, 417}));
  }
}

TEST(SentencePieceBpe, MetaspaceAndNormalizerDifferOnlyWhereHuggingFaceDoes) {
  const auto converted = llama_fixture::read_tokenizer_bin(kTok512);
  const SentencePieceBpe legacy(llama_fixture::write_tokenizer_json(
      scratch("legacy.json"), llama_fixture::tokenizer_json(converted, "normalizer")));
  const SentencePieceBpe meta(
      llama_fixture::write_tokenizer_json(scratch("meta.json"), llama_fixture::tokenizer_json(converted, "metaspace")));
  // Prepend always adds "▁"; Metaspace does not add one to text that already starts with a space.
  EXPECT_EQ(legacy.encode(" Hi").size(), meta.encode(" Hi").size() + 1) << "\"▁▁Hi\" vs \"▁Hi\"";
}

TEST(TokenizerFiles, MalformedFilesSayWhatIsWrong) {
  // A tokenizer.bin cut inside a token.
  std::ifstream in(kTok512, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const fs::path cut = scratch("cut.bin");
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 2);
  std::string m = error_of([&] { Llama2cTokenizer t(cut); });
  EXPECT_NE(m.find(cut.string()), std::string::npos) << m;
  EXPECT_NE(m.find("token 511"), std::string::npos) << m;

  // A byte-level BPE tokenizer.json (GPT-2 / LLaMA 3 form) is not this tokenizer.
  auto j = llama_fixture::tokenizer_json(llama_fixture::read_tokenizer_bin(kTok512));
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}};
  const fs::path bytelevel = llama_fixture::write_tokenizer_json(scratch("bytelevel.json"), j);
  m = error_of([&] { SentencePieceBpe t(bytelevel); });
  EXPECT_NE(m.find(bytelevel.string()), std::string::npos) << m;
  EXPECT_NE(m.find("ByteLevel"), std::string::npos) << m;

  j = llama_fixture::tokenizer_json(llama_fixture::read_tokenizer_bin(kTok512));
  j["model"]["type"] = "Unigram";
  const fs::path unigram = llama_fixture::write_tokenizer_json(scratch("unigram.json"), j);
  m = error_of([&] { SentencePieceBpe t(unigram); });
  EXPECT_NE(m.find("model.type"), std::string::npos) << m;

  j = llama_fixture::tokenizer_json(llama_fixture::read_tokenizer_bin(kTok512));
  j["model"]["merges"].push_back("zz qq");
  const fs::path bad_merge = llama_fixture::write_tokenizer_json(scratch("merge.json"), j);
  m = error_of([&] { SentencePieceBpe t(bad_merge); });
  EXPECT_NE(m.find("zz qq"), std::string::npos) << m;
}

}  // namespace
