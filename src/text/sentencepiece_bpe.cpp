#include "text/sentencepiece_bpe.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "text/file_text.h"
#include "text/utf8.h"

namespace lipattn::text {

namespace {

using Json = nlohmann::json;
constexpr std::string_view kSpace = "\xE2\x96\x81";  // "▁", U+2581

std::string replace_spaces(std::string_view text) {
  std::string out;
  for (char ch : text) {
    if (ch == ' ') {
      out += kSpace;
    } else {
      out += ch;
    }
  }
  return out;
}

// The "a b" or ["a", "b"] form of one merge.
std::pair<std::string, std::string> merge_parts(const Json& m, const std::string& where) {
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const auto space = s.find(' ');
    if (space != std::string::npos && s.find(' ', space + 1) == std::string::npos)
      return {s.substr(0, space), s.substr(space + 1)};
  }
  throw InputError(fmt::format("{}: {} is not a merge (expected \"a b\" or [\"a\", \"b\"])", where, m.dump()));
}

}  // namespace

SentencePieceBpe::SentencePieceBpe(const std::filesystem::path& tokenizer_json) : path_(tokenizer_json) {
  load_checked(detail::read_text_file(tokenizer_json, "tokenizer.json"));
}

SentencePieceBpe SentencePieceBpe::from_text(const std::string& text, const std::filesystem::path& source) {
  SentencePieceBpe t;
  t.path_ = source;
  t.load_checked(text);
  return t;
}

void SentencePieceBpe::load_checked(const std::string& text) {
  try {
    load(text);
  } catch (const Json::exception& e) {  // a key of the wrong type or a missing special token
    throw InputError(fmt::format("{}: unexpected tokenizer.json content: {}", path_.string(), e.what()));
  }
}

int SentencePieceBpe::id(std::string_view piece) const {
  const auto it = vocab_.find(std::string(piece));
  return it == vocab_.end() ? -1 : it->second;
}

void SentencePieceBpe::load(const std::string& text) {
  const std::string file = path_.string();
  const Json json = Json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) throw InputError(fmt::format("{}: not valid JSON", file));
  auto fail = [&](const std::string& key, const std::string& what) {
    throw InputError(fmt::format("{}: \"{}\" {}", file, key, what));
  };
  const Json& model = json.value("model", Json());
  if (!model.is_object() || model.value("type", std::string()) != "BPE")
    fail("model.type", "must be \"BPE\" (lipattn reads SentencePiece-style BPE tokenizer.json files)");
  if (!model.contains("vocab") || !model.at("vocab").is_object()) fail("model.vocab", "must be an object");
  for (const auto& [piece, id] : model.at("vocab").items()) {
    const int value = token_id(id, "model.vocab." + piece);
    vocab_.emplace(piece, value);
    vocab_size_ = std::max(vocab_size_, value + 1);
  }
  for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model.at(key).is_null() && model.at(key) != Json(""))
      fail(std::string("model.") + key, "is not supported (only null)");
  byte_fallback_ = model.value("byte_fallback", false);
  fuse_unk_ = model.value("fuse_unk", false);
  ignore_merges_ = model.value("ignore_merges", false);
  if (model.contains("unk_token") && model.at("unk_token").is_string())
    unk_id_ = id(model.at("unk_token").get<std::string>());
  int rank = 0;
  for (const auto& m : model.value("merges", Json::array())) {
    const auto [left, right] = merge_parts(m, file + " \"model.merges\"");
    const int l = id(left), r = id(right), merged = id(left + right);
    if (l < 0 || r < 0 || merged < 0)
      fail("model.merges", fmt::format("merge \"{} {}\" names a token the vocab lacks", left, right));
    merges_.try_emplace(detail::bpe_pair_key(l, r), detail::BpeMerge{rank++, merged});
  }
  for (const auto& t : json.value("added_tokens", Json::array())) {
    if (!t.contains("id") || !t.contains("content")) fail("added_tokens", "entries need \"id\" and \"content\"");
    const int value = token_id(t.at("id"), "added_tokens");
    added_.emplace_back(t.at("content").get<std::string>(), value);
    vocab_size_ = std::max(vocab_size_, value + 1);
  }
  std::sort(added_.begin(), added_.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  load_normalizer(json.value("normalizer", Json()));
  load_pre_tokenizer(json.value("pre_tokenizer", Json()));
  load_post_processor(json.value("post_processor", Json()));
}

int SentencePieceBpe::token_id(const Json& value, const std::string& key) const {
  // 0 ≤ id < 2^31 − 1, so that id + 1 (a vocabulary size) is an int too.
  constexpr std::int64_t kLimit = std::numeric_limits<std::int32_t>::max() - 1;
  if (!value.is_number_integer() || (value.is_number_unsigned() && value.get<std::uint64_t>() > kLimit) ||
      value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > kLimit)
    throw InputError(fmt::format("{}: \"{}\" must be a token id in 0..{}, found {}", path_.string(), key, kLimit,
                                 value.dump()));
  return static_cast<int>(value.get<std::int64_t>());
}

void SentencePieceBpe::load_normalizer(const Json& n) {
  if (n.is_null()) return;
  const std::string type = n.value("type", std::string());
  if (type == "Sequence") {
    for (const auto& step : n.value("normalizers", Json::array())) load_normalizer(step);
  } else if (type == "Prepend" && n.value("prepend", std::string()) == kSpace) {
    normalizer_prepend_ = true;
  } else if (type == "Replace" && n.value("pattern", Json()).value("String", std::string()) == " " &&
             n.value("content", std::string()) == kSpace) {
    normalizer_replace_ = true;
  } else {
    throw InputError(
        fmt::format("{}: normalizer {} is not supported (lipattn reads Prepend(\"▁\") and "
                    "Replace(\" \", \"▁\"), the SentencePiece form)",
                    path_.string(), n.dump()));
  }
}

