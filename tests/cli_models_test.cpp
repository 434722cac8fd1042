// `lipattn inspect`, `tokenize` and `forward` run as a user runs them, on checkpoints written here.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "bytes_support.h"
#include "cli_support.h"
#include "io/npy.h"
#include "llama_fixture.h"
#include "llama_tokenizer_fixture.h"
#include "models_fixture.h"

namespace {

namespace fs = std::filesystem;
using fixture::Checkpoint;
using lipattn::testing::CommandResult;
using lipattn::testing::read_bytes;
using lipattn::testing::run_cli;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

double gap(const lipattn::io::NpyArray& a, const fixture::Mat& b) {
  EXPECT_EQ(a.shape.size(), 2u);
  EXPECT_EQ(a.shape[0], static_cast<std::int64_t>(b.size()));
  EXPECT_EQ(a.shape[1], static_cast<std::int64_t>(b[0].size()));
  double g = 0;
  for (std::size_t i = 0; i < b.size(); ++i)
    for (std::size_t j = 0; j < b[i].size(); ++j) g = std::max(g, std::abs(a.values[i * b[i].size() + j] - b[i][j]));
  return g;
}

const fs::path kData = fs::path(LIPATTN_SOURCE_DIR) / ".." / "shared" / "data";

TEST(CliModels, InspectListsConfigAndTensors) {
  fixture::Options o;
  o.prefix = "transformer.";
  const Checkpoint c = fixture::make(o);
  const fs::path dir = fixture::write(c, lipattn::io::DType::BF16, "cli_inspect");
  CommandResult r = run_cli("inspect " + q(dir));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("transformer.wte.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("BF16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[16, 48]"), std::string::npos) << r.out;  // c_attn
  EXPECT_NE(r.out.find("d = 16, 4 heads of 4, 2 layers"), std::string::npos) << r.out;

  r = run_cli("inspect " + q(dir) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("config").at("hidden_size"), 16);
  EXPECT_EQ(j.at("config").at("model_type"), "gpt2");
  EXPECT_EQ(j.at("tensors").size(), c.tensors.size());

  auto bad = c.config;
  bad["model_type"] = "t5";  // (llama is read since issue 14: LlamaCheckpointsAndTokenizers below)
  fixture::write_config(dir, bad);
  r = run_cli("inspect " + q(dir));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("t5"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(CliModels, ForwardDumpsEveryLayerAsTheReferenceComputesIt) {
  for (const char* type : {"gpt2", "bert"}) {
    fixture::Options o;
    o.type = type;
    const Checkpoint c = fixture::make(o);
    const fs::path dir = fixture::write(c, lipattn::io::DType::F32, "cli_forward");
    const std::vector<int> ids{3, 17, 49, 0, 22, 8, 8};
    const auto ref = fixture::reference_forward(c, ids);
    CommandResult r = run_cli("forward --model " + q(dir) + " --ids 3,17,49,0,22,8,8 --dump " + q(dir / "dump"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_LT(gap(lipattn::io::read_npy(dir / "dump" / "hidden.npy"), ref.hidden), 1e-12) << type;
    for (int l = 0; l < o.layers; ++l) {
      const fs::path base = dir / "dump" / ("layer" + std::to_string(l));
      const auto block_in = lipattn::io::read_npy(base.string() + ".block_in.npy");
      EXPECT_EQ(block_in.dtype, "<f8");
      EXPECT_LT(gap(block_in, ref.block_in[l]), 1e-12) << type;
      EXPECT_LT(gap(lipattn::io::read_npy(base.string() + ".attn_in.npy"), ref.attn_in[l]), 1e-12) << type;
      EXPECT_LT(gap(lipattn::io::read_npy(base.string() + ".attn_out.npy"), ref.attn_out[l]), 1e-12) << type;
    }
    r = run_cli("forward --model " + q(dir) + " --ids 3,17,49 --dtype f32 --dump " + q(dir / "f32"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_LT(gap(lipattn::io::read_npy(dir / "f32" / "hidden.npy"),
                  fixture::reference_forward(c, {3, 17, 49}).hidden),
              1e-4);

    // n beyond the model's 32 positions, and an id outside its vocabulary of 50.
    std::string many = "1";
    for (int i = 1; i < 33; ++i) many += ",1";
    r = run_cli("forward --model " + q(dir) + " --ids " + many + " --dump " + q(dir / "x"));
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("32 positions"), std::string::npos) << r.err;
    r = run_cli("forward --model " + q(dir) + " --ids 1,50 --dump " + q(dir / "x"));
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("token id 50"), std::string::npos) << r.err;
    fs::remove_all(dir);
  }
}

TEST(CliModels, MissingModelsSayHowToGetThem) {
  const fs::path scratch = fixture::temp_dir("cli_missing");
  const CommandResult r = run_cli("forward --model no-such-model-xyz --ids 1,2 --dump " + q(scratch / "d"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("huggingface-cli download no-such-model-xyz"), std::string::npos) << r.err;
  fs::remove_all(scratch);
}

TEST(CliModels, TokenizeAndForwardOnText) {
  if (!fs::exists(kData / "gpt2" / "vocab.json")) GTEST_SKIP() << "no shared data at " << kData;
  const fs::path dir = fixture::temp_dir("cli_text");
  std::ofstream(dir / "hello.txt") << "Hello world";
  CommandResult r =
      run_cli("tokenize --model random:gpt2 --tokenizer " + q(kData / "gpt2") + " --text " + q(dir / "hello.txt"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "15496 995\n");
  r = run_cli("tokenize --model random:gpt2 --json --tokenizer " + q(kData / "gpt2") + " --text " +
              q(dir / "hello.txt"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json({15496, 995}));

  // A tiny random GPT-2 with the real vocabulary reads the first 5 tokens of Alice.
  fixture::Options o;
  o.vocab = 50257;
  fixture::write_config(dir, fixture::make(o).config);
  r = run_cli("forward --model random:" + q(dir / "config.json") + " --seed 4 --tokenizer " + q(kData / "gpt2") +
              " --text " + q(kData / "text" / "carroll-alice.txt") + " --n 5 --dump " + q(dir / "dump"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto a = lipattn::io::read_npy(dir / "dump" / "layer1.attn_in.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{5, 16}));
  // The same seed gives the same model; another seed another one.
  r = run_cli("forward --model random:" + q(dir / "config.json") + " --seed 4 --tokenizer " + q(kData / "gpt2") +
              " --text " + q(kData / "text" / "carroll-alice.txt") + " --n 5 --dump " + q(dir / "again"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lipattn::io::read_npy(dir / "again" / "hidden.npy").values,
            lipattn::io::read_npy(dir / "dump" / "hidden.npy").values);
  r = run_cli("forward --model random:" + q(dir / "config.json") + " --seed 5 --tokenizer " + q(kData / "gpt2") +
              " --text " + q(kData / "text" / "carroll-alice.txt") + " --n 5 --dump " + q(dir / "other"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(lipattn::io::read_npy(dir / "other" / "hidden.npy").values,
            lipattn::io::read_npy(dir / "dump" / "hidden.npy").values);
  fs::remove_all(dir);
}

TEST(CliModels, LlamaCheckpointsAndTokenizers) {
  const fs::path dir = fixture::temp_dir("cli_llama");
  const std::string bin = llama_fixture::kStoriesBin;
  CommandResult r = run_cli("inspect " + q(bin));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("llama (llama2.c"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("d = 64, 8 heads of 8 (4 K/V heads), 5 layers, MLP 172, vocab 512, 512 positions"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("interleaved"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wq[4]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("freq_cis_real"), std::string::npos) << r.out;
  r = run_cli("inspect " + q(bin) + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("format"), "llama2.c");
  EXPECT_EQ(j.at("config").at("num_kv_heads"), 4);
  EXPECT_EQ(j.at("config").at("rope_style"), "interleaved");

  // tokenize finds tok512.bin beside the .bin; the HF copy with a converted tokenizer.json agrees.
  std::ofstream(dir / "story.txt") << "Once upon a time, there was a little girl named Lily.";
  r = run_cli("tokenize --model " + q(bin) + " --text " + q(dir / "story.txt") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto expected = nlohmann::json({1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426});
  EXPECT_EQ(nlohmann::json::parse(r.out), expected);
  const fs::path hf = llama_fixture::write_hf_stories("cli_hf_stories");
  llama_fixture::write_tokenizer_json(
      hf / "tokenizer.json",
      llama_fixture::tokenizer_json(llama_fixture::read_tokenizer_bin(llama_fixture::kStoriesTokenizer)));
  r = run_cli("inspect " + q(hf));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("rotate_half"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model.layers.4.mlp.gate_proj.weight"), std::string::npos) << r.out;
  r = run_cli("tokenize --model " + q(hf) + " --text " + q(dir / "story.txt") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), expected);

  // Bad input: exit 2, the message names the file and what is wrong.
  std::vector<char> cut = llama_fixture::read_all(bin);
  cut.resize(cut.size() - 100);
  llama_fixture::write_bytes(dir / "cut.bin", cut);
  r = run_cli("inspect " + q(dir / "cut.bin"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("needs 1056540 bytes, the file has 1056440 bytes"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  auto small = llama_fixture::read_tokenizer_bin(llama_fixture::kStoriesTokenizer);
  small.pieces.resize(300);
  llama_fixture::write_tokenizer_json(dir / "small.json", llama_fixture::tokenizer_json(small));
  r = run_cli("tokenize --model " + q(bin) + " --tokenizer " + q(dir / "small.json") + " --text " +
              q(dir / "story.txt"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("300 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("vocabulary of 512"), std::string::npos) << r.err;
  fs::remove_all(hf);
  fs::remove_all(dir);
}

}  // namespace
