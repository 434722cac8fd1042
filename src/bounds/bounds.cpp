// Upper bounds on the Lipschitz constant of attention. Every formula is derived in docs/theory.md,
// "Upper bounds" (§U.1–§U.6); the section of each piece is named where it is computed.
//
// One head, tokens z_i (the attention's input), P the attention matrix, m_i = Σ_j P_ij z_j,
// Cov_i = Σ_j P_ij (z_j − m_i)(z_j − m_i)ᵀ, q_i = A z_i + c. The Jacobian splits as (§U.1)
//   (J dZ)_i = V Σ_j P_ij dz_j                      J₁ = P ⊗ V
//            + V Cov_i A dz_i                        J₂, block diagonal
//            + V Σ_j P_ij (z_j − m_i) ⟨q_i, dz_j⟩    J₃
// and every bound below bounds ‖J₁‖ + ‖J₂‖ + ‖J₃‖ more or less coarsely.
#include "bounds/bounds.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include <Eigen/Eigenvalues>
#include <fmt/core.h>

#include "common/error.h"
#include "spectral/measure.h"

namespace lipattn {

BoundStatus BoundStatus::parse(const std::string& text) {
  if (text == "proved") return {Kind::Proved, {}};
  const std::pair<std::string, Kind> written[] = {{"refuted", Kind::Refuted}, {"not covered", Kind::NotCovered}};
  for (const auto& [prefix, kind] : written) {
    if (text.compare(0, prefix.size(), prefix) != 0) continue;
    const std::size_t reason = text.find_first_not_of(": ", prefix.size());
    return {kind, reason == std::string::npos ? std::string() : text.substr(reason)};
  }
  throw InputError(
      fmt::format("bound status '{}': expected \"proved\", \"refuted: <reason>\" or \"not covered: <reason>\"", text),
      "status");
}

std::string BoundStatus::to_string() const {
  if (kind == Kind::Proved) return "proved";
  const std::string word = kind == Kind::Refuted ? "refuted" : "not covered";
  return reason.empty() ? word : word + ": " + reason;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double top_eigenvalue_psd(const MatrixD& S) {
  if (S.size() == 0) return 0.0;
  Eigen::SelfAdjointEigenSolver<MatrixD> eig(S, Eigen::EigenvaluesOnly);
  return std::max(0.0, eig.eigenvalues().maxCoeff());
}

// R with RᵀR = MᵀM and min(rows, cols) rows, so that ‖M X‖ = ‖R X‖ for every X: lets the bounds
// work in the head's k dimensions instead of d (a GPT-2 head has k = 64, d = 768).
MatrixD left_equivalent(const MatrixD& M) {
  if (M.rows() <= M.cols()) return M;
  Eigen::HouseholderQR<MatrixD> qr(M);
  MatrixD R = qr.matrixQR().topRows(M.cols()).triangularView<Eigen::Upper>();
  return R;
}

// Per-head factors in compressed form (§U.1): ‖V M‖ = ‖Vs M‖, ‖M A‖ = ‖M B‖, and the query rows
// q̂_i with q̂_i q̂_jᵀ = q_i q_jᵀ.
struct CompressedHead {
  MatrixD Vs;       // r × d, VsᵀVs = VᵀV
  MatrixD B;        // d × k, B Bᵀ = A Aᵀ
  MatrixD Wq, Wk;   // k × d (this head's rows)
  VectorD bq;       // k (zero without a query bias)
  MatrixD Rk;       // k' × k with Rkᵀ Rk = W_K W_Kᵀ
  double scale = 1;
};

CompressedHead compress_head(const AttentionWeights& w, Index h) {
  const AttentionWeights one = w.head(h);
  CompressedHead c;
  c.scale = one.effective_scale();
  c.Wq = one.w_q;
  c.Wk = one.w_k;
  c.bq = one.b_q.size() ? one.b_q : VectorD::Zero(one.w_q.rows());
  MatrixD V = one.w_o.size() ? MatrixD(left_equivalent(one.w_o) * one.w_v) : one.w_v;
  c.Vs = left_equivalent(V);
  const MatrixD Rq = left_equivalent(one.w_q.transpose());  // RqᵀRq = W_Q W_Qᵀ
  c.B = c.scale * one.w_k.transpose() * Rq.transpose();
  c.Rk = left_equivalent(one.w_k.transpose());
  return c;
}

bool has_query_bias(const AttentionWeights& w) { return w.b_q.size() && w.b_q.cwiseAbs().maxCoeff() > 0; }

// Softmax rows of S (n × n) with the causal mask; S = scale (Z W_Qᵀ + b_Q)(Z W_Kᵀ)ᵀ — no key bias,
// which §U.1 shows cancels. Computed here, not taken from the attention map, so the tests compare
// two independent computations.
MatrixD attention_matrix(const MatrixD& S, bool causal) {
  const Index n = S.rows();
  MatrixD P = MatrixD::Zero(n, n);
  for (Index i = 0; i < n; ++i) {
    const Index width = causal ? i + 1 : n;
    auto row = S.row(i).head(width);
    const double top = row.maxCoeff();
    VectorD e = (row.array() - top).exp().matrix().transpose();
    P.row(i).head(width) = e.transpose() / e.sum();
  }
  return P;
}

struct StructuredTerms {
  double t1 = 0, t2 = 0, t3 = 0;
  double total() const { return t1 + t2 + t3; }
};

// §U.5: exact ‖J₁‖ = ‖P‖‖V‖, exact ‖J₂‖ = max_i ‖V Cov_i A‖, and ‖J₃‖ ≤ min(‖E‖₂, √(max_j ‖M_j‖)).
// With `column_scale` w, bounds ‖J diag(w ⊗ I)‖ instead (the pre-norm's 1/s_j folded in, §U.6).
StructuredTerms structured_head(const CompressedHead& c, const MatrixD& Z, bool causal,
                                const VectorD* column_scale = nullptr) {
  const Index n = Z.rows();
  const MatrixD Qraw = (Z * c.Wq.transpose()).rowwise() + c.bq.transpose();  // n × k
  const MatrixD K = Z * c.Wk.transpose();
  const MatrixD P = attention_matrix(c.scale * Qraw * K.transpose(), causal);
  const MatrixD Qhat = c.scale * Qraw * c.Rk.transpose();  // rows q̂_i: ‖q̂_i‖ = ‖q_i‖
  const MatrixD ZV = Z * c.Vs.transpose();                  // n × r: V z_j
  const MatrixD ZB = Z * c.B;                               // n × k: Aᵀ z_j (up to an isometry)
  const VectorD w = column_scale ? *column_scale : VectorD::Ones(n);
  StructuredTerms t;
  t.t1 = top_singular_value(P * w.asDiagonal()) * top_singular_value(c.Vs);
  VectorD alpha(n);  // ‖V Cov_i Vᵀ‖
  MatrixD E(n, n);   // E_ij = P_ij ‖V(z_j − m_i)‖ ‖q_i‖
  const VectorD qnorm = Qhat.rowwise().norm();
  for (Index i = 0; i < n; ++i) {
    const RowVector<double> p = P.row(i);
    const MatrixD Vc = ZV.rowwise() - p * ZV;  // V(z_j − m_i)
    const MatrixD Bc = ZB.rowwise() - p * ZB;
    const MatrixD weightedV = p.transpose().asDiagonal() * Vc;
    t.t2 = std::max(t.t2, w(i) * top_singular_value(weightedV.transpose() * Bc));  // V Cov_i A
    alpha(i) = top_eigenvalue_psd(weightedV.transpose() * Vc);
    E.row(i) = p.cwiseProduct(Vc.rowwise().norm().transpose()).cwiseProduct(w.transpose()) * qnorm(i);
  }
  double via_columns = 0;  // max_j ‖Σ_i α_i P_ij q_i q_iᵀ‖
  for (Index j = 0; j < n; ++j) {
    const VectorD beta = alpha.cwiseProduct(P.col(j));
    if (beta.maxCoeff() <= 0) continue;
    via_columns =
        std::max(via_columns, w(j) * w(j) * top_eigenvalue_psd(Qhat.transpose() * beta.asDiagonal() * Qhat));
  }
  t.t3 = std::min(top_singular_value(E), std::sqrt(via_columns));
  return t;
}

// The attention seen from the normalised tokens ẑ (§U.6): pre_norm(x) = γ ⊙ ẑ + β with
// ẑ = (x − x̄)/s (LayerNorm) or x/r (RMSNorm), so W(γ ⊙ ẑ + β) + b = (W diag γ) ẑ + (W β + b).
struct FoldedPreNorm {
  AttentionWeights weights;
  MatrixD normalised;  // ẑ_i
  VectorD inverse_scale;  // 1/s_i
};
FoldedPreNorm fold_pre_norm(const AttentionWeights& w, const NormWeights& norm, const MatrixD& X) {
  FoldedPreNorm f;
  f.weights = w;
  const auto G = norm.gamma.asDiagonal();
  f.weights.w_q = w.w_q * G;
  f.weights.w_k = w.w_k * G;
  f.weights.w_v = w.w_v * G;
  if (norm.beta.size()) {
    f.weights.b_q = (w.b_q.size() ? w.b_q : VectorD::Zero(w.w_q.rows())) + w.w_q * norm.beta;
    f.weights.b_k = (w.b_k.size() ? w.b_k : VectorD::Zero(w.w_k.rows())) + w.w_k * norm.beta;
  }
  const NormStatistics<double> stats = norm_statistics(norm.kind, X, norm.eps);
  f.normalised = stats.centred.array().colwise() / stats.scale.array();
  f.inverse_scale = stats.scale.cwiseInverse();
  return f;
}

double harmonic(Index n) {
  double s = 0;
  for (Index i = 1; i <= n; ++i) s += 1.0 / static_cast<double>(i);
  return s;
}

// Heads add up through W_O (triangle inequality); without W_O their outputs are stacked, so the
// squares add up (§U.6).
double combine_heads(const std::vector<double>& per_head, bool summed) {
  double s = 0;
  for (double b : per_head) s += summed ? b : b * b;
  return summed ? s : std::sqrt(s);
}

struct SetInputs {
  double V = 0, A = 0, c = 0, A_aug = 0;
};

// §U.1 and §U.3 for one head on B_R^n.
std::map<std::string, double> set_head_bounds(const SetInputs& q, Index n_tokens, double R, bool causal,
                                              bool query_bias) {
  std::map<std::string, double> out;
  const double n = static_cast<double>(n_tokens);
  // (1) and (3) as recalled, for the augmented token (z, 1) when there is a query bias (§U.1).
  const double Ra = query_bias ? std::sqrt(R * R + 1) : R;
  const double Aa = query_bias ? q.A_aug : q.A;
  out[bound_names::kPaperCompact] =
      std::sqrt(3.0) * q.V * std::sqrt(Aa * Aa * std::pow(Ra, 4) * (4 * n + 1) + n);
  const double a = Aa * Ra * Ra;
  const double p_recalled = causal ? std::min(std::sqrt(n), 2 * std::exp(2 * a)) : std::min(std::sqrt(n), std::exp(a));
  out[bound_names::kNIndependent] = q.V * ((1 + 2 * a) * p_recalled + a);
  // (3') §U.3: b bounds half the score spread, α = ‖A‖R² bounds ‖Cov_i A‖.
  const double b = (q.A * R + q.c) * R;
  const double alpha = q.A * R * R;
  double p_bar, column_sum;
  if (causal) {
    p_bar = std::min({std::sqrt(n), cesaro_norm(n_tokens) * std::exp(2 * b), std::exp(b) * std::sqrt(harmonic(n_tokens))});
    column_sum = std::min(n, std::exp(2 * b) * harmonic(n_tokens));
  } else {
    p_bar = std::min(std::sqrt(n), std::exp(b));
    column_sum = std::min(n, std::exp(2 * b));
  }
  const double j3 = b == 0 ? 0.0 : b * std::min(std::sqrt(column_sum), 2 * p_bar);
  out[bound_names::kNIndependentSharp] = q.V * (p_bar + alpha + j3);
  return out;
}

SetInputs set_inputs(const HeadQuantities& hq) { return {hq.value_norm, hq.score_norm, hq.shift_norm, hq.augmented_score_norm}; }

double compose(const CompositionFactors& f, double attention) {
  if (attention == 0 && (std::isinf(f.pre_norm))) return f.post_norm * f.residual;  // 0·∞: the attention is constant
  return f.post_norm * (f.residual + attention * f.pre_norm);
}

void set_status(BoundReport& r) {
  for (const auto& [name, value] : r.bounds) {
    if (name == bound_names::kReleasedCodeDataDependent)
      r.status[name] = {BoundStatus::Kind::Refuted,
                        "fails when ‖Aᵀ z‖ ≫ ‖A z‖ (docs/theory.md §U.2, counterexample tests/data/bounds/)"};
    else
      r.status[name] = {BoundStatus::Kind::Proved, {}};
  }
  r.best = kInf;
  for (const auto& [name, value] : r.bounds) {
    if (!r.status[name].proved()) continue;
    if (value < r.best) {
      r.best = value;
      r.best_name = name;
    }
  }
}

void check_input(const LayerSpec& spec, const MatrixD& X) {
  spec.validate();
  if (X.cols() != spec.attention.input_dim())
    throw InputError(fmt::format("the input has {} features per token, the layer expects d = {}", X.cols(),
                                 spec.attention.input_dim()));
  if (X.rows() < 1) throw InputError("the input has no tokens (n = 0)");
  if (!X.allFinite()) throw InputError("the input holds NaN or Inf");
}

// J_∞ dX = Σ_h (P_∞,h dX V_hᵀ) (stacked without W_O) + dX with a residual (§U.4).
class HardmaxOperator final : public LinearOperator {
 public:
  HardmaxOperator(std::vector<MatrixD> P, std::vector<MatrixD> V, bool stacked, bool residual, Index d)
      : P_(std::move(P)), V_(std::move(V)), stacked_(stacked), residual_(residual), d_(d) {
    n_ = P_.front().rows();
    out_ = 0;
    for (const auto& v : V_) out_ = stacked_ ? out_ + v.rows() : v.rows();
  }
  Index input_size() const override { return n_ * d_; }
  Index output_size() const override { return n_ * out_; }
  VectorD apply(const VectorD& v) const override {
    Eigen::Map<const MatrixD> dX(v.data(), n_, d_);
    MatrixD Y = MatrixD::Zero(n_, out_);
    Index col = 0;
    for (size_t h = 0; h < P_.size(); ++h) {
      MatrixD Yh = P_[h] * dX * V_[h].transpose();
      if (stacked_) {
        Y.middleCols(col, Yh.cols()) = Yh;
        col += Yh.cols();
      } else {
        Y += Yh;
      }
    }
    if (residual_) Y += dX;
    return Eigen::Map<const VectorD>(Y.data(), Y.size());
  }
  VectorD apply_transpose(const VectorD& w) const override {
    Eigen::Map<const MatrixD> dY(w.data(), n_, out_);
    MatrixD X = MatrixD::Zero(n_, d_);
    Index col = 0;
    for (size_t h = 0; h < P_.size(); ++h) {
      const Index width = V_[h].rows();
      const MatrixD dYh = stacked_ ? MatrixD(dY.middleCols(col, width)) : MatrixD(dY);
      col += stacked_ ? width : 0;
      X += P_[h].transpose() * dYh * V_[h];
    }
    if (residual_) X += dY;
    return Eigen::Map<const VectorD>(X.data(), X.size());
  }

 private:
  std::vector<MatrixD> P_, V_;
  bool stacked_, residual_;
  Index d_, n_ = 0, out_ = 0;
};

AttentionWeights without_output_projection(const AttentionWeights& w) {
  AttentionWeights out = w;
  out.w_o.resize(0, 0);
  out.b_o.resize(0);
  return out;
}

// Per head: every local bound of one head of `w` at Z (§U.1–§U.5), before combining heads.
std::map<std::string, std::vector<double>> local_per_head(const AttentionWeights& w, const MatrixD& Z, double R,
                                                          double diameter, std::vector<double>* t1,
                                                          std::vector<double>* t2, std::vector<double>* t3) {
  const Index n = Z.rows();
  const bool qbias = has_query_bias(w);
  std::map<std::string, std::vector<double>> per_head;
  for (Index h = 0; h < w.heads; ++h) {
    const HeadQuantities hq = head_quantities(w, h);
    for (const auto& [name, value] : set_head_bounds(set_inputs(hq), n, R, w.causal, qbias))
      per_head[name].push_back(value);
    const CompressedHead c = compress_head(w, h);
    const StructuredTerms st = structured_head(c, Z, w.causal);
    per_head[bound_names::kStructured].push_back(st.total());
    if (t1) t1->push_back(st.t1);
    if (t2) t2->push_back(st.t2);
    if (t3) t3->push_back(st.t3);
    // (2) transcribed from the released code, with ‖W_O,h V_h‖ (§U.2), and (2') corrected.
    const MatrixD Qhat = c.scale * ((Z * c.Wq.transpose()).rowwise() + c.bq.transpose()) * c.Rk.transpose();
    const double Rh = Qhat.rowwise().norm().maxCoeff();  // max_i ‖A z_i + c‖
    const MatrixD ZB = Z * c.B;
    double Dh = 0;  // max_{j,k} ‖Aᵀ(z_j − z_k)‖
    for (Index i = 0; i < n; ++i)
      for (Index j = i + 1; j < n; ++j) Dh = std::max(Dh, (ZB.row(i) - ZB.row(j)).norm());
    const double nn = static_cast<double>(n);
    per_head[bound_names::kReleasedCodeDataDependent].push_back(
        hq.value_norm * std::sqrt(Rh * Rh * diameter * diameter * (nn + 1) + nn));
    per_head[bound_names::kDataDependent].push_back(hq.value_norm *
                                                    (std::sqrt(nn) * (1 + diameter * Rh) + diameter * Dh));
  }
  return per_head;
}

}  // namespace

// ---- pieces ---------------------------------------------------------------------------------

HeadQuantities head_quantities(const AttentionWeights& w, Index h) {
  const AttentionWeights one = w.head(h);
  const double s = one.effective_scale();
  HeadQuantities q;
  q.value_map = one.w_o.size() ? MatrixD(one.w_o * one.w_v) : one.w_v;
  q.score_map = s * one.w_k.transpose() * one.w_q;
  q.score_shift = one.b_q.size() ? VectorD(s * one.w_k.transpose() * one.b_q) : VectorD::Zero(one.input_dim());
  const CompressedHead c = compress_head(w, h);
  q.value_norm = top_singular_value(c.Vs);
  q.score_norm = top_singular_value(c.B);
  q.shift_norm = q.score_shift.norm();
  // [A c] = s W_Kᵀ [W_Q b_Q]: compress [W_Q b_Q] like W_Q.
  MatrixD Wqb(one.w_q.rows(), one.w_q.cols() + 1);
  Wqb << one.w_q, (one.b_q.size() ? one.b_q : VectorD::Zero(one.w_q.rows()));
  q.augmented_score_norm = top_singular_value(s * one.w_k.transpose() * left_equivalent(Wqb.transpose()).transpose());
  return q;
}

double cesaro_norm(Index n) {
  if (n <= 0) return 0.0;
  if (n > 512) return 2.0;  // Hardy: sup_n ‖C_n‖ = 2 (§U.3); exact values only help small n
  MatrixD C = MatrixD::Zero(n, n);
  for (Index i = 0; i < n; ++i) C.row(i).head(i + 1).setConstant(1.0 / static_cast<double>(i + 1));
  return std::min(2.0, top_singular_value(C) * (1 + 1e-12));
}

double norm_image_radius(const NormWeights& norm) {
  const double d = static_cast<double>(norm.gamma.size());
  return std::sqrt(d) * norm.gamma.cwiseAbs().maxCoeff() + (norm.beta.size() ? norm.beta.norm() : 0.0);
}

double norm_local_factor(const NormWeights& norm, const MatrixD& X) {
  const double g = norm.gamma.cwiseAbs().maxCoeff();
  const VectorD scale = norm_statistics(norm.kind, X, norm.eps).scale;
  double worst = 0;
  for (Index i = 0; i < X.rows(); ++i) worst = std::max(worst, scale(i) > 0 ? g / scale(i) : kInf);
  return worst;
}

double norm_global_factor(const NormWeights& norm) {
  const double g = norm.gamma.cwiseAbs().maxCoeff();
  return norm.eps > 0 ? g / std::sqrt(norm.eps) : kInf;
}

double activation_derivative_bound(Activation activation) {
  switch (activation) {
    case Activation::GeluErf:
    case Activation::GeluTanh:
      return 1.13;  // sup gelu' = Φ(√2) + √2 φ(√2) ≈ 1.12897; gelu_new's ≈ 1.1289 (§10.1)
    case Activation::Silu:
    case Activation::QuickGelu:
      return 1.1;  // sup silu' ≈ 1.0998 at x ≈ 2.40
    case Activation::Relu:
    case Activation::Tanh:
      return 1.0;
  }
  return kInf;
}

std::optional<double> mlp_global_bound(const MlpWeights& weights, std::string* why_not) {
  if (weights.w_gate.size()) {
    if (why_not)
      *why_not = "a gated MLP (SwiGLU) multiplies two linear functions of its input: no global Lipschitz constant";
    return std::nullopt;
  }
  return top_singular_value(weights.w_out) * activation_derivative_bound(weights.activation) *
         top_singular_value(weights.w_in);
}

// ---- reports --------------------------------------------------------------------------------

namespace {

// Why the proofs of docs/theory.md §5 (U.0–U.6) do not cover this attention, or "" when they do. They take the
// scores as ⟨A x_i + c, x_j⟩ with one A per head; RoPE makes A depend on i − j and QK-norm makes the
// scores a nonlinear function of q and k (§2.6; U.8). Grouped K/V heads are covered: the map is the
// one with each K/V head repeated for its query heads, which is what head(h) gives every bound.
std::string not_covered_reason(const AttentionWeights& w) {
  std::string why;
  if (w.rope.enabled()) why = "rotary position embeddings (the scores' A depends on i − j)";
  if (w.q_norm) why += std::string(why.empty() ? "" : " and ") + "QK-norm (the scores are not bilinear in x)";
  return why;
}

// A report with no numbers: every bound marked "not covered: <reason>", and a note saying so.
BoundReport not_covered_report(const std::string& why, Index n, double radius) {
  BoundReport r;
  for (const char* name : {bound_names::kPaperCompact, bound_names::kReleasedCodeDataDependent, bound_names::kDataDependent,
                           bound_names::kNIndependent, bound_names::kNIndependentSharp, bound_names::kStructured})
    r.status[name] = {BoundStatus::Kind::NotCovered, why};
  r.notes.push_back("no bound reported: the proofs (docs/theory.md §5) do not cover " + why);
  r.factors.tokens = n;
  r.factors.attention_radius = radius;
  r.best = kInf;
  return r;
}

}  // namespace

BoundReport local_bounds(const LayerSpec& spec, const MatrixD& X) {
  check_input(spec, X);
  if (const std::string why = not_covered_reason(spec.attention); !why.empty())
    return not_covered_report(why, X.rows(), X.rowwise().norm().maxCoeff());
  const AttentionWeights& w = spec.attention;
  BoundReport r;
  const Index n = X.rows();
  const MatrixD Z = spec.pre_norm ? Norm<double>(*spec.pre_norm).forward(X)->output : X;
  CompositionFactors& f = r.factors;
  f.tokens = n;
  f.pre_norm = spec.pre_norm ? norm_local_factor(*spec.pre_norm, X) : 1.0;
  f.residual = spec.residual ? 1.0 : 0.0;
  if (spec.post_norm) {
    MatrixD U = MultiHeadAttention<double>(w).forward(Z)->output;
    if (spec.residual) U += X;
    f.post_norm = norm_local_factor(*spec.post_norm, U);
  }
  f.attention_radius = Z.rowwise().norm().maxCoeff();
  const double R = f.attention_radius;
  const bool summed = w.w_o.size() || w.heads == 1;
  const bool qbias = has_query_bias(w);

  // Data-dependent quantities shared by the heads: the diameter r of the token cloud.
  double diameter = 0;
  for (Index i = 0; i < n; ++i)
    for (Index j = i + 1; j < n; ++j) diameter = std::max(diameter, (Z.row(i) - Z.row(j)).norm());

  // Heads through W_O: either Σ_h bound(W_O,h W_V,h) (triangle), or ‖W_O‖·(Σ_h bound(W_V,h)²)^½ since
  // Σ_h J_h(W_O,h W_V,h) = (I ⊗ W_O)·stack_h J_h(W_V,h) (§U.6). Each bound takes the smaller.
  std::vector<double> t1, t2, t3;
  auto attention_bounds = [&](const AttentionWeights& aw, bool record_terms) {
    const bool sum = aw.w_o.size() || aw.heads == 1;
    std::map<std::string, double> out;
    for (const auto& [name, values] : local_per_head(aw, Z, R, diameter, record_terms ? &t1 : nullptr,
                                                     record_terms ? &t2 : nullptr, record_terms ? &t3 : nullptr))
      out[name] = combine_heads(values, sum || name == bound_names::kReleasedCodeDataDependent);
    return out;
  };
  auto structured_folded = [&](const AttentionWeights& aw) {
    const FoldedPreNorm folded = fold_pre_norm(aw, *spec.pre_norm, X);
    std::vector<double> fused;
    for (Index h = 0; h < aw.heads; ++h)
      fused.push_back(
          structured_head(compress_head(folded.weights, h), folded.normalised, aw.causal, &folded.inverse_scale)
              .total());
    return combine_heads(fused, aw.w_o.size() || aw.heads == 1);
  };
  r.attention = attention_bounds(w, true);
  // (5) with the pre-norm folded in (§U.6): a bound on ‖J_att J_pre‖ itself, not ‖J_att‖‖J_pre‖.
  double fused = kInf;
  const bool fold = spec.pre_norm && f.pre_norm < kInf;
  if (fold) fused = structured_folded(w);
  if (w.w_o.size() && w.heads > 1) {
    const AttentionWeights stacked = without_output_projection(w);
    const double wo = top_singular_value(w.w_o);
    bool helped = false;
    for (const auto& [name, value] : attention_bounds(stacked, false)) {
      if (name == bound_names::kReleasedCodeDataDependent) continue;  // the authors' rule
      if (wo * value < r.attention[name]) {
        r.attention[name] = wo * value;
        helped = true;
      }
    }
    if (fold) fused = std::min(fused, wo * structured_folded(stacked));
    if (helped) r.notes.push_back("heads: ‖W_O‖·(Σ_h b_h²)^½ beat Σ_h b_h(W_O,h) for some bounds (§U.6)");
  }
  for (const auto& [name, att] : r.attention) r.bounds[name] = compose(f, att);
  if (fold) {
    const double via_fold = f.post_norm * (f.residual + fused);
    double& structured = r.bounds[bound_names::kStructured];
    if (via_fold < structured) {
      structured = via_fold;
      r.notes.push_back("structured: the pre-norm's γ and 1/s_j are folded into the attention (§U.6)");
    }
  }
  r.structured_terms = {{"P_kron_V", combine_heads(t1, summed)},
                        {"V_Cov_A", combine_heads(t2, summed)},
                        {"V_Cov_q", combine_heads(t3, summed)}};  // per-head W_O,h W_V,h, before the min
  if (w.causal)
    r.notes.push_back("paper_compact: the paper states it without a mask; §U.1 proves it holds with the causal mask");
  if (qbias)
    r.notes.push_back("query bias: paper_compact and n_independent use the augmented token (z, 1), "
                      "‖[A c]‖ and √(R²+1) (§U.1)");
  if (w.b_k.size() || w.b_v.size() || w.b_o.size())
    r.notes.push_back("key, value and output biases do not change the Jacobian (§U.1)");
  r.notes.push_back(fmt::format("paper_compact, n_independent(_sharp) are evaluated on B_R^n with R = max_i ‖z_i‖ = {:.6g}",
                                R));
  if (spec.pre_norm)
    r.notes.push_back("pre-norm: bounds are composed with max_i ‖γ‖_∞/s_i at X (§U.6)");
  if (spec.post_norm)
    r.notes.push_back("post-norm: bounds are composed with max_i ‖γ‖_∞/s_i at the post-norm's input (§U.6)");
  std::string why;
  r.hardmax = hardmax_limit(spec, X, &why);
  if (!r.hardmax) r.notes.push_back("hardmax limit: " + why);
  set_status(r);
  return r;
}

BoundReport set_bounds(const LayerSpec& spec, const TokenBall& ball) {
  spec.validate();
  if (ball.n < 1) throw InputError(fmt::format("n must be at least 1, got {}", ball.n), "n");
  if (!(ball.radius >= 0) || !std::isfinite(ball.radius))
    throw InputError(fmt::format("radius must be finite and ≥ 0, got {}", ball.radius), "radius");
  if (const std::string why = not_covered_reason(spec.attention); !why.empty())
    return not_covered_report(why, ball.n, ball.radius);
  const AttentionWeights& w = spec.attention;
  BoundReport r;
  CompositionFactors& f = r.factors;
  f.tokens = ball.n;
  f.residual = spec.residual ? 1.0 : 0.0;
  f.attention_radius = ball.radius;
  if (spec.pre_norm) {
    const double image = norm_image_radius(*spec.pre_norm);
    if (image < ball.radius) {
      f.attention_radius = image;
      r.notes.push_back(fmt::format("pre-norm: its image has radius ≤ √d‖γ‖_∞ + ‖β‖ = {:.6g} < R, used instead (§U.6)",
                                    image));
    }
    f.pre_norm = norm_global_factor(*spec.pre_norm);
    r.notes.push_back(fmt::format("pre-norm: the set is every X whose normalised tokens have norm ≤ R; its "
                                  "Lipschitz factor on it is sup ‖γ‖_∞/s = ‖γ‖_∞/√ε = {:.6g} (§U.6)",
                                  f.pre_norm));
  }
  if (spec.post_norm) {
    f.post_norm = norm_global_factor(*spec.post_norm);
    r.notes.push_back(fmt::format("post-norm: factor ‖γ‖_∞/√ε = {:.6g}; its input is not bounded away from "
                                  "constant tokens on the set (§U.6)",
                                  f.post_norm));
  }
  const bool qbias = has_query_bias(w);
  auto attention_bounds = [&](const AttentionWeights& aw) {
    std::map<std::string, std::vector<double>> per_head;
    for (Index h = 0; h < aw.heads; ++h)
      for (const auto& [name, value] :
           set_head_bounds(set_inputs(head_quantities(aw, h)), ball.n, f.attention_radius, aw.causal, qbias))
        per_head[name].push_back(value);
    std::map<std::string, double> out;
    for (const auto& [name, values] : per_head) out[name] = combine_heads(values, aw.w_o.size() || aw.heads == 1);
    return out;
  };
  r.attention = attention_bounds(w);
  if (w.w_o.size() && w.heads > 1) {  // ‖W_O‖·(Σ_h b_h(W_V,h)²)^½, §U.6
    const double wo = top_singular_value(w.w_o);
    for (const auto& [name, value] : attention_bounds(without_output_projection(w)))
      r.attention[name] = std::min(r.attention[name], wo * value);
  }
  for (const auto& [name, att] : r.attention) r.bounds[name] = compose(f, att);
  r.notes.push_back("structured, data_dependent, released_code_data_dependent need an input X, not a set");
  if (w.causal)
    r.notes.push_back("paper_compact: the paper states it without a mask; §U.1 proves it holds with the causal mask");
  if (qbias)
    r.notes.push_back("query bias: paper_compact and n_independent use the augmented token (z, 1), "
                      "‖[A c]‖ and √(R²+1) (§U.1)");
  set_status(r);
  return r;
}

std::optional<HardmaxLimit> hardmax_limit(const LayerSpec& spec, const MatrixD& X, std::string* why_not) {
  check_input(spec, X);
  if (spec.pre_norm || spec.post_norm) {
    if (why_not) *why_not = "not applicable with a norm (a norm makes f(rX) scale-invariant, so ‖Df(rX)‖ → residual)";
    return std::nullopt;
  }
  if (const std::string why = not_covered_reason(spec.attention); !why.empty()) {
    if (why_not) *why_not = "not covered: " + why;
    return std::nullopt;
  }
  const AttentionWeights& w = spec.attention;
  const Index n = X.rows();
  HardmaxLimit lim;
  lim.exists = true;
  std::vector<MatrixD> values;
  const double scale_x = 1.0 + X.cwiseAbs().maxCoeff();
  for (Index h = 0; h < w.heads; ++h) {
    const CompressedHead c = compress_head(w, h);
    const AttentionWeights one = w.head(h);
    values.push_back(one.w_o.size() ? MatrixD(one.w_o * one.w_v) : one.w_v);
    // Leading order r²: S⁰ = ⟨A x_i, x_j⟩; the query bias breaks ties at order r: ⟨c, x_j⟩.
    const MatrixD S0 = c.scale * (X * c.Wq.transpose()) * (X * c.Wk.transpose()).transpose();
    const VectorD S1 = c.scale * (X * c.Wk.transpose()) * c.bq;
    const double tol = 1e-9 * (1.0 + S0.cwiseAbs().maxCoeff());
    MatrixD Pinf = MatrixD::Zero(n, n);
    VectorD in_degree = VectorD::Zero(n);
    for (Index i = 0; i < n; ++i) {
      const Index width = w.causal ? i + 1 : n;
      const double top = S0.row(i).head(width).maxCoeff();
      std::vector<Index> winners;
      for (Index j = 0; j < width; ++j)
        if (S0(i, j) >= top - tol) winners.push_back(j);
      if (winners.size() > 1) {  // second order: the query bias
        double top1 = -kInf;
        for (Index j : winners) top1 = std::max(top1, S1(j));
        std::vector<Index> kept;
        for (Index j : winners)
          if (S1(j) >= top1 - 1e-9 * (1.0 + std::abs(top1))) kept.push_back(j);
        winners = kept;
      }
      for (Index j : winners)
        if ((X.row(j) - X.row(winners.front())).norm() > 1e-12 * scale_x) {
          lim.exists = false;
          lim.note = fmt::format("head {} row {}: tokens {} and {} tie for the maximum score; ‖Df(rX)‖ grows like r²",
                                 h, i, winners.front(), j);
        }
      for (Index j : winners) Pinf(i, j) = 1.0 / static_cast<double>(winners.size());
      if (winners.size() == 1) in_degree(winners.front()) += 1;
    }
    lim.max_in_degree.push_back(static_cast<Index>(in_degree.maxCoeff()));
    lim.hardmax.push_back(std::move(Pinf));
  }
  if (!lim.exists) {
    lim.value = kInf;
    return lim;
  }
  HardmaxOperator op(lim.hardmax, values, /*stacked=*/w.w_o.size() == 0, spec.residual, X.cols());
  SpectralOptions options;
  options.tol = 1e-12;
  lim.value = spectral_norm(op, options).lipschitz;
  return lim;
}

std::vector<SweepPoint> hardmax_sweep(const LayerSpec& spec, const MatrixD& X, const std::vector<double>& factors,
                                      const SpectralOptions& options) {
  check_input(spec, X);
  std::vector<SweepPoint> out;
  for (double r : factors) {
    if (!(r > 0) || !std::isfinite(r)) throw InputError(fmt::format("sweep factor must be positive, got {}", r));
    out.push_back({r, measure_local_lipschitz(spec, r * X, options).lipschitz});
  }
  return out;
}

}  // namespace lipattn
