// `lipattn inspect`, `tokenize` and `forward` run as a user runs them, on checkpoints written here.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "bytes_support.h"
#include "cli_support.h"
#include "requirement_support.h"
#include "io/npy.h"
#include "llama_fixture.h"
#include "llama_tokenizer_fixture.h"
#include "models_fixture.h"
#include "models/tokenizer.h"
#include "spectral/measure.h"

namespace {

namespace fs = std::filesystem;
using fixture::Checkpoint;
using lipattn::testing::CommandResult;
using lipattn::testing::read_bytes;
using lipattn::testing::run_cli;

std::string q(const fs::path& p) {
  std::string s = "'";  // appended piece by piece: GCC 12's -Wrestrict misfires on "'" + std::string&&
  s += p.string();
  s += "'";
  return s;
}

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
  LIPATTN_REQUIRE_SHARED_DATA(kData / "gpt2" / "vocab.json");
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

// argmax of row `row` of an n × vocab logits array.
int argmax_row(const lipattn::io::NpyArray& a, std::size_t row) {
  const std::size_t v = static_cast<std::size_t>(a.shape.at(1));
  const auto first = a.values.begin() + static_cast<std::ptrdiff_t>(row * v);
  return static_cast<int>(std::max_element(first, first + static_cast<std::ptrdiff_t>(v)) - first);
}

std::string join(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id);
  }
  return s;
}

