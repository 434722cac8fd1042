// The forward pass against a plain-loop reference (tests/models_fixture.h), causality, no dropout,
// per-head slicing, the blocks' LayerSpecs, and measure_model against a finite-difference Jacobian.
#include <cmath>
#include <cstdlib>

#include <gtest/gtest.h>

#include "attention/layer.h"
#include "common/error.h"
#include "error_support.h"
#include "models/blocks.h"
#include "models/forward.h"
#include "models/measure_model.h"
#include "models/tokenizer.h"
#include "models/weights.h"
#include "models_fixture.h"

namespace {

using namespace lipattn;
using namespace lipattn::models;
using namespace lipattn::testing;  // error_of
using fixture::Checkpoint;
using fixture::Mat;
namespace fs = std::filesystem;

// max |a − b| / max(1, max |b|)
double relative_gap(const MatrixD& a, const Mat& b) {
  EXPECT_EQ(a.rows(), static_cast<Index>(b.size()));
  double gap = 0, scale = 1;
  for (Index i = 0; i < a.rows(); ++i) {
    EXPECT_EQ(a.cols(), static_cast<Index>(b[i].size()));
    for (Index j = 0; j < a.cols(); ++j) {
      gap = std::max(gap, std::abs(a(i, j) - b[i][j]));
      scale = std::max(scale, std::abs(b[i][j]));
    }
  }
  return gap / scale;
}

Mat to_mat(const MatrixD& m) {
  Mat out(m.rows(), std::vector<double>(m.cols()));
  for (Index i = 0; i < m.rows(); ++i)
    for (Index j = 0; j < m.cols(); ++j) out[i][j] = m(i, j);
  return out;
}

struct Model {
  Checkpoint checkpoint;
  fs::path dir;
  ModelWeights weights;
};

Model make_model(fixture::Options o, const std::string& tag) {
  Model m;
  m.checkpoint = fixture::make(o);
  m.dir = fixture::write(m.checkpoint, io::DType::F32, tag);
  m.weights = load_model(m.dir.string());
  return m;
}

const std::vector<int> kIds{3, 17, 49, 0, 22, 8, 8, 31, 5, 12};

void expect_matches_reference(const ForwardResult& r, const fixture::Reference& ref, double tol) {
  ASSERT_EQ(r.layers.size(), ref.block_in.size());
  for (std::size_t l = 0; l < r.layers.size(); ++l) {
    SCOPED_TRACE("layer " + std::to_string(l));
    EXPECT_LT(relative_gap(r.layers[l].block_in, ref.block_in[l]), tol);
    EXPECT_LT(relative_gap(r.layers[l].attn_in, ref.attn_in[l]), tol);
    EXPECT_LT(relative_gap(r.layers[l].attn_out, ref.attn_out[l]), tol);
  }
  EXPECT_LT(relative_gap(r.hidden, ref.hidden), tol);
}

TEST(ModelForward, Gpt2MatchesThePlainComputation) {
  const Model m = make_model({}, "fwd_gpt2");
  const auto ref = fixture::reference_forward(m.checkpoint, kIds);
  expect_matches_reference(run_forward(m.weights, kIds), ref, 1e-12);
  ForwardOptions f32;
  f32.precision = Precision::F32;
  expect_matches_reference(run_forward(m.weights, kIds, f32), ref, 2e-5);
  fs::remove_all(m.dir);
}

TEST(ModelForward, BertMatchesThePlainComputation) {
  fixture::Options o;
  o.type = "bert";
  o.prefix = "bert.";
  const Model m = make_model(o, "fwd_bert");
  const auto ref = fixture::reference_forward(m.checkpoint, kIds);
  expect_matches_reference(run_forward(m.weights, kIds), ref, 1e-12);
  ForwardOptions f32;
  f32.precision = Precision::F32;
  expect_matches_reference(run_forward(m.weights, kIds, f32), ref, 2e-5);

  // Decoder mode, from the config or forced, is causal self-attention.
  LoadOptions forced;
  forced.force_causal = true;
  const auto causal_ref = fixture::reference_forward(m.checkpoint, kIds, true);
  expect_matches_reference(run_forward(load_model(m.dir.string(), forced), kIds), causal_ref, 1e-12);
  o.is_decoder = true;
  const Model dec = make_model(o, "fwd_bertdec");
  expect_matches_reference(run_forward(dec.weights, kIds), fixture::reference_forward(dec.checkpoint, kIds), 1e-12);
  // The two references differ, so the comparison above can tell them apart.
  EXPECT_GT(relative_gap(run_forward(m.weights, kIds).hidden, causal_ref.hidden), 1e-3);
  fs::remove_all(m.dir);
  fs::remove_all(dec.dir);
}

TEST(ModelForward, Gpt2PrefixStatesDoNotSeeLaterTokens) {
  const Model m = make_model({}, "causal");
  const std::vector<int> prefix(kIds.begin(), kIds.begin() + 6);
  const ForwardResult short_run = run_forward(m.weights, prefix);
  const ForwardResult long_run = run_forward(m.weights, kIds);
  for (std::size_t l = 0; l < short_run.layers.size(); ++l) {
    for (auto tap : {&LayerTaps::block_in, &LayerTaps::attn_in, &LayerTaps::attn_out}) {
      const MatrixD& a = short_run.layers[l].*tap;
      const MatrixD& b = long_run.layers[l].*tap;
      EXPECT_LT((a - b.topRows(6)).cwiseAbs().maxCoeff(), 1e-13);
    }
  }
  EXPECT_LT((short_run.hidden - long_run.hidden.topRows(6)).cwiseAbs().maxCoeff(), 1e-13);

  // BERT (bidirectional) is the control: appending tokens changes earlier states.
  fixture::Options o;
  o.type = "bert";
  const Model bert = make_model(o, "bidir");
  const MatrixD a = run_forward(bert.weights, prefix).hidden;
  const MatrixD b = run_forward(bert.weights, kIds).hidden.topRows(6);
  EXPECT_GT((a - b).cwiseAbs().maxCoeff(), 1e-3);
  fs::remove_all(m.dir);
  fs::remove_all(bert.dir);
}

TEST(ModelForward, NoDropoutTwoRunsAreIdentical) {
  for (const char* type : {"gpt2", "bert"}) {
    fixture::Options o;
    o.type = type;
    const Model m = make_model(o, "twice");
    const ForwardResult a = run_forward(m.weights, kIds), b = run_forward(m.weights, kIds);
    EXPECT_EQ(a.hidden, b.hidden) << type;
    for (std::size_t l = 0; l < a.layers.size(); ++l) EXPECT_EQ(a.layers[l].attn_out, b.layers[l].attn_out) << type;
    fs::remove_all(m.dir);
  }
}

TEST(ModelForward, RejectsWindowsTheModelCannotRead) {
  const Model m = make_model({}, "limits");  // 32 positions, vocabulary of 50
  std::string msg = error_of([&] { run_forward(m.weights, std::vector<int>(33, 1)); });
  EXPECT_NE(msg.find("n = 33"), std::string::npos) << msg;
  EXPECT_NE(msg.find("32 positions"), std::string::npos) << msg;
  EXPECT_NO_THROW(run_forward(m.weights, std::vector<int>(32, 1)));
  msg = error_of([&] { run_forward(m.weights, {1, 50}); });
  EXPECT_NE(msg.find("token id 50"), std::string::npos) << msg;
  msg = error_of([&] { run_forward(m.weights, {}); });
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  fs::remove_all(m.dir);
}

TEST(ModelForward, StopsEarlyAtTheLayerAsked) {
  const Model m = make_model({}, "early");
  ForwardOptions first;
  first.last_layer = 0;
  const ForwardResult r = run_forward(m.weights, kIds, first);
  EXPECT_EQ(r.layers.size(), 1u);
  EXPECT_EQ(r.hidden.size(), 0);
  EXPECT_EQ(r.layers[0].attn_out, run_forward(m.weights, kIds).layers[0].attn_out);
  fs::remove_all(m.dir);
}

// ---- blocks and heads ------------------------------------------------------------------------

// Q, K, V (n × d) of a layer's attention, computed from the stored tensors.
struct Qkv {
  Mat Q, K, V;
};
Qkv qkv_of(const Checkpoint& c, int layer, const Mat& x) {
  const std::size_t n = x.size(), d = c.options.d;
  Qkv r;
  if (c.options.type == "gpt2") {
    const std::string h = "h." + std::to_string(layer) + ".";
    const Mat all = fixture::affine(c, x, h + "attn.c_attn.weight", h + "attn.c_attn.bias", true);
    r.Q = r.K = r.V = fixture::zeros(n, d);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j) {
        r.Q[i][j] = all[i][j];
        r.K[i][j] = all[i][d + j];
        r.V[i][j] = all[i][2 * d + j];
      }
  } else {
    const std::string p = "encoder.layer." + std::to_string(layer) + ".attention.self.";
    r.Q = fixture::affine(c, x, p + "query.weight", p + "query.bias", false);
    r.K = fixture::affine(c, x, p + "key.weight", p + "key.bias", false);
    r.V = fixture::affine(c, x, p + "value.weight", p + "value.bias", false);
  }
  return r;
}

