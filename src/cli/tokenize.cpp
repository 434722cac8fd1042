// lipattn tokenize --model MODEL --text FILE: the token ids the model reads for a text.
#include <iostream>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "models/tokenizer.h"
#include "models/weights.h"

namespace lipattn::cli {
namespace {

struct TokenizeFlags {
  std::string model, text, tokenizer;
  bool json = false;
};

int run(const TokenizeFlags& f) {
  const models::ModelSource source = models::resolve_model(f.model);
  const auto tokenizer = models::ModelTokenizer::load(source, f.tokenizer);
  const std::vector<int> ids = tokenizer.encode(models::read_text(f.text), f.text);
  if (f.json) {
    std::cout << nlohmann::json(ids).dump() << "\n";
  } else {
    std::cout << fmt::format("{}", fmt::join(ids, " ")) << "\n";
  }
  return 0;
}

const Register reg{{"tokenize", "print the token ids of a text file with a model's tokenizer", [](CLI::App& sub) {
                      auto f = std::make_shared<TokenizeFlags>();
                      sub.add_option("--model", f->model, "model folder, llama2.c FILE.bin, cached name or random:...")
                          ->required();
                      sub.add_option("--text", f->text, "UTF-8 text file")->required();
                      sub.add_option("--tokenizer", f->tokenizer,
                                     "folder with vocab.json + merges.txt (GPT-2) or vocab.txt (BERT), or for LLaMA "
                                     "models a tokenizer.json or llama2.c tokenizer.bin file; default: the model "
                                     "folder (beside FILE.bin: tok<vocab>.bin or tokenizer.bin), or for random "
                                     "models $LIPATTN_DATA_DIR/<gpt2|bert-base-uncased|stories260K>");
                      sub.add_flag("--json", f->json, "print a JSON array instead of space-separated ids");
                      return [f] { return run(*f); };
                    }}};

}  // namespace
}  // namespace lipattn::cli
