#include "experiments/catalogue.h"

#include <fmt/core.h>

#include "experiments/records.h"
#include "models/tokenizer.h"

namespace lipattn::experiments {

namespace {

using nlohmann::json;

// The model an experiment runs on: the one given with --gpt2/--bert, else the random one.
enum class Slot { Gpt2, Bert, RandomGpt2, Toy, Stories };
// Which runs include an experiment.
enum class When { Always, FullOnly, PretrainedGpt2, TrainedData };

struct Reference {
  const char* text = nullptr;
  double constant = 0, exponent = 0;
};

// One experiment. Texts may name {model} (the model in words), {source} (the inputs in words) and
// {starts} (the attack's random starts). The spec fields are JSON, "$seed" standing for --seed. Every
// spec gets "name", "model" and "model_seed"; window specs get their input ("text" or "ids_seed"); specs
// with a paper_radius get R: the paper's R on a pretrained head (and from 100 up: random GPT-2 layer 6
// head 0, as in the paper), else R from n* = 10⁶ (a random head's eigenvalues are not the pretrained
// head's; docs/experiments.md).
struct Definition {
  const char* name;
  ExperimentGroup group;
  Slot model;
  When when = When::Always;
  const char* title;
  const char* setting = nullptr;  // nullptr: the adversarial setting, from head, layer and R
  const char* spec;   // fields of every run
  const char* quick;  // fields of --quick
  const char* full;   // fields of the full run
  Reference pretrained = {};
  Reference random = {};    // with a random model; no text: as pretrained
  double paper_radius = 0;  // adversarial and attack: the paper's R
};

// The real-data protocol's grid: n = 2..98 step 2, 10 windows per n (quick: step 16, 2 windows). The
// bounds experiment is coarser: local_bounds costs about 8× the solve at n = 98 (docs/experiments.md,
// "Upper bounds"). Long windows run to n = 502, as far as the text allows.
constexpr const char* kRealQuick = R"({"n": {"from": 2.0, "to": 98.0, "step": 16.0}, "samples": 2})";
constexpr const char* kRealFull = R"({"n": {"from": 2.0, "to": 98.0, "step": 2.0}, "samples": 10})";
constexpr const char* kBoundsQuick = R"({"n": {"from": 2.0, "to": 98.0, "step": 32.0}, "samples": 1})";
constexpr const char* kBoundsFull = R"({"n": {"from": 2.0, "to": 98.0, "step": 8.0}, "samples": 2})";
constexpr const char* kLongQuick = R"({"n": {"from": 2.0, "to": 502.0, "step": 125.0}, "samples": 1})";
// Log-spaced (44 distinct n): the fit is in log n, and a step of 10 put 40 of 51 points above n = 100 at
// 2.7 times the cost (docs/experiments.md, "Tolerances and grids").
constexpr const char* kLongFull = R"({"n": {"log_from": 2.0, "log_to": 502.0, "count": 51}, "samples": 10})";

// The trained model (stories260K, seq_len 512) on its own text: every n's windows consecutive, the whole
// layer and each head, as trained and with RoPE removed (docs/experiments.md, "Trained model").
constexpr const char* kTrainedQuick =
    R"({"n": {"from": 2.0, "to": 512.0, "step": 85.0}, "samples": 1, "head": [null, 0]})";
constexpr const char* kTrainedFull =
    R"({"n": {"from": 2.0, "to": 512.0, "step": 15.0}, "samples": 2, "head": [null, 0, 1, 2, 3, 4, 5, 6, 7]})";
constexpr Reference kTrainedReference = {"≈ n^0.25 (the paper, pretrained GPT-2 and BERT)", 0, 0.25};

constexpr Reference kBertLayer0 = {"14.3·n^0.24 (pretrained BERT, layer 0)", 14.3, 0.24};
constexpr Reference kRandomGpt2Layer6 = {"0.445·n^0.25 (random GPT-2, layer 6)", 0.445, 0.25};

constexpr const char* kAdversarialGrid = R"({"n": {"from": 2.0, "to": 97.0, "step": 5.0}})";

// Whole layers and whole models (docs/experiments.md, "Whole layers and whole models"): `layer` and
// `model` against n, the stack 0:k against depth k, each stack and model with its chain-rule factors.
// GPT-2 and BERT (d = 768, 12 layers) cost about 48nd² flops per layer and product, so their quick
// grids are small; stories260K (d = 64, 5 layers) runs its whole range of n.
constexpr const char* kBlocksLayerQuick = R"({"n": [4, 16, 64], "samples": 1, "layer": [0, 11]})";
constexpr const char* kBlocksLayerFull = R"({"n": {"from": 2.0, "to": 98.0, "step": 8.0}, "samples": 2,
                                             "layer": [0, 6, 11]})";