TEST(ModelBlocks, EachHeadIsTheFullLayerRestrictedToIt) {
  for (const char* type : {"gpt2", "bert"}) {
    fixture::Options o;
    o.type = type;
    const Model m = make_model(o, "heads");
    const int layer = 1, k = o.d / o.heads;
    const MatrixD X = run_forward(m.weights, kIds).layers[layer].attn_in;
    const Mat x = to_mat(X);
    const Qkv t = qkv_of(m.checkpoint, layer, x);
    const bool causal = std::string(type) == "gpt2";
    const Mat concat = fixture::heads_concat(t.Q, t.K, t.V, o.heads, causal);
    const Block raw_block = causal ? Block::Attn : Block::Self;
    MatrixD sum_minus_bias = MatrixD::Zero(X.rows(), o.d);
    for (int h = 0; h < o.heads; ++h) {
      SCOPED_TRACE(std::string(type) + " head " + std::to_string(h));
      const LayerSpec spec = block_spec(m.weights, layer, raw_block, h);
      const MatrixD Y = build_map<double>(spec)->forward(X)->output;
      if (!causal) {
        // BertSelfAttention head h: columns h·k..(h+1)·k of the concatenated head outputs.
        Mat cols(X.rows(), std::vector<double>(k));
        for (Index i = 0; i < X.rows(); ++i)
          for (int j = 0; j < k; ++j) cols[i][j] = concat[i][h * k + j];
        EXPECT_LT(relative_gap(Y, cols), 1e-12);
      } else {
        // GPT-2 head h with its W_O block: O_h · c_proj.weight[h·k:(h+1)·k, :] + c_proj.bias.
        const std::string w = "h." + std::to_string(layer) + ".attn.c_proj.weight";
        Mat expected = fixture::zeros(X.rows(), o.d);
        for (Index i = 0; i < X.rows(); ++i)
          for (int out = 0; out < o.d; ++out) {
            double s = m.checkpoint("h." + std::to_string(layer) + ".attn.c_proj.bias", out);
            for (int j = 0; j < k; ++j) s += concat[i][h * k + j] * m.checkpoint(w, h * k + j, out);
            expected[i][out] = s;
          }
        EXPECT_LT(relative_gap(Y, expected), 1e-12);
        sum_minus_bias += Y.rowwise() - spec.attention.b_o.transpose();
      }
    }
    if (causal) {
      // The heads add up to the layer.
      const MatrixD full = run_forward(m.weights, kIds).layers[layer].attn_out;
      EXPECT_LT((sum_minus_bias.rowwise() + m.weights.layers[layer].attention.b_o.transpose() - full)
                    .cwiseAbs()
                    .maxCoeff(),
                1e-12);
    }
    fs::remove_all(m.dir);
  }
}

