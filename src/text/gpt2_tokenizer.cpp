#include "text/gpt2_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "text/bpe.h"
#include "text/file_text.h"
#include "text/utf8.h"

namespace lipattn::text {
namespace {

// GPT-2's pre-tokeniser (OpenAI's encoder.py): contractions, letter runs, digit runs, other symbol
// runs (each optionally led by one space), and whitespace. `\s+(?!\S)` leaves the last space of a
// run to lead the next word, so " world" stays one piece. Needs PCRE2_UCP so \p{L}, \p{N} and \s
// follow Unicode properties as Python's `regex` module does.
constexpr std::string_view kPretokenPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kEndOfText = "<|endoftext|>";

// GPT-2's bytes_to_unicode(): bytes that are printable Latin-1 (!..~, ¡..¬, ®..ÿ) stand for
// themselves; the other 68 bytes get U+0100 + k in byte order, so every token is printable text.
std::array<UChar32, 256> byte_to_unicode_table() {
  std::array<UChar32, 256> table{};
  int next_extra = 0;
  for (int byte = 0; byte < 256; ++byte) {
    const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
                           (byte >= 0xAE && byte <= 0xFF);
    table[static_cast<std::size_t>(byte)] = printable ? byte : 256 + next_extra++;
  }
  return table;
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct Gpt2Tokenizer::Impl {
  std::vector<std::string> tokens;       // byte-level form, as in vocab.json
  std::vector<std::string> token_bytes;  // the bytes each token stands for
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> token_ids;
  std::array<int, 256> byte_ids{};       // id of the one-character token of each byte
  detail::BpeMerges merges;
  int end_of_text = -1;

  const pcre2_code* pretoken_regex = nullptr;  // shared by every tokenizer (compiled_pretoken_pattern)

  // Pre-token bytes -> ids. Words repeat a lot in text, so caching skips most BPE work.
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int>, StringHash, std::equal_to<>> cache;


  void load_vocab(std::string_view content, const std::string& source);
  void load_merges(std::string_view content, const std::string& source);
  void compile_regex();
  void encode_segment(std::string_view segment, std::vector<int>& out) const;
  void bpe(std::string_view piece, std::vector<int>& out) const;
};

void Gpt2Tokenizer::Impl::load_vocab(std::string_view content, const std::string& source) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(content);
  } catch (const nlohmann::json::parse_error& error) {
    throw InputError(fmt::format("{}:{}: not valid JSON, expected GPT-2's vocab.json ({})",
                                 source, detail::line_of_byte(content, error.byte), error.what()));
  } catch (const nlohmann::json::exception& error) {  // e.g. out_of_range: a number too large for a double
    throw InputError(fmt::format("{}: not valid JSON, expected GPT-2's vocab.json ({})", source, error.what()));
  }
  if (!json.is_object() || json.empty()) {
    throw InputError(fmt::format(
        "{}: expected a non-empty JSON object mapping tokens to ids (GPT-2's vocab.json)", source));
  }
  const std::size_t size = json.size();
  tokens.assign(size, std::string());
  std::vector<bool> seen(size, false);
  for (const auto& [token, value] : json.items()) {
    if (!value.is_number_integer()) {
      throw InputError(fmt::format("{}: token \"{}\" maps to {}, expected an integer id", source,
                                   token, value.dump()));
    }
    const auto id = value.get<std::int64_t>();
    if (id < 0 || static_cast<std::size_t>(id) >= size || seen[static_cast<std::size_t>(id)]) {
      throw InputError(fmt::format(
          "{}: token \"{}\" has id {}; expected the {} ids to be 0..{}, each used once", source,
          token, id, size, size - 1));
    }
    seen[static_cast<std::size_t>(id)] = true;
    tokens[static_cast<std::size_t>(id)] = token;
  }

  std::array<int, 324> unicode_to_byte{};
  unicode_to_byte.fill(-1);
  const auto byte_to_unicode = byte_to_unicode_table();
  for (int byte = 0; byte < 256; ++byte) {
    unicode_to_byte[static_cast<std::size_t>(byte_to_unicode[static_cast<std::size_t>(byte)])] = byte;
  }