// Greedy decoding from BOS, one `forward` per token, reading logits.npy: the published sample.
TEST(CliModels, LlamaForwardLogitsDecodeThePublishedSample) {
  const fs::path dir = fixture::temp_dir("cli_llama_forward");
  const std::string bin = llama_fixture::kStoriesBin;
  std::vector<int> ids{1};
  for (int step = 0; step < 44; ++step) {  // 45 tokens with BOS, as models_llama_test decodes
    const CommandResult r = run_cli("forward --model " + q(bin) + " --ids " + join(ids) + " --dump " + q(dir / "d"));
    ASSERT_EQ(r.code, 0) << r.err;
    const auto logits = lipattn::io::read_npy(dir / "d" / "logits.npy");
    ASSERT_EQ(logits.shape, (std::vector<std::int64_t>{static_cast<std::int64_t>(ids.size()), 512}));
    ids.push_back(argmax_row(logits, ids.size() - 1));
  }
  for (int l = 0; l < 5; ++l)
    for (const char* tap : {"block_in", "attn_in", "attn_out"})
      EXPECT_TRUE(fs::exists(dir / "d" / fmt::format("layer{}.{}.npy", l, tap))) << l << tap;
  EXPECT_TRUE(fs::exists(dir / "d" / "hidden.npy"));
  const auto tokenizer = lipattn::models::ModelTokenizer::load(lipattn::models::resolve_model(bin), "");
  EXPECT_EQ(tokenizer.decode(ids),
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
            "she saw a big, red ball.");

  // A window longer than seq_len names n, the limit and where it came from.
  std::vector<int> long_ids(513, 1);
  CommandResult r = run_cli("forward --model " + q(bin) + " --ids " + join(long_ids) + " --dump " + q(dir / "x"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("n = 513"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("512 positions (seq_len)"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "x"));
  // A tokenizer of the wrong size is refused by forward --text too.
  auto small = llama_fixture::read_tokenizer_bin(llama_fixture::kStoriesTokenizer);
  small.pieces.resize(300);
  llama_fixture::write_tokenizer_json(dir / "small.json", llama_fixture::tokenizer_json(small));
  std::ofstream(dir / "story.txt") << "Once upon a time, there was a little girl named Lily.";
  r = run_cli("forward --model " + q(bin) + " --tokenizer " + q(dir / "small.json") + " --text " + q(dir / "story.txt") +
              " --n 4 --dump " + q(dir / "x"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("vocabulary of 512"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

// measure --model on stories260K: the whole attention block (attn), without W_O (self), and one
// query head with the K/V head of its group, each against a dense SVD of a layer built here from the
// raw llama2.c tensors at the attn_in that forward dumps.
TEST(CliModels, LlamaMeasureAgreesWithDenseJacobian) {
  const fs::path dir = fixture::temp_dir("cli_llama_measure");
  const std::string bin = llama_fixture::kStoriesBin;
  const std::string ids = "1,403,407,261,378,432,383,286,261,376";
  const int layer = 2;
  CommandResult r = run_cli("forward --model " + q(bin) + " --ids " + ids + " --dump " + q(dir / "d"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto x = lipattn::io::read_npy(dir / "d" / fmt::format("layer{}.attn_in.npy", layer));
  lipattn::MatrixD X(x.shape[0], x.shape[1]);
  for (Eigen::Index i = 0; i < X.rows(); ++i)
    for (Eigen::Index j = 0; j < X.cols(); ++j) X(i, j) = x.values[i * X.cols() + j];

  const llama_fixture::Llama2c m = llama_fixture::read_stories();
  auto rows = [&](const char* name, int first, int count) {
    const auto w = llama_fixture::layer_slice(m.t.at(name), layer);
    lipattn::MatrixD out(count, m.dim);
    for (int i = 0; i < count; ++i)
      for (int j = 0; j < m.dim; ++j) out(i, j) = w[(first + i) * m.dim + j];
    return out;
  };
  auto reference = [&](std::optional<int> head, bool with_o) {
    lipattn::LayerSpec spec;
    auto& a = spec.attention;
    const int k = m.head_dim();
    a.heads = head ? 1 : m.heads;
    a.kv_heads = head ? 1 : m.kv_heads;
    a.w_q = head ? rows("wq", *head * k, k) : rows("wq", 0, m.dim);
    const int g = head ? *head / (m.heads / m.kv_heads) : 0;  // the group's K/V head
    a.w_k = head ? rows("wk", g * k, k) : rows("wk", 0, m.kv_dim());
    a.w_v = head ? rows("wv", g * k, k) : rows("wv", 0, m.kv_dim());
    if (with_o) {
      lipattn::MatrixD o = rows("wo", 0, m.dim);
      a.w_o = head ? lipattn::MatrixD(o.middleCols(*head * k, k)) : o;
    }
    a.causal = true;
    a.rope.style = lipattn::RopeStyle::Interleaved;
    lipattn::SpectralOptions dense;
    dense.method = lipattn::SpectralMethod::Dense;
    return lipattn::measure_local_lipschitz(spec, X, dense).lipschitz;
  };
  struct Case {
    std::string flags;
    std::optional<int> head;
    bool with_o;
  };
  for (const Case& c : {Case{"", std::nullopt, true}, Case{" --block self", std::nullopt, false},
                        Case{" --head 5", 5, true}, Case{" --block self --head 3", 3, false}}) {
    r = run_cli("measure --model " + q(bin) + " --layer 2 --ids " + ids + c.flags + " --json");
    ASSERT_EQ(r.code, 0) << c.flags << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("block"), c.with_o ? "attn" : "self");
    EXPECT_EQ(j.at("n"), 10);
    EXPECT_TRUE(j.at("converged").get<bool>());
    EXPECT_NEAR(j.at("lipschitz").get<double>(), reference(c.head, c.with_o), 1e-9) << c.flags;
  }
  r = run_cli("measure --model " + q(bin) + " --layer 5 --ids " + ids);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("5 layers"), std::string::npos) << r.err;
  r = run_cli("measure --model " + q(bin) + " --block attention --ids " + ids);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("'attention' does not exist in LLaMA"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

// A stories260K attention layer as a layer file for `measure --weights`, `bound` and `attack`: K/V
// heads from k.weight's rows, RoPE from the metadata, optional QK-norm tensors.
TEST(CliModels, LlamaLayerFileMeasureBoundAttack) {
  const fs::path dir = fixture::temp_dir("cli_llama_layer");
  const std::string bin = llama_fixture::kStoriesBin;
  const std::string ids = "1,403,407,261,378,432,383,286,261,376";
  const int layer = 1;
  CommandResult r = run_cli("forward --model " + q(bin) + " --ids " + ids + " --dump " + q(dir / "d"));
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path x = dir / "d" / fmt::format("layer{}.attn_in.npy", layer);
  const llama_fixture::Llama2c m = llama_fixture::read_stories();
  auto t = [&](const char* file_name, const char* name, std::int64_t rows, std::int64_t cols) {
    return lipattn::io::TensorToWrite{file_name, {rows, cols}, llama_fixture::layer_slice(m.t.at(name), layer)};
  };
  const std::vector<lipattn::io::TensorToWrite> tensors{
      t("q.weight", "wq", m.dim, m.dim), t("k.weight", "wk", m.kv_dim(), m.dim), t("v.weight", "wv", m.kv_dim(), m.dim),
      t("o.weight", "wo", m.dim, m.dim)};
  lipattn::io::write_safetensors(dir / "rope.safetensors", tensors, lipattn::io::DType::F32,
                                 {{"rope", "interleaved"}, {"rope_theta", "10000"}});
  lipattn::io::write_safetensors(dir / "gqa.safetensors", tensors, lipattn::io::DType::F32);
  auto qk = tensors;
  qk.push_back({"q_norm.weight", {m.head_dim()}, std::vector<double>(m.head_dim(), 1.5)});
  qk.push_back({"k_norm.weight", {m.head_dim()}, std::vector<double>(m.head_dim(), 0.5)});
  lipattn::io::write_safetensors(dir / "qknorm.safetensors", qk, lipattn::io::DType::F32, {{"rope", "interleaved"}});

  // The layer file with RoPE is the model's block: the same number as measure --model.
  r = run_cli("measure --weights " + q(dir / "rope.safetensors") + " --input " + q(x) + " --heads 8 --causal --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const double from_file = nlohmann::json::parse(r.out).at("lipschitz").get<double>();
  r = run_cli("measure --model " + q(bin) + " --layer 1 --ids " + ids + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR(from_file, nlohmann::json::parse(r.out).at("lipschitz").get<double>(), 1e-9);

  // bound: RoPE and QK-norm are not covered (no number); grouped K/V heads are, and bound ≥ exact.
  for (const char* file : {"rope.safetensors", "qknorm.safetensors"}) {
    r = run_cli(std::string("bound --weights ") + q(dir / file) + " --input " + q(x) + " --heads 8 --causal --json");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j.at("bounds").empty()) << file << r.out;
    const std::string status = j.at("status").at("structured").get<std::string>();
    EXPECT_EQ(status.rfind("not covered: ", 0), 0u) << status;
    EXPECT_NE(status.find(std::string(file) == "rope.safetensors" ? "rotary" : "QK-norm"), std::string::npos) << status;
    r = run_cli(std::string("bound --weights ") + q(dir / file) + " --n 8 --radius 8 --heads 8 --causal --json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(nlohmann::json::parse(r.out).at("bounds").empty()) << r.out;
  }
  r = run_cli("bound --weights " + q(dir / "gqa.safetensors") + " --input " + q(x) + " --heads 8 --causal --exact --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_FALSE(j.at("bounds").empty()) << r.out;
  EXPECT_EQ(j.at("status").at("structured"), "proved");
  EXPECT_GE(j.at("best").at("value").get<double>(), j.at("exact").get<double>());

  // attack on the RoPE + QK-norm layer: a certified lower bound, equal to measure at its witness.
  r = run_cli("attack --weights " + q(dir / "qknorm.safetensors") + " --heads 8 --causal --n 4 --radius 8 --restarts 1 " +
              "--steps 5 --quiet --json --out " + q(dir / "w.npy"));
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_GT(j.at("lower").get<double>(), 0);
  EXPECT_TRUE(j.at("upper").is_null()) << r.out;
  r = run_cli("measure --weights " + q(dir / "qknorm.safetensors") + " --input " + q(dir / "w.npy") +
              " --heads 8 --causal --json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR(nlohmann::json::parse(r.out).at("lipschitz").get<double>(), j.at("lower").get<double>(),
              1e-8 * j.at("lower").get<double>());

  // Bad options name the metadata key or tensor.
  lipattn::io::write_safetensors(dir / "bad.safetensors", tensors, lipattn::io::DType::F32, {{"rope", "spiral"}});
  r = run_cli("measure --weights " + q(dir / "bad.safetensors") + " --input " + q(x) + " --heads 8");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("metadata 'rope'"), std::string::npos) << r.err;
  qk.pop_back();
  lipattn::io::write_safetensors(dir / "half.safetensors", qk, lipattn::io::DType::F32);
  r = run_cli("measure --weights " + q(dir / "half.safetensors") + " --input " + q(x) + " --heads 8");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("'k_norm.weight' is missing"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

}  // namespace
