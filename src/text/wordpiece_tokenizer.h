// BERT WordPiece, loaded from a vocab.txt (one token per line, id = line number - 1), reproducing
// Hugging Face's BertTokenizer: BasicTokenizer (clean, CJK split, lower-case + strip accents, split on
// whitespace and punctuation) followed by greedy longest-match-first WordPiece with "##" continuations.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lipattn::text {

class WordPieceTokenizer {
 public:
  // `lowercase`: true for uncased models (lower-case and strip accents), false for cased ones.
  // Throws lipattn::InputError naming the file (and line) if it is missing, not UTF-8, or lacks [UNK].
  explicit WordPieceTokenizer(const std::filesystem::path& vocab_txt, bool lowercase = true);
  // The same loader on a vocab.txt held in memory; `source` names it in errors.
  static WordPieceTokenizer from_text(std::string_view vocab_txt, bool lowercase = true,
                                      const std::string& source = "vocab.txt");
  ~WordPieceTokenizer();
  WordPieceTokenizer(WordPieceTokenizer&&) noexcept;
  WordPieceTokenizer& operator=(WordPieceTokenizer&&) noexcept;

  // Ids of `utf8`; with add_special_tokens, [CLS] ... [SEP]. Special tokens written literally in the
  // text ("[SEP]", "[MASK]", ...) become their single id, as in Hugging Face. Invalid UTF-8 throws
  // InputError naming `what` and the byte offset.
  std::vector<int> encode(std::string_view utf8, bool add_special_tokens = false,
                          std::string_view what = "text") const;
  // The WordPiece strings of encode(utf8) (e.g. "hello", "##s").
  std::vector<std::string> tokenize(std::string_view utf8, std::string_view what = "text") const;

  // Tokens joined by single spaces, "##" pieces glued to the one before; special tokens are kept.
  // Lower-casing, accent stripping and dropped spacing are not undone. Bad ids throw InputError.
  std::string decode(const std::vector<int>& ids) const;

  const std::string& token(int id) const;
  // The id of `token`, or the [UNK] id if the vocabulary lacks it (as convert_tokens_to_ids does).
  int id(std::string_view token) const;
  std::optional<int> find(std::string_view token) const;
  int vocab_size() const;
  bool lowercase() const;

  int unk_id() const;
  // -1 when the vocabulary has no such entry.
  int cls_id() const;
  int sep_id() const;
  int pad_id() const;
  int mask_id() const;

 private:
  WordPieceTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lipattn::text