  token_bytes.assign(size, std::string());
  token_ids.reserve(size);
  for (std::size_t id = 0; id < size; ++id) {
    const std::string& token = tokens[id];
    std::string& bytes = token_bytes[id];
    std::size_t pos = 0;
    while (pos < token.size()) {
      const UChar32 c = detail::next_code_point(token, pos);
      if (c < 0 || c >= static_cast<UChar32>(unicode_to_byte.size()) ||
          unicode_to_byte[static_cast<std::size_t>(c)] < 0) {
        throw InputError(fmt::format(
            "{}: token \"{}\" (id {}) contains U+{:04X}, which is not one of the 256 characters of "
            "GPT-2's byte-to-unicode table; expected a byte-level BPE vocabulary",
            source, token, id, static_cast<std::uint32_t>(c)));
      }
      bytes.push_back(static_cast<char>(unicode_to_byte[static_cast<std::size_t>(c)]));
    }
    token_ids.emplace(token, static_cast<int>(id));
  }

  for (int byte = 0; byte < 256; ++byte) {
    std::string character;
    detail::append_utf8(character, byte_to_unicode[static_cast<std::size_t>(byte)]);
    const auto found = token_ids.find(character);
    if (found == token_ids.end()) {
      throw InputError(fmt::format(
          "{}: no token for byte 0x{:02X} (\"{}\"); a byte-level BPE vocabulary needs all 256",
          source, byte, character));
    }
    byte_ids[static_cast<std::size_t>(byte)] = found->second;
  }
  if (const auto found = token_ids.find(kEndOfText); found != token_ids.end()) end_of_text = found->second;
}

void Gpt2Tokenizer::Impl::load_merges(std::string_view content, const std::string& source) {
  std::istringstream stream{std::string(content)};
  std::string line;
  std::size_t line_number = 0;
  int rank = 0;
  while (std::getline(stream, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_number == 1 && line.starts_with("#version")) continue;
    if (line.empty()) continue;
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      throw InputError(fmt::format(
          "{}:{}: \"{}\" is not a merge; expected two tokens separated by one space", source,
          line_number, line));
    }
    const std::string_view left(line.data(), space);
    const std::string_view right(line.data() + space + 1, line.size() - space - 1);
    const std::string merged = std::string(left) + std::string(right);
    const auto left_id = token_ids.find(left);
    const auto right_id = token_ids.find(right);
    const auto merged_id = token_ids.find(merged);
    for (const auto& [name, found] : {std::pair{std::string(left), left_id},
                                      std::pair{std::string(right), right_id},
                                      std::pair{merged, merged_id}}) {
      if (found == token_ids.end()) {
        throw InputError(fmt::format("{}:{}: merge \"{}\" needs the token \"{}\", which vocab.json lacks",
                                     source, line_number, line, name));
      }
    }
    // A repeated pair keeps its first (highest-priority) rank.
    merges.try_emplace(detail::bpe_pair_key(left_id->second, right_id->second),
                       detail::BpeMerge{rank, merged_id->second});
    ++rank;
  }
}

namespace {

// The pattern is a constant, so it is compiled (and JIT-compiled) once per process rather than per
// tokenizer; a compiled PCRE2 pattern may be shared by threads, each match having its own match data.
// It lives as long as the process (a static, so leak checkers see it reachable).
const pcre2_code* compiled_pretoken_pattern() {
  static const pcre2_code* const pattern = [] {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPretokenPattern.data()), kPretokenPattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof message);
      throw std::runtime_error(fmt::format("GPT-2 pre-tokeniser pattern does not compile at {}: {}", error_offset,
                                           reinterpret_cast<const char*>(message)));
    }
    // JIT makes the pre-tokeniser several times faster; without JIT support PCRE2 interprets instead.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return code;
  }();
  return pattern;
}

}  // namespace

void Gpt2Tokenizer::Impl::compile_regex() { pretoken_regex = compiled_pretoken_pattern(); }

void Gpt2Tokenizer::Impl::encode_segment(std::string_view segment, std::vector<int>& out) const {
  if (segment.empty()) return;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(pretoken_regex, nullptr), &pcre2_match_data_free);
  if (!match) throw std::bad_alloc();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(segment.data());
  std::size_t offset = 0;
  while (offset < segment.size()) {
    // The caller validated the UTF-8 once; without NO_UTF_CHECK PCRE2 would re-check the rest of the
    // subject on every call, which is quadratic in the text length.
    const int rc = pcre2_match(pretoken_regex, subject, segment.size(), offset, PCRE2_NO_UTF_CHECK,
                               match.get(), nullptr);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    // Every character belongs to one alternative, so a match starts at `offset` and is non-empty;
    // anything else would drop bytes, so it is an error rather than a skip.
    if (rc < 0 || ovector[0] != offset || ovector[1] <= offset) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      throw std::runtime_error(fmt::format("GPT-2 pre-tokeniser failed at byte {} (pcre2 code {}: {})",
                                           offset, rc, reinterpret_cast<const char*>(message)));
    }
    bpe(segment.substr(offset, ovector[1] - offset), out);
    offset = ovector[1];
  }
}

