// Fuzz target: BERT's WordPiece. The first byte picks the mode and the casing:
// - bit 0 clear: the rest is text, encoded with the small BERT vocabulary of tests/fuzz/data
//   (invalid UTF-8 is an InputError);
// - bit 0 set: the rest is vocab.txt NUL text (WordPieceTokenizer::from_text, which the path
//   constructor uses); the text is then encoded and decoded.
// Bit 1: lower-case (uncased) or not.
#include <string>

#include "fuzz_support.h"
#include "text/wordpiece_tokenizer.h"

using lipattn::text::WordPieceTokenizer;

namespace {

void encode_and_decode(const WordPieceTokenizer& t, std::string_view text, bool special) {
  lipattn::fuzz::accept_input_errors([&] {
    const std::vector<int> ids = t.encode(text, special, "fuzz text");
    for (int id : ids) lipattn::fuzz::require(id >= 0 && id < t.vocab_size(), "ids lie in the vocabulary");
    (void)t.decode(ids);
    (void)t.tokenize(text, "fuzz text");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool lowercase = (data[0] & 2) != 0, special = (data[0] & 4) != 0;
  const std::string_view rest = lipattn::fuzz::as_text(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    static const WordPieceTokenizer uncased = WordPieceTokenizer::from_text(lipattn::fuzz::data_file("bert-vocab.txt"), true);
    static const WordPieceTokenizer cased = WordPieceTokenizer::from_text(lipattn::fuzz::data_file("bert-vocab.txt"), false);
    encode_and_decode(lowercase ? uncased : cased, rest, special);
    return 0;
  }
  const auto parts = lipattn::fuzz::split_at_nul(rest, 2);
  lipattn::fuzz::accept_input_errors([&] {
    const WordPieceTokenizer t = WordPieceTokenizer::from_text(parts[0], lowercase);
    encode_and_decode(t, parts.size() > 1 ? parts[1] : std::string_view("Hello, [MASK] world! Caf\xC3\xA9 \xE4\xB8\xAD"),
                      special);
    lipattn::fuzz::accept_input_errors([&] { (void)t.decode({t.vocab_size()}); });
  });
  return 0;
}