constexpr const char* kBlocksModelQuick = R"({"n": [2, 4, 8], "samples": 1})";
constexpr const char* kBlocksModelFull = R"({"n": [2, 4, 8, 16, 32, 64, 96], "samples": 2})";
// Quick: depth up to 6 (the model experiment has all 12 layers at n = 8; 0:12 would double it).
constexpr const char* kBlocksDepthQuick = R"({"n": [8], "samples": 1, "layers": ["0:1", "0:2", "0:4", "0:6"]})";
constexpr const char* kBlocksDepthFull = R"({"n": [32], "samples": 2, "layers": ["0:1", "0:2", "0:3", "0:4", "0:5",
                                             "0:6", "0:7", "0:8", "0:9", "0:10", "0:11", "0:12"]})";
constexpr const char* kStoriesLayerQuick =
    R"({"n": {"from": 2.0, "to": 512.0, "step": 85.0}, "samples": 1, "layer": [0, 4]})";
constexpr const char* kStoriesLayerFull =
    R"({"n": {"from": 2.0, "to": 512.0, "step": 30.0}, "samples": 2, "layer": [0, 1, 2, 3, 4]})";
constexpr const char* kStoriesModelQuick = R"({"n": {"from": 2.0, "to": 512.0, "step": 85.0}, "samples": 1})";
constexpr const char* kStoriesModelFull = R"({"n": {"from": 2.0, "to": 512.0, "step": 30.0}, "samples": 2})";
constexpr const char* kStoriesDepthQuick =
    R"({"n": [128], "samples": 2, "layers": ["0:1", "0:2", "0:3", "0:4", "0:5"]})";
constexpr const char* kStoriesDepthFull =
    R"({"n": [128], "samples": 4, "layers": ["0:1", "0:2", "0:3", "0:4", "0:5"]})";

