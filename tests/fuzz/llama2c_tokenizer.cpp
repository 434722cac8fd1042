// Fuzz target: llama2.c's tokenizer.bin. The first byte picks the mode:
// - even: the rest is text, encoded with tests/fuzz/data/tok512.bin (run.c accepts any bytes); decoding
//   the ids gives the bytes back (byte fallback covers every byte).
// - odd: the rest is a tokenizer.bin (Llama2cTokenizer::from_bytes, which the path constructor uses),
//   which then encodes and decodes a fixed text.
#include <string>

#include "fuzz_support.h"
#include "text/llama2c_tokenizer.h"

using lipattn::text::Llama2cTokenizer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = lipattn::fuzz::as_text(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    static const Llama2cTokenizer fixed = Llama2cTokenizer::from_bytes(lipattn::fuzz::data_file("tok512.bin"),
                                                                       "tok512.bin");
    const std::vector<int> ids = fixed.encode(rest, true, true);
    for (int id : ids) lipattn::fuzz::require(id >= 0 && id < fixed.vocab_size(), "ids lie in the vocabulary");
    lipattn::fuzz::require(fixed.decode(ids) == rest, "decode(encode(text)) == text");
    return 0;
  }
  lipattn::fuzz::accept_input_errors([&] {
    const Llama2cTokenizer t = Llama2cTokenizer::from_bytes(rest, "tokenizer.bin");
    const std::vector<int> ids = t.encode("Once upon a time, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 \xFF!", true, true);
    for (int id : ids) lipattn::fuzz::require(id >= 0 && id < t.vocab_size(), "ids lie in the vocabulary");
    (void)t.decode(ids);
    lipattn::fuzz::accept_input_errors([&] { (void)t.decode(1, t.vocab_size()); });
  });
  return 0;
}
