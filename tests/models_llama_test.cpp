// LLaMA-family loading: llama2.c checkpoints (legacy, version 1, unshared classifier, malformed
// headers), the Hugging Face copy of stories260K (q/k rows permuted as transformers' convert script
// does; single file and shards), config.json of llama / mistral / qwen2, random init.
#include <cmath>

#include <gtest/gtest.h>

#include "error_support.h"
#include "llama_fixture.h"
#include "llama_reference.h"
#include "models/config.h"
#include "models/forward.h"
#include "models/llama2c.h"
#include "models/tokenizer.h"
#include "models/weights.h"

namespace {

using namespace lipattn;
using namespace lipattn::models;
using lipattn::testing::error_of;
namespace fs = std::filesystem;
using llama_fixture::Llama2c;

// Every weight of `w` equals stories260K's, with q/k rows permuted when `hf`.
void expect_stories_weights(const ModelWeights& w, const Llama2c& m, bool hf) {
  ASSERT_EQ(w.layers.size(), static_cast<std::size_t>(m.layers));
  const auto& emb = m.t.at("token_embedding_table").values;
  for (int v = 0; v < m.vocab; ++v)
    for (int j = 0; j < m.dim; ++j) ASSERT_EQ(w.token_embeddings(v, j), emb[v * m.dim + j]);
  EXPECT_EQ(w.lm_head.size(), 0) << "stories260K shares its classifier";
  EXPECT_EQ(w.position_embeddings.size(), 0);
  auto expect_matrix = [](const MatrixD& got, const std::vector<double>& want, const char* what) {
    ASSERT_EQ(static_cast<std::size_t>(got.size()), want.size()) << what;
    for (Index r = 0; r < got.rows(); ++r)
      for (Index c = 0; c < got.cols(); ++c) ASSERT_EQ(got(r, c), want[r * got.cols() + c]) << what << " " << r;
  };
  for (int l = 0; l < m.layers; ++l) {
    const LayerWeights& L = w.layers[l];
    const AttentionWeights& a = L.attention;
    auto slice = [&](const char* name) { return llama_fixture::layer_slice(m.t.at(name), l); };
    const auto wq = slice("wq"), wk = slice("wk");
    expect_matrix(a.w_q, hf ? llama_fixture::permute_rows(wq, m.heads, m.head_dim(), m.dim) : wq, "wq");
    expect_matrix(a.w_k, hf ? llama_fixture::permute_rows(wk, m.kv_heads, m.head_dim(), m.dim) : wk, "wk");
    expect_matrix(a.w_v, slice("wv"), "wv");
    expect_matrix(a.w_o, slice("wo"), "wo");
    expect_matrix(L.mlp.w_gate, slice("w1"), "w1");
    expect_matrix(L.mlp.w_out, slice("w2"), "w2");
    expect_matrix(L.mlp.w_in, slice("w3"), "w3");
    expect_matrix(L.attention_norm.gamma.transpose(), slice("rms_att_weight"), "rms_att");
    expect_matrix(L.mlp_norm.gamma.transpose(), slice("rms_ffn_weight"), "rms_ffn");
    EXPECT_EQ(L.attention_norm.kind, NormKind::RmsNorm);
    EXPECT_EQ(L.attention_norm.beta.size(), 0);
    EXPECT_DOUBLE_EQ(L.attention_norm.eps, 1e-5);
    EXPECT_EQ(a.heads, 8);
    EXPECT_EQ(a.kv_heads, 4);
    EXPECT_TRUE(a.causal);
    EXPECT_EQ(a.rope.style, hf ? RopeStyle::RotateHalf : RopeStyle::Interleaved);
    EXPECT_DOUBLE_EQ(a.rope.theta, 10000.0);
    EXPECT_EQ(a.b_q.size() + a.b_k.size() + a.b_v.size() + a.b_o.size(), 0);
    EXPECT_NO_THROW(a.validate());
  }
  ASSERT_TRUE(w.final_norm.has_value());
  expect_matrix(w.final_norm->gamma.transpose(),
                std::vector<double>(m.t.at("rms_final_weight").values.begin(), m.t.at("rms_final_weight").values.end()),
                "rms_final");
}

TEST(Llama2cCheckpoint, LoadsStories260K) {
  const Llama2c m = llama_fixture::read_stories();
  const ModelSource source = resolve_model(llama_fixture::kStoriesBin);
  EXPECT_EQ(source.format, CheckpointFormat::Llama2c);
  const ModelConfig& c = source.config;
  EXPECT_EQ(c.type, ModelType::Llama);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.kv_heads(), 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_positions, 512);
  EXPECT_EQ(c.positions_key(), "seq_len");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::Interleaved);
  EXPECT_EQ(c.activation, Activation::Silu);
  EXPECT_TRUE(c.causal());
  expect_stories_weights(load_model(source), m, false);

  // Partial loads stop before the final norm.
  const ModelWeights two = load_model(source, {.layers = 2});
  EXPECT_EQ(two.layers.size(), 2u);
  EXPECT_FALSE(two.final_norm.has_value());

  // Every stored tensor is listed, in file order, with the role it plays; freq_cis is ignored.
  const auto listed = list_tensors(source);
  ASSERT_EQ(listed.size(), 1u + 9 * 5 + 1 + 2);
  EXPECT_EQ(listed[0].name, "token_embedding_table");
  EXPECT_EQ(listed[0].role, "model.embed_tokens.weight");
  EXPECT_EQ(listed[2].name, "rms_att_weight[1]");
  EXPECT_EQ(listed.back().name, "freq_cis_imag");
  EXPECT_EQ(listed.back().role, "");
  EXPECT_EQ(listed.back().shape, (std::vector<std::int64_t>{512, 4}));
  std::size_t used = 0;
  for (const auto& t : listed) used += !t.role.empty();
  EXPECT_EQ(used, checkpoint_layout(c).size());
}

