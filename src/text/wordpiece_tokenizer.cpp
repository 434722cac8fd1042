#include "text/wordpiece_tokenizer.h"

#include <array>
#include <functional>
#include <unordered_map>

#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "common/error.h"
#include "text/file_text.h"
#include "text/utf8.h"

namespace lipattn::text {
namespace {

// BERT's limit: words longer than this many characters become [UNK] without being split.
constexpr std::size_t kMaxCharsPerWord = 100;
constexpr std::array<std::string_view, 5> kSpecialTokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

bool in_category(UChar32 c, std::uint32_t mask) { return (U_GET_GC_MASK(c) & mask) != 0; }

// HF _is_control: categories C* (Cc, Cf, Cn, Co, Cs), except tab, newline and carriage return,
// which BERT treats as whitespace.
bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return in_category(c, U_GC_C_MASK);
}

// HF _is_whitespace: space, tab, newline, carriage return, and category Zs.
bool is_clean_whitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || in_category(c, U_GC_ZS_MASK);
}

// HF _is_punctuation: all non-letter/number ASCII symbols count (so "$", "^", "`" split off even
// though Unicode files them under S*), plus every Unicode P* category.
bool is_punctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
    return true;
  }
  return in_category(c, U_GC_P_MASK);
}

// HF _is_chinese_char. These are BERT's own choice of blocks (the CJK Unified Ideographs and their
// extensions and compatibility blocks), not a Unicode property: Han characters outside them (e.g.
// radicals, U+3005) and Hangul/kana are deliberately left to the ordinary rules, so ICU's Han script
// would not reproduce BERT.
bool is_bert_cjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace

struct WordPieceTokenizer::Impl {
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> token_ids;
  bool lowercase = true;
  int unk = -1, cls = -1, sep = -1, pad = -1, mask = -1;
  std::vector<std::pair<std::string_view, int>> specials;  // those of kSpecialTokens in the vocab
  const icu::Normalizer2* nfd = nullptr;

  int lookup(std::string_view token) const {
    const auto found = token_ids.find(token);
    return found == token_ids.end() ? -1 : found->second;
  }

  // BasicTokenizer on text without special tokens: appends the words (UTF-8) to `words`.
  void basic_tokenize(std::string_view text, std::vector<std::string>& words) const;
  // Lower-case/strip accents (if asked) and split on punctuation; appends the pieces.
  void finish_word(const std::string& word, bool ascii, std::vector<std::string>& words) const;
  void wordpiece(const std::string& word, std::vector<int>& ids) const;
  void encode_text(std::string_view text, std::size_t base_offset, std::string_view what,
                   std::vector<int>& ids) const;
};

void WordPieceTokenizer::Impl::finish_word(const std::string& word, bool ascii,
                                           std::vector<std::string>& words) const {
  if (word.empty()) return;
  std::string piece;
  const auto flush = [&] {
    if (!piece.empty()) words.push_back(std::move(piece));
    piece.clear();
  };
  if (ascii) {
    // ASCII fast path: lower-casing is the ASCII map and NFD changes nothing, exactly as ICU would do.
    for (const char ch : word) {
      if (is_punctuation(static_cast<unsigned char>(ch))) {
        flush();
        words.emplace_back(1, ch);
      } else {
        piece.push_back(lowercase && ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
      }
    }
    flush();
    return;
  }
  icu::UnicodeString text = icu::UnicodeString::fromUTF8(icu::StringPiece(word.data(), static_cast<int32_t>(word.size())));
  if (lowercase) {
    // Full Unicode lower-casing (root locale), like Python's str.lower(); then NFD so accents become
    // separate combining marks (Mn), which BERT drops: "café" -> "cafe".
    text.toLower(icu::Locale::getRoot());
    UErrorCode status = U_ZERO_ERROR;
    icu::UnicodeString decomposed = nfd->normalize(text, status);
    if (U_FAILURE(status)) throw std::runtime_error(fmt::format("ICU NFD failed: {}", u_errorName(status)));
    text = std::move(decomposed);
  }
  for (int32_t i = 0; i < text.length(); i = text.moveIndex32(i, 1)) {
    const UChar32 c = text.char32At(i);
    if (lowercase && u_charType(c) == U_NON_SPACING_MARK) continue;
    if (is_punctuation(c)) {
      flush();
      std::string single;
      detail::append_utf8(single, c);
      words.push_back(std::move(single));
    } else {
      detail::append_utf8(piece, c);
    }
  }
  flush();
}

void WordPieceTokenizer::Impl::basic_tokenize(std::string_view text, std::vector<std::string>& words) const {
  std::string word;
  bool ascii = true;
  const auto flush = [&] {
    finish_word(word, ascii, words);
    word.clear();
    ascii = true;
  };
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    const UChar32 c = detail::next_code_point(text, pos);
    // Clean: drop NUL, U+FFFD and control characters; whitespace ends a word. After cleaning, HF
    // splits on Python's str.split() whitespace, which also covers U+2028/U+2029 (White_Space).
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_clean_whitespace(c) || u_isUWhiteSpace(c)) {
      flush();
      continue;
    }
    if (is_bert_cjk(c)) {  // each CJK ideograph is a word of its own
      flush();
      word.assign(text.substr(start, pos - start));
      ascii = false;
      flush();
      continue;
    }
    word.append(text.substr(start, pos - start));
    ascii = ascii && c < 0x80;
  }
  flush();
}

