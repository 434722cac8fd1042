// `lipattn reproduce --gpt2 DIR --bert DIR --text FILE` on small Hugging Face folders written here
// (tests/models_fixture.h: weights k/128 · scale, nothing like the N(0, 0.02²) random init, so a run
// that fell back to random:gpt2 would be caught), checked from outside the reproduce code path:
// `lipattn measure --model` on the same token ids, the fixture's plain-loop forward pass (no code of
// src/models), and the eigenvalues of A_h computed here from the stored tensors.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>
#include <sstream>

#include <fmt/core.h>

#include <Eigen/Eigenvalues>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bytes_support.h"
#include "cli_support.h"
#include "experiments/reproduce.h"
#include "models_fixture.h"

namespace lipattn {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::read_bytes;
using testing::run_cli;
using testing::scratch_dir;

const fs::path kShared = fs::path(LIPATTN_SOURCE_DIR) / ".." / "shared" / "data";
const fs::path kAlice = kShared / "text" / "carroll-alice.txt";

// Seven layers and eight heads so that layer 6 and head 7 exist; d = 64 keeps every job cheap;
// the full vocabularies so the real tokenizers' ids fit.
fixture::Checkpoint make_checkpoint(const std::string& type) {
  fixture::Options o;
  o.type = type;
  o.d = 64;
  o.heads = 8;
  o.layers = 7;
  o.inner = 128;
  o.vocab = type == "gpt2" ? 50257 : 30522;
  o.positions = 128;
  o.seed = type == "gpt2" ? 11 : 12;
  return fixture::make(o);
}

fs::path write_folder(const fixture::Checkpoint& c) {
  const fs::path dir = fixture::write(c, io::DType::F32, c.options.type);
  const std::vector<fs::path> files =
      c.options.type == "gpt2" ? std::vector<fs::path>{kShared / "gpt2" / "vocab.json", kShared / "gpt2" / "merges.txt"}
                               : std::vector<fs::path>{kShared / "bert-base-uncased" / "vocab.txt"};
  for (const auto& f : files) fs::copy_file(f, dir / f.filename());
  return dir;
}

std::vector<json> read_records(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// The last line of the output that parses as JSON.
json last_json_line(const std::string& out) {
  std::istringstream s(out);
  json last;
  for (std::string line; std::getline(s, line);) {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) last = j;
  }
  return last;
}

std::vector<int> tokenize(const fs::path& model) {
  const auto r = run_cli("tokenize --model " + model.string() + " --text " + kAlice.string() + " --json");
  EXPECT_EQ(r.code, 0) << r.err;
  return json::parse(r.out).get<std::vector<int>>();
}

std::vector<int> window_of(const std::vector<int>& tokens, const json& job) {
  const std::size_t start = job["start"].get<std::size_t>(), n = job["n"].get<std::size_t>();
  EXPECT_LE(start + n, tokens.size());
  return std::vector<int>(tokens.begin() + static_cast<std::ptrdiff_t>(start),
                          tokens.begin() + static_cast<std::ptrdiff_t>(start + n));
}

// `lipattn measure --model MODEL --layer L ... --ids ...`: the CLI's own path (measure_model).
double measure(const std::string& model, int layer, const std::string& extra, const std::vector<int>& ids) {
  std::string list;
  for (int id : ids) {
    if (!list.empty()) list += ',';
    list += std::to_string(id);
  }
  const auto r = run_cli("measure --model " + model + " --layer " + std::to_string(layer) + " " + extra + " --json --ids " +
                         list);
  EXPECT_EQ(r.code, 0) << r.err;
  const json j = last_json_line(r.out);
  EXPECT_TRUE(j.contains("lipschitz")) << r.out;
  return j.value("lipschitz", std::nan(""));
}

// √(mean_i ‖x_i‖²) of a plain-loop matrix.
double radius_of(const fixture::Mat& X) {
  double sum = 0;
  for (const auto& row : X)
    for (double v : row) sum += v * v;
  return std::sqrt(sum / static_cast<double>(X.size()));
}

// The record of `records` with this n and sample 0.
const json& record_at(const std::vector<json>& records, int n) {
  for (const auto& r : records)
    if (r["job"]["n"] == n && r["job"].value("sample", 0) == 0) return r;
  ADD_FAILURE() << "no record at n = " << n;
  static const json none = json::object();
  return none;
}

// The extreme real eigenvalues of A_h = scale · W_K,hᵀ W_Q,h (d × d, rank ≤ k) of GPT-2 head h from
// the stored Conv1D c_attn (in = d, out = 3d): its non-zero spectrum is that of scale · W_Q,h W_K,hᵀ
// (k × k), plus 0.
std::pair<double, double> gpt2_head_eigen_range(const fixture::Checkpoint& c, int layer, int head) {
  const int d = c.options.d, k = d / c.options.heads;
  const std::string w = "h." + std::to_string(layer) + ".attn.c_attn.weight";
  Eigen::MatrixXd Wq(k, d), Wk(k, d);
  for (int r = 0; r < k; ++r)
    for (int col = 0; col < d; ++col) {
      Wq(r, col) = c(w, col, head * k + r);
      Wk(r, col) = c(w, col, d + head * k + r);
    }
  const Eigen::MatrixXd M = Wq * Wk.transpose() / std::sqrt(static_cast<double>(k));
  const Eigen::VectorXcd ev = Eigen::EigenSolver<Eigen::MatrixXd>(M).eigenvalues();
  double lo = 0, hi = 0, top = 0;
  for (Eigen::Index i = 0; i < ev.size(); ++i) top = std::max(top, std::abs(ev(i)));
  for (Eigen::Index i = 0; i < ev.size(); ++i)
    if (std::abs(ev(i).imag()) <= 1e-10 * top) lo = std::min(lo, ev(i).real()), hi = std::max(hi, ev(i).real());
  return {lo, hi};
}

TEST(CliReproducePretrained, RunsThePaperProtocolOnTheGivenFolders) {
  const auto dir = scratch_dir("reproduce-pretrained");
  const fixture::Checkpoint gpt2 = make_checkpoint("gpt2"), bert = make_checkpoint("bert");
  const fs::path G = write_folder(gpt2), B = write_folder(bert);
  const auto out = dir / "out";
  const auto r = run_cli("reproduce --out " + out.string() + " --quick --gpt2 " + G.string() + " --bert " +
                         B.string() + " --text " + kAlice.string() +
                         " --only real-gpt2-l0 --only real-bert-l6-attention --only real-bert-decoder-l6"
                         " --only adv-gpt2-l0h0 --only bounds-real-gpt2-l0 --jobs 2 --no-progress");
  ASSERT_EQ(r.code, 0) << r.err;

  // The folders' own tokenizers cut the windows: GPT-2 reads Alice as 39,622 tokens, BERT as 36,705
  // with [CLS] and [SEP] (shared/README.md), so 36,703 without (windows are cut from running text).
  const std::vector<int> gpt2_tokens = tokenize(G), bert_tokens = tokenize(B);
  EXPECT_EQ(gpt2_tokens.size(), 39622u);
  EXPECT_EQ(bert_tokens.size(), 36703u);

  // (a) GPT-2 h[0].attn on ln_1's output, on the pretrained folder.
  {
    const auto records = read_records(out / "results" / "real-gpt2-l0.jsonl");
    ASSERT_EQ(records.size(), 14u);  // n = 2..98 step 16, 2 windows
    const json& rec = record_at(records, 50);
    EXPECT_EQ(rec["job"]["model"], G.string());
    EXPECT_EQ(rec["job"]["layer"], 0);
    EXPECT_EQ(rec["job"]["block"], "attn");
    EXPECT_EQ(rec["job"]["causal"], true);
    const std::vector<int> ids = window_of(gpt2_tokens, rec["job"]);
    const double L = rec["result"]["lipschitz"].get<double>();
    const double expected = measure(G.string(), 0, "--block attn", ids);
    EXPECT_NEAR(L, expected, 1e-8 * expected);
    // The input it measured is ln_1 of layer 0 on these ids, by the fixture's own forward pass.
    const double radius = radius_of(fixture::reference_forward(gpt2, ids).attn_in[0]);
    EXPECT_NEAR(rec["result"]["radius"].get<double>(), radius, 1e-10 * radius);
    // The same ids on random:gpt2 give another constant: the comparison above can fail.
    const double random = measure("random:gpt2", 0, "--block attn", ids);
    EXPECT_GT(std::abs(random - L), 1e-3 * L) << "random " << random << " pretrained " << L;
    std::cout << fmt::format("real-gpt2-l0, n = 50: reproduce {:.15g}, measure {:.15g}, random:gpt2 {:.6g}; radius "
                             "{:.15g} (reference forward {:.15g})\n",
                             L, expected, random, rec["result"]["radius"].get<double>(), radius);
  }

  // BertAttention of layer 6, encoder and truly causal decoder (every layer masked, not only the last).
  {
    const auto encoder = read_records(out / "results" / "real-bert-l6-attention.jsonl");
    const auto decoder = read_records(out / "results" / "real-bert-decoder-l6.jsonl");
    ASSERT_EQ(encoder.size(), 14u);
    ASSERT_EQ(decoder.size(), 14u);
    const json& enc = record_at(encoder, 34);
    const json& dec = record_at(decoder, 34);
    for (const json* rec : {&enc, &dec}) {
      EXPECT_EQ((*rec)["job"]["model"], B.string());
      EXPECT_EQ((*rec)["job"]["layer"], 6);
      EXPECT_EQ((*rec)["job"]["block"], "attention");
    }
    EXPECT_EQ(enc["job"]["causal"], false);
    EXPECT_EQ(dec["job"]["causal"], true);
    const std::vector<int> enc_ids = window_of(bert_tokens, enc["job"]), dec_ids = window_of(bert_tokens, dec["job"]);
    const double enc_expected = measure(B.string(), 6, "--block attention", enc_ids);
    const double dec_expected = measure(B.string(), 6, "--block attention --causal", dec_ids);
    EXPECT_NEAR(enc["result"]["lipschitz"].get<double>(), enc_expected, 1e-8 * enc_expected);
    EXPECT_NEAR(dec["result"]["lipschitz"].get<double>(), dec_expected, 1e-8 * dec_expected);
    // Layer 6's input: the encoder's from unmasked layers 0..5, the decoder's from masked ones.
    const double enc_radius = radius_of(fixture::reference_forward(bert, enc_ids).attn_in[6]);
    const double dec_radius = radius_of(fixture::reference_forward(bert, dec_ids, true).attn_in[6]);
    const double dec_radius_unmasked = radius_of(fixture::reference_forward(bert, dec_ids, false).attn_in[6]);
    EXPECT_NEAR(enc["result"]["radius"].get<double>(), enc_radius, 1e-10 * enc_radius);
    EXPECT_NEAR(dec["result"]["radius"].get<double>(), dec_radius, 1e-10 * dec_radius);
    EXPECT_GT(std::abs(dec_radius - dec_radius_unmasked), 1e-6 * dec_radius) << "masking must change layer 6's input";
    std::cout << fmt::format("BERT layer 6, n = 34: encoder {:.15g} (measure {:.15g}), decoder {:.15g} (measure "
                             "{:.15g}); decoder radius {:.12g}, unmasked layers would give {:.12g}\n",
                             enc["result"]["lipschitz"].get<double>(), enc_expected,
                             dec["result"]["lipschitz"].get<double>(), dec_expected, dec_radius, dec_radius_unmasked);
  }

  // (b) The adversarial GPT-2 setting at the paper's R = 10, on the pretrained head 0.
  {
    const auto records = read_records(out / "results" / "adv-gpt2-l0h0.jsonl");
    ASSERT_EQ(records.size(), 20u);  // n = 2..97 step 5
    const auto [lambda_min, lambda_max] = gpt2_head_eigen_range(gpt2, 0, 0);
    std::cout << fmt::format("adv-gpt2-l0h0: R = 10, λ range of A_0 [{:.12g}, {:.12g}]\n", lambda_min, lambda_max);
    for (const auto& rec : records) {
      EXPECT_EQ(rec["job"]["model"], G.string());
      EXPECT_EQ(rec["job"]["radius"], 10.0);
      EXPECT_FALSE(rec["job"].contains("n_star"));
      EXPECT_EQ(rec["result"]["radius_used"], 10.0);
      ASSERT_TRUE(rec["result"]["applies"].get<bool>());
      EXPECT_NEAR(rec["result"]["lambda_max"].get<double>(), lambda_max, 1e-8 * std::abs(lambda_max));
      EXPECT_NEAR(rec["result"]["lambda_min"].get<double>(), lambda_min, 1e-8 * std::abs(lambda_min));
    }
  }

  // Real-data bounds: every proved local bound lies above the exact constant at the same X.
  {
    const auto records = read_records(out / "results" / "bounds-real-gpt2-l0.jsonl");
    ASSERT_FALSE(records.empty());
    for (const auto& rec : records) {
      EXPECT_EQ(rec["job"]["model"], G.string());
      EXPECT_EQ(rec["job"]["bounds"], true);
      const double L = rec["result"]["lipschitz"].get<double>();
      const json& lb = rec["result"]["local_bounds"];
      ASSERT_TRUE(lb["best"].is_number()) << lb.dump();
      EXPECT_GE(lb["best"].get<double>(), L * (1 - 1e-8));
      for (auto it = lb["bounds"].begin(); it != lb["bounds"].end(); ++it)
        if (it.value().is_number() && lb["status"].value(it.key(), std::string()) == "proved") {
          EXPECT_GE(it.value().get<double>(), L * (1 - 1e-8)) << it.key();
        }
    }
  }

  // (c) The fits and the report name the folders; the paper's pretrained references are used.
  const json fits = json::parse(read_bytes(out / "fits.json"));
  std::map<std::string, json> lipschitz_fits;
  for (const auto& f : fits)
    if (f["quantity"] == "lipschitz" || f["quantity"] == "lipschitz_below_n_star")
      lipschitz_fits[f["experiment"].get<std::string>()] = f;
  for (const char* name : {"real-gpt2-l0", "adv-gpt2-l0h0"}) {
    ASSERT_TRUE(lipschitz_fits.count(name)) << name;
    EXPECT_EQ(lipschitz_fits[name]["model"], G.string()) << name;
  }
  for (const char* name : {"real-bert-l6-attention", "real-bert-decoder-l6"}) {
    ASSERT_TRUE(lipschitz_fits.count(name)) << name;
    EXPECT_EQ(lipschitz_fits[name]["model"], B.string()) << name;
  }
  EXPECT_EQ(lipschitz_fits["real-gpt2-l0"]["paper"]["constant"], 35.3);
  EXPECT_EQ(lipschitz_fits["real-bert-decoder-l6"]["paper"]["constant"], 6.44);
  const std::string report = read_bytes(out / "report.md");
  EXPECT_NE(report.find("GPT-2: `" + G.string() + "`"), std::string::npos);
  EXPECT_NE(report.find("BERT: `" + B.string() + "`"), std::string::npos);
  EXPECT_NE(report.find("the paper's input at R = 10"), std::string::npos);
  EXPECT_NE(report.find("bound/exact against n on real data"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / "figures" / "bounds-over-exact-real.png"));
  EXPECT_NE(report.find("| bounds-real-gpt2-l0 (local, at X) |"), std::string::npos);
  fs::remove_all(G);
  fs::remove_all(B);
}

// The experiment list itself (no jobs run): what --gpt2/--bert switch on.
TEST(CliReproducePretrained, ExperimentListFollowsThePaperWithPretrainedModels) {
  experiments::ReproduceOptions o;
  o.gpt2 = "/models/gpt2";
  o.bert = "/models/bert";
  std::map<std::string, experiments::Experiment> by_name;
  for (const auto& e : experiments::reproduce_experiments(o)) by_name[e.name] = e;
  ASSERT_TRUE(by_name.count("real-random-gpt2-l6"));
  EXPECT_EQ(by_name["real-random-gpt2-l6"].spec["model"], "random:gpt2");
  EXPECT_EQ(by_name["real-random-gpt2-l6"].spec["layer"], 6);
  for (const char* name : {"real-gpt2-l0", "real-gpt2-l6", "adv-gpt2-l0h0", "bounds-real-gpt2-l0"})
    EXPECT_EQ(by_name.at(name).spec["model"], "/models/gpt2") << name;
  for (const char* name : {"real-bert-l0-attention", "real-bert-l0-self", "real-bert-l6-attention",
                           "real-bert-l6-self", "real-bert-decoder-l6", "adv-bert-l0h0", "adv-bert-decoder-l6h7"})
    EXPECT_EQ(by_name.at(name).spec["model"], "/models/bert") << name;
  EXPECT_EQ(by_name["real-gpt2-l0"].spec["layer"], 0);
  EXPECT_EQ(by_name["real-gpt2-l6"].spec["layer"], 6);
  EXPECT_EQ(by_name["real-bert-l0-self"].spec["block"], "self");
  EXPECT_EQ(by_name["real-bert-l6-attention"].spec["block"], "attention");
  EXPECT_EQ(by_name["real-bert-decoder-l6"].spec["causal"], true);
  EXPECT_EQ(by_name["real-bert-l6-attention"].spec["causal"], false);
  // The paper's R on pretrained heads (and on random GPT-2 layer 6 head 0 always).
  const std::map<std::string, double> radius = {{"adv-bert-l0h0", 15.5},
                                                {"adv-bert-decoder-l6h7", 21.5},
                                                {"adv-random-gpt2-l6h0", 100},
                                                {"adv-gpt2-l0h0", 10}};
  for (const auto& [name, R] : radius) {
    EXPECT_EQ(by_name.at(name).spec["radius"], R) << name;
    EXPECT_FALSE(by_name.at(name).spec.contains("n_star")) << name;
  }
  EXPECT_EQ(by_name["adv-random-gpt2-l6h0"].spec["model"], "random:gpt2");
  EXPECT_EQ(by_name["adv-bert-decoder-l6h7"].spec["head"], 7);
  EXPECT_EQ(by_name["adv-bert-decoder-l6h7"].spec["causal"], true);

  // Without --gpt2 there is no separate random GPT-2 row, and random heads get R from n* = 10⁶.
  const experiments::ReproduceOptions plain;
  by_name.clear();
  for (const auto& e : experiments::reproduce_experiments(plain)) by_name[e.name] = e;
  EXPECT_FALSE(by_name.count("real-random-gpt2-l6"));
  EXPECT_EQ(by_name.at("real-gpt2-l0").spec["model"], "random:gpt2");
  EXPECT_EQ(by_name.at("adv-gpt2-l0h0").spec["n_star"], 1e6);
  EXPECT_EQ(by_name.at("adv-random-gpt2-l6h0").spec["radius"], 100);
  // --bert alone: the GPT-2 settings stay random, BERT's use the paper's R.
  experiments::ReproduceOptions bert_only;
  bert_only.bert = "/models/bert";
  by_name.clear();
  for (const auto& e : experiments::reproduce_experiments(bert_only)) by_name[e.name] = e;
  EXPECT_FALSE(by_name.count("real-random-gpt2-l6"));
  EXPECT_EQ(by_name.at("adv-bert-l0h0").spec["radius"], 15.5);
  EXPECT_EQ(by_name.at("adv-gpt2-l0h0").spec["n_star"], 1e6);
}

}  // namespace
}  // namespace lipattn