// clang-format off: one definition per block, one field per line.
const Definition kCatalogue[] = {
    // Real-data protocol.
    {.name = "real-gpt2-l0",
     .group = ExperimentGroup::Real,
     .model = Slot::Gpt2,
     .title = "{model}, layer 0, h[0].attn",
     .setting = "GPT-2 attention h[0].attn (causal, with c_proj) on the output of ln_1, {source}",
     .spec = R"({"kind": "window", "layer": 0, "block": "attn", "causal": true, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull,
     .pretrained = {"35.3·n^0.26 (pretrained GPT-2, layer 0)", 35.3, 0.26}},
    {.name = "real-gpt2-l6",
     .group = ExperimentGroup::Real,
     .model = Slot::Gpt2,
     .title = "{model}, layer 6, h[6].attn",
     .setting = "GPT-2 attention h[6].attn (causal, with c_proj) on the output of ln_1, {source}",
     .spec = R"({"kind": "window", "layer": 6, "block": "attn", "causal": true, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull,
     .pretrained = {"25.0·n^0.51 (pretrained GPT-2, layer 6)", 25.0, 0.51},
     .random = kRandomGpt2Layer6},
    {.name = "real-random-gpt2-l6",
     .group = ExperimentGroup::Real,
     .model = Slot::RandomGpt2,
     .when = When::PretrainedGpt2,
     .title = "{model}, layer 6, h[6].attn",
     .setting = "random GPT-2 attention h[6].attn, {source}",
     .spec = R"({"kind": "window", "layer": 6, "block": "attn", "causal": true, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull,
     .pretrained = kRandomGpt2Layer6},
    {.name = "real-bert-l0-attention",
     .group = ExperimentGroup::Real,
     .model = Slot::Bert,
     .title = "{model}, layer 0, BertAttention",
     .setting = "BertAttention (self-attention, W_O, residual, LayerNorm) of layer 0, {source}",
     .spec = R"({"kind": "window", "layer": 0, "block": "attention", "causal": false, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull,
     .pretrained = kBertLayer0},
    {.name = "real-bert-l0-self",
     .group = ExperimentGroup::Real,
     .model = Slot::Bert,
     .when = When::FullOnly,
     .title = "{model}, layer 0, BertSelfAttention",
     .setting = "BertSelfAttention (12 heads, no W_O) of layer 0, {source}",
     .spec = R"({"kind": "window", "layer": 0, "block": "self", "causal": false, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull,
     .pretrained = kBertLayer0},
    {.name = "real-bert-l6-attention",
     .group = ExperimentGroup::Real,
     .model = Slot::Bert,
     .title = "{model}, layer 6, BertAttention",
     .setting = "BertAttention of layer 6, {source}",
     .spec = R"({"kind": "window", "layer": 6, "block": "attention", "causal": false, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull},
    {.name = "real-bert-l6-self",
     .group = ExperimentGroup::Real,
     .model = Slot::Bert,
     .when = When::FullOnly,
     .title = "{model}, layer 6, BertSelfAttention",
     .setting = "BertSelfAttention of layer 6, {source}",
     .spec = R"({"kind": "window", "layer": 6, "block": "self", "causal": false, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull},
    {.name = "real-bert-decoder-l6",
     .group = ExperimentGroup::Real,
     .model = Slot::Bert,
     .title = "{model} as a decoder (causal), layer 6, BertAttention",
     .setting = "BertAttention of layer 6 with truly causal self-attention (the BERT decoder), {source}",
     .spec = R"({"kind": "window", "layer": 6, "block": "attention", "causal": true, "bounds": false})",
     .quick = kRealQuick,
     .full = kRealFull,
     .pretrained = {"6.44·n^0.25 (pretrained BERT decoder, layer 6)", 6.44, 0.25}},
    {.name = "trained-l0",
     .group = ExperimentGroup::Trained,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 0, attention",
     .setting = "layer 0's attention (causal, RoPE at positions 0..n−1, 8 query heads on 4 K/V heads, W_O) on "
                "its RMSNorm's output, {source}; the whole layer and single heads, as trained and with RoPE removed",
     .spec = R"({"kind": "window", "layer": 0, "block": "attn", "causal": true, "bounds": false,
                 "rope": ["as_trained", "none"]})",
     .quick = kTrainedQuick,
     .full = kTrainedFull,
     .pretrained = kTrainedReference},
    {.name = "trained-l1",
     .group = ExperimentGroup::Trained,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 1, attention",
     .setting = "layer 1's attention (causal, RoPE at positions 0..n−1, 8 query heads on 4 K/V heads, W_O) on "
                "its RMSNorm's output, {source}; the whole layer and single heads, as trained and with RoPE removed",
     .spec = R"({"kind": "window", "layer": 1, "block": "attn", "causal": true, "bounds": false,
                 "rope": ["as_trained", "none"]})",
     .quick = kTrainedQuick,
     .full = kTrainedFull,
     .pretrained = kTrainedReference},
    {.name = "trained-l2",
     .group = ExperimentGroup::Trained,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 2, attention",
     .setting = "layer 2's attention (causal, RoPE at positions 0..n−1, 8 query heads on 4 K/V heads, W_O) on "
                "its RMSNorm's output, {source}; the whole layer and single heads, as trained and with RoPE removed",
     .spec = R"({"kind": "window", "layer": 2, "block": "attn", "causal": true, "bounds": false,
                 "rope": ["as_trained", "none"]})",
     .quick = kTrainedQuick,
     .full = kTrainedFull,
     .pretrained = kTrainedReference},
    {.name = "trained-l3",
     .group = ExperimentGroup::Trained,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 3, attention",
     .setting = "layer 3's attention (causal, RoPE at positions 0..n−1, 8 query heads on 4 K/V heads, W_O) on "
                "its RMSNorm's output, {source}; the whole layer and single heads, as trained and with RoPE removed",
     .spec = R"({"kind": "window", "layer": 3, "block": "attn", "causal": true, "bounds": false,
                 "rope": ["as_trained", "none"]})",
     .quick = kTrainedQuick,
     .full = kTrainedFull,
     .pretrained = kTrainedReference},
    {.name = "trained-l4",
     .group = ExperimentGroup::Trained,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 4, attention",
     .setting = "layer 4's attention (causal, RoPE at positions 0..n−1, 8 query heads on 4 K/V heads, W_O) on "
                "its RMSNorm's output, {source}; the whole layer and single heads, as trained and with RoPE removed",
     .spec = R"({"kind": "window", "layer": 4, "block": "attn", "causal": true, "bounds": false,
                 "rope": ["as_trained", "none"]})",
     .quick = kTrainedQuick,
     .full = kTrainedFull,
     .pretrained = kTrainedReference},
    {.name = "trained-bounds-l0",
     .group = ExperimentGroup::Trained,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 0, attention: local bounds",
     .setting = "layer 0's attention with every local upper bound of src/bounds at X, as trained (RoPE: not "
                "covered by the proofs) and with RoPE removed, {source}",
     .spec = R"({"kind": "window", "layer": 0, "block": "attn", "causal": true, "bounds": true,
                 "rope": ["as_trained", "none"]})",
     .quick = R"({"n": {"from": 2.0, "to": 512.0, "step": 170.0}, "samples": 1})",
     .full = R"({"n": {"from": 2.0, "to": 512.0, "step": 51.0}, "samples": 1})"},
    // The paper's construction on trained heads at R = 10, about the radius of the real attn_in (the
    // trained-l* windows' median √(mean‖x_i‖²) is 9.1–10.6). The construction is built from W_Kᵀ W_Q
    // and ignores RoPE; every value is still the exact constant at its input, a certified lower bound.
    {.name = "trained-adv-l0h0",
     .group = ExperimentGroup::Adversarial,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 0, head 0 (RoPE)",
     .spec = R"({"kind": "construction", "layer": 0, "head": 0, "causal": true})",
     .quick = kAdversarialGrid,
     .full = kAdversarialGrid,
     .paper_radius = 10},
    {.name = "trained-adv-l2h3",
     .group = ExperimentGroup::Adversarial,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, layer 2, head 3 (RoPE)",
     .spec = R"({"kind": "construction", "layer": 2, "head": 3, "causal": true})",
     .quick = kAdversarialGrid,
     .full = kAdversarialGrid,
     .paper_radius = 10},
    // Real-data upper bounds: every local bound at each window over the exact constant at the same X.
    {.name = "bounds-real-gpt2-l0",
     .group = ExperimentGroup::Bounds,
     .model = Slot::Gpt2,
     .title = "{model}, layer 0, h[0].attn: local bounds",
     .setting = "GPT-2 attention h[0].attn (causal, with c_proj) on the output of ln_1 with every local upper bound of "
                "src/bounds at X, {source}",
     .spec = R"({"kind": "window", "layer": 0, "block": "attn", "causal": true, "bounds": true})",
     .quick = kBoundsQuick,
     .full = kBoundsFull},
    // BERT encoder on long windows.
    {.name = "long-bert-l0",
     .group = ExperimentGroup::Long,
     .model = Slot::Bert,
     .title = "{model}, layer 0, BertAttention, long windows",
     .setting = "BertAttention of layer 0 on windows up to 502 tokens, {source}",
     .spec = R"({"kind": "window", "layer": 0, "block": "attention", "causal": false, "bounds": false})",
     .quick = kLongQuick,
     .full = kLongFull},
    {.name = "long-bert-l6",
     .group = ExperimentGroup::Long,
     .model = Slot::Bert,
     .when = When::FullOnly,
     .title = "{model}, layer 6, BertAttention, long windows",
     .setting = "BertAttention of layer 6 on windows up to 502 tokens, {source}",
     .spec = R"({"kind": "window", "layer": 6, "block": "attention", "causal": false, "bounds": false})",
     .quick = kLongQuick,
     .full = kLongFull},
    // Adversarial: the paper's construction on one head, n = 2..97 step 5 (the setting says which R).
    {.name = "adv-bert-l0h0",
     .group = ExperimentGroup::Adversarial,
     .model = Slot::Bert,
     .title = "{model}, layer 0, head 0",
     .spec = R"({"kind": "construction", "layer": 0, "head": 0, "causal": false})",
     .quick = kAdversarialGrid,
     .full = kAdversarialGrid,
     .pretrained = {"C·√n with C = 4.39 (BERT layer 0 head 0, R = 15.5)", 4.39, 0.5},
     .paper_radius = 15.5},
    {.name = "adv-bert-decoder-l6h7",
     .group = ExperimentGroup::Adversarial,
     .model = Slot::Bert,
     .title = "{model} decoder (causal), layer 6, head 7",
     .spec = R"({"kind": "construction", "layer": 6, "head": 7, "causal": true})",
     .quick = kAdversarialGrid,
     .full = kAdversarialGrid,
     .pretrained = {"C·√n with C = 5.73 (BERT decoder layer 6 head 7, R = 21.5)", 5.73, 0.5},
     .paper_radius = 21.5},
    {.name = "adv-random-gpt2-l6h0",
     .group = ExperimentGroup::Adversarial,
     .model = Slot::RandomGpt2,
     .title = "random GPT-2, layer 6, head 0",
     .spec = R"({"kind": "construction", "layer": 6, "head": 0, "causal": true})",
     .quick = kAdversarialGrid,
     .full = kAdversarialGrid,
     .pretrained = {"C·√n with C = 0.92 (random GPT-2 layer 6 head 0, R = 100)", 0.92, 0.5},
     .paper_radius = 100},
    {.name = "adv-gpt2-l0h0",
     .group = ExperimentGroup::Adversarial,
     .model = Slot::Gpt2,
     .title = "{model}, layer 0, head 0",
     .spec = R"({"kind": "construction", "layer": 0, "head": 0, "causal": true})",
     .quick = kAdversarialGrid,
     .full = kAdversarialGrid,
     .pretrained = {"C·√n with C = 46.9 (GPT-2 layer 0 head 0, R = 10)", 46.9, 0.5},
     .paper_radius = 10},
    // The optimised attack from the construction (and random starts) on a few n.
    {.name = "attack-bert-l0h0",
     .group = ExperimentGroup::Attack,
     .model = Slot::Bert,
     .title = "{model}, layer 0, head 0: optimised attack",
     .setting = "projected gradient ascent of σ_max(Df(X)) over B_R^n from the paper's construction "
                "(both branches){starts}, same head and R as above",
     .spec = R"({"kind": "construction", "layer": 0, "head": 0, "causal": false})",
     .quick = R"({"n": [2, 8, 32], "attack_steps": 10, "attack_restarts": 0})",
     .full = R"({"n": [2, 8, 16, 32, 64, 97], "attack_steps": 40, "attack_restarts": 2})",
     .paper_radius = 15.5},
    // Whole layers and whole models: L against n, against depth, and against the product of the layers'.
    {.name = "blocks-gpt2-layer",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Gpt2,
     .title = "{model}, whole layers",
     .setting = "the whole layer x ↦ x + attn(ln_1(x)) ↦ · + mlp(ln_2(·)) (gelu_new), at its own input from the "
                "same forward pass, {source}",
     .spec = R"({"kind": "block", "block": "layer"})",
     .quick = kBlocksLayerQuick,
     .full = kBlocksLayerFull},
    {.name = "blocks-gpt2-model",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Gpt2,
     .title = "{model}, the whole model",
     .setting = "the whole model from the embedding output through the 12 layers and ln_f, with the product of "
                "its per-layer constants, {source}",
     .spec = R"({"kind": "block", "block": "model"})",
     .quick = kBlocksModelQuick,
     .full = kBlocksModelFull},
    {.name = "blocks-gpt2-depth",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Gpt2,
     .title = "{model}, the stack of layers 0..k−1 against depth k",
     .setting = "the layers 0..k−1 composed, at the embedding output, with the product of their per-layer "
                "constants, {source}",
     .spec = R"({"kind": "block", "block": "stack"})",
     .quick = kBlocksDepthQuick,
     .full = kBlocksDepthFull},
    {.name = "blocks-bert-layer",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Bert,
     .title = "{model}, whole layers",
     .setting = "the whole layer x ↦ a = LN(x + attn(x)) ↦ LN(a + mlp(a)) (erf gelu), at its own input from the "
                "same forward pass, {source}",
     .spec = R"({"kind": "block", "block": "layer"})",
     .quick = kBlocksLayerQuick,
     .full = kBlocksLayerFull},
    {.name = "blocks-bert-model",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Bert,
     .title = "{model}, the whole model",
     .setting = "the whole model from the embedding output (after its LayerNorm) through the 12 layers, with the "
                "product of its per-layer constants, {source}",
     .spec = R"({"kind": "block", "block": "model"})",
     .quick = kBlocksModelQuick,
     .full = kBlocksModelFull},
    {.name = "blocks-bert-depth",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Bert,
     .title = "{model}, the stack of layers 0..k−1 against depth k",
     .setting = "the layers 0..k−1 composed, at the embedding output, with the product of their per-layer "
                "constants, {source}",
     .spec = R"({"kind": "block", "block": "stack"})",
     .quick = kBlocksDepthQuick,
     .full = kBlocksDepthFull},
    {.name = "blocks-stories-layer",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, whole layers",
     .setting = "the whole layer x ↦ x + attn(rmsnorm(x)) (RoPE, 8 query heads on 4 K/V heads) ↦ · + "
                "SwiGLU(rmsnorm(·)), at its own input from the same forward pass, {source}",
     .spec = R"({"kind": "block", "block": "layer"})",
     .quick = kStoriesLayerQuick,
     .full = kStoriesLayerFull},
    {.name = "blocks-stories-model",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, the whole model",
     .setting = "the whole model from the embedding output through the 5 layers and the final RMSNorm, with the "
                "product of its per-layer constants, {source}",
     .spec = R"({"kind": "block", "block": "model"})",
     .quick = kStoriesModelQuick,
     .full = kStoriesModelFull},
    {.name = "blocks-stories-depth",
     .group = ExperimentGroup::Blocks,
     .model = Slot::Stories,
     .when = When::TrainedData,
     .title = "{model}, the stack of layers 0..k−1 against depth k",
     .setting = "the layers 0..k−1 composed, at the embedding output, with the product of their per-layer "
                "constants, {source}",
     .spec = R"({"kind": "block", "block": "stack"})",
     .quick = kStoriesDepthQuick,
     .full = kStoriesDepthFull},
    // Mean-field regime: the construction at fixed R (n* = 30) far past n*, unmasked (the exact 2-point
    // reduction, any n) and masked (the full n-token computation); i.i.d. tokens on the toy head.
    {.name = "mf-construction",
     .group = ExperimentGroup::Meanfield,
     .model = Slot::Bert,
     .title = "construction at fixed R past n* (unmasked)",
     .setting = "{model}, layer 0, head 0 (no W_O), R fixed so that n* = 30; n up to 10⁶ by the exact 2-point "
                "reduction (src/meanfield), the full n-token computation up to n = 128",
     .spec = R"({"kind": "regime", "regime": "construction", "layer": 0, "head": 0, "n_star": 30, "full_max": 128})",
     .quick = R"({"n": {"log_from": 2.0, "log_to": 1000000.0, "count": 16}})",
     .full = R"({"n": {"log_from": 2.0, "log_to": 1000000.0, "count": 31}})"},
    {.name = "mf-construction-masked",
     .group = ExperimentGroup::Meanfield,
     .model = Slot::Bert,
     .title = "construction at fixed R past n* (masked)",
     .setting = "the same head as a causal head (BERT decoder), R from n* = 30; the full n-token computation",
     .spec = R"({"kind": "regime", "regime": "construction", "layer": 0, "head": 0, "n_star": 30, "causal": true})",
     .quick = R"({"n": {"log_from": 2.0, "log_to": 512.0, "count": 9}})",
     .full = R"({"n": {"log_from": 2.0, "log_to": 2048.0, "count": 13}})"},
    {.name = "mf-iid",
     .group = ExperimentGroup::Meanfield,
     .model = Slot::Toy,
     .title = "i.i.d. tokens (unmasked)",
     .setting = "the toy head (paper form, d = 4, A = (G + Gᵀ)/√8, V = I) on the first n tokens of one i.i.d. "
                "sample uniform on the sphere of radius R = 2",
     .spec = R"({"kind": "regime", "regime": "iid", "d": 4, "seed": "$seed", "radius": 2.0, "tol": 1e-7,
                 "law": "sphere"})",
     .quick = R"({"n": {"log_from": 2.0, "log_to": 2048.0, "count": 12}})",
     .full = R"({"n": {"log_from": 2.0, "log_to": 10000.0, "count": 17}})"},
    {.name = "mf-iid-masked",
     .group = ExperimentGroup::Meanfield,
     .model = Slot::Toy,
     .title = "i.i.d. tokens (masked)",
     .setting = "the same toy head, causal",
     .spec = R"({"kind": "regime", "regime": "iid", "d": 4, "seed": "$seed", "radius": 2.0, "tol": 1e-7,
                 "law": "sphere", "causal": true})",
     .quick = R"({"n": {"log_from": 2.0, "log_to": 1024.0, "count": 11}})",
     .full = R"({"n": {"log_from": 2.0, "log_to": 4096.0, "count": 14}})"},
};
// clang-format on

