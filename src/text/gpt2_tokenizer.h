// GPT-2 byte-level BPE, loaded from Hugging Face's vocab.json + merges.txt (docs/formats.md,
// "Tokenizer files"). Reproduces the `gpt2` tokenizer: pre-tokenise with GPT-2's regular expression,
// map every byte to a printable character, then apply the merges in rank order.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lipattn::text {

class Gpt2Tokenizer {
 public:
  // Throws lipattn::InputError naming the file (and line, where there is one) if either file is
  // missing, unreadable or malformed.
  Gpt2Tokenizer(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);
  // The same loader on the files' contents held in memory; the sources name them in errors.
  static Gpt2Tokenizer from_text(std::string_view vocab_json, std::string_view merges_txt,
                                 const std::string& vocab_source = "vocab.json",
                                 const std::string& merges_source = "merges.txt");
  ~Gpt2Tokenizer();
  Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept;
  Gpt2Tokenizer& operator=(Gpt2Tokenizer&&) noexcept;

  // Token ids of `utf8`. A literal "<|endoftext|>" becomes the single special id (as Hugging Face
  // does for added special tokens). The input must be valid UTF-8: GPT-2's pre-tokeniser works on
  // characters, so invalid bytes throw InputError naming `what` and the byte offset rather than being
  // replaced silently (replacement would break the exact decode round trip). Thread-safe.
  std::vector<int> encode(std::string_view utf8, std::string_view what = "text") const;

  // The exact bytes the ids stand for; decode(encode(s)) == s for every valid UTF-8 s. Ids outside
  // the vocabulary throw InputError.
  std::string decode(const std::vector<int>& ids) const;

  // The vocabulary entry of `id` as written in vocab.json (byte-level form, e.g. "Ġworld").
  const std::string& token(int id) const;
  // The id of a vocabulary entry (byte-level form), if there is one.
  std::optional<int> id(std::string_view token) const;
  int vocab_size() const;
  // Id of "<|endoftext|>" (50256 for GPT-2), or -1 if the vocabulary has no such entry.
  int end_of_text_id() const;

 private:
  Gpt2Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lipattn::text
