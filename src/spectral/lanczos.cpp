// Restarted Lanczos on JᵀJ (docs/theory.md §4), one product at a time so that convergence is
// checked after every product: Spectra's SymEigsSolver checks only when the subspace is full, which
// costs up to krylov − 1 wasted products per solve, and at n = 65,536 each product takes minutes.
#include "spectral/lanczos.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include <Eigen/Eigenvalues>
#include <Spectra/LinAlg/UpperHessenbergQR.h>

#include "common/parallel.h"
#include "common/stop.h"

namespace lipattn {

namespace {

// JᵀJ as the factorization sees it, counted.
class NormalProduct {
 public:
  NormalProduct(const LinearOperator& op, const SpectralOptions& o) : op_(op), counter_(o) {}
  Index size() const { return op_.input_size(); }
  void apply(const double* x, double* y) {
    Eigen::Map<VectorD>(y, size()) = op_.apply_normal(Eigen::Map<const VectorD>(x, size()));
    counter_.count();
  }
  long products() const { return counter_.total(); }

 private:
  const LinearOperator& op_;
  ProductCounter counter_;
};

// Sweeps over the Lanczos basis (N × k, N = n·d in the millions): memory-bound, so they run over
// fixed row chunks in parallel (for_fixed_chunks, common/parallel.h: sums in chunk order, the same
// for any number of threads) and fuse what can share one read.
constexpr Eigen::Index kChunkRows = 16384;

// Below this ‖f‖ the Krylov space is invariant (Spectra's and ARPACK's threshold: 1/‖f‖ still finite).
constexpr double kNearZero = std::numeric_limits<double>::min() * 10;

// Over chunks of kChunkRows rows; a single chunk (N ≤ 16,384: the tests' and the attack's small
// Jacobians) runs on the calling thread with the same sum.
template <class F>
auto for_row_chunks(Eigen::Index rows, F&& f) {
  return for_fixed_chunks(rows, kChunkRows, std::forward<F>(f));
}

// (Bᵀx, ‖x‖²) summed over chunks in chunk order; prepare(r0, len) runs on each chunk first, so a
// caller can compute x's rows in the same sweep.
template <class Prepare>
std::pair<VectorD, double> project_and_norm(const Eigen::Ref<const Eigen::MatrixXd>& B, const VectorD& x,
                                            Prepare&& prepare) {
  const Eigen::Index rows = B.rows(), chunks = (rows + kChunkRows - 1) / kChunkRows;
  Eigen::MatrixXd partial(B.cols() + 1, chunks);  // last row: the chunk's ‖x‖²
  for_row_chunks(rows, [&](Eigen::Index r0, Eigen::Index len, Eigen::Index c) {
    prepare(r0, len);
    const auto segment = x.segment(r0, len);
    partial.col(c).head(B.cols()).noalias() = B.middleRows(r0, len).transpose() * segment;
    partial(B.cols(), c) = segment.squaredNorm();
  });
  const VectorD sums = partial.rowwise().sum();
  return {sums.head(B.cols()), sums(B.cols())};
}

// f = w − α·v, and (Bᵀf, ‖f‖²), in one sweep over B, w and v.
std::pair<VectorD, double> update_and_project(const Eigen::Ref<const Eigen::MatrixXd>& B, const VectorD& w,
                                              double alpha, const Eigen::Ref<const VectorD>& v, VectorD& f) {
  f.resize(w.size());
  return project_and_norm(B, f, [&](Eigen::Index r0, Eigen::Index len) {
    f.segment(r0, len) = w.segment(r0, len) - alpha * v.segment(r0, len);
  });
}

// f −= B c, returning the new ‖f‖², in one sweep.
double subtract_product_and_norm(const Eigen::Ref<const Eigen::MatrixXd>& B, const VectorD& c, VectorD& f) {
  return for_row_chunks(B.rows(),
                        [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
                          auto segment = f.segment(r0, len);
                          segment.noalias() -= B.middleRows(r0, len) * c;
                          return segment.squaredNorm();
                        })
      .sum();
}

// B·Y (Y a vector or a matrix), row chunks in parallel.
template <class Rhs>
auto chunked_product(const Eigen::Ref<const Eigen::MatrixXd>& B, const Rhs& Y) {
  std::conditional_t<Rhs::ColsAtCompileTime == 1, VectorD, Eigen::MatrixXd> out(B.rows(), Y.cols());
  for_row_chunks(B.rows(), [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
    out.middleRows(r0, len).noalias() = B.middleRows(r0, len) * Y;
  });
  return out;
}

// The Lanczos factorization A·V_k = V_k·T_k + f·e_kᵀ of A = JᵀJ with full reorthogonalisation:
// the basis V (N × m, k columns in use), the tridiagonal T_k as its diagonal α and subdiagonal β,
// and the residual f with ‖f‖ (docs/theory.md §4).
class LanczosFactorization {
 public:
  LanczosFactorization(NormalProduct& op, Index capacity)
      : op_(op), n_(op.size()), m_(capacity), V_(n_, m_), alpha_(VectorD::Zero(m_)), beta_(VectorD::Zero(m_ - 1)) {}

