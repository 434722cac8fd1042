// A model's tokenizer: GPT-2 byte-level BPE or BERT WordPiece, found beside the checkpoint or, for
// random models, in lipattn's data folder (docs/formats.md, "Model folders").
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/weights.h"

namespace lipattn::text {
class Gpt2Tokenizer;
class WordPieceTokenizer;
}  // namespace lipattn::text

namespace lipattn::models {

class ModelTokenizer {
 public:
  // GPT-2: dir/vocab.json + dir/merges.txt. BERT: dir/vocab.txt, lower-cased unless
  // dir/tokenizer_config.json says "do_lower_case": false. InputError naming the missing file and
  // asking for a tokenizer folder (field "tokenizer").
  static ModelTokenizer load(ModelType type, const std::filesystem::path& dir);
  ~ModelTokenizer();
  ModelTokenizer(ModelTokenizer&&) noexcept;
  ModelTokenizer& operator=(ModelTokenizer&&) noexcept;

  // Ids of the text, without special tokens (windows are cut from running text).
  std::vector<int> encode(std::string_view utf8, std::string_view what = "text") const;
  int vocab_size() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  ModelTokenizer() = default;
  std::filesystem::path dir_;
  std::unique_ptr<text::Gpt2Tokenizer> gpt2_;
  std::unique_ptr<text::WordPieceTokenizer> wordpiece_;
};

// The root of lipattn's tokenizer data: $LIPATTN_DATA_DIR, else the shared data folder beside the
// source checkout (compiled in as LIPATTN_SOURCE_DIR "/../shared/data") when it exists, else "".
std::filesystem::path default_data_root();
// The tokenizer folder of a model: `flag` (--tokenizer) when given; a checkpoint's own folder; for
// random models data_root/gpt2 or data_root/bert-base-uncased. InputError (field "tokenizer") asking for one
// when there is none.
std::filesystem::path tokenizer_dir(const ModelSource& source, const std::string& flag,
                                    const std::filesystem::path& data_root);
std::filesystem::path tokenizer_dir(const ModelSource& source, const std::string& flag);

// Reads a UTF-8 text file whole (InputError naming it if unreadable).
std::string read_text(const std::filesystem::path& path);

}  // namespace lipattn::models
