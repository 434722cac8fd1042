// Fuzz target: the LLaMA-family tokenizer.json (SentencePiece-converted BPE). The first byte picks
// the mode:
// - even: the rest is text, encoded with the tokenizer.json of tests/fuzz/data (tok512.bin converted
//   as transformers would); invalid UTF-8 is an InputError;
// - odd: the rest is tokenizer.json NUL text (SentencePieceBpe::from_text, which the path constructor
//   uses); the text is then encoded.
#include <string>

#include "fuzz_support.h"
#include "text/sentencepiece_bpe.h"

using lipattn::text::SentencePieceBpe;

namespace {

void encode(const SentencePieceBpe& t, std::string_view text, bool special) {
  lipattn::fuzz::accept_input_errors([&] {
    for (int id : t.encode(text, special, "fuzz text"))
      lipattn::fuzz::require(id >= 0 && id < t.vocab_size(), "ids lie in the vocabulary");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool special = (data[0] & 2) != 0;
  const std::string_view rest = lipattn::fuzz::as_text(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    static const SentencePieceBpe fixed =
        SentencePieceBpe::from_text(lipattn::fuzz::data_file("llama-tokenizer.json"), "llama-tokenizer.json");
    encode(fixed, rest, special);
    return 0;
  }
  const auto parts = lipattn::fuzz::split_at_nul(rest, 2);
  lipattn::fuzz::accept_input_errors([&] {
    const SentencePieceBpe t = SentencePieceBpe::from_text(std::string(parts[0]), "tokenizer.json");
    encode(t, parts.size() > 1 ? parts[1] : std::string_view("Once upon a time \xF0\x9F\x98\x80 <s> end"), special);
  });
  return 0;
}