  Index size() const { return k_; }
  Index capacity() const { return m_; }
  double residual_norm() const { return f_norm_; }
  const VectorD& diagonal() const { return alpha_; }    // α_0 … α_{m−1}; the first k are T_k's
  const VectorD& subdiagonal() const { return beta_; }  // β_0 … β_{m−2}; the first k − 1 are T_k's
  VectorD combine(const VectorD& y) const { return chunked_product(V_.leftCols(y.size()), y); }  // V y
  Eigen::MatrixXd combine(const Eigen::MatrixXd& Y) const { return chunked_product(V_.leftCols(Y.rows()), Y); }

  // The step-1 factorization from v₀ with one product. (Spectra's init() spends a second product
  // to first map v₀ into the range of A; neither a seeded Gaussian nor a warm start needs that.)
  void start(const VectorD& v0) {
    alpha_.setZero();
    beta_.setZero();
    V_.col(0) = v0 / v0.norm();
    w_.resize(n_);
    op_.apply(V_.col(0).data(), w_.data());
    alpha_(0) = V_.col(0).dot(w_);
    f_ = w_ - alpha_(0) * V_.col(0);
    f_norm_ = f_.norm();
    k_ = 1;
  }

  void extend_to(Index to_m);
  void restart(Index keep);

 private:
  void step(Index i);
  void fresh_direction(Index i);
  void compress_basis(const Eigen::MatrixXd& Q);

  NormalProduct& op_;
  Index n_, m_, k_ = 0;
  Eigen::MatrixXd V_;
  VectorD alpha_, beta_, f_, w_;  // w_: the product of the current step
  double f_norm_ = 0;
};

// Extends the factorization from k to to_m vectors, one product per vector.
void LanczosFactorization::extend_to(Index to_m) {
  if (to_m <= k_) return;
  alpha_.tail(m_ - k_).setZero();
  beta_.tail(m_ - k_).setZero();
  for (Index i = k_; i < to_m; ++i) step(i);
  k_ = to_m;
}

// Step i: the three-term step, then one classical Gram–Schmidt pass against the whole basis, and a
// second pass only when the first removed much (‖f‖ fell below ‖f_before‖/√2, the DGKS test;
// docs/theory.md §4). The three-term part must come first: projecting w itself, whose components
// along v_i and v_{i−1} are several times ‖f‖, would multiply the basis's loss of orthogonality by
// ‖w‖/‖f‖ at every step unless a second pass ran each time. With N = n·d in the millions every sweep
// over the vectors is memory-bound, so the sweeps are fused (w −= β v_{i−1} with α = v_iᵀw;
// f = w − α v_i with ‖f‖² and Vᵀf; f −= V c with ‖f‖²) and run over fixed row chunks in parallel:
// the same sums for any number of threads, so results do not depend on OMP_NUM_THREADS.
void LanczosFactorization::step(Index i) {
  bool fresh = false;
  if (f_norm_ < kNearZero) {  // an invariant subspace: continue from a fresh direction
    fresh_direction(i);
    fresh = true;
  }
  const double inverse_norm = 1.0 / f_norm_;
  for_row_chunks(n_, [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
    V_.col(i).segment(r0, len) = f_.segment(r0, len) * inverse_norm;
  });
  beta_(i - 1) = fresh ? 0.0 : f_norm_;
  op_.apply(V_.col(i).data(), w_.data());
  // w −= β v_{i−1} and α = v_iᵀw, in one sweep.
  const double previous = beta_(i - 1);
  alpha_(i) = for_row_chunks(n_, [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
                auto segment = w_.segment(r0, len);
                if (previous != 0) segment -= previous * V_.col(i - 1).segment(r0, len);
                return V_.col(i).segment(r0, len).dot(segment);
              }).sum();
  const auto basis = V_.leftCols(i + 1);
  auto [c, f_squared] = update_and_project(basis, w_, alpha_(i), V_.col(i), f_);  // f = w − α v_i, c = Vᵀf
  double before = std::sqrt(f_squared);
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) c = project_and_norm(basis, f_, [](Eigen::Index, Eigen::Index) {}).first;
    f_squared = subtract_product_and_norm(basis, c, f_);
    alpha_(i) += c(i);
    beta_(i - 1) += c(i - 1);
    f_norm_ = std::sqrt(f_squared);
    if (f_norm_ > before / std::sqrt(2.0)) break;  // DGKS: one pass was enough
    before = f_norm_;
  }
}

