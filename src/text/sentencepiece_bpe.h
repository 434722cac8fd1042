// A Hugging Face tokenizer.json of the SentencePiece-converted BPE form that LLaMA, TinyLlama and
// Mistral ship (docs/formats.md, "tokenizer.json (BPE with byte fallback)"): spaces become "▁"
// (normalizer Prepend("▁") + Replace(" ", "▁"), or pre_tokenizer Metaspace), each character is a
// token or falls back to its bytes "<0xXX>", merges apply by rank, and the post_processor's
// template adds BOS. Byte-level BPE tokenizer.json files (GPT-2, LLaMA 3, Qwen) are refused.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "text/bpe.h"

namespace lipattn::text {

class SentencePieceBpe {
 public:
  // InputError naming the file and the JSON key for anything outside the form above.
  explicit SentencePieceBpe(const std::filesystem::path& tokenizer_json);
  // The same reader on a tokenizer.json held in memory; `source` names it in errors.
  static SentencePieceBpe from_text(const std::string& text, const std::filesystem::path& source);

  // Ids as transformers' tokenizer(text)["input_ids"] gives them: added tokens found in the text
  // become their ids, the rest is normalised, pre-tokenised and merged, and the template's special
  // tokens (`special`) surround the result. `what` names the text in errors (invalid UTF-8).
  std::vector<int> encode(std::string_view utf8, bool special = true, std::string_view what = "text") const;

  int vocab_size() const { return vocab_size_; }
  int id(std::string_view piece) const;  // -1 when absent
  const std::filesystem::path& path() const { return path_; }

 private:
  SentencePieceBpe() = default;
  void load_checked(const std::string& text);
  void load(const std::string& text);
  int token_id(const nlohmann::json& value, const std::string& key) const;  // InputError naming key
  void load_normalizer(const nlohmann::json& normalizer);
  void load_pre_tokenizer(const nlohmann::json& pre_tokenizer);
  void load_post_processor(const nlohmann::json& post_processor);
  void encode_segment(std::string_view text, bool first, std::vector<int>& out) const;
  void encode_word(std::string_view word, std::vector<int>& out) const;

  std::filesystem::path path_;
  std::unordered_map<std::string, int> vocab_;
  std::vector<std::pair<std::string, int>> added_;  // content → id, longest first
  detail::BpeMerges merges_;
  int vocab_size_ = 0, unk_id_ = -1;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  // Normalizer: prepend "▁" to non-empty text; replace ' ' by "▁".
  bool normalizer_prepend_ = false, normalizer_replace_ = false;
  // Metaspace pre-tokenizer.
  bool metaspace_ = false, metaspace_split_ = false;
  std::string metaspace_scheme_ = "always";  // "always" | "first" | "never"
  std::vector<int> prefix_, suffix_;         // the post_processor template's special tokens
};

}  // namespace lipattn::text
