// Certified upper bounds on the Lipschitz constant of an attention layer, locally at an input X or
// on a set of inputs (docs/theory.md, "Upper bounds"; the numbers there refer to that chapter).
//
// Every bound is a function of the weights and of X (local) or of (n, R) (set). Each bound comes
// with a status: "proved" (derived in the doc and property-tested against the exact constant) or
// "refuted" (a saved counterexample shows exact > bound; it is still reported, never used as `best`).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "attention/layer.h"
#include "attention/mlp.h"
#include "spectral/spectral_norm.h"

namespace lipattn {

// Keys of BoundReport::bounds.
namespace bound_names {
inline constexpr const char* kPaperCompact = "paper_compact";                // (1) √3‖V‖(‖A‖²R⁴(4n+1)+n)^½
// (2) transcribed from the authors' released code (toolbox.compute_bound), not a theorem of the paper
inline constexpr const char* kReleasedCodeDataDependent = "released_code_data_dependent";
inline constexpr const char* kDataDependent = "data_dependent";              // (2') corrected
inline constexpr const char* kNIndependent = "n_independent";                // (3) as recalled (Hardy if masked)
inline constexpr const char* kNIndependentSharp = "n_independent_sharp";     // (3') sharper constants
inline constexpr const char* kStructured = "structured";                     // (5) from P itself (local only)
}  // namespace bound_names

// B_R^n: n tokens, each of norm ≤ R, taken at the ATTENTION's input (after the pre-norm, if any).
struct TokenBall {
  Index n = 0;
  double radius = 0;
};

// The paper's per-head quantities (§U.1). Scores are S_ij = ⟨A x_i + c, x_j⟩ + (a term constant in j,
// which the softmax cancels: the key bias b_K only enters there).
struct HeadQuantities {
  MatrixD value_map;  // V = W_O,h W_V,h (or W_V,h without W_O): out × d
  MatrixD score_map;  // A = scale · W_K,hᵀ W_Q,h: d × d
  VectorD score_shift;  // c = scale · W_K,hᵀ b_Q,h (zero without a query bias)
  double value_norm = 0;       // ‖V‖₂
  double score_norm = 0;       // ‖A‖₂
  double shift_norm = 0;       // ‖c‖
  double augmented_score_norm = 0;  // ‖[A c]‖₂: A of the augmented token (x, 1), §U.1
};
HeadQuantities head_quantities(const AttentionWeights& weights, Index h);

// Lipschitz factors of the pieces around the attention (§U.6).
struct CompositionFactors {
  double pre_norm = 1;   // ‖D pre_norm‖ (local: at X; set: sup over all inputs)
  double residual = 0;   // 1 with a residual
  double post_norm = 1;  // ‖D post_norm‖ (local: at the post-norm's input; set: sup)
  double attention_radius = 0;  // R seen by the attention (local: max_i ‖z_i‖; set: min(R, image radius))
  Index tokens = 0;
};

// lim_{r→∞} ‖Df(rX)‖₂ (§U.4). Applies to attention (+ residual) without norms.
struct HardmaxLimit {
  bool exists = false;     // false: a row ties between distinct tokens and ‖Df(rX)‖ grows without bound
  double value = 0;        // ‖J_∞‖₂, J_∞ dX = Σ_h (P_∞,h dX V_hᵀ) (+ dX)
  std::vector<Index> max_in_degree;  // per head: max_j #{i : j is i's winner}
  std::vector<MatrixD> hardmax;      // P_∞ per head (rows uniform over the winners)
  std::string note;
};

// A bound's status, written "proved", "refuted: <reason>" or "not covered: <reason>" (a report whose
// inputs the proofs do not cover lists every bound so, with no value).
struct BoundStatus {
  enum class Kind { Proved, Refuted, NotCovered } kind = Kind::Proved;
  std::string reason;                                 // why it is refuted or not covered
  static BoundStatus parse(const std::string& text);  // InputError("status") for anything else
  std::string to_string() const;
  bool proved() const { return kind == Kind::Proved; }
  bool refuted() const { return kind == Kind::Refuted; }
};

struct BoundReport {
  std::map<std::string, double> bounds;        // name → upper bound on the whole layer (composed, §U.6)
  std::map<std::string, double> attention;     // name → the same bound on the attention alone
  std::map<std::string, BoundStatus> status;   // name → its status
  std::vector<std::string> notes;              // why a bound is absent, what the set is, ...
  CompositionFactors factors;
  std::optional<HardmaxLimit> hardmax;         // local mode only
  std::map<std::string, double> structured_terms;  // local: ‖J₁‖, ‖J₂‖, ‖J₃‖ bounds summed over heads
  std::string best_name;                       // the smallest bound that is not refuted
  double best = 0;
};

// Bounds on ‖Df(X)‖₂ at X (n × d): every applicable bound of §U.1–U.5, composed by §U.6.
BoundReport local_bounds(const LayerSpec& spec, const MatrixD& X);

// Bounds on sup ‖Df(X)‖₂ over the set whose attention inputs lie in B_R^n (§U.6 says what the set
// is with a pre-norm). The structured and data-dependent bounds need X and are absent.
BoundReport set_bounds(const LayerSpec& spec, const TokenBall& ball);

// §U.4: the hardmax limit in direction X, or nullopt (with a note) when norms make it not apply.
std::optional<HardmaxLimit> hardmax_limit(const LayerSpec& spec, const MatrixD& X, std::string* why_not = nullptr);

// ‖Df(rX)‖₂ for each r, measured exactly (the sweep X → rX that approaches the hardmax limit).
struct SweepPoint {
  double radius_factor = 0;
  double exact = 0;
};
std::vector<SweepPoint> hardmax_sweep(const LayerSpec& spec, const MatrixD& X, const std::vector<double>& factors,
                                      const SpectralOptions& options = {});

// The MLP map (attention/mlp.h), globally (docs/theory.md §10.1): Lip(mlp) ≤ ‖W_out‖₂ · sup|act'| ·
// ‖W_in‖₂ for an ungated MLP. A gated MLP (SwiGLU) is a product of two linear functions of x and has
// no global constant: nullopt, with the reason in *why_not.
std::optional<double> mlp_global_bound(const MlpWeights& weights, std::string* why_not = nullptr);
// sup_x |act'(x)|, rounded up (gelu and gelu_new 1.13, silu and quick_gelu 1.1, relu and tanh 1).
double activation_derivative_bound(Activation activation);

// Pieces, exposed for the tests.
// ‖C_n‖₂ of the Cesàro matrix (C_ij = 1/i for j ≤ i): ≤ 2 by Hardy's inequality (§U.3).
double cesaro_norm(Index n);
// The image radius of a norm: every output token has norm ≤ √d‖γ‖_∞ + ‖β‖ (§U.6).
double norm_image_radius(const NormWeights& norm);
// max_i ‖D norm(x_i)‖ ≤ max_i ‖γ‖_∞ / s_i (§U.6); s_i = √(var + ε) or √(mean x² + ε).
double norm_local_factor(const NormWeights& norm, const MatrixD& X);
double norm_global_factor(const NormWeights& norm);  // ‖γ‖_∞/√ε (infinite when ε = 0)

}  // namespace lipattn