TEST(ModelBlocks, DefaultBlocksReproduceTheTappedOutputs) {
  for (const char* type : {"gpt2", "bert"}) {
    fixture::Options o;
    o.type = type;
    const Model m = make_model(o, "blocks");
    const ForwardResult r = run_forward(m.weights, kIds);
    const Block block = parse_block("", m.weights.config.type);
    EXPECT_EQ(to_string(block), std::string(type) == "gpt2" ? "attn" : "attention");
    for (int l = 0; l < o.layers; ++l) {
      const LayerSpec spec = block_spec(m.weights, l, block);
      const MatrixD Y = build_map<double>(spec)->forward(block_input(r.layers[l], block))->output;
      EXPECT_LT((Y - r.layers[l].attn_out).cwiseAbs().maxCoeff(), 1e-12) << type << " layer " << l;
    }
    fs::remove_all(m.dir);
  }
}

TEST(ModelBlocks, BlockNamesLayersAndHeadsAreChecked) {
  const Model m = make_model({}, "names");
  EXPECT_NE(error_of([] { parse_block("self", ModelType::Gpt2); }).find("'attn'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_block("ffn", ModelType::Bert); }).find("'self'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_block("ffn", ModelType::Bert); }).find("'stack'"), std::string::npos);
  EXPECT_EQ(parse_block("mlp", ModelType::Bert), Block::Mlp);  // the whole blocks exist in every family
  EXPECT_EQ(parse_block("model", ModelType::Llama), Block::Model);
  EXPECT_EQ(parse_block("self", ModelType::Bert), Block::Self);
  // The library names the field and its value; the CLI adds the flag (cli_models_test).
  EXPECT_NE(error_of([&] { block_spec(m.weights, 2, Block::Attn); }).find("layer 2"), std::string::npos);
  EXPECT_EQ(field_of([&] { block_spec(m.weights, 2, Block::Attn); }), "layer");
  EXPECT_NE(error_of([&] { block_spec(m.weights, 0, Block::Attn, 4); }).find("head 4"), std::string::npos);
  EXPECT_EQ(field_of([&] { block_spec(m.weights, 0, Block::Attn, 4); }), "head");
  EXPECT_NE(error_of([&] { block_spec(m.weights, 0, Block::Self); }).find("GPT-2"), std::string::npos);
  const LayerSpec bert_attention = [&] {
    fixture::Options o;
    o.type = "bert";
    const Model b = make_model(o, "names_bert");
    auto s = block_spec(b.weights, 0, Block::BertAttention);
    fs::remove_all(b.dir);
    return s;
  }();
  EXPECT_TRUE(bert_attention.residual);
  EXPECT_TRUE(bert_attention.post_norm.has_value());
  EXPECT_FALSE(bert_attention.pre_norm.has_value());
  EXPECT_DOUBLE_EQ(bert_attention.post_norm->eps, 1e-12);
  fs::remove_all(m.dir);
}

