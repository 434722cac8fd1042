// Bad input in the model readers' in-memory entries (those the fuzz targets of tests/fuzz drive and
// the path readers use): config.json, model.safetensors.index.json and the llama2.c header. Each
// error is an InputError naming the source and the field.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "error_support.h"
#include "models/config.h"
#include "models/llama2c.h"
#include "models/weights.h"

namespace lipattn::models {
namespace {

using namespace lipattn::testing;

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nexpected to contain: " << part;
}

// n_embd near 2^62 made 4·n_embd (GPT-2's default n_inner) overflow: dimensions are now bounded.
TEST(ModelsBadInput, ConfigDimensionsAreBelowTwoToThe31) {
  expect_contains(error_of([] {
                    parse_config_text(R"({"model_type": "gpt2", "n_embd": 4611686018427387904, "n_head": 1})",
                                      "cfg.json");
                  }),
                  "cfg.json: \"n_embd\" must be a positive integer below 2^31");
  expect_contains(error_of([] {
                    parse_config_text(R"({"model_type": "llama", "vocab_size": 18446744073709551615})", "cfg.json");
                  }),
                  "\"vocab_size\"");
  EXPECT_EQ(field_of([] { parse_config_text(R"({"model_type": "bert", "hidden_size": 0})", "cfg.json"); }),
            "hidden_size");
  const ModelConfig largest =
      parse_config_text(R"({"model_type": "gpt2", "n_embd": 2147483646, "n_head": 2})", "cfg.json");
  EXPECT_EQ(largest.intermediate_size, 4 * 2147483646LL);
}

TEST(ModelsBadInput, ConfigTextThatIsNotJsonOrHasWrongTypes) {
  expect_contains(error_of([] { parse_config_text("{\"model_type\": ", "cfg.json"); }), "cfg.json: not valid JSON");
  expect_contains(error_of([] { parse_config_text(R"({"model_type": "gpt2", "n_head": "12"})", "cfg.json"); }),
                  "\"n_head\" must be a positive integer");
  expect_contains(error_of([] { parse_config_text(R"({"model_type": "gpt2", "layer_norm_epsilon": [1]})", "cfg.json"); }),
                  "\"layer_norm_epsilon\" must be a number");
}

// read_config reads the whole text before parsing: a device that never ends (random:/dev/zero in a sweep
// file) must be refused, not read until memory runs out.
TEST(ModelsBadInput, ConfigMustBeARegularFile) {
  expect_contains(error_of([] { read_config("/dev/zero"); }), "/dev/zero: not a regular file");
}

TEST(ModelsBadInput, ShardIndexNamesOnlyFilesOfTheFolder) {
  const auto map = parse_shard_index(R"({"weight_map": {"a": "model-00001-of-00002.safetensors"}})", "index.json");
  EXPECT_EQ(map.at("a"), "model-00001-of-00002.safetensors");
  for (const char* shard : {"../outside.safetensors", "/etc/passwd", "sub/dir.safetensors", "..", ".", ""})
    expect_contains(error_of([&] {
                      parse_shard_index(std::string(R"({"weight_map": {"t": ")") + shard + "\"}}", "index.json");
                    }),
                    "is not a file name in the checkpoint's folder");
  expect_contains(error_of([] { parse_shard_index(R"({"weight_map": {"t": 3}})", "index.json"); }),
                  "index.json: weight_map entry 't' must be a file name, found 3");
  expect_contains(error_of([] { parse_shard_index(R"([1])", "index.json"); }), "index.json: no \"weight_map\" object");
  expect_contains(error_of([] { parse_shard_index(R"({"weight_map": )", "index.json"); }),
                  "index.json: not valid JSON");
}

// A head shorter than the 256 bytes open() reads is read as zeros past its end, not past the vector.
TEST(ModelsBadInput, Llama2cShortHeadIsNotReadPastItsEnd) {
  std::vector<char> head(28, 0);
  const std::int32_t fields[7] = {8, 16, 1, 2, 2, 16, 4};
  std::memcpy(head.data(), fields, sizeof fields);
  expect_contains(error_of([&] { parse_llama2c_header(head, 28, "tiny.bin"); }), "tiny.bin: the llama2.c legacy header");
  std::vector<char> magic(8, 0);
  const std::uint32_t ak42 = 0x616b3432, version = 1;
  std::memcpy(magic.data(), &ak42, 4);
  std::memcpy(magic.data() + 4, &version, 4);
  expect_contains(error_of([&] { parse_llama2c_header(magic, 1000, "v1.bin"); }),
                  "v1.bin: llama2.c header field dim = 0 must be positive");
}

}  // namespace
}  // namespace lipattn::models
