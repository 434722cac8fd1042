#include "models/tokenizer.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "text/gpt2_tokenizer.h"
#include "text/wordpiece_tokenizer.h"

namespace lipattn::models {

namespace fs = std::filesystem;

ModelTokenizer::~ModelTokenizer() = default;
ModelTokenizer::ModelTokenizer(ModelTokenizer&&) noexcept = default;
ModelTokenizer& ModelTokenizer::operator=(ModelTokenizer&&) noexcept = default;

namespace {
void require_file(const fs::path& path, const std::string& what) {
  if (!fs::exists(path))
    throw InputError(fmt::format("{}: the {} is missing; give the tokenizer folder with the model's "
                                 "tokenizer files",
                                 path.string(), what),
                     "tokenizer");
}
}  // namespace

ModelTokenizer ModelTokenizer::load(ModelType type, const fs::path& dir) {
  ModelTokenizer t;
  t.dir_ = dir;
  if (type == ModelType::Gpt2) {
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

std::vector<int> ModelTokenizer::encode(std::string_view utf8, std::string_view what) const {
  if (gpt2_) return gpt2_->encode(utf8, what);
  return wordpiece_->encode(utf8, false, what);
}

int ModelTokenizer::vocab_size() const { return gpt2_ ? gpt2_->vocab_size() : wordpiece_->vocab_size(); }

fs::path default_data_root() {
  if (const char* env = std::getenv("LIPATTN_DATA_DIR"); env && *env) return env;
#ifdef LIPATTN_SOURCE_DIR
  const fs::path shared = fs::path(LIPATTN_SOURCE_DIR) / ".." / "shared" / "data";
  std::error_code ec;
  if (fs::is_directory(shared, ec)) return fs::weakly_canonical(shared, ec);
#endif
  return {};
}

fs::path tokenizer_dir(const ModelSource& source, const std::string& flag, const fs::path& data_root) {
  if (!flag.empty()) return flag;
  if (!source.random) return source.folder;
  const std::string name = source.config.type == ModelType::Gpt2 ? "gpt2" : "bert-base-uncased";
  if (data_root.empty())
    throw InputError(
        fmt::format("model '{}' has no tokenizer files: give the tokenizer folder (one with {}) or set "
                    "LIPATTN_DATA_DIR to a folder holding {}/",
                    source.spec, source.config.type == ModelType::Gpt2 ? "vocab.json and merges.txt" : "vocab.txt",
                    name),
        "tokenizer");
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
