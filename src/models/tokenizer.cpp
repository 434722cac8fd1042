#include "models/tokenizer.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "text/gpt2_tokenizer.h"
#include "text/llama2c_tokenizer.h"
#include "text/sentencepiece_bpe.h"
#include "text/wordpiece_tokenizer.h"

namespace lipattn::models {

namespace fs = std::filesystem;

ModelTokenizer::~ModelTokenizer() = default;
ModelTokenizer::ModelTokenizer(ModelTokenizer&&) noexcept = default;
ModelTokenizer& ModelTokenizer::operator=(ModelTokenizer&&) noexcept = default;

namespace {
void require_file(const fs::path& path, const std::string& what) {
  if (!fs::exists(path))
    throw InputError(fmt::format("{}: the {} is missing; pass --tokenizer DIR with the model's tokenizer files",
                                 path.string(), what));
}
}  // namespace

namespace {

// A LLaMA-family tokenizer file: tokenizer.json is JSON, anything else is read as llama2.c's format.
fs::path llama_tokenizer_file(const fs::path& given) {
  std::error_code ec;
  if (!fs::is_directory(given, ec)) {
    if (!fs::exists(given, ec))
      throw InputError(fmt::format("{}: no such tokenizer file (expected tokenizer.json or a llama2.c tokenizer.bin)",
                                   given.string()),
                       "tokenizer");
    return given;
  }
  for (const char* name : {"tokenizer.json", "tokenizer.bin"})
    if (fs::exists(given / name, ec)) return given / name;
  throw InputError(fmt::format("{}: no tokenizer.json or tokenizer.bin in the folder; give the tokenizer file "
                               "explicitly",
                               given.string()),
                   "tokenizer");
}

}  // namespace

ModelTokenizer ModelTokenizer::load(ModelType type, const fs::path& dir) {
  ModelTokenizer t;
  t.dir_ = dir;
  if (type == ModelType::Llama) {
    const fs::path file = llama_tokenizer_file(dir);
    if (file.extension() == ".json") {
      t.sentencepiece_ = std::make_unique<text::SentencePieceBpe>(file);
    } else {
      t.llama2c_ = std::make_unique<text::Llama2cTokenizer>(file);
    }
  } else if (type == ModelType::Gpt2) {
    require_file(dir / "vocab.json", "GPT-2 vocab.json");
    require_file(dir / "merges.txt", "GPT-2 merges.txt");
    t.gpt2_ = std::make_unique<text::Gpt2Tokenizer>(dir / "vocab.json", dir / "merges.txt");
  } else {
    require_file(dir / "vocab.txt", "BERT vocab.txt");
    bool lowercase = true;  // BertTokenizer's default
    const fs::path config = dir / "tokenizer_config.json";
    if (fs::exists(config)) {
      std::ifstream in(config);
      try {
        const auto json = nlohmann::json::parse(in);
        if (json.contains("do_lower_case") && json.at("do_lower_case").is_boolean())
          lowercase = json.at("do_lower_case").get<bool>();
      } catch (const nlohmann::json::exception& e) {
        throw InputError(fmt::format("{}: not valid JSON: {}", config.string(), e.what()));
      }
    }
    t.wordpiece_ = std::make_unique<text::WordPieceTokenizer>(dir / "vocab.txt", lowercase);
  }
  return t;
}

ModelTokenizer ModelTokenizer::load(const ModelSource& source, const std::string& given) {
  ModelTokenizer t = load(source.config.type, tokenizer_dir(source, given));
  const ModelConfig& c = source.config;
  if (c.type == ModelType::Llama && t.vocab_size() != c.vocab_size) {
    const fs::path file = t.llama2c_ ? t.llama2c_->path() : t.sentencepiece_->path();
    throw InputError(fmt::format("{}: the tokenizer has {} tokens but model '{}' has a vocabulary of {}", file.string(),
                                 t.vocab_size(), source.spec, c.vocab_size),
                     "tokenizer");
  }
  return t;
}

std::vector<int> ModelTokenizer::encode(std::string_view utf8, std::string_view what) const {
  if (gpt2_) return gpt2_->encode(utf8, what);
  if (llama2c_) return llama2c_->encode(utf8, true, false);
  if (sentencepiece_) return sentencepiece_->encode(utf8, true, what);
  return wordpiece_->encode(utf8, false, what);
}

std::string ModelTokenizer::decode(const std::vector<int>& ids) const {
  if (gpt2_) return gpt2_->decode(ids);
  if (llama2c_) return llama2c_->decode(ids);
  throw InputError(fmt::format("{}: this tokenizer does not decode (GPT-2 and llama2.c tokenizers do)", dir_.string()));
}

int ModelTokenizer::vocab_size() const {
  if (gpt2_) return gpt2_->vocab_size();
  if (llama2c_) return llama2c_->vocab_size();
  if (sentencepiece_) return sentencepiece_->vocab_size();
  return wordpiece_->vocab_size();
}

fs::path default_data_root() {
  if (const char* env = std::getenv("LIPATTN_DATA_DIR"); env && *env) return env;
#ifdef LIPATTN_SOURCE_DIR
  const fs::path shared = fs::path(LIPATTN_SOURCE_DIR) / ".." / "shared" / "data";
  std::error_code ec;
  if (fs::is_directory(shared, ec)) return fs::weakly_canonical(shared, ec);
#endif
  return {};
}

namespace {

// Where a LLaMA-family model's tokenizer is when none is given: llama2.c ships tok<vocab>.bin (the
// stories models) or tokenizer.bin beside the checkpoint; a folder has tokenizer.json.
fs::path llama_tokenizer_default(const ModelSource& source, const fs::path& data_root) {
  const std::string sized = fmt::format("tok{}.bin", source.config.vocab_size);
  std::vector<fs::path> candidates;
  if (source.format == CheckpointFormat::Llama2c) {
    candidates = {source.folder / sized, source.folder / "tokenizer.bin"};
  } else if (!source.random) {
    candidates = {source.folder / "tokenizer.json", source.folder / "tokenizer.bin"};
  } else if (!data_root.empty()) {
    candidates = {data_root / "stories260K" / sized};
  }
  std::error_code ec;
  for (const auto& c : candidates)
    if (fs::exists(c, ec)) return c;
  std::vector<std::string> looked;
  for (const auto& c : candidates) looked.push_back(c.string());
  throw InputError(
      fmt::format("model '{}' has no tokenizer (looked for {}); give the tokenizer file "
                  "(tokenizer.json or a llama2.c tokenizer.bin) explicitly",
                  source.spec,
                  looked.empty() ? std::string("nothing: no data folder") : fmt::format("{}", fmt::join(looked, ", "))),
      "tokenizer");
}

}  // namespace

fs::path tokenizer_dir(const ModelSource& source, const std::string& flag, const fs::path& data_root) {
  if (!flag.empty()) return flag;
  if (source.config.type == ModelType::Llama) return llama_tokenizer_default(source, data_root);
  if (!source.random) return source.folder;
  const std::string name = source.config.type == ModelType::Gpt2 ? "gpt2" : "bert-base-uncased";
  if (data_root.empty())
    throw InputError(fmt::format("model '{}' has no tokenizer files: pass --tokenizer DIR (a folder with {}) or set "
                                 "LIPATTN_DATA_DIR to a folder holding {}/",
                                 source.spec,
                                 source.config.type == ModelType::Gpt2 ? "vocab.json and merges.txt" : "vocab.txt",
                                 name));
  return data_root / name;
}

fs::path tokenizer_dir(const ModelSource& source, const std::string& flag) {
  return tokenizer_dir(source, flag, default_data_root());
}

std::string read_text(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(fmt::format("{}: no such text file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open the text file", path.string()));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace lipattn::models