void WordPieceTokenizer::Impl::wordpiece(const std::string& word, std::vector<int>& ids) const {
  std::vector<std::size_t> boundaries;  // byte offset of each character, then the end
  for (std::size_t pos = 0; pos < word.size();) {
    boundaries.push_back(pos);
    detail::next_code_point(word, pos);
  }
  boundaries.push_back(word.size());
  const std::size_t chars = boundaries.size() - 1;
  if (chars > kMaxCharsPerWord) {
    ids.push_back(unk);
    return;
  }
  // Greedy longest-match-first: from each start, take the longest vocabulary entry ("##"-prefixed
  // after the first piece); if some start has no match at all, the whole word is [UNK].
  const std::size_t first_new = ids.size();
  std::string candidate;
  std::size_t start = 0;
  while (start < chars) {
    int found = -1;
    std::size_t end = chars;
    for (; end > start; --end) {
      candidate.assign(start > 0 ? "##" : "");
      candidate.append(word, boundaries[start], boundaries[end] - boundaries[start]);
      found = lookup(candidate);
      if (found >= 0) break;
    }
    if (found < 0) {
      ids.resize(first_new);
      ids.push_back(unk);
      return;
    }
    ids.push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::Impl::encode_text(std::string_view text, std::size_t base_offset,
                                           std::string_view what, std::vector<int>& ids) const {
  detail::require_valid_utf8(text, what, base_offset);
  std::vector<std::string> words;
  basic_tokenize(text, words);
  for (const std::string& word : words) wordpiece(word, ids);
}

WordPieceTokenizer::WordPieceTokenizer() : impl_(std::make_unique<Impl>()) {}

WordPieceTokenizer::WordPieceTokenizer(const std::filesystem::path& vocab_txt, bool lowercase)
    : WordPieceTokenizer(from_text(detail::read_text_file(vocab_txt, "BERT vocab.txt"), lowercase,
                                   vocab_txt.string())) {}

WordPieceTokenizer WordPieceTokenizer::from_text(std::string_view content, bool lowercase, const std::string& source) {
  WordPieceTokenizer t;
  Impl& impl = *t.impl_;
  impl.lowercase = lowercase;
  std::size_t line_start = 0;
  while (line_start < content.size()) {
    std::size_t line_end = content.find('\n', line_start);
    if (line_end == std::string::npos) line_end = content.size();
    std::string line(content.substr(line_start, line_end - line_start));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t line_number = impl.tokens.size() + 1;
    detail::require_valid_utf8(line, fmt::format("{}:{}", source, line_number));
    // A repeated token maps to its last line, as in HF's load_vocab; every line keeps its id.
    impl.token_ids.insert_or_assign(line, static_cast<int>(impl.tokens.size()));
    impl.tokens.push_back(std::move(line));
    line_start = line_end + 1;
  }
  impl.unk = impl.lookup("[UNK]");
  if (impl.unk < 0) {
    throw InputError(fmt::format("{}: no [UNK] line ({} lines read); a WordPiece vocab.txt needs [UNK] "
                                 "for words it cannot split",
                                 source, impl.tokens.size()));
  }
  impl.cls = impl.lookup("[CLS]");
  impl.sep = impl.lookup("[SEP]");
  impl.pad = impl.lookup("[PAD]");
  impl.mask = impl.lookup("[MASK]");
  for (const std::string_view special : kSpecialTokens) {
    if (const int id = impl.lookup(special); id >= 0) impl.specials.emplace_back(special, id);
  }
  UErrorCode status = U_ZERO_ERROR;
  impl.nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status)) throw std::runtime_error(fmt::format("ICU NFD unavailable: {}", u_errorName(status)));
  return t;
}

