// Loading GPT-2 and BERT checkpoints written here in Hugging Face's layout: key prefixes, LayerNorm
// namings, dtypes, the Conv1D → nn.Linear slicing, malformed files, the cache, random init.
#include <cstdlib>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "bytes_support.h"
#include "common/error.h"
#include "error_support.h"
#include "models/config.h"
#include "models/weights.h"
#include "models_fixture.h"

namespace {

using namespace lipattn;
using namespace lipattn::models;
using namespace lipattn::testing;  // error_of, read_bytes, write_bytes, u64_le
using fixture::Checkpoint;
using io::DType;
namespace fs = std::filesystem;

const std::vector<DType> kAllDtypes{DType::F64, DType::F32, DType::F16, DType::BF16};

TEST(ModelConfig, ParsesGpt2AndBert) {
  const Checkpoint g = fixture::make({});
  const ModelConfig c = parse_config(g.config, "config.json");
  EXPECT_EQ(c.type, ModelType::Gpt2);
  EXPECT_EQ(c.hidden_size, 16);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.head_dim(), 4);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.vocab_size, 50);
  EXPECT_EQ(c.max_positions, 32);
  EXPECT_EQ(c.activation, Activation::GeluTanh);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_TRUE(c.causal());

  fixture::Options bo;
  bo.type = "bert";
  const ModelConfig b = parse_config(fixture::make(bo).config, "config.json");
  EXPECT_EQ(b.type, ModelType::Bert);
  EXPECT_EQ(b.activation, Activation::GeluErf);
  EXPECT_DOUBLE_EQ(b.layer_norm_eps, 1e-12);
  EXPECT_EQ(b.type_vocab_size, 2);
  EXPECT_FALSE(b.causal());
  bo.is_decoder = true;
  EXPECT_TRUE(parse_config(fixture::make(bo).config, "config.json").causal());

  // GPT-2's n_inner null means 4·d, as transformers reads it.
  auto j = g.config;
  j["n_inner"] = nullptr;
  EXPECT_EQ(parse_config(j, "c").intermediate_size, 64);
}

TEST(ModelConfig, RejectsWhatItCannotRun) {
  auto j = fixture::make({}).config;
  j["model_type"] = "t5";  // (llama is read since issue 14: tests/models_llama_test.cpp)
  std::string m = error_of([&] { parse_config(j, "dir/config.json"); });
  EXPECT_NE(m.find("dir/config.json"), std::string::npos) << m;
  EXPECT_NE(m.find("t5"), std::string::npos) << m;
  EXPECT_NE(m.find("not supported"), std::string::npos) << m;

  j.erase("model_type");
  m = error_of([&] { parse_config(j, "config.json"); });
  EXPECT_NE(m.find("model_type"), std::string::npos) << m;

  j = fixture::make({}).config;
  j["n_head"] = 5;
  m = error_of([&] { parse_config(j, "config.json"); });
  EXPECT_NE(m.find("multiple of the number of heads"), std::string::npos) << m;

  j = fixture::make({}).config;
  j["n_embd"] = "sixteen";
  m = error_of([&] { parse_config(j, "config.json"); });
  EXPECT_NE(m.find("n_embd"), std::string::npos) << m;

  j = fixture::make({}).config;
  j["activation_function"] = "mish";
  m = error_of([&] { parse_config(j, "config.json"); });
  EXPECT_NE(m.find("mish"), std::string::npos) << m;

  fixture::Options bo;
  bo.type = "bert";
  j = fixture::make(bo).config;
  j["position_embedding_type"] = "relative_key";
  m = error_of([&] { parse_config(j, "config.json"); });
  EXPECT_NE(m.find("relative_key"), std::string::npos) << m;
}

