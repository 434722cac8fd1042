// The paper's adversarial input for one head (docs/theory.md, attack §1): tokens on the line of a
// real eigenvector of A_h, where every query attends to the first token, so ‖P‖₂ ≈ √n and the
// local Lipschitz constant grows like √n until n reaches n*. It lives here, below src/attack (the
// optimiser starts from it) and src/meanfield (the regime change is computed on it), so both use
// this one construction.
#pragma once

#include <cmath>
#include <vector>

#include "attention/attention.h"

namespace lipattn {

// A_h = scale · W_K,hᵀ W_Q,h (d × d), so that in the bias-free case the scores of head h are
// S_ij = scale ⟨W_Q x_i, W_K x_j⟩ = ⟨A_h x_i, x_j⟩. Throws InputError for a head out of range.
MatrixD interaction_matrix(const AttentionWeights& weights, Index head);

struct RealEigenpair {
  double value = 0;
  VectorD vector;  // unit, real
};

// The real eigenpairs of a (non-symmetric) square matrix, sorted by value. An eigenvalue counts as
// real when |Im λ| ≤ 1e-10 · max|λ|. When A = C B with C (d × k), B (k × d) and k < d (here
// scale W_Kᵀ · W_Q), pass the factors: the non-zero spectrum is that of B C (k × k), with
// eigenvectors C y, and λ = 0 is added with a null vector of B. Much cheaper for d = 768, k = 64.
std::vector<RealEigenpair> real_eigenpairs(const MatrixD& A);
std::vector<RealEigenpair> real_eigenpairs_factored(const MatrixD& C, const MatrixD& B);

struct Construction {
  bool applies = false;     // false when A_h has no real eigenvalue (then X is empty)
  Index head = 0;
  double lambda_max = 0;    // the extreme real eigenvalues of A_h
  double lambda_min = 0;
  bool uses_lambda_max = true;  // the rule λ_max > −8 λ_min
  VectorD direction;        // u, unit
  double radius = 0;
  MatrixD X;                // n × d: tokens(n)
  // The predicted end of the √n regime: n* ≈ e^{λ_max R²/4} (resp. e^{2|λ_min| R²}). log n* is
  // always finite; n* overflows to +inf for large R.
  double log_n_star = 0;
  double n_star = 0;

  // The input at any n (the same two distinct tokens): x_1 = R u, x_2..n = R u/2 (λ_max branch);
  // x_1 = −R u, x_2..n = R u (λ_min branch). InputError when the construction does not apply.
  MatrixD tokens(Index n) const;
  // Whether n tokens are in the √n regime (n < n*) or past it (docs/theory.md §MF.6).
  bool below_n_star(Index n) const { return std::log(static_cast<double>(n)) < log_n_star; }
};

// The construction of the paper for head h of `weights` with n tokens of norm ≤ R. Biases are
// ignored by the construction (it only uses A_h); the input is evaluated on the real map anyway.
// `use_rule` false picks the other branch (λ_min when the rule says λ_max and conversely), which
// the optimiser also tries as a start.
Construction paper_construction(const AttentionWeights& weights, Index head, Index n, double radius,
                                bool use_rule = true);

// The same from the eigenpairs of A directly (the paper's single head, tests).
Construction paper_construction_from_eigenpairs(const std::vector<RealEigenpair>& pairs, Index n, double radius,
                                                bool use_rule = true);

}  // namespace lipattn
