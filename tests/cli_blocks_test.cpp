// `lipattn measure --model M --block mlp|layer|stack|model` and `attack --model` end to end: one JSON
// record per window parsed from stdout alone, the human output with the composition, and every bad
// request (exit 2, the flag named on stderr, nothing on stdout).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "cli_support.h"
#include "file_support.h"

using namespace lipattn::testing;
namespace fs = std::filesystem;

namespace {

// A random two-layer GPT-2 and BERT (random:CONFIG.json).
std::string write_config(const fs::path& dir, const std::string& type) {
  nlohmann::json c;
  if (type == "gpt2")
    c = {{"model_type", "gpt2"}, {"n_embd", 8}, {"n_head", 2}, {"n_layer", 2}, {"n_positions", 32}, {"vocab_size", 50}};
  else
    c = {{"model_type", "bert"}, {"hidden_size", 8}, {"num_attention_heads", 2}, {"num_hidden_layers", 2},
         {"intermediate_size", 16}, {"max_position_embeddings", 32}, {"vocab_size", 50}};
  const fs::path path = dir / (type + ".json");
  std::ofstream(path) << c.dump();
  std::string spec = "random:";
  spec += path.string();
  return spec;
}

std::string args(const std::string& model, const std::string& rest, const char* command = "measure") {
  std::string a = command;
  a += " --model '";
  a += model;
  a += "' --ids 3,17,4,41,9 ";
  a += rest;
  return a;
}

class CliBlocks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = scratch_dir("cli-blocks");
    gpt2 = write_config(dir, "gpt2");
    bert = write_config(dir, "bert");
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
  std::string gpt2, bert;
};

TEST_F(CliBlocks, JsonRecordPerBlockKind) {
  struct Case {
    const char* flags;
    const char* block;
    bool composition;
  };
  for (const std::string& model : {gpt2, bert})
    for (const Case& c : {Case{"--block mlp --layer 1", "mlp", false}, Case{"--block layer --layer 0", "layer", false},
                          Case{"--block stack --layers 0:2", "stack", true}, Case{"--block model", "model", true}}) {
      const CommandResult r = run_cli(args(model, c.flags) + " --json");
      ASSERT_EQ(r.code, 0) << c.flags << "\n" << r.err;
      const nlohmann::json j = nlohmann::json::parse(r.out);  // stdout holds the one record alone
      EXPECT_EQ(j.at("block"), c.block);
      EXPECT_EQ(j.at("n"), 5);
      EXPECT_TRUE(j.at("converged").get<bool>());
      EXPECT_GT(j.at("lipschitz").get<double>(), 0);
      EXPECT_LE(j.at("lower").get<double>(), j.at("lipschitz").get<double>() * (1 + 1e-12));
      EXPECT_EQ(j.at("concentration").at("shares").size(), 5u);
      EXPECT_EQ(j.at("composition").is_null(), !c.composition) << c.flags;
      if (c.composition) {
        EXPECT_EQ(j.at("layers"), nlohmann::json::array({0, 2}));
        EXPECT_TRUE(j.at("layer").is_null());
        const auto& comp = j.at("composition");
        EXPECT_GE(comp.at("product").get<double>(), j.at("lipschitz").get<double>() * (1 - 1e-9));
        EXPECT_GE(comp.at("bound_product").get<double>(), comp.at("product").get<double>() * (1 - 1e-9));
      }
    }
}

TEST_F(CliBlocks, HumanOutputShowsTheComposition) {
  const CommandResult r = run_cli(args(gpt2, "--block model"));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* line : {"block      model layers 0:2", "lipschitz", "tokens", "layer 0", "layer 1", "final_norm",
                           "product", "ratio", "bounds"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  EXPECT_FALSE(nlohmann::json::accept(r.out));  // a report for a reader, not JSON
}

TEST_F(CliBlocks, BadRequestsExitTwoNamingTheFlag) {
  struct Case {
    const char* flags;
    const char* mention;
  };
  for (const Case& c : {Case{"--block stack", "--layers"}, Case{"--block stack --layers 1:1", "--layers"},
                        Case{"--block stack --layers 2:1", "--layers"}, Case{"--block stack --layers 0:3", "--layers"},
                        Case{"--block stack --layers 0", "--layers"}, Case{"--block layer --layers 0:1", "--layers"},
                        Case{"--layers 0:1", "--layers"}, Case{"--block mlp --head 0", "--head"},
                        Case{"--block layer --head 1", "--head"}, Case{"--block stack --layers 0:1 --head 0", "--head"},
                        Case{"--block model --head 0", "--head"}, Case{"--block layer --layer 2", "--layer"},
                        Case{"--block blocks", "--block"}}) {
    const CommandResult r = run_cli(args(gpt2, c.flags) + " --json");
    EXPECT_EQ(r.code, 2) << c.flags << "\n" << r.err;
    EXPECT_NE(r.err.find(c.mention), std::string::npos) << c.flags << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << c.flags << "\n" << r.out;
  }
}

TEST_F(CliBlocks, AttackOnALayerAroundItsInput) {
  const CommandResult r =
      run_cli(args(gpt2, "--block layer --layer 1 --eps 0.5 --restarts 1 --steps 6 --json", "attack"));
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("block"), "layer");
  EXPECT_EQ(j.at("layer"), 1);
  EXPECT_LE(j.at("distance").get<double>(), 0.5 * (1 + 1e-12));
  EXPECT_LE(j.at("in_set").get<double>(), 1e-12);
  EXPECT_GE(j.at("lower").get<double>(), j.at("unperturbed").get<double>() * (1 - 1e-9));
  const CommandResult no_eps = run_cli(args(gpt2, "--block layer --json", "attack"));
  EXPECT_EQ(no_eps.code, 2);
  EXPECT_NE(no_eps.err.find("--eps"), std::string::npos) << no_eps.err;
  EXPECT_TRUE(no_eps.out.empty());
  const CommandResult bad_head = run_cli(args(gpt2, "--block stack --layers 0:2 --head 0 --eps 1", "attack"));
  EXPECT_EQ(bad_head.code, 2);
  EXPECT_NE(bad_head.err.find("--head"), std::string::npos) << bad_head.err;
}

}  // namespace