TEST(ModelConfig, PublishedShapes) {
  const ModelConfig g = published_config("gpt2");
  EXPECT_EQ(g.hidden_size, 768);
  EXPECT_EQ(g.num_heads, 12);
  EXPECT_EQ(g.num_layers, 12);
  EXPECT_EQ(g.intermediate_size, 3072);
  EXPECT_EQ(g.vocab_size, 50257);
  EXPECT_EQ(g.max_positions, 1024);
  const ModelConfig b = published_config("bert-base-uncased");
  EXPECT_EQ(b.hidden_size, 768);
  EXPECT_EQ(b.intermediate_size, 3072);
  EXPECT_EQ(b.vocab_size, 30522);
  EXPECT_EQ(b.max_positions, 512);
  EXPECT_EQ(b.type_vocab_size, 2);
  EXPECT_DOUBLE_EQ(b.layer_norm_eps, 1e-12);
  EXPECT_NE(error_of([] { published_config("llama"); }).find("random:gpt2"), std::string::npos);
}

// Every loaded parameter equals the stored tensor it comes from, read back in nn.Linear layout.
void expect_gpt2_matches(const ModelWeights& w, const Checkpoint& c) {
  const auto& o = c.options;
  const int d = o.d;
  ASSERT_EQ(w.layers.size(), static_cast<std::size_t>(o.layers));
  ASSERT_EQ(w.token_embeddings.rows(), o.vocab);
  ASSERT_EQ(w.token_embeddings.cols(), d);
  ASSERT_EQ(w.position_embeddings.rows(), o.positions);
  for (int v = 0; v < o.vocab; ++v)
    for (int j = 0; j < d; ++j) ASSERT_EQ(w.token_embeddings(v, j), c("wte.weight", v, j));
  for (int p = 0; p < o.positions; ++p)
    for (int j = 0; j < d; ++j) ASSERT_EQ(w.position_embeddings(p, j), c("wpe.weight", p, j));
  for (int l = 0; l < o.layers; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    const auto& L = w.layers[l];
    const auto& a = L.attention;
    EXPECT_EQ(a.heads, o.heads);
    EXPECT_TRUE(a.causal);
    ASSERT_EQ(a.w_q.rows(), d);
    ASSERT_EQ(a.w_q.cols(), d);
    ASSERT_EQ(a.w_o.rows(), d);
    for (int out = 0; out < d; ++out) {
      for (int in = 0; in < d; ++in) {
        // Conv1D weight (in, out) = [d, 3d]: Q, K, V are its column blocks.
        ASSERT_EQ(a.w_q(out, in), c(h + "attn.c_attn.weight", in, out));
        ASSERT_EQ(a.w_k(out, in), c(h + "attn.c_attn.weight", in, d + out));
        ASSERT_EQ(a.w_v(out, in), c(h + "attn.c_attn.weight", in, 2 * d + out));
        ASSERT_EQ(a.w_o(out, in), c(h + "attn.c_proj.weight", in, out));
      }
      ASSERT_EQ(a.b_q(out), c(h + "attn.c_attn.bias", out));
      ASSERT_EQ(a.b_k(out), c(h + "attn.c_attn.bias", d + out));
      ASSERT_EQ(a.b_v(out), c(h + "attn.c_attn.bias", 2 * d + out));
      ASSERT_EQ(a.b_o(out), c(h + "attn.c_proj.bias", out));
      ASSERT_EQ(L.attention_norm.gamma(out), c(h + "ln_1.weight", out));
      ASSERT_EQ(L.attention_norm.beta(out), c(h + "ln_1.bias", out));
      ASSERT_EQ(L.mlp_norm.gamma(out), c(h + "ln_2.weight", out));
      ASSERT_EQ(L.mlp_norm.beta(out), c(h + "ln_2.bias", out));
    }
    EXPECT_DOUBLE_EQ(L.attention_norm.eps, 1e-5);
    ASSERT_EQ(L.mlp.w_in.rows(), o.inner);
    ASSERT_EQ(L.mlp.w_in.cols(), d);
    ASSERT_EQ(L.mlp.w_out.rows(), d);
    ASSERT_EQ(L.mlp.w_out.cols(), o.inner);
    for (int i = 0; i < o.inner; ++i)
      for (int j = 0; j < d; ++j) {
        ASSERT_EQ(L.mlp.w_in(i, j), c(h + "mlp.c_fc.weight", j, i));
        ASSERT_EQ(L.mlp.w_out(j, i), c(h + "mlp.c_proj.weight", i, j));
      }
  }
  ASSERT_TRUE(w.final_norm.has_value());
  for (int j = 0; j < d; ++j) ASSERT_EQ(w.final_norm->gamma(j), c("ln_f.weight", j));
  EXPECT_FALSE(w.embedding_norm.has_value());
}