// ---- measure_model -------------------------------------------------------------------------------

// The block as a function of its input, from the stored tensors (no src/models code).
Mat block_reference(const Checkpoint& c, int layer, const std::string& block, const Mat& x) {
  const Qkv t = qkv_of(c, layer, x);
  const bool gpt2 = c.options.type == "gpt2";
  const Mat concat = fixture::heads_concat(t.Q, t.K, t.V, c.options.heads, gpt2);
  if (block == "self") return concat;
  if (gpt2) {
    const std::string h = "h." + std::to_string(layer) + ".attn.c_proj.";
    return fixture::affine(c, concat, h + "weight", h + "bias", true);
  }
  const std::string p = "encoder.layer." + std::to_string(layer) + ".attention.output.";
  const Mat s = fixture::affine(c, concat, p + "dense.weight", p + "dense.bias", false);
  return fixture::layer_norm(c, fixture::add(s, x), p + "LayerNorm", 1e-12);
}

// σ_max of the block's Jacobian at X by central differences and a dense SVD.
double finite_difference_norm(const Checkpoint& c, int layer, const std::string& block, const MatrixD& X) {
  const Index n = X.rows(), d = X.cols();
  const Index out_cols = static_cast<Index>(block_reference(c, layer, block, to_mat(X))[0].size());
  MatrixD J(n * out_cols, n * d);
  const double h = 1e-5;
  for (Index col = 0; col < n * d; ++col) {
    MatrixD plus = X, minus = X;
    plus(col / d, col % d) += h;
    minus(col / d, col % d) -= h;
    const Mat a = block_reference(c, layer, block, to_mat(plus)), b = block_reference(c, layer, block, to_mat(minus));
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j < out_cols; ++j) J(i * out_cols + j, col) = (a[i][j] - b[i][j]) / (2 * h);
  }
  return Eigen::JacobiSVD<Eigen::MatrixXd>(J).singularValues()(0);
}

