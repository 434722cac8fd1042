// The paper's construction (docs/theory.md, attack §1).
//
// For a real eigenpair (λ, u) of A and tokens on the line of u, the scores are products of the
// tokens' coordinates along u times λ:
//   λ > 0: x_1 = R u, x_{2..n} = R u/2. Query i ≥ 2 scores key 1 at λR²/2 and the others at λR²/4,
//          so P_i1 = e^{λR²/4}/(e^{λR²/4} + n − 1): all mass on token 1 while n ≪ n* = e^{λR²/4}.
//   λ < 0: x_1 = −R u, x_{2..n} = R u. Query i ≥ 2 scores key 1 at |λ|R², the others at −|λ|R²:
//          the gap is 2|λ|R², so n* = e^{2|λ|R²}.
// The rule λ_max > −8 λ_min picks the branch with the larger gap (λ_max/4 against 2|λ_min|).
#include "attention/construction.h"

#include <algorithm>
#include <cmath>
#include <complex>

#include <Eigen/Eigenvalues>
#include <fmt/core.h>

#include "common/error.h"

namespace lipattn {

MatrixD interaction_matrix(const AttentionWeights& weights, Index head) {
  const AttentionWeights one = weights.head(head);
  // S_ij = scale ⟨W_Q x_i, W_K x_j⟩ = x_jᵀ (scale W_Kᵀ W_Q) x_i = ⟨A x_i, x_j⟩.
  return one.effective_scale() * (one.w_k.transpose() * one.w_q);
}

namespace {

constexpr double kRealTolerance = 1e-10;

// A real unit vector spanning the (real) eigenvector c: remove the phase of its largest entry.
VectorD real_unit_vector(const Eigen::VectorXcd& c) {
  Index arg = 0;
  c.cwiseAbs().maxCoeff(&arg);
  const std::complex<double> phase = std::conj(c(arg)) / std::abs(c(arg));
  VectorD v = (c * phase).real();
  return v / v.norm();
}

std::vector<RealEigenpair> real_pairs_of(const Eigen::MatrixXd& M, const Eigen::MatrixXd* lift) {
  std::vector<RealEigenpair> pairs;
  if (M.size() == 0) return pairs;
  Eigen::EigenSolver<Eigen::MatrixXd> solver(M, true);
  if (solver.info() != Eigen::Success) throw std::runtime_error("EigenSolver did not converge");
  const Eigen::VectorXcd values = solver.eigenvalues();
  const double largest = values.cwiseAbs().maxCoeff();
  for (Index i = 0; i < values.size(); ++i) {
    if (std::abs(values(i).imag()) > kRealTolerance * std::max(largest, 1e-300)) continue;
    VectorD y = real_unit_vector(solver.eigenvectors().col(i));
    RealEigenpair pair;
    pair.value = values(i).real();
    if (lift) {
      const VectorD x = *lift * y;  // C y is an eigenvector of C B when B C y = λ y and C y ≠ 0
      if (!(x.norm() > 0)) continue;
      pair.vector = x / x.norm();
    } else {
      pair.vector = y;
    }
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

void sort_pairs(std::vector<RealEigenpair>& pairs) {
  std::sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.value < b.value; });
}

}  // namespace

std::vector<RealEigenpair> real_eigenpairs(const MatrixD& A) {
  if (A.rows() != A.cols()) throw InputError(fmt::format("A must be square, got {} × {}", A.rows(), A.cols()));
  auto pairs = real_pairs_of(Eigen::MatrixXd(A), nullptr);
  sort_pairs(pairs);
  return pairs;
}

std::vector<RealEigenpair> real_eigenpairs_factored(const MatrixD& C, const MatrixD& B) {
  const Index d = C.rows(), k = C.cols();
  if (B.rows() != k || B.cols() != d)
    throw InputError(fmt::format("factors of A must be d × k and k × d, got {} × {} and {} × {}", d, k, B.rows(),
                                 B.cols()));
  if (k >= d) return real_eigenpairs(C * B);
  const Eigen::MatrixXd small = B * C;  // k × k: the non-zero spectrum of C B
  const Eigen::MatrixXd lift = C;
  auto pairs = real_pairs_of(small, &lift);
  // λ = 0 with any vector of ker B (which has dimension ≥ d − k > 0): the residual of the least
  // squares fit of a fixed vector by the rows of B lies in ker B.
  VectorD r = VectorD::LinSpaced(d, 1.0, 2.0);
  const Eigen::MatrixXd Bt = B.transpose();
  VectorD null = r - Bt * Bt.colPivHouseholderQr().solve(r);
  if (null.norm() > 0) pairs.push_back({0.0, null / null.norm()});
  sort_pairs(pairs);
  return pairs;
}

Construction paper_construction_from_eigenpairs(const std::vector<RealEigenpair>& pairs, Index n, double radius,
                                                bool use_rule) {
  if (n < 1) throw InputError(fmt::format("n must be at least 1, got {}", n), "n");
  if (!(radius > 0) || !std::isfinite(radius))
    throw InputError(fmt::format("radius must be positive and finite, got {}", radius), "radius");
  Construction c;
  c.radius = radius;
  if (pairs.empty()) return c;  // no real eigenvalue: the construction does not apply
  auto by_value = [](const auto& a, const auto& b) { return a.value < b.value; };
  const auto low = std::min_element(pairs.begin(), pairs.end(), by_value);
  const auto high = std::max_element(pairs.begin(), pairs.end(), by_value);
  c.applies = true;
  c.lambda_max = high->value;
  c.lambda_min = low->value;
  const bool rule = c.lambda_max > -8 * c.lambda_min;
  c.uses_lambda_max = use_rule ? rule : !rule;
  c.direction = c.uses_lambda_max ? high->vector : low->vector;
  c.log_n_star = c.uses_lambda_max ? c.lambda_max * radius * radius / 4 : 2 * std::abs(c.lambda_min) * radius * radius;
  c.n_star = std::exp(c.log_n_star);
  c.X = c.tokens(n);
  return c;
}

MatrixD Construction::tokens(Index n) const {
  if (!applies) throw InputError("the construction does not apply: A_h has no real eigenvalue");
  if (n < 1) throw InputError(fmt::format("n must be at least 1, got {}", n), "n");
  const double first = uses_lambda_max ? radius : -radius, rest = uses_lambda_max ? radius / 2 : radius;
  MatrixD X(n, direction.size());
  X.row(0) = first * direction.transpose();
  for (Index i = 1; i < n; ++i) X.row(i) = rest * direction.transpose();
  return X;
}

Construction paper_construction(const AttentionWeights& weights, Index head, Index n, double radius, bool use_rule) {
  const AttentionWeights one = weights.head(head);
  // A_h = (scale W_Kᵀ)(W_Q): factored, so a d = 768, k = 64 head costs a 64 × 64 eigenproblem.
  const MatrixD C = one.effective_scale() * one.w_k.transpose();
  Construction c = paper_construction_from_eigenpairs(real_eigenpairs_factored(C, one.w_q), n, radius, use_rule);
  c.head = head;
  return c;
}

}  // namespace lipattn
