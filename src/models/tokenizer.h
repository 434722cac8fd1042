// A model's tokenizer: GPT-2 byte-level BPE, BERT WordPiece, or for the LLaMA family llama2.c's
// tokenizer.bin or a SentencePiece-style tokenizer.json; found beside the checkpoint or, for random
// models, in lipattn's data folder (docs/formats.md, "Model folders", "llama2.c tokenizer.bin").
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
class Llama2cTokenizer;
class SentencePieceBpe;
}  // namespace lipattn::text

namespace lipattn::models {

class ModelTokenizer {
 public:
  // GPT-2: dir/vocab.json + dir/merges.txt. BERT: dir/vocab.txt, lower-cased unless
  // dir/tokenizer_config.json says "do_lower_case": false. InputError naming the missing file and
  // suggesting --tokenizer.
  // LLaMA: `dir` is a tokenizer file (tokenizer.json, else llama2.c's tokenizer.bin format) or a
  // folder holding tokenizer.json or tokenizer.bin.
  static ModelTokenizer load(ModelType type, const std::filesystem::path& dir);
  // The tokenizer of `source` (from `given` when not empty, else tokenizer_dir's default), checked
  // against the model: for the LLaMA family a vocabulary size other than the config's is an
  // InputError naming both numbers.
  static ModelTokenizer load(const ModelSource& source, const std::string& given);
  ~ModelTokenizer();
  ModelTokenizer(ModelTokenizer&&) noexcept;
  ModelTokenizer& operator=(ModelTokenizer&&) noexcept;

  // Ids of the text. GPT-2 and BERT: without special tokens (windows are cut from running text).
  // LLaMA: as the model was trained and run.c / transformers encode it, BOS first (llama2.c: run.c's
  // encode(text, bos=1, eos=0); tokenizer.json: its post_processor template).
  std::vector<int> encode(std::string_view utf8, std::string_view what = "text") const;
  // The text of ids (GPT-2, llama2.c's tokenizer.bin as run.c prints it); InputError for the others.
  std::string decode(const std::vector<int>& ids) const;
  int vocab_size() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  ModelTokenizer() = default;
  std::filesystem::path dir_;
  std::unique_ptr<text::Gpt2Tokenizer> gpt2_;
  std::unique_ptr<text::WordPieceTokenizer> wordpiece_;
  std::unique_ptr<text::Llama2cTokenizer> llama2c_;
  std::unique_ptr<text::SentencePieceBpe> sentencepiece_;
};

// The root of lipattn's tokenizer data: $LIPATTN_DATA_DIR, else the shared data folder beside the
// source checkout (compiled in as LIPATTN_SOURCE_DIR "/../shared/data") when it exists, else "".
std::filesystem::path default_data_root();
// The tokenizer folder (or, for the LLaMA family, file) of a model: `flag` (--tokenizer) when given;
// a checkpoint's own folder; beside a llama2.c FILE.bin, tok<vocab>.bin or tokenizer.bin; for random
// models data_root/gpt2, data_root/bert-base-uncased or data_root/stories260K/tok<vocab>.bin.
// InputError (field "tokenizer") when there is none.
std::filesystem::path tokenizer_dir(const ModelSource& source, const std::string& flag,
                                    const std::filesystem::path& data_root);
std::filesystem::path tokenizer_dir(const ModelSource& source, const std::string& flag);

// Reads a UTF-8 text file whole (InputError naming it if unreadable).
std::string read_text(const std::filesystem::path& path);

}  // namespace lipattn::models