TEST(MeasureModel, AgreesWithAFiniteDifferenceJacobian) {
  struct Case {
    const char* type;
    const char* block;
  };
  for (const Case& cs : {Case{"gpt2", ""}, Case{"bert", ""}, Case{"bert", "self"}}) {
    fixture::Options o;
    o.type = cs.type;
    const Model m = make_model(o, "measure");
    const std::vector<int> ids(kIds.begin(), kIds.begin() + 6);
    ModelMeasureRequest request;
    request.model = m.dir.string();
    request.layer = 1;
    request.block = cs.block;
    request.ids = ids;
    std::vector<nlohmann::json> records;
    measure_model(request, {}, Precision::F64, [&](const BlockMeasurement& b) { records.push_back(nlohmann::json(b)); });
    ASSERT_EQ(records.size(), 1u);
    const auto& r = records[0];
    const std::string block = std::string(cs.block).empty() ? (o.type == "gpt2" ? "attn" : "attention") : cs.block;
    SCOPED_TRACE(std::string(cs.type) + " " + block);
    EXPECT_EQ(r.at("model"), m.dir.string());
    EXPECT_EQ(r.at("layer"), 1);
    EXPECT_TRUE(r.at("head").is_null());
    EXPECT_EQ(r.at("block"), block);
    EXPECT_EQ(r.at("n"), 6);
    EXPECT_EQ(r.at("sample"), 0);
    for (const char* key : {"lipschitz", "lower", "matvecs", "converged", "seconds", "radius"})
      EXPECT_TRUE(r.contains(key)) << key;

    const MatrixD X = run_forward(m.weights, ids).layers[1].attn_in;
    EXPECT_NEAR(r.at("radius").get<double>(), std::sqrt(X.squaredNorm() / 6.0), 1e-12);
    const double expected = finite_difference_norm(m.checkpoint, 1, block, X);
    EXPECT_NEAR(r.at("lipschitz").get<double>(), expected, 1e-6 * expected);
    EXPECT_LE(r.at("lower").get<double>(), r.at("lipschitz").get<double>() * (1 + 1e-9));

    request.head = 2;
    records.clear();
    measure_model(request, {}, Precision::F64, [&](const BlockMeasurement& b) { records.push_back(nlohmann::json(b)); });
    EXPECT_EQ(records.at(0).at("head"), 2);
    const double one_head = records.at(0).at("lipschitz").get<double>();
    EXPECT_GT(one_head, 0);
    // BertSelfAttention's head h is a subset of its output coordinates: a row block of J.
    if (block == "self") {
      EXPECT_LE(one_head, expected * (1 + 1e-6));
    }
    fs::remove_all(m.dir);
  }
}