void Gpt2Tokenizer::Impl::bpe(std::string_view piece, std::vector<int>& out) const {
  constexpr std::size_t kMaxCachedPieceBytes = 64;
  constexpr std::size_t kMaxCacheEntries = 1u << 18;
  const bool cacheable = piece.size() <= kMaxCachedPieceBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    if (const auto found = cache.find(piece); found != cache.end()) {
      out.insert(out.end(), found->second.begin(), found->second.end());
      return;
    }
  }

  std::vector<int> symbols(piece.size());
  for (std::size_t i = 0; i < piece.size(); ++i) symbols[i] = byte_ids[static_cast<unsigned char>(piece[i])];
  std::vector<int> result = detail::apply_bpe_merges(std::move(symbols), merges);
  out.insert(out.end(), result.begin(), result.end());
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();  // bound memory on huge, varied corpora
    cache.emplace(std::string(piece), std::move(result));
  }
}

Gpt2Tokenizer::Gpt2Tokenizer() : impl_(std::make_unique<Impl>()) {}

Gpt2Tokenizer::Gpt2Tokenizer(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt)
    : Gpt2Tokenizer(from_text(detail::read_text_file(vocab_json, "GPT-2 vocab.json"),
                              detail::read_text_file(merges_txt, "GPT-2 merges.txt"), vocab_json.string(),
                              merges_txt.string())) {}

Gpt2Tokenizer Gpt2Tokenizer::from_text(std::string_view vocab_json, std::string_view merges_txt,
                                       const std::string& vocab_source, const std::string& merges_source) {
  Gpt2Tokenizer t;
  t.impl_->load_vocab(vocab_json, vocab_source);
  t.impl_->load_merges(merges_txt, merges_source);
  t.impl_->compile_regex();
  return t;
}

Gpt2Tokenizer::~Gpt2Tokenizer() = default;
Gpt2Tokenizer::Gpt2Tokenizer(Gpt2Tokenizer&&) noexcept = default;
Gpt2Tokenizer& Gpt2Tokenizer::operator=(Gpt2Tokenizer&&) noexcept = default;

std::vector<int> Gpt2Tokenizer::encode(std::string_view utf8, std::string_view what) const {
  detail::require_valid_utf8(utf8, what);
  std::vector<int> ids;
  ids.reserve(utf8.size() / 3 + 1);
  std::size_t position = 0;
  while (true) {
    // Hugging Face splits added special tokens out before pre-tokenising; the pieces between them
    // are ordinary text. Splitting at ASCII "<|endoftext|>" keeps each piece valid UTF-8.
    const std::size_t special =
        impl_->end_of_text >= 0 ? utf8.find(kEndOfText, position) : std::string_view::npos;
    impl_->encode_segment(utf8.substr(position, special == std::string_view::npos ? std::string_view::npos
                                                                                  : special - position),
                          ids);
    if (special == std::string_view::npos) break;
    ids.push_back(impl_->end_of_text);
    position = special + kEndOfText.size();
  }
  return ids;
}

std::string Gpt2Tokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  for (const int id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw InputError(fmt::format("GPT-2 decode: token id {} is outside the vocabulary (0..{})", id,
                                   vocab_size() - 1));
    }
    text += impl_->token_bytes[static_cast<std::size_t>(id)];
  }
  return text;
}

const std::string& Gpt2Tokenizer::token(int id) const {
  if (id < 0 || id >= vocab_size()) {
    throw InputError(fmt::format("GPT-2: token id {} is outside the vocabulary (0..{})", id, vocab_size() - 1));
  }
  return impl_->tokens[static_cast<std::size_t>(id)];
}

std::optional<int> Gpt2Tokenizer::id(std::string_view token) const {
  const auto found = impl_->token_ids.find(token);
  if (found == impl_->token_ids.end()) return std::nullopt;
  return found->second;
}

int Gpt2Tokenizer::vocab_size() const { return static_cast<int>(impl_->tokens.size()); }

int Gpt2Tokenizer::end_of_text_id() const { return impl_->end_of_text; }

}  // namespace lipattn::text