void SentencePieceBpe::load_pre_tokenizer(const Json& p) {
  if (p.is_null()) return;
  const std::string type = p.value("type", std::string());
  if (type == "Sequence" && p.value("pretokenizers", Json::array()).size() == 1) {
    load_pre_tokenizer(p.at("pretokenizers")[0]);
    return;
  }
  if (type != "Metaspace" || p.value("replacement", std::string(kSpace)) != kSpace)
    throw InputError(
        fmt::format("{}: pre_tokenizer {} is not supported (lipattn reads Metaspace with \"▁\"; "
                    "byte-level BPE tokenizers are not SentencePiece BPE)",
                    path_.string(), p.dump()));
  metaspace_ = true;
  metaspace_split_ = p.value("split", true);
  if (p.contains("prepend_scheme")) {
    metaspace_scheme_ = p.at("prepend_scheme").get<std::string>();
  } else {
    metaspace_scheme_ = p.value("add_prefix_space", true) ? "always" : "never";
  }
}

void SentencePieceBpe::load_post_processor(const Json& p) {
  if (p.is_null()) return;
  if (p.value("type", std::string()) != "TemplateProcessing")
    throw InputError(fmt::format("{}: post_processor of type \"{}\" is not supported (only TemplateProcessing)",
                                 path_.string(), p.value("type", std::string())));
  bool seen_text = false;
  for (const auto& item : p.value("single", Json::array())) {
    if (item.contains("Sequence")) {
      seen_text = true;
      continue;
    }
    const std::string name = item.at("SpecialToken").at("id").get<std::string>();
    const Json& special = p.at("special_tokens").at(name);
    for (const auto& i : special.at("ids")) {
      const int value = token_id(i, "post_processor.special_tokens." + name);
      if (value >= vocab_size_)
        throw InputError(fmt::format("{}: \"post_processor.special_tokens.{}\" id {} is outside the vocabulary of {}",
                                     path_.string(), name, value, vocab_size_));
      (seen_text ? suffix_ : prefix_).push_back(value);
    }
  }
}

std::vector<int> SentencePieceBpe::encode(std::string_view utf8, bool special, std::string_view what) const {
  detail::require_valid_utf8(utf8, what);
  std::vector<int> out;
  if (special) out = prefix_;
  // Added tokens are cut out of the raw text first (the longest at the leftmost place), as the
  // tokenizers library does; the text between them is encoded segment by segment.
  std::size_t start = 0, pos = 0;
  bool first = true;
  while (pos < utf8.size()) {
    const auto hit = std::find_if(added_.begin(), added_.end(), [&](const auto& a) {
      return !a.first.empty() && utf8.substr(pos).starts_with(a.first);
    });
    if (hit == added_.end()) {
      ++pos;
      continue;
    }
    if (pos > start) encode_segment(utf8.substr(start, pos - start), first, out);
    first = false;
    out.push_back(hit->second);
    pos += hit->first.size();
    start = pos;
  }
  if (pos > start) encode_segment(utf8.substr(start, pos - start), first, out);
  if (special) out.insert(out.end(), suffix_.begin(), suffix_.end());
  return out;
}

// Normalizer, then Metaspace (docs/formats.md): the words the BPE model sees.
void SentencePieceBpe::encode_segment(std::string_view text, bool first, std::vector<int>& out) const {
  std::string s(text);
  if (normalizer_prepend_ && !s.empty()) s = std::string(kSpace) + s;
  if (normalizer_replace_ || metaspace_) s = replace_spaces(s);
  if (metaspace_) {
    const bool prepend = metaspace_scheme_ == "always" || (metaspace_scheme_ == "first" && first);
    if (prepend && !s.starts_with(kSpace)) s = std::string(kSpace) + s;
  }
  if (!metaspace_ || !metaspace_split_) {
    encode_word(s, out);
    return;
  }
  // Metaspace's split: each "▁" starts a new word.
  std::size_t begin = 0;
  for (std::size_t i = kSpace.size(); i <= s.size(); ++i) {
    if (i == s.size() || std::string_view(s).substr(i).starts_with(kSpace)) {
      encode_word(std::string_view(s).substr(begin, i - begin), out);
      begin = i;
    }
  }
}

void SentencePieceBpe::encode_word(std::string_view word, std::vector<int>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const int whole = id(word); whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  std::vector<int> symbols;
  std::size_t pos = 0;
  while (pos < word.size()) {
    const std::size_t begin = pos;
    detail::next_code_point(word, pos);
    const std::string_view ch = word.substr(begin, pos - begin);
    if (const int found = id(ch); found >= 0) {
      symbols.push_back(found);
      continue;
    }
    std::vector<int> bytes;
    for (unsigned char b : ch) bytes.push_back(byte_fallback_ ? id(fmt::format("<0x{:02X}>", b)) : -1);
    if (std::find(bytes.begin(), bytes.end(), -1) == bytes.end()) {
      symbols.insert(symbols.end(), bytes.begin(), bytes.end());
    } else if (unk_id_ >= 0) {
      if (!(fuse_unk_ && !symbols.empty() && symbols.back() == unk_id_)) symbols.push_back(unk_id_);
    } else {
      throw InputError(fmt::format("{}: the character '{}' has no token, no byte fallback and there is no unk_token",
                                   path_.string(), ch));
    }
  }
  const std::vector<int> merged = detail::apply_bpe_merges(std::move(symbols), merges_);
  out.insert(out.end(), merged.begin(), merged.end());
}

}  // namespace lipattn::text
