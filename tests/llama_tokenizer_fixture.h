// A Hugging Face tokenizer.json made from llama2.c's tok512.bin by the tests' own code, as
// transformers' SentencePiece converter would make it: the same pieces with " " as "▁", ids 0-2 as
// the special <unk> <s> </s>, byte fallback <0xXX>, and merges derived from the vocabulary (every
// split of a piece into two pieces, ordered by the merged piece's score, i.e. its id here).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llama_fixture {

struct TokenizerBin {
  std::vector<std::string> pieces;
  std::vector<float> scores;
};

inline TokenizerBin read_tokenizer_bin(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TokenizerBin t;
  std::size_t offset = 4;
  while (offset < bytes.size()) {
    float score;
    std::int32_t length;
    std::memcpy(&score, bytes.data() + offset, 4);
    std::memcpy(&length, bytes.data() + offset + 4, 4);
    offset += 8;
    t.pieces.push_back(bytes.substr(offset, length));
    t.scores.push_back(score);
    offset += length;
  }
  return t;
}

inline std::string to_metaspace(const std::string& piece) {
  std::string out;
  for (char ch : piece) out += ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
  return out;
}

// `form`: "normalizer" (Prepend + Replace, TinyLlama / LLaMA 2) or "metaspace" (pre_tokenizer
// Metaspace with prepend_scheme "first", newer exports).
inline nlohmann::json tokenizer_json(const TokenizerBin& bin, const std::string& form = "normalizer") {
  using Json = nlohmann::json;
  std::vector<std::string> pieces = bin.pieces;
  pieces[0] = "<unk>", pieces[1] = "<s>", pieces[2] = "</s>";
  Json vocab = Json::object();
  std::map<std::string, int> id;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (i >= 3) pieces[i] = to_metaspace(pieces[i]);
    vocab[pieces[i]] = static_cast<int>(i);
    id.emplace(pieces[i], static_cast<int>(i));
  }
  Json merges = Json::array();
  for (std::size_t m = 259; m < pieces.size(); ++m)  // scores fall with the id past the byte tokens
    for (std::size_t cut = 1; cut < pieces[m].size(); ++cut) {
      const std::string l = pieces[m].substr(0, cut), r = pieces[m].substr(cut);
      if (id.count(l) && id.count(r)) merges.push_back(l + " " + r);
    }
  Json added = Json::array();
  for (int i = 0; i < 3; ++i)
    added.push_back({{"id", i}, {"content", pieces[i]}, {"special", true}, {"normalized", false}});
  Json j{{"version", "1.0"}, {"added_tokens", added}};
  if (form == "normalizer") {
    j["normalizer"] = {{"type", "Sequence"},
                       {"normalizers",
                        {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                         {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
    j["pre_tokenizer"] = nullptr;
  } else {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {
        {"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}};
  }
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", Json::array()},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  j["model"] = {{"type", "BPE"},         {"dropout", nullptr}, {"unk_token", "<unk>"}, {"fuse_unk", true},
                {"byte_fallback", true}, {"vocab", vocab},     {"merges", merges}};
  return j;
}

inline std::filesystem::path write_tokenizer_json(const std::filesystem::path& path, const nlohmann::json& j) {
  std::ofstream(path) << j.dump();
  return path;
}

}  // namespace llama_fixture