// The models and inputs of one run, in arguments and in words.
struct Models {
  std::string gpt2, bert, gpt2_words, bert_words, source, stories, stories_words, stories_source;
  std::string blocks_text, blocks_source;  // the whole-block experiments' text on GPT-2 and BERT ("": ids)
  bool pretrained_gpt2 = false, pretrained_bert = false;

  explicit Models(const ReproduceOptions& o)
      : gpt2(o.gpt2.empty() ? "random:gpt2" : model_argument(o.gpt2)),
        bert(o.bert.empty() ? "random:bert-base-uncased" : model_argument(o.bert)),
        gpt2_words(o.gpt2.empty() ? "random GPT-2 (random:gpt2)" : "GPT-2 (" + gpt2 + ")"),
        bert_words(o.bert.empty() ? "random BERT (random:bert-base-uncased)" : "BERT (" + bert + ")"),
        source(o.text.empty() ? "seeded random token ids" : "windows of " + o.text),
        stories(trained_model_file().string()),
        stories_words("stories260K (llama2.c, trained on TinyStories)"),
        stories_source("consecutive windows of " + trained_text_file().string() +
                       " (encoded whole as run.c does, BOS once at its head: a window starts mid-story)"),
        blocks_text(!o.text.empty() ? std::filesystem::absolute(o.text).string() : blocks_text_file().string()),
        blocks_source(blocks_text.empty() ? "seeded random token ids" : "consecutive windows of " + blocks_text),
        pretrained_gpt2(!o.gpt2.empty()),
        pretrained_bert(!o.bert.empty()) {}