TEST(ModelLoading, Gpt2BothPrefixesEveryDtype) {
  for (const std::string prefix : {"", "transformer."}) {
    for (DType dtype : kAllDtypes) {
      fixture::Options o;
      o.prefix = prefix;
      const Checkpoint c = fixture::make(o);
      const fs::path dir = fixture::write(c, dtype, "gpt2");
      SCOPED_TRACE("prefix '" + prefix + "' dtype " + io::to_string(dtype));
      const ModelWeights w = load_model(dir.string());
      expect_gpt2_matches(w, c);
      EXPECT_TRUE(w.complete());
      fs::remove_all(dir);
    }
  }
}

TEST(ModelLoading, BertPrefixesLayerNormNamingsDtypes) {
  for (const std::string prefix : {"", "bert."}) {
    for (bool gamma_beta : {false, true}) {
      for (DType dtype : {DType::F32, DType::F16, DType::BF16}) {
        fixture::Options o;
        o.type = "bert";
        o.prefix = prefix;
        o.gamma_beta = gamma_beta;
        const Checkpoint c = fixture::make(o);
        if (gamma_beta) {
          ASSERT_EQ(c.stored_name.at("embeddings.LayerNorm.weight"), prefix + "embeddings.LayerNorm.gamma");
        }
        const fs::path dir = fixture::write(c, dtype, "bert");
        SCOPED_TRACE("prefix '" + prefix + "' gamma/beta " + std::to_string(gamma_beta) + " dtype " +
                     io::to_string(dtype));
        const ModelWeights w = load_model(dir.string());
        const int d = o.d;
        ASSERT_EQ(w.layers.size(), 2u);
        ASSERT_TRUE(w.embedding_norm.has_value());
        EXPECT_FALSE(w.final_norm.has_value());
        for (int j = 0; j < d; ++j) {
          ASSERT_EQ(w.token_type_embedding(j), c("embeddings.token_type_embeddings.weight", 0, j));
          ASSERT_EQ(w.embedding_norm->gamma(j), c("embeddings.LayerNorm.weight", j));
          ASSERT_EQ(w.embedding_norm->beta(j), c("embeddings.LayerNorm.bias", j));
        }
        EXPECT_DOUBLE_EQ(w.embedding_norm->eps, 1e-12);
        for (int l = 0; l < 2; ++l) {
          const std::string p = "encoder.layer." + std::to_string(l) + ".";
          const auto& L = w.layers[l];
          EXPECT_FALSE(L.attention.causal);
          for (int out = 0; out < d; ++out) {
            for (int in = 0; in < d; ++in) {
              ASSERT_EQ(L.attention.w_q(out, in), c(p + "attention.self.query.weight", out, in));
              ASSERT_EQ(L.attention.w_k(out, in), c(p + "attention.self.key.weight", out, in));
              ASSERT_EQ(L.attention.w_v(out, in), c(p + "attention.self.value.weight", out, in));
              ASSERT_EQ(L.attention.w_o(out, in), c(p + "attention.output.dense.weight", out, in));
            }
            ASSERT_EQ(L.attention.b_v(out), c(p + "attention.self.value.bias", out));
            ASSERT_EQ(L.attention_norm.gamma(out), c(p + "attention.output.LayerNorm.weight", out));
            ASSERT_EQ(L.attention_norm.beta(out), c(p + "attention.output.LayerNorm.bias", out));
            ASSERT_EQ(L.mlp_norm.gamma(out), c(p + "output.LayerNorm.weight", out));
          }
          ASSERT_EQ(L.mlp.w_in.rows(), o.inner);
          ASSERT_EQ(L.mlp.w_in(3, 5), c(p + "intermediate.dense.weight", 3, 5));
          ASSERT_EQ(L.mlp.w_out(5, 3), c(p + "output.dense.weight", 5, 3));
        }
        fs::remove_all(dir);
      }
    }
  }
}

