// The local Lipschitz constant in the mean-field sense (docs/theory.md §MF.3): displacements of a
// weighted cloud measured in L²(μ), ‖h‖²_μ = Σ_i m_i ‖h_i‖² (the W₂ cost of moving each token by h_i),
// outputs the same way, so the constant is ‖M^{1/2} J M^{−1/2}‖₂ with M = diag(m) ⊗ I.
#pragma once

#include "meanfield/weighted_attention.h"
#include "spectral/spectral_norm.h"

namespace lipattn::meanfield {

// K = M_out^{1/2} · Df(X) · M_in^{−1/2} for the weighted map of a layer at the cloud's points.
class MeanFieldOperator final : public LinearOperator {
 public:
  MeanFieldOperator(const LayerSpec& spec, const Measure& mu, const AttentionMemory& memory = {});
  Index input_size() const override { return linear_.input_size(); }
  Index output_size() const override { return linear_.output_size(); }
  VectorD apply(const VectorD& v) const override;
  VectorD apply_transpose(const VectorD& w) const override;
  const Linearization<double>& linearization() const { return linear_; }

 private:
  Linearization<double> linear_;
  VectorD sqrt_mass_;  // √m_i, one per token
  Index d_in_, d_out_;
};

// ‖M^{1/2} Df(X) M^{−1/2}‖₂ for the layer on the measure (normalised copy of mu; mu is validated).
SpectralResult meanfield_lipschitz(const LayerSpec& spec, const Measure& mu, const SpectralOptions& options = {},
                                   const AttentionMemory& memory = {});

// The query Jacobian at token a (e × d): the derivative of the layer's output at a query placed at
// x_a with the measure held fixed, x ↦ post(x + Γ_μ(pre(x)))'. It is what a copy of x_a sees when the
// copies of a token move apart with their mean fixed (§MF.4). Computed by the split identity: a
// copy of mass m_a/2 moved by +δ and another by −δ leaves the measure's first order unchanged, and
// the first copy's output moves by Q_a δ.
MatrixD query_jacobian(const LayerSpec& spec, const Measure& mu, Index token, const AttentionMemory& memory = {});

// §MF.4: the constant of a cloud in which some tokens coincide, from the merged cloud of distinct
// points: L(μ as n tokens) = max(L(merged), max over groups of ≥ 2 copies of ‖Q_g‖₂). Exact.
struct ReducedConstant {
  double merged = 0;          // L of the merged (distinct-point) measure
  double query = 0;           // max ‖Q_g‖₂ over groups with at least two copies (0 if none)
  double value = 0;           // max of the two = the constant of the unmerged cloud
  Index distinct_points = 0;
  SpectralResult merged_result;
};
ReducedConstant reduced_lipschitz(const LayerSpec& spec, const Measure& mu, const SpectralOptions& options = {},
                                  const AttentionMemory& memory = {});

// The effect of splitting token `token` into `copies` copies (§MF.5), each row a constant of the layer.
struct SplitEffect {
  double meanfield_before = 0;          // L_MF(μ)
  double meanfield_split = 0;           // L_MF of the split measure, copies not moved (= before unless ‖Q‖ wins)
  double meanfield_split_moved = 0;     // L_MF after the copies moved apart by `offsets` (NaN if none)
  double query_norm = 0;                // ‖Q_token‖₂
  double euclidean_before = 0;          // ‖Df(X)‖₂ of the n-token sequence (uniform masses)
  double euclidean_split = 0;           // ‖Df‖₂ of the (n + c − 1)-token sequence, every copy a full token
  double euclidean_split_moved = 0;     // the same after the copies moved apart (NaN if none)
};
SplitEffect split_effect(const LayerSpec& spec, const Measure& mu, Index token, Index copies,
                         const MatrixD& offsets = {}, const SpectralOptions& options = {});

}  // namespace lipattn::meanfield