  std::string argument(Slot s) const {
    switch (s) {
      case Slot::Gpt2:
        return gpt2;
      case Slot::Bert:
        return bert;
      case Slot::RandomGpt2:
        return "random:gpt2";
      case Slot::Toy:
        return "toy";
      case Slot::Stories:
        return stories;
    }
    return {};
  }
  std::string words(Slot s) const {
    if (s == Slot::Stories) return stories_words;
    return s == Slot::Gpt2 ? gpt2_words : s == Slot::Bert ? bert_words : "random GPT-2 (random:gpt2)";
  }
  bool pretrained(Slot s) const {
    return s == Slot::Stories || (s == Slot::Gpt2 && pretrained_gpt2) || (s == Slot::Bert && pretrained_bert);
  }
  const std::string& source_words(Slot s, ExperimentGroup g) const {
    if (s == Slot::Stories) return stories_source;
    return g == ExperimentGroup::Blocks ? blocks_source : source;
  }
};

bool included(const Definition& d, const ReproduceOptions& o) {
  if (d.when == When::FullOnly && o.quick) return false;
  if (d.when == When::PretrainedGpt2 && o.gpt2.empty()) return false;
  if (d.when == When::TrainedData && (trained_model_file().empty() || trained_text_file().empty())) return false;
  if (o.only.empty()) return true;
  for (const auto& prefix : o.only)
    if (std::string(d.name).rfind(prefix, 0) == 0) return true;
  return false;
}