// f ⟂ V[:, 0..i) with ‖f‖ > 0 from a random vector, first mapped through A (one product) so that it
// lies in A's range, as ARPACK does; up to five draws, each orthogonalised up to four times.
void LanczosFactorization::fresh_direction(Index i) {
  const auto basis = V_.leftCols(i);
  const double eps = std::numeric_limits<double>::epsilon();
  for (int draw = 0; draw < 5; ++draw) {
    const VectorD r = random_unit_vector(n_, static_cast<std::uint64_t>(2 * i + 123 * draw));
    if (draw == 0) {
      f_.resize(n_);
      op_.apply(r.data(), f_.data());
    } else {
      f_ = r;
    }
    for (int pass = 0; pass < 4; ++pass) {
      f_ -= basis * (basis.transpose() * f_);
      f_norm_ = f_.norm();
      const double error = (basis.transpose() * f_).cwiseAbs().maxCoeff();
      if (error < eps * f_norm_) return;
    }
  }
  throw KrylovBreakdown("Lanczos: no direction orthogonal to the Krylov space");
}

// After the implicit QR steps have brought the subspace to k vectors:
// V[:, 0..k] ← V·Q[:, 0..k] and f ← f·Q(m−1, k−1) + v_k·β_{k−1}, in one parallel pass over V.
void LanczosFactorization::compress_basis(const Eigen::MatrixXd& Q) {
  const auto Qk = Q.leftCols(k_ + 1);
  const double f_weight = Q(m_ - 1, k_ - 1), v_weight = beta_(k_ - 1);
  const VectorD partial = for_row_chunks(n_, [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
    const Eigen::MatrixXd rotated = V_.middleRows(r0, len) * Qk;  // len × (k + 1)
    V_.middleRows(r0, len).leftCols(k_ + 1) = rotated;
    f_.segment(r0, len) = f_.segment(r0, len) * f_weight + V_.col(k_).segment(r0, len) * v_weight;
    return f_.segment(r0, len).squaredNorm();
  });
  f_norm_ = std::sqrt(partial.sum());
}

// Implicit restart (as ARPACK does it) of the full factorization: the m − keep smallest Ritz values
// of T_m are the shifts of as many QR steps T ← QᵀTQ (Spectra's TridiagQR), which compress the
// factorization to the keep-dimensional one whose start vector is filtered towards the top
// eigenvectors; no product is spent.
void LanczosFactorization::restart(Index keep) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig;
  eig.computeFromTridiagonal(alpha_, beta_, Eigen::EigenvaluesOnly);
  VectorD shifts = eig.eigenvalues().head(m_ - keep);  // ascending: the unwanted end
  std::sort(shifts.data(), shifts.data() + shifts.size(),
            [](double a, double b) { return std::abs(a) > std::abs(b); });  // large shifts first
  Eigen::MatrixXd T = Eigen::MatrixXd::Zero(m_, m_);
  T.diagonal() = alpha_;
  T.diagonal(-1) = beta_;
  T.diagonal(1) = beta_;
  Spectra::TridiagQR<double> qr(m_);
  Eigen::MatrixXd Q = Eigen::MatrixXd::Identity(m_, m_);
  for (Index i = 0; i < shifts.size(); ++i) {
    qr.compute(T, shifts(i));  // reads T's diagonal and subdiagonal
    qr.apply_YQ(Q);
    qr.matrix_QtHQ(T);
  }
  alpha_ = T.diagonal();
  beta_ = T.diagonal(-1);
  k_ = keep;
  compress_basis(Q);
}

