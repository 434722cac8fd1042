// llama2.c's tokenizer.bin (docs/formats.md, "llama2.c tokenizer.bin"), encoded and decoded exactly
// as run.c's encode() and decode() do.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/bpe.h"

namespace lipattn::text {

class Llama2cTokenizer {
 public:
  static constexpr int kBos = 1, kEos = 2;  // run.c's fixed ids
  // int32 max_token_length, then per token: float32 score, int32 length, the bytes, up to the end of
  // the file (the file does not store the vocabulary size). InputError naming the file and the
  // token for a truncated or malformed entry.
  explicit Llama2cTokenizer(const std::filesystem::path& path);
  // The same reader on the bytes of a tokenizer.bin held in memory; `source` names them in errors.
  static Llama2cTokenizer from_bytes(std::string_view bytes, const std::filesystem::path& source);

  // run.c's encode(): BOS (id 1) if `bos`; the token of " " (the dummy prefix) when the text is
  // non-empty; each UTF-8 code point's token, or its bytes as ids byte + 3 when it has none; then
  // merges of the best-scoring adjacent pair whose concatenation is a token, the first such pair on
  // ties, until none is left; EOS (id 2) if `eos`. Any bytes are accepted, as run.c does.
  std::vector<int> encode(std::string_view text, bool bos = true, bool eos = false) const;
  // run.c's decode(prev, token): the piece, without its leading space right after BOS, and the raw
  // byte for a "<0xXX>" piece. InputError for an id outside the vocabulary.
  std::string decode(int prev, int token) const;
  // The text of a row of ids, as run.c prints a generation: each token decoded after its
  // predecessor; BOS and EOS print nothing.
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int id) const { return pieces_.at(static_cast<std::size_t>(id)); }
  float score(int id) const { return scores_.at(static_cast<std::size_t>(id)); }
  const std::filesystem::path& path() const { return path_; }

 private:
  Llama2cTokenizer() = default;
  void load(std::string_view bytes);
  int lookup(std::string_view piece) const;  // -1 when absent
  std::filesystem::path path_;
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> ids_;
  detail::BpeMerges merges_;
};

}  // namespace lipattn::text