// Replaces the placeholder "$seed" in a spec's values.
void substitute_seed(json& spec, std::uint64_t seed) {
  for (auto& [key, value] : spec.items())
    if (value == "$seed") value = seed;
}

std::string words(const char* text, const std::string& model, const std::string& source, const json& spec) {
  const int restarts = spec.value("attack_restarts", 0);
  const std::string starts = restarts > 0 ? fmt::format(" and {} random starts", restarts) : "";
  return fmt::format(fmt::runtime(text), fmt::arg("model", model), fmt::arg("source", source),
                     fmt::arg("starts", starts));
}

// R for a construction: the paper's, or from n* = 10⁶ (see Definition); the setting says which.
void set_radius(Experiment& e, const Definition& d, bool pretrained) {
  const int head = e.spec.value("head", 0);
  if (pretrained || d.paper_radius >= 100) {
    e.spec["radius"] = d.paper_radius;
    if (!d.setting)
      e.setting = fmt::format("head {} of layer {} (its Q, K, V slice, no W_O), the paper's input at R = {}", head,
                              e.layer, d.paper_radius);
    return;
  }
  e.spec["n_star"] = 1e6;
  if (!d.setting)
    e.setting = fmt::format(
        "head {} of layer {} (its Q, K, V slice, no W_O), the paper's input with R chosen so that n* = 10⁶ "
        "(a random head's eigenvalues are not the pretrained head's, so the paper's R = {} would put n* elsewhere)",
        head, e.layer, d.paper_radius);
}