// T_k's eigenpairs, ascending.
Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ritz_pairs(const LanczosFactorization& fac) {
  const Index k = fac.size();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig;
  eig.computeFromTridiagonal(fac.diagonal().head(k), fac.subdiagonal().head(std::max<Index>(k - 1, 0)),
                             Eigen::ComputeEigenvectors);
  return eig;
}

// The largest Ritz pair of T_k.
struct RitzPair {
  double theta = 0;
  VectorD y;  // unit, length k
};
RitzPair top_ritz_pair(const LanczosFactorization& fac) {
  const auto eig = ritz_pairs(fac);
  const Index k = fac.size();
  return {eig.eigenvalues()(k - 1), eig.eigenvectors().col(k - 1)};
}

// The `count` Ritz pairs below the top one, descending.
RitzBlock ritz_block_below_top(const LanczosFactorization& fac, Index count) {
  const auto eig = ritz_pairs(fac);
  const Index k = fac.size();
  count = std::max<Index>(0, std::min(count, k - 1));
  // Columns k − 2, k − 3, …: descending.
  const Eigen::MatrixXd Y = eig.eigenvectors().middleCols(k - 1 - count, count).rowwise().reverse();
  return {eig.eigenvalues().segment(k - 1 - count, count).reverse(), fac.combine(Y)};
}

}  // namespace

ProductCounter::ProductCounter(const SpectralOptions& options) : options_(options) {}

void ProductCounter::count() {
  ++total_;
  stop::throw_if_requested();  // common/stop.h: a stop request ends the solve between products
  if (options_.on_product)
    options_.on_product(total_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
}

SpectralResult lanczos_method(const LinearOperator& op, const SpectralOptions& o, const VectorD& v0,
                              const StartCheck& check, bool* rejected, RitzBlock* below, Index below_count) {
  SpectralResult r;
  r.method = SpectralMethod::Lanczos;
  NormalProduct normal(op, o);
  const Index krylov = std::min<Index>(std::max(o.krylov_dim, 3), op.input_size());
  // After a restart keep half the subspace (ARPACK's choice for one wanted eigenvalue).
  const Index keep = krylov >= 6 ? krylov / 2 : std::min<Index>(2, krylov - 1);
  const int max_restarts = o.max_iter > 0 ? o.max_iter : 1000;
  const double eps23 = std::pow(std::numeric_limits<double>::epsilon(), 2.0 / 3.0);

  LanczosFactorization fac(normal, krylov);
  fac.start(v0);
  if (rejected) *rejected = false;
  if (check) {
    const double theta = fac.diagonal()(0);
    const double residual = theta > 0 ? fac.residual_norm() / theta : std::numeric_limits<double>::infinity();
    if (!check(theta, residual)) {
      if (rejected) *rejected = true;
      r.matvecs = normal.products();
      return r;
    }
  }
  RitzPair ritz;
  int restarts = 0;
  while (true) {
    const Index k = fac.size();
    ritz = top_ritz_pair(fac);
    // ‖A·V y − θ·V y‖ = ‖f‖·|e_kᵀ y| (the Lanczos relation); ARPACK's threshold tol·max(θ, ε^⅔).
    const double residual = fac.residual_norm() * std::abs(ritz.y(k - 1));
    if (residual < o.tol * std::max(std::abs(ritz.theta), eps23)) {
      r.converged = true;
      break;
    }
    if (k < krylov) {
      fac.extend_to(k + 1);
    } else {
      if (restarts == max_restarts) break;
      ++restarts;
      fac.restart(keep);
    }
  }
  r.matvecs = normal.products();
  r.lipschitz = std::sqrt(std::max(0.0, ritz.theta));
  r.right_vector = fac.combine(ritz.y);
  if (below) *below = ritz_block_below_top(fac, below_count);
  return r;
}

}  // namespace lipattn