TEST(Llama2cCheckpoint, Version1AndUnsharedClassifier) {
  const Llama2c m = llama_fixture::read_stories();
  const fs::path dir = fixture::temp_dir("llama2c_v1");
  llama_fixture::write_bytes(dir / "v1.bin", llama_fixture::version1_bytes(m));
  expect_stories_weights(load_model(resolve_model((dir / "v1.bin").string())), m, false);

  // Unshared: v1 with the flag byte 0 and wcls after w3; legacy with a negative vocab_size, wcls last.
  std::vector<float> wcls(m.t.at("token_embedding_table").values);
  for (std::size_t i = 0; i < wcls.size(); ++i) wcls[i] = 0.5f * wcls[i] + static_cast<float>(i % 7);
  llama_fixture::write_bytes(dir / "v1_unshared.bin", llama_fixture::version1_bytes(m, &wcls));
  std::vector<char> legacy = llama_fixture::read_all(llama_fixture::kStoriesBin);
  const std::int32_t negative = -m.vocab;
  std::memcpy(legacy.data() + 20, &negative, 4);
  llama_fixture::append_floats(legacy, wcls);
  llama_fixture::write_bytes(dir / "legacy_unshared.bin", legacy);
  for (const char* name : {"v1_unshared.bin", "legacy_unshared.bin"}) {
    const ModelSource s = resolve_model((dir / name).string());
    EXPECT_FALSE(s.config.tie_word_embeddings) << name;
    const ModelWeights w = load_model(s);
    ASSERT_EQ(w.lm_head.rows(), m.vocab) << name;
    for (int v = 0; v < m.vocab; ++v)
      for (int j = 0; j < m.dim; ++j) ASSERT_EQ(w.lm_head(v, j), wcls[v * m.dim + j]) << name;
    expect_stories_weights(ModelWeights{w.config, "", w.token_embeddings, {}, {}, {}, w.layers, w.final_norm, {}}, m,
                           false);
  }
}