// The solver's tolerance per group (docs/experiments.md, "Tolerances and grids"). Windows and blocks feed
// fits whose confidence intervals come from the spread between windows, so they solve to a relative residual
// of 1e-6, a float32 phase first (docs/theory.md §4.5): σ moves by at most 2.4e-11 relative against 1e-8,
// far inside every CI. Bounds compare two numbers at one X; the adversarial constructions and the attack probe the
// √n law itself: those keep the planner's tighter defaults.
struct Tolerance {
  double tol = 0;        // 0: the planner's default for the job kind
  double mixed_tol = 0;  // 0: float64 only
};

Tolerance group_tolerance(ExperimentGroup group) {
  switch (group) {
    case ExperimentGroup::Real:
    case ExperimentGroup::Long:
    case ExperimentGroup::Trained:
    case ExperimentGroup::Blocks:
      return {1e-6, 1e-5};
    default:
      return {};
  }
}

void set_tolerance(Experiment& e, ExperimentGroup group) {
  const Tolerance t = group_tolerance(group);
  if (t.tol > 0 && !e.spec.contains("tol")) e.spec["tol"] = t.tol;
  if (t.mixed_tol > 0 && !e.spec.contains("mixed_tol")) e.spec["mixed_tol"] = t.mixed_tol;
}