TEST(ModelLoading, BertDecoderAndForcedCausal) {
  fixture::Options o;
  o.type = "bert";
  o.is_decoder = true;
  const fs::path dir = fixture::write(fixture::make(o), DType::F32, "bertdec");
  EXPECT_TRUE(load_model(dir.string()).layers[1].attention.causal);
  fs::remove_all(dir);

  o.is_decoder = false;
  const fs::path enc = fixture::write(fixture::make(o), DType::F32, "bertenc");
  EXPECT_FALSE(load_model(enc.string()).layers[0].attention.causal);
  LoadOptions forced;
  forced.force_causal = true;
  const ModelWeights w = load_model(enc.string(), forced);
  EXPECT_TRUE(w.layers[0].attention.causal);
  EXPECT_TRUE(w.config.causal());
  fs::remove_all(enc);
}

TEST(ModelLoading, PartialLoadAndListing) {
  fixture::Options o;
  o.type = "bert";
  o.prefix = "bert.";
  const Checkpoint c = fixture::make(o);
  const fs::path dir = fixture::write(c, DType::F32, "list");
  LoadOptions first;
  first.layers = 1;
  const ModelWeights w = load_model(dir.string(), first);
  EXPECT_EQ(w.layers.size(), 1u);
  EXPECT_FALSE(w.complete());

  const auto listing = list_tensors(resolve_model(dir.string()));
  EXPECT_EQ(listing.size(), c.tensors.size());
  bool saw_pooler = false, saw_query = false;
  for (const auto& t : listing) {
    EXPECT_EQ(t.dtype, "F32");
    EXPECT_EQ(t.file, "model.safetensors");
    if (t.name == "bert.pooler.dense.weight") {
      saw_pooler = true;
      EXPECT_EQ(t.role, "");  // ignored
    }
    if (t.name == "bert.encoder.layer.1.attention.self.query.weight") {
      saw_query = true;
      EXPECT_EQ(t.role, "encoder.layer.1.attention.self.query.weight");
      EXPECT_EQ(t.shape, (std::vector<std::int64_t>{16, 16}));
    }
  }
  EXPECT_TRUE(saw_pooler);
  EXPECT_TRUE(saw_query);
  fs::remove_all(dir);
}

// ---- malformed checkpoints -----------------------------------------------------------------------

void write_raw(const fs::path& path, const std::string& header, std::size_t data_bytes, std::uint64_t declared) {
  write_bytes(path, u64_le(declared) + header + std::string(data_bytes, '\0'));
}

