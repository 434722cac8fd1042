#include "text/llama2c_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>

#include <fmt/core.h>

#include "common/error.h"
#include "text/file_text.h"

namespace lipattn::text {

namespace {

template <class T>
T read_at(std::string_view bytes, std::size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

}  // namespace

Llama2cTokenizer::Llama2cTokenizer(const std::filesystem::path& path) : path_(path) {
  load(detail::read_text_file(path, "llama2.c tokenizer.bin"));
}

Llama2cTokenizer Llama2cTokenizer::from_bytes(std::string_view bytes, const std::filesystem::path& source) {
  Llama2cTokenizer t;
  t.path_ = source;
  t.load(bytes);
  return t;
}

void Llama2cTokenizer::load(std::string_view bytes) {
  const std::filesystem::path& path = path_;
  if (bytes.size() < 4) throw InputError(fmt::format("{}: too short for a llama2.c tokenizer.bin", path.string()));
  const auto max_length = read_at<std::int32_t>(bytes, 0);
  // Building the merge table splits every piece at every byte, which costs length² per piece: the
  // header's max_token_length is bounded so that a hostile file cannot make loading quadratic in its
  // size. SentencePiece pieces are at most 16 characters by default (512 at the trainer's limit), so
  // run.c's vocabularies have pieces of a few dozen bytes.
  constexpr std::int32_t kMaxTokenLength = 1024;
  if (max_length < 0 || max_length > kMaxTokenLength)
    throw InputError(fmt::format("{}: max_token_length {} at byte 0 must lie in 0..{}", path.string(), max_length,
                                 kMaxTokenLength));
  std::size_t offset = 4;
  while (offset < bytes.size()) {
    const std::size_t id = pieces_.size();
    if (bytes.size() - offset < 8)
      throw InputError(fmt::format("{}: token {} is truncated at byte {}", path.string(), id, offset));
    const auto score = read_at<float>(bytes, offset);
    const auto length = read_at<std::int32_t>(bytes, offset + 4);
    // Scores rank merges (an ordered map below): NaN has no rank.
    if (std::isnan(score))
      throw InputError(fmt::format("{}: token {} has score NaN at byte {}", path.string(), id, offset));
    offset += 8;
    if (length < 0 || length > max_length || static_cast<std::size_t>(length) > bytes.size() - offset)
      throw InputError(fmt::format("{}: token {} has length {} (max_token_length {}, {} bytes left)", path.string(), id,
                                   length, max_length, bytes.size() - offset));
    pieces_.emplace_back(bytes.substr(offset, static_cast<std::size_t>(length)));
    scores_.push_back(score);
    offset += static_cast<std::size_t>(length);
  }
  if (pieces_.size() < 259)
    throw InputError(fmt::format("{}: {} tokens; run.c needs at least 259 (<unk>, <s>, </s>, 256 bytes)", path.string(),
                                 pieces_.size()));
  for (std::size_t id = 0; id < pieces_.size(); ++id) ids_.emplace(pieces_[id], static_cast<int>(id));
  // Every pair of tokens whose concatenation is a token, ranked by the score of that token (higher
  // score first, equal scores equal rank): the merge loop then picks run.c's best pair.
  std::map<float, int, std::greater<>> rank_of_score;
  for (float s : scores_) rank_of_score.emplace(s, 0);
  int rank = 0;
  for (auto& [score, r] : rank_of_score) r = rank++;
  for (std::size_t id = 0; id < pieces_.size(); ++id) {
    const std::string& p = pieces_[id];
    for (std::size_t cut = 1; cut < p.size(); ++cut) {
      const int left = lookup(std::string_view(p).substr(0, cut));
      if (left < 0) continue;
      const int right = lookup(std::string_view(p).substr(cut));
      if (right >= 0)
        merges_.try_emplace(detail::bpe_pair_key(left, right),
                            detail::BpeMerge{rank_of_score.at(scores_[id]), lookup(p)});
    }
  }
}

int Llama2cTokenizer::lookup(std::string_view piece) const {
  const auto it = ids_.find(std::string(piece));
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int> Llama2cTokenizer::encode(std::string_view text, bool bos, bool eos) const {
  std::vector<int> symbols;
  if (bos) symbols.push_back(kBos);  // run.c scans BOS for pairs too (it never merges in practice)
  if (!text.empty()) {
    if (const int space = lookup(" "); space >= 0) symbols.push_back(space);
  }
  // run.c groups a byte with the continuation bytes (10xxxxxx) that follow it, up to 4 bytes.
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = i + 1;
    while (end < text.size() && end - i < 4 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    const int id = lookup(text.substr(i, end - i));
    if (id >= 0) {
      symbols.push_back(id);
    } else {
      for (std::size_t b = i; b < end; ++b) symbols.push_back(static_cast<unsigned char>(text[b]) + 3);
    }
    i = end;
  }
  std::vector<int> ids = detail::apply_bpe_merges(std::move(symbols), merges_);
  if (eos) ids.push_back(kEos);
  return ids;
}

std::string Llama2cTokenizer::decode(int prev, int token) const {
  if (token < 0 || token >= vocab_size())
    throw InputError(
        fmt::format("token id {} is outside the vocabulary of {} ids of {}", token, vocab_size(), path_.string()));
  std::string_view piece = pieces_[static_cast<std::size_t>(token)];
  if (prev == kBos && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  unsigned byte = 0;
  char tail = 0;
  if (piece.size() == 6 && std::sscanf(std::string(piece).c_str(), "<0x%02X%c", &byte, &tail) == 2 && tail == '>')
    return std::string(1, static_cast<char>(byte));
  return std::string(piece);
}

std::string Llama2cTokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == kBos || ids[i] == kEos) continue;
    out += decode(i > 0 ? ids[i - 1] : -1, ids[i]);
  }
  return out;
}

}  // namespace lipattn::text