// The tolerance in words, for the report: what the spec says, else the planner's default.
std::string tolerance_words(const nlohmann::json& spec) {
  const double tol = spec.contains("tol") ? spec["tol"].get<double>() : default_tol(parse_job_kind(spec["kind"]));
  if (spec.contains("mixed_tol"))
    return fmt::format("σ_max to relative residual {:g} (a float32 phase to {:g}, then float64)", tol,
                       spec["mixed_tol"].get<double>());
  return fmt::format("σ_max to relative residual {:g}", tol);
}

Experiment make_experiment(const Definition& d, const Models& m, const ReproduceOptions& o) {
  Experiment e;
  e.name = d.name;
  e.group = d.group;
  e.model = m.argument(d.model);
  e.spec = json::parse(d.spec);
  e.spec.update(json::parse(o.quick ? d.quick : d.full));
  e.spec["name"] = e.name;
  e.spec["model"] = e.model;
  e.spec["model_seed"] = o.seed;
  substitute_seed(e.spec, o.seed);
  // A single layer; a list of layers (an axis) or none: -1.
  e.layer = e.spec.contains("layer") && e.spec["layer"].is_number_integer() ? e.spec["layer"].get<int>() : -1;
  const std::string& source = m.source_words(d.model, d.group);
  e.title = words(d.title, m.words(d.model), source, e.spec);
  if (d.setting) e.setting = words(d.setting, m.words(d.model), source, e.spec);
  set_tolerance(e, d.group);
  if (e.spec["kind"] == "block") {
    // Whole blocks read real text: the trained model its own, GPT-2 and BERT --text or Alice.
    if (d.model == Slot::Stories)
      e.spec["text"] = trained_text_file().string();
    else if (!m.blocks_text.empty())
      e.spec["text"] = m.blocks_text;
    else
      e.spec["ids_seed"] = o.seed;
  } else if (e.spec["kind"] == "window") {
    if (d.model == Slot::Stories)  // the trained model always reads its own kind of text
      e.spec["text"] = trained_text_file().string();
    else if (o.text.empty())
      e.spec["ids_seed"] = o.seed;
    else
      e.spec["text"] = std::filesystem::absolute(o.text).string();
  }
  const bool pretrained = m.pretrained(d.model);
  if (d.paper_radius > 0) set_radius(e, d, pretrained);
  e.setting += "; " + tolerance_words(e.spec);
  e.paper_radius = d.paper_radius;
  const Reference& ref = pretrained || !d.random.text ? d.pretrained : d.random;
  if (ref.text) e.reference = PaperReference{ref.text, ref.constant, ref.exponent};
  return e;
}

}  // namespace

std::string to_string(ExperimentGroup group) {
  switch (group) {
    case ExperimentGroup::Real:
      return "real";
    case ExperimentGroup::Bounds:
      return "bounds";
    case ExperimentGroup::Long:
      return "long";
    case ExperimentGroup::Adversarial:
      return "adversarial";
    case ExperimentGroup::Attack:
      return "attack";
    case ExperimentGroup::Meanfield:
      return "meanfield";
    case ExperimentGroup::Trained:
      return "trained";
    case ExperimentGroup::Blocks:
      return "blocks";
  }
  return "?";
}

std::string model_argument(const std::string& model) {
  std::error_code ec;
  if (model.empty() || !std::filesystem::is_directory(model, ec)) return model;
  return std::filesystem::absolute(model).lexically_normal().string();
}

std::filesystem::path trained_model_file() {
  const std::filesystem::path root = models::default_data_root(), file = root / "stories260K" / "stories260K.bin";
  std::error_code ec;
  return !root.empty() && std::filesystem::is_regular_file(file, ec) ? file : std::filesystem::path();
}

std::filesystem::path trained_text_file() {
  const std::filesystem::path root = models::default_data_root(), file = root / "text" / "tinystories-valid-head.txt";
  std::error_code ec;
  return !root.empty() && std::filesystem::is_regular_file(file, ec) ? file : std::filesystem::path();
}

std::filesystem::path blocks_text_file() {
  const std::filesystem::path root = models::default_data_root(), file = root / "text" / "carroll-alice.txt";
  std::error_code ec;
  return !root.empty() && std::filesystem::is_regular_file(file, ec) ? file : std::filesystem::path();
}

std::vector<Experiment> reproduce_experiments(const ReproduceOptions& options) {
  const Models models(options);
  std::vector<Experiment> out;
  for (const Definition& d : kCatalogue)
    if (included(d, options)) out.push_back(make_experiment(d, models, options));
  return out;
}

}  // namespace lipattn::experiments