TEST(ModelLoading, MalformedCheckpointsEachSayWhatIsWrong) {
  const Checkpoint c = fixture::make({});
  const fs::path dir = fixture::write(c, DType::F32, "bad");
  const fs::path file = dir / "model.safetensors";
  const auto size = fs::file_size(file);

  // Truncated: the last tensor's bytes are cut off.
  fs::resize_file(file, size - 100);
  std::string m = error_of([&] { load_model(dir.string()); });
  EXPECT_NE(m.find(file.string()), std::string::npos) << m;
  EXPECT_NE(m.find("outside the data area"), std::string::npos) << m;

  // Header length larger than the file.
  write_raw(file, "{}", 0, 1000);
  m = error_of([&] { load_model(dir.string()); });
  EXPECT_NE(m.find("header too long"), std::string::npos) << m;

  // Offsets beyond the data area of an otherwise sound file.
  const std::string h1 = R"({"wte.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                         R"("wpe.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})";
  write_raw(file, h1, 16, h1.size());
  m = error_of([&] { load_model(dir.string()); });
  EXPECT_NE(m.find("wpe.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("[16, 32]"), std::string::npos) << m;

  fs::remove_all(dir);

  // A needed tensor stored in a dtype lipattn does not read. The file itself is sound (checkpoints
  // carry I64 buffers such as BERT's position_ids), so opening succeeds and the error comes when the
  // loader reads the tensor. F64 and I64 are both 8 bytes, so relabelling wte.weight in the header
  // of an F64 checkpoint keeps every offset valid.
  const fs::path ints = fixture::write(c, DType::F64, "i64");
  const fs::path ints_file = ints / "model.safetensors";
  {
    std::string bytes = read_bytes(ints_file);
    const std::string f64_entry = R"("wte.weight":{"dtype":"F64")";
    const auto at = bytes.find(f64_entry);
    ASSERT_NE(at, std::string::npos);
    bytes.replace(at + f64_entry.size() - 4, 3, "I64");
    write_bytes(ints_file, bytes);
  }
  // Opening the file is fine, and inspect lists the tensor with its stored dtype.
  bool listed = false;
  for (const auto& t : list_tensors(resolve_model(ints.string()))) {
    if (t.name == "wte.weight") {
      listed = true;
      EXPECT_EQ(t.dtype, "I64");
    }
  }
  EXPECT_TRUE(listed);
  m = error_of([&] { load_model(ints.string()); });
  EXPECT_NE(m.find(ints_file.string()), std::string::npos) << m;
  EXPECT_NE(m.find("'wte.weight'"), std::string::npos) << m;
  EXPECT_NE(m.find("I64"), std::string::npos) << m;
  EXPECT_NE(m.find("lipattn reads only F64, F32, F16 and BF16"), std::string::npos) << m;
  fs::remove_all(ints);

  // A tensor missing.
  const fs::path missing = fixture::write(c, DType::F32, "missing", {"h.1.mlp.c_fc.bias"});
  m = error_of([&] { load_model(missing.string()); });
  EXPECT_NE(m.find("'h.1.mlp.c_fc.bias' is missing"), std::string::npos) << m;
  EXPECT_NE(m.find("transformer.h.1.mlp.c_fc.bias"), std::string::npos) << m;  // where it looked
  fs::remove_all(missing);

  // A shape that disagrees with config.json: the config says n_inner 32, the file holds 64.
  Checkpoint wrong = c;
  wrong.config["n_inner"] = 32;
  const fs::path mismatch = fixture::write(wrong, DType::F32, "shape");
  m = error_of([&] { load_model(mismatch.string()); });
  EXPECT_NE(m.find("h.0.mlp.c_fc.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("[16, 64]"), std::string::npos) << m;
  EXPECT_NE(m.find("needs [16, 32]"), std::string::npos) << m;
  fs::remove_all(mismatch);

  // Unknown model type (llama is read since issue 14: tests/models_llama_test.cpp).
  Checkpoint t5 = c;
  t5.config["model_type"] = "t5";
  const fs::path unknown = fixture::write(t5, DType::F32, "t5");
  m = error_of([&] { load_model(unknown.string()); });
  EXPECT_NE(m.find("model_type \"t5\" is not supported"), std::string::npos) << m;
  fs::remove_all(unknown);
}

TEST(ModelLoading, MissingFilesSayHowToGetThem) {
  const fs::path dir = fixture::temp_dir("empty");
  std::string m = error_of([&] { resolve_model(dir.string()); });
  EXPECT_NE(m.find("no config.json"), std::string::npos) << m;
  EXPECT_NE(m.find("huggingface-cli download"), std::string::npos) << m;

  fixture::write_config(dir, fixture::make({}).config);
  std::ofstream(dir / "pytorch_model.bin") << "x";
  m = error_of([&] { resolve_model(dir.string()); });
  EXPECT_NE(m.find("pytorch_model.bin"), std::string::npos) << m;
  EXPECT_NE(m.find("safe_serialization=True"), std::string::npos) << m;
  fs::remove_all(dir);

  m = error_of([] { resolve_model("random:nothing"); });
  EXPECT_NE(m.find("random:gpt2"), std::string::npos) << m;
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ModelLoading, ResolvesNamesInTheHuggingFaceCache) {
  const fs::path home = fixture::temp_dir("hfhome");
  ScopedEnv hf_home("HF_HOME", home.string());
  ScopedEnv hub_cache("HF_HUB_CACHE", "");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(huggingface_hub_cache(), home / "hub");

  std::string m = error_of([] { resolve_model("acme/tiny-gpt2"); });
  EXPECT_NE(m.find("models--acme--tiny-gpt2"), std::string::npos) << m;
  EXPECT_NE(m.find("huggingface-cli download acme/tiny-gpt2"), std::string::npos) << m;

  const Checkpoint c = fixture::make({});
  const fs::path written = fixture::write(c, DType::F32, "cached");
  const fs::path repo = home / "hub" / "models--acme--tiny-gpt2";
  // Two snapshots; refs/main names the one to use.
  for (const char* rev : {"0000old", "1111new"}) {
    fs::create_directories(repo / "snapshots" / rev);
    fs::copy_file(written / "config.json", repo / "snapshots" / rev / "config.json");
  }
  fs::copy_file(written / "model.safetensors", repo / "snapshots" / "1111new" / "model.safetensors");
  fs::create_directories(repo / "refs");
  std::ofstream(repo / "refs" / "main") << "1111new";
  const ModelSource s = resolve_model("acme/tiny-gpt2");
  EXPECT_EQ(s.folder, repo / "snapshots" / "1111new");
  expect_gpt2_matches(load_model(s), c);

  // The hub's organisation names are found from the bare name too.
  const fs::path org = home / "hub" / "models--openai-community--gpt2tiny" / "snapshots" / "abc";
  fs::create_directories(org);
  fs::copy_file(written / "config.json", org / "config.json");
  fs::copy_file(written / "model.safetensors", org / "model.safetensors");
  EXPECT_EQ(resolve_model("gpt2tiny").folder, org);
  fs::remove_all(home);
  fs::remove_all(written);
}

// ---- random init -----------------------------------------------------------------------------------

double mean_of(const MatrixD& m) { return m.mean(); }
double std_of(const MatrixD& m) { return std::sqrt((m.array() - m.mean()).square().mean()); }

TEST(RandomInit, FollowsTransformersInitWeights) {
  fixture::Options o;
  o.d = 64;
  o.heads = 4;
  o.layers = 8;
  o.inner = 256;
  o.vocab = 400;
  o.positions = 128;
  const ModelConfig g = parse_config(fixture::make(o).config, "config.json");
  const ModelWeights w = random_model(g, 7);
  // N(0, 0.02²) for c_attn, c_fc, wte, wpe; N(0, (0.02/√(2·8))²) = N(0, 0.005²) for both c_proj.
  EXPECT_NEAR(std_of(w.token_embeddings), 0.02, 0.02 * 0.01);
  EXPECT_NEAR(mean_of(w.token_embeddings), 0.0, 0.001);
  EXPECT_NEAR(std_of(w.position_embeddings), 0.02, 0.02 * 0.03);
  MatrixD qkv(3 * 64, 64);
  qkv << w.layers[3].attention.w_q, w.layers[3].attention.w_k, w.layers[3].attention.w_v;
  EXPECT_NEAR(std_of(qkv), 0.02, 0.02 * 0.04);
  EXPECT_NEAR(std_of(w.layers[3].mlp.w_in), 0.02, 0.02 * 0.03);
  EXPECT_NEAR(std_of(w.layers[3].attention.w_o), 0.005, 0.005 * 0.06);
  EXPECT_NEAR(std_of(w.layers[3].mlp.w_out), 0.005, 0.005 * 0.03);
  for (const auto& L : w.layers) {
    EXPECT_EQ(L.attention.b_q.cwiseAbs().maxCoeff(), 0.0);
    EXPECT_EQ(L.attention.b_o.cwiseAbs().maxCoeff(), 0.0);
    EXPECT_EQ(L.mlp.b_in.cwiseAbs().maxCoeff(), 0.0);
    EXPECT_EQ((L.attention_norm.gamma.array() - 1.0).abs().maxCoeff(), 0.0);
    EXPECT_EQ(L.attention_norm.beta.cwiseAbs().maxCoeff(), 0.0);
    EXPECT_EQ((L.mlp_norm.gamma.array() - 1.0).abs().maxCoeff(), 0.0);
  }
  ASSERT_TRUE(w.final_norm);
  EXPECT_EQ((w.final_norm->gamma.array() - 1.0).abs().maxCoeff(), 0.0);

  // Seeded: the same seed gives the same weights, another seed others; a partial load draws the
  // same tensors as the full one.
  const ModelWeights again = random_model(g, 7);
  EXPECT_EQ(again.layers[5].attention.w_q, w.layers[5].attention.w_q);
  EXPECT_EQ(again.token_embeddings, w.token_embeddings);
  const ModelWeights other = random_model(g, 8);
  EXPECT_GT((other.layers[5].attention.w_q - w.layers[5].attention.w_q).norm(), 0.1);
  LoadOptions two;
  two.layers = 2;
  const ModelWeights partial = random_model(g, 7, two);
  EXPECT_EQ(partial.layers.size(), 2u);
  EXPECT_EQ(partial.layers[1].mlp.w_out, w.layers[1].mlp.w_out);
  EXPECT_FALSE(partial.final_norm);
  // Different tensors are not the same stream.
  EXPECT_GT((w.layers[0].attention.w_q - w.layers[1].attention.w_q).norm(), 0.1);
}

TEST(RandomInit, BertZeroesThePaddingRowAndReadsConfigFiles) {
  fixture::Options o;
  o.type = "bert";
  const fs::path dir = fixture::temp_dir("cfg");
  fixture::write_config(dir, fixture::make(o).config);
  const ModelSource s = resolve_model("random:" + (dir / "config.json").string());
  EXPECT_TRUE(s.random);
  EXPECT_EQ(s.config.type, ModelType::Bert);
  LoadOptions seeded;
  seeded.seed = 3;
  const ModelWeights w = load_model(s, seeded);
  EXPECT_EQ(w.token_embeddings.row(0).cwiseAbs().maxCoeff(), 0.0);  // pad_token_id 0
  EXPECT_GT(w.token_embeddings.row(1).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_EQ((w.embedding_norm->gamma.array() - 1.0).abs().maxCoeff(), 0.0);
  EXPECT_GT(w.token_type_embedding.cwiseAbs().maxCoeff(), 0.0);
  const auto listing = list_tensors(s);
  EXPECT_EQ(listing.front().name, "embeddings.word_embeddings.weight");
  EXPECT_EQ(listing.size(), 5u + 16u * 2u);  // 3 embeddings + LN pair, 16 tensors per layer
  fs::remove_all(dir);

  const ModelSource g = resolve_model("random:gpt2");
  EXPECT_EQ(g.config.hidden_size, 768);
  EXPECT_EQ(checkpoint_layout(g.config).size(), 2u + 12u * 12u + 2u);  // wte, wpe, 12 per block, ln_f
}

}  // namespace
