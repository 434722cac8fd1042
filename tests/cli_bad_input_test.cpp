// Garbage through the CLI, one reader at a time (the readers the fuzz targets of tests/fuzz drive):
// exit 2, a message naming the file and what is wrong, nothing on stdout, and no internal error.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cli_support.h"

using namespace lipattn;
using namespace lipattn::testing;
namespace fs = std::filesystem;

namespace {

std::string q(const fs::path& p) {
  std::string s = "'";
  s += p.string();
  s += "'";
  return s;
}

void expect_input_error(const std::string& args, const fs::path& file, const std::string& must_mention) {
  const CommandResult r = run_cli(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(file.string()), std::string::npos) << "message should name " << file << ":\n" << r.err;
  EXPECT_NE(r.err.find(must_mention), std::string::npos) << "message should mention '" << must_mention << "':\n"
                                                          << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  return u64_le(header.size()) + header + data;
}

class CliBadInput : public FileTest {
 protected:
  void SetUp() override {
    FileTest::SetUp();
    layer_ = write_layer_files("cli_bad_input", 7, 0.5, /*with_pre_norm=*/false);
  }
  void TearDown() override {
    fs::remove_all(layer_.dir);
    FileTest::TearDown();
  }
  LayerFiles layer_;
};

TEST_F(CliBadInput, LayerFilesNameTheFileAndTheProblem) {
  const std::string good_input = " --input " + q(layer_.input);
  const std::pair<std::string, std::string> cases[] = {
      {u64_le(1ULL << 40) + "{}", "header too long"},
      {safetensors_bytes(R"({"q.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
       "span 4 bytes"},
      {safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                         "abcdef"),
       "overlap"},
      {safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})", "abcd"), "not valid JSON"},
      {"short", "shorter than the 8-byte header length"},
  };
  int k = 0;
  for (const auto& [bytes, what] : cases) {
    const fs::path weights = file("bad" + std::to_string(k++) + ".safetensors");
    write_bytes(weights, bytes);
    expect_input_error("measure --weights " + q(weights) + good_input, weights, what);
  }
}

TEST_F(CliBadInput, NpyInputsNameTheFileAndTheProblem) {
  const std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 2), }";
  const std::pair<std::string, std::string> cases[] = {
      {std::string("\x93NUMPY\x01\x00", 8) + u16_le(static_cast<std::uint16_t>(header.size())) + header, "too large"},
      {"\x93NUMPX\x01\x00", "not a .npy file"},
      {std::string("\x93NUMPY\x01\x00\xff\x00", 10) + "{'descr'", "truncated .npy header"},
  };
  int k = 0;
  for (const auto& [bytes, what] : cases) {
    const fs::path input = file("bad" + std::to_string(k++) + ".npy");
    write_bytes(input, bytes);
    expect_input_error("measure --weights " + q(layer_.weights) + " --input " + q(input), input, what);
  }
}

TEST_F(CliBadInput, ModelFoldersNameTheFileAndTheField) {
  const fs::path folder = file("model");
  fs::create_directories(folder);
  write_bytes(folder / "config.json", R"({"model_type": "gpt2", "n_embd": 4611686018427387904, "n_head": 1})");
  expect_input_error("inspect " + q(folder), folder / "config.json", "\"n_embd\" must be a positive integer");
  write_bytes(folder / "config.json", R"({"model_type": "gpt2", "n_embd": 16, "n_head": 2, "n_layer": 1})");
  write_bytes(folder / "model.safetensors.index.json", R"({"weight_map": {"wte.weight": "../escape.safetensors"}})");
  expect_input_error("inspect " + q(folder), folder / "model.safetensors.index.json",
                     "is not a file name in the checkpoint's folder");
}

TEST_F(CliBadInput, Llama2cCheckpointsNameTheFileAndTheField) {
  const fs::path bin = file("bad.bin");
  const std::int32_t header[7] = {8, 16, 1, 3, 3, 16, 4};  // 3 heads do not divide dim 8
  write_bytes(bin, std::string(reinterpret_cast<const char*>(header), sizeof header) + std::string(100, '\0'));
  expect_input_error("inspect " + q(bin), bin, "n_heads = 3 does not divide dim = 8");
}

TEST_F(CliBadInput, SweepFilesNameTheFileAndTheField) {
  const fs::path spec = file("sweep.json");
  write_bytes(spec, R"({"kind": "construction", "model": "toy", "radius": 1, "n": {"from": 1, "to": 1e300, "step": 1}})");
  expect_input_error("sweep " + q(spec) + " --list", spec, "sweep field 'n'");
  write_bytes(spec, R"({"kind": "construction", "model": "toy", "radius": 1, "n": [2], "d": "four"})");
  expect_input_error("sweep " + q(spec) + " --list", spec, "wrong type");
  write_bytes(spec, R"({"kind": "construction", )");
  expect_input_error("sweep " + q(spec) + " --list", spec, "not valid JSON");
}

}  // namespace