WordPieceTokenizer::~WordPieceTokenizer() = default;
WordPieceTokenizer::WordPieceTokenizer(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer& WordPieceTokenizer::operator=(WordPieceTokenizer&&) noexcept = default;

std::vector<int> WordPieceTokenizer::encode(std::string_view utf8, bool add_special_tokens,
                                            std::string_view what) const {
  const Impl& impl = *impl_;
  std::vector<int> ids;
  ids.reserve(utf8.size() / 4 + 2);
  if (add_special_tokens) {
    if (impl.cls < 0 || impl.sep < 0) {
      throw InputError("WordPiece: the vocabulary has no [CLS] or no [SEP], so special tokens cannot be added");
    }
    ids.push_back(impl.cls);
  }
  // Special tokens written in the text are split out first and kept whole (HF does the same for its
  // added tokens); the text between them goes through the BasicTokenizer.
  std::size_t position = 0;
  while (position <= utf8.size()) {
    std::size_t next = std::string_view::npos;
    int next_id = -1;
    std::size_t next_length = 0;
    for (const auto& [special, id] : impl.specials) {
      const std::size_t at = utf8.find(special, position);
      if (at < next) {
        next = at;
        next_id = id;
        next_length = special.size();
      }
    }
    const std::size_t end = next == std::string_view::npos ? utf8.size() : next;
    impl.encode_text(utf8.substr(position, end - position), position, what, ids);
    if (next == std::string_view::npos) break;
    ids.push_back(next_id);
    position = next + next_length;
  }
  if (add_special_tokens) ids.push_back(impl.sep);
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view utf8, std::string_view what) const {
  std::vector<std::string> pieces;
  for (const int id : encode(utf8, false, what)) pieces.push_back(token(id));
  return pieces;
}

std::string WordPieceTokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  for (const int id : ids) {
    const std::string& piece = token(id);
    if (piece.starts_with("##") && !text.empty()) {
      text.append(piece, 2);
    } else {
      if (!text.empty()) text.push_back(' ');
      text += piece;
    }
  }
  return text;
}

const std::string& WordPieceTokenizer::token(int id) const {
  if (id < 0 || id >= vocab_size()) {
    throw InputError(fmt::format("WordPiece: token id {} is outside the vocabulary (0..{})", id, vocab_size() - 1));
  }
  return impl_->tokens[static_cast<std::size_t>(id)];
}

int WordPieceTokenizer::id(std::string_view token) const {
  const int found = impl_->lookup(token);
  return found >= 0 ? found : impl_->unk;
}

std::optional<int> WordPieceTokenizer::find(std::string_view token) const {
  const int found = impl_->lookup(token);
  if (found < 0) return std::nullopt;
  return found;
}

int WordPieceTokenizer::vocab_size() const { return static_cast<int>(impl_->tokens.size()); }
bool WordPieceTokenizer::lowercase() const { return impl_->lowercase; }
int WordPieceTokenizer::unk_id() const { return impl_->unk; }
int WordPieceTokenizer::cls_id() const { return impl_->cls; }
int WordPieceTokenizer::sep_id() const { return impl_->sep; }
int WordPieceTokenizer::pad_id() const { return impl_->pad; }
int WordPieceTokenizer::mask_id() const { return impl_->mask; }

}  // namespace lipattn::text