TEST(Llama2cCheckpoint, MalformedHeadersSayWhatIsWrong) {
  const fs::path dir = fixture::temp_dir("llama2c_bad");
  const std::vector<char> good = llama_fixture::read_all(llama_fixture::kStoriesBin);
  auto with_header = [&](int field, std::int32_t value, const std::string& name) {
    std::vector<char> bytes = good;
    std::memcpy(bytes.data() + 4 * field, &value, 4);
    llama_fixture::write_bytes(dir / name, bytes);
    return (dir / name).string();
  };
  auto expect = [](const std::string& path, const std::vector<std::string>& needles) {
    const std::string m = error_of([&] { resolve_model(path); });
    EXPECT_NE(m.find(path), std::string::npos) << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' in: " << m;
  };
  // Size: the expected and the actual bytes.
  std::vector<char> cut(good.begin(), good.end() - 4);
  llama_fixture::write_bytes(dir / "cut.bin", cut);
  expect((dir / "cut.bin").string(), {"needs 1056540 bytes", "has 1056536 bytes"});
  // A header claiming billions of layers is refused by its size, before anything is allocated.
  expect(with_header(2, 1 << 30, "huge.bin"), {"n_layers 1073741824", "has 1056540 bytes"});
  expect(with_header(0, 0, "zero.bin"), {"dim = 0", "positive"});
  expect(with_header(3, -8, "negative.bin"), {"n_heads = -8", "positive"});
  expect(with_header(3, 7, "heads.bin"), {"n_heads = 7 does not divide dim = 64"});
  expect(with_header(4, 3, "kv.bin"), {"n_kv_heads = 3 does not divide n_heads = 8"});
  // Versioned files: bad version, version 2.
  const Llama2c m = llama_fixture::read_stories();
  std::vector<char> v = llama_fixture::version1_bytes(m);
  const std::int32_t two = 2, nine = 9;
  std::memcpy(v.data() + 4, &two, 4);
  llama_fixture::write_bytes(dir / "v2.bin", v);
  expect((dir / "v2.bin").string(), {"version 2", "not supported"});
  std::memcpy(v.data() + 4, &nine, 4);
  llama_fixture::write_bytes(dir / "v9.bin", v);
  expect((dir / "v9.bin").string(), {"version = 9"});
  llama_fixture::write_bytes(dir / "tiny.bin", std::vector<char>(10, 0));
  expect((dir / "tiny.bin").string(), {"too short"});
}

TEST(HuggingFaceLlama, StoriesCopyLoadsTheSameWeightsUpToThePermutation) {
  const Llama2c m = llama_fixture::read_stories();
  for (int shards : {1, 2}) {
    const fs::path dir = llama_fixture::write_hf_stories("hf_stories", shards);
    const ModelSource s = resolve_model(dir.string());
    EXPECT_EQ(s.weight_files.size(), static_cast<std::size_t>(shards));
    EXPECT_EQ(s.config.model_type_name, "llama");
    EXPECT_EQ(s.config.rope_style, RopeStyle::RotateHalf);
    expect_stories_weights(load_model(s), m, true);
    const auto listed = list_tensors(s);
    EXPECT_EQ(listed.size(), checkpoint_layout(s.config).size());
    for (const auto& t : listed) EXPECT_EQ(t.name, t.role);
  }
}