const fs::path kData = fs::path(LIPATTN_SOURCE_DIR) / ".." / "shared" / "data";

TEST(MeasureModel, CutsWindowsFromTextWithTheModelsTokenizer) {
  if (!fs::exists(kData / "gpt2" / "vocab.json")) GTEST_SKIP() << "no shared data at " << kData;
  // A tiny random GPT-2 with the real vocabulary size, so the real tokenizer's ids fit.
  fixture::Options o;
  o.vocab = 50257;
  o.positions = 64;
  const fs::path dir = fixture::temp_dir("text");
  fixture::write_config(dir, fixture::make(o).config);
  ModelMeasureRequest request;
  request.model = "random:" + (dir / "config.json").string();
  request.seed = 5;
  request.text_file = (kData / "text" / "carroll-alice.txt").string();
  request.tokenizer_dir = (kData / "gpt2").string();
  request.n = 8;
  request.samples = 3;
  std::vector<nlohmann::json> records;
  measure_model(request, {}, Precision::F64, [&](const BlockMeasurement& b) { records.push_back(nlohmann::json(b)); });
  ASSERT_EQ(records.size(), 3u);
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(records[s].at("sample"), s);
    EXPECT_EQ(records[s].at("n"), 8);
    EXPECT_GT(records[s].at("lipschitz").get<double>(), 0);
  }
  EXPECT_NE(records[0].at("radius"), records[1].at("radius"));  // different windows

  request.n = 40;
  request.samples = 1;
  request.layer = 0;
  std::string msg = error_of([&] {
    request.n = 65;
    measure_model(request, {}, Precision::F64, [](const BlockMeasurement&) {});
  });
  EXPECT_NE(msg.find("65"), std::string::npos) << msg;
  EXPECT_NE(msg.find("64 positions"), std::string::npos) << msg;
  msg = error_of([&] {
    request.n = 60;
    request.samples = 100000;
    measure_model(request, {}, Precision::F64, [](const BlockMeasurement&) {});
  });
  EXPECT_FALSE(msg.empty());
  msg = error_of([&] {
    request.samples = 1;
    request.layer = 2;
    measure_model(request, {}, Precision::F64, [](const BlockMeasurement&) {});
  });
  EXPECT_NE(msg.find("layer 2"), std::string::npos) << msg;
  EXPECT_EQ(field_of([&] { measure_model(request, {}, Precision::F64, [](const BlockMeasurement&) {}); }), "layer");
  fs::remove_all(dir);
}

TEST(ModelTokenizerDir, RandomModelsUseTheDataFolderOrAskForOne) {
  const ModelSource g = resolve_model("random:gpt2");
  EXPECT_EQ(tokenizer_dir(g, "", "/data"), fs::path("/data") / "gpt2");
  EXPECT_EQ(tokenizer_dir(g, "/mine", "/data"), fs::path("/mine"));
  EXPECT_EQ(tokenizer_dir(resolve_model("random:bert-base-uncased"), "", "/data"),
            fs::path("/data") / "bert-base-uncased");
  const std::string msg = error_of([&] { tokenizer_dir(g, "", ""); });
  EXPECT_NE(msg.find("tokenizer folder"), std::string::npos) << msg;
  EXPECT_EQ(field_of([&] { tokenizer_dir(g, "", ""); }), "tokenizer");
  if (fs::exists(kData / "bert-base-uncased" / "vocab.txt")) {
    const auto t = ModelTokenizer::load(ModelType::Bert, kData / "bert-base-uncased");
    EXPECT_EQ(t.encode("hello"), std::vector<int>{7592});
    EXPECT_EQ(t.vocab_size(), 30522);
  }
  if (fs::exists(kData / "gpt2" / "vocab.json")) {
    const auto t = ModelTokenizer::load(ModelType::Gpt2, kData / "gpt2");
    EXPECT_EQ(t.encode("Hello world"), (std::vector<int>{15496, 995}));
  }
}

}  // namespace
