// Fuzz target: GPT-2's byte-level BPE. The first byte picks the mode:
// - even: the rest is text, encoded with the small GPT-2 vocabulary of tests/fuzz/data (the 256 byte
//   tokens and the first merges of GPT-2); invalid UTF-8 is an InputError, and valid text decodes back
//   to itself.
// - odd: the rest is vocab.json NUL merges.txt NUL text (Gpt2Tokenizer::from_text, which the path
//   constructor uses); the text is then encoded and decoded.
#include <string>

#include "fuzz_support.h"
#include "text/gpt2_tokenizer.h"

using lipattn::text::Gpt2Tokenizer;

namespace {

void encode_and_decode(const Gpt2Tokenizer& t, std::string_view text) {
  lipattn::fuzz::accept_input_errors([&] {
    const std::vector<int> ids = t.encode(text, "fuzz text");
    for (int id : ids) lipattn::fuzz::require(id >= 0 && id < t.vocab_size(), "ids lie in the vocabulary");
    lipattn::fuzz::require(t.decode(ids) == text, "decode(encode(text)) == text");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = lipattn::fuzz::as_text(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    static const Gpt2Tokenizer fixed = Gpt2Tokenizer::from_text(
        lipattn::fuzz::data_file("gpt2-vocab.json"), lipattn::fuzz::data_file("gpt2-merges.txt"));
    encode_and_decode(fixed, rest);
    return 0;
  }
  const auto parts = lipattn::fuzz::split_at_nul(rest, 3);
  lipattn::fuzz::accept_input_errors([&] {
    const Gpt2Tokenizer t = Gpt2Tokenizer::from_text(parts[0], parts.size() > 1 ? parts[1] : std::string_view());
    encode_and_decode(t, parts.size() > 2 ? parts[2] : std::string_view("Hello world, <|endoftext|> caf\xC3\xA9!"));
    lipattn::fuzz::accept_input_errors([&] { (void)t.decode({t.vocab_size()}); });
  });
  return 0;
}