TEST(HuggingFaceLlama, ShardErrorsNameTheShardAndTensor) {
  fs::path dir = llama_fixture::write_hf_stories("hf_missing_shard", 2);
  fs::remove(dir / "model-00002-of-00002.safetensors");
  std::string m = error_of([&] { resolve_model(dir.string()); });
  EXPECT_NE(m.find("model.safetensors.index.json"), std::string::npos) << m;
  EXPECT_NE(m.find("model-00002-of-00002.safetensors"), std::string::npos) << m;
  EXPECT_NE(m.find("missing"), std::string::npos) << m;

  dir = llama_fixture::write_hf_stories("hf_bad_index", 2);
  auto index = nlohmann::json::parse(std::ifstream(dir / "model.safetensors.index.json"));
  index["weight_map"]["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << index.dump();
  m = error_of([&] { load_model(dir.string()); });
  EXPECT_NE(m.find("model.layers.9.mlp.up_proj.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("does not hold it"), std::string::npos) << m;
}

nlohmann::json small_config(const std::string& type) {
  return {{"model_type", type},
          {"hidden_size", 32},
          {"intermediate_size", 48},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"vocab_size", 40},
          {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-6},
          {"rope_theta", 500000.0},
          {"tie_word_embeddings", false},
          {"hidden_act", "silu"}};
}

TEST(HuggingFaceLlama, ConfigKeysOfLlamaMistralQwen2) {
  ModelConfig c = parse_config(small_config("llama"), "config.json");
  EXPECT_EQ(c.type, ModelType::Llama);
  EXPECT_EQ(c.kv_heads(), 2);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-6);
  EXPECT_FALSE(c.qkv_bias());
  auto j = small_config("llama");
  j["head_dim"] = 16;  // heads need not tile the hidden size
  j["attention_bias"] = true;
  c = parse_config(j, "config.json");
  EXPECT_EQ(c.head_dim(), 16);
  EXPECT_TRUE(c.qkv_bias());
  EXPECT_TRUE(c.output_bias());
  auto layout = checkpoint_layout(c);
  auto shape_of = [&](const std::string& name) {
    for (const auto& t : layout)
      if (t.name == name) return t.shape;
    return std::vector<std::int64_t>{};
  };
  EXPECT_EQ(shape_of("model.layers.1.self_attn.q_proj.weight"), (std::vector<std::int64_t>{64, 32}));
  EXPECT_EQ(shape_of("model.layers.1.self_attn.k_proj.weight"), (std::vector<std::int64_t>{32, 32}));
  EXPECT_EQ(shape_of("model.layers.1.self_attn.o_proj.weight"), (std::vector<std::int64_t>{32, 64}));
  EXPECT_EQ(shape_of("model.layers.1.self_attn.o_proj.bias"), (std::vector<std::int64_t>{32}));
  EXPECT_EQ(shape_of("lm_head.weight"), (std::vector<std::int64_t>{40, 32}));

  c = parse_config(small_config("qwen2"), "config.json");  // q/k/v biases, no o bias
  EXPECT_TRUE(c.qkv_bias());
  EXPECT_FALSE(c.output_bias());
  EXPECT_EQ(c.max_positions, 64) << "qwen2 ignores sliding_window without use_sliding_window";
  j = small_config("mistral");
  j["sliding_window"] = 16;  // windows past it would attend differently: the limit is the window
  EXPECT_EQ(parse_config(j, "config.json").max_positions, 16);
  EXPECT_EQ(parse_config(j, "config.json").positions_key(), "sliding_window");
  j["sliding_window"] = nullptr;
  EXPECT_EQ(parse_config(j, "config.json").max_positions, 64);
}

TEST(HuggingFaceLlama, RejectsWhatItCannotRunNamingTheKey) {
  auto expect = [](nlohmann::json j, const std::vector<std::string>& needles) {
    const std::string m = error_of([&] { parse_config(j, "dir/config.json"); });
    EXPECT_NE(m.find("dir/config.json"), std::string::npos) << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "'" << n << "' in: " << m;
  };
  auto j = small_config("llama");
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  expect(j, {"rope_scaling", "llama3"});
  j = small_config("llama");
  j["mlp_bias"] = true;
  expect(j, {"mlp_bias"});
  j = small_config("llama");
  j["num_key_value_heads"] = 3;
  expect(j, {"num_key_value_heads", "does not divide"});
  j = small_config("llama");
  j["num_attention_heads"] = 0;
  expect(j, {"num_attention_heads", "positive"});
  j = small_config("llama");
  j["hidden_act"] = "mish";
  expect(j, {"hidden_act", "mish"});
  j = small_config("llama");
  j["head_dim"] = 7;
  expect(j, {"head dimension 7 is odd"});
  j = small_config("llama");
  j["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_NO_THROW(parse_config(j, "config.json"));
  j["rope_scaling"] = {{"type", "default"}};
  EXPECT_NO_THROW(parse_config(j, "config.json"));
  // A type that is not a string is refused by name, not escaped as a JSON type error (config_json
  // fuzzer, tests/fuzz/regressions/config_json/).
  j = small_config("llama");
  j["rope_scaling"] = {{"type", 2}};
  expect(j, {"rope_scaling", "not supported"});
  j["rope_scaling"] = {{"rope_type", nullptr}};
  expect(j, {"rope_scaling", "not supported"});
}

TEST(HuggingFaceLlama, RandomInitAsTransformers) {
  const fs::path dir = fixture::temp_dir("llama_random");
  auto j = small_config("qwen2");
  j["initializer_range"] = 0.05;
  j["pad_token_id"] = 3;
  fixture::write_config(dir, j);
  const std::string spec = "random:" + (dir / "config.json").string();
  const ModelWeights a = load_model(spec, {.seed = 7}), b = load_model(spec, {.seed = 7}),
                     other = load_model(spec, {.seed = 8});
  ASSERT_EQ(a.layers.size(), 2u);
  EXPECT_EQ(a.token_embeddings, b.token_embeddings);
  EXPECT_NE(a.token_embeddings, other.token_embeddings);
  EXPECT_EQ(a.token_embeddings.row(3).norm(), 0.0) << "padding_idx row";
  const MatrixD& q = a.layers[1].attention.w_q;
  const double mean = q.mean(), sd = std::sqrt((q.array() - mean).square().mean());
  EXPECT_NEAR(sd, 0.05, 0.005);
  EXPECT_NEAR(mean, 0.0, 0.005);
  EXPECT_EQ(a.layers[0].attention.b_q, VectorD::Zero(32));
  EXPECT_EQ(a.layers[0].attention.b_o.size(), 0);
  EXPECT_EQ(a.layers[0].attention_norm.gamma, VectorD::Ones(32));
  EXPECT_EQ(a.lm_head.rows(), 40);
  EXPECT_GT(a.lm_head.norm(), 0.0);
  EXPECT_EQ(a.layers[0].mlp.w_gate.rows(), 48);
  // Same seeding scheme as GPT-2/BERT: each tensor from its own stream seeded by its name.
  const auto layout = checkpoint_layout(a.config);
  const auto values = random_tensor(layout[0], a.config, 7);
  EXPECT_EQ(values[5 * 32 + 1], a.token_embeddings(5, 1));
}

TEST(LlamaTokenizer, FoundBesideTheCheckpointAndCheckedAgainstIt) {
  const ModelSource s = resolve_model(llama_fixture::kStoriesBin);
  EXPECT_EQ(tokenizer_dir(s, "").filename(), "tok512.bin");
  const ModelTokenizer t = ModelTokenizer::load(s, "");
  EXPECT_EQ(t.vocab_size(), 512);
  EXPECT_EQ(t.encode("Hi"), (std::vector<int>{1, 320, 417}));
  EXPECT_EQ(t.decode(t.encode("Once upon a time")), "Once upon a time");

  // A folder without tokenizer, and a tokenizer of another size.
  const fs::path dir = fixture::temp_dir("llama_tok");
  fs::copy_file(llama_fixture::kStoriesBin, dir / "model.bin");
  const ModelSource bare = resolve_model((dir / "model.bin").string());
  std::string m = error_of([&] { ModelTokenizer::load(bare, ""); });
  EXPECT_NE(m.find("tok512.bin"), std::string::npos) << m;
  EXPECT_NE(m.find("tokenizer.bin"), std::string::npos) << m;
  std::vector<char> tok = llama_fixture::read_all(llama_fixture::kStoriesTokenizer);
  const float score = -1000;
  const std::int32_t len = 3;
  llama_fixture::append(tok, score);
  llama_fixture::append(tok, len);
  tok.insert(tok.end(), {'x', 'y', 'z'});
  llama_fixture::write_bytes(dir / "tokenizer.bin", tok);
  m = error_of([&] { ModelTokenizer::load(bare, ""); });
  EXPECT_NE(m.find("513 tokens"), std::string::npos) << m;
  EXPECT_NE(m.find("vocabulary of 512"), std::string::npos) << m;
  // Given explicitly, a file or the folder holding it.
  EXPECT_EQ(ModelTokenizer::load(bare, llama_fixture::kStoriesTokenizer).vocab_size(), 512);
}

// The loaded weights are the trained model: a plain reference forward pass (tests/llama_reference.h)
// decoding greedily from BOS gives llama2.c's published stories260K sample, and the Hugging Face copy
// (permuted q/k rows, rotate-half) gives the same logits.
TEST(Llama2cCheckpoint, GreedyDecodingGivesThePublishedSample) {
  const ModelSource s = resolve_model(llama_fixture::kStoriesBin);
  const ModelWeights w = load_model(s);
  const ModelTokenizer t = ModelTokenizer::load(s, "");
  const std::string sample =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw "
      "a big, red ball.";
  const std::vector<int> ids = llama_reference::greedy(w, 45);
  const std::string text = t.decode(ids);
  ASSERT_GE(text.size(), sample.size()) << text;
  EXPECT_EQ(text.substr(0, sample.size()), sample) << text;
  EXPECT_EQ(t.encode(sample), std::vector<int>(ids.begin(), ids.begin() + t.encode(sample).size()))
      << "the sample re-encodes to the generated ids";

  const ModelWeights hf = load_model(llama_fixture::write_hf_stories("hf_logits").string());
  const auto a = llama_reference::logits(w, ids), b = llama_reference::logits(hf, ids);
  EXPECT_LE((a - b).cwiseAbs().maxCoeff(), 1e-12 * a.cwiseAbs().maxCoeff());
  EXPECT_GT(a.cwiseAbs().maxCoeff(), 1.0);
}


// The forward pass `forward` and `measure` use (the library's maps: RoPE, grouped K/V heads, SwiGLU,
// RMSNorm) decodes the published sample through its logits, agrees with the independent reference
// pass, and the Hugging Face copy gives the same taps as the .bin to 1e-12.
TEST(LlamaForward, MapsDecodeThePublishedSampleAndBothFormatsAgree) {
  const ModelSource s = resolve_model(llama_fixture::kStoriesBin);
  const ModelWeights w = load_model(s);
  const ModelTokenizer t = ModelTokenizer::load(s, "");
  ForwardOptions options;
  options.logits = true;
  std::vector<int> ids{1};
  for (int step = 0; step < 45; ++step) {
    const MatrixD logits = run_forward(w, ids, options).logits;
    ASSERT_EQ(logits.rows(), static_cast<Index>(ids.size()));
    Eigen::Index best;
    logits.row(logits.rows() - 1).maxCoeff(&best);
    ids.push_back(static_cast<int>(best));
  }
  const std::string sample =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw "
      "a big, red ball.";
  const std::string text = t.decode(ids);
  ASSERT_GE(text.size(), sample.size()) << text;
  EXPECT_EQ(text.substr(0, sample.size()), sample) << text;

  const ForwardResult bin = run_forward(w, ids, options);
  const MatrixD reference = llama_reference::logits(w, ids);
  EXPECT_LE((bin.logits - reference).cwiseAbs().maxCoeff(), 1e-12 * reference.cwiseAbs().maxCoeff());

  const ModelWeights hf_weights = load_model(llama_fixture::write_hf_stories("hf_taps").string());
  const ForwardResult hf = run_forward(hf_weights, ids, options);
  ASSERT_EQ(hf.layers.size(), bin.layers.size());
  auto close = [](const MatrixD& a, const MatrixD& b) {
    return (a - b).cwiseAbs().maxCoeff() <= 1e-12 * std::max(1.0, a.cwiseAbs().maxCoeff());
  };
  for (std::size_t l = 0; l < bin.layers.size(); ++l) {
    EXPECT_TRUE(close(bin.layers[l].block_in, hf.layers[l].block_in)) << "layer " << l;
    EXPECT_TRUE(close(bin.layers[l].attn_in, hf.layers[l].attn_in)) << "layer " << l;
    EXPECT_TRUE(close(bin.layers[l].attn_out, hf.layers[l].attn_out)) << "layer " << l;
  }
  EXPECT_TRUE(close(bin.hidden, hf.hidden));
  EXPECT_TRUE(close(bin.logits, hf.logits));
}

}  // namespace
