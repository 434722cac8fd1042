// σ_max(J) three ways (docs/theory.md §4). Every method ends with certify(): lower = ‖Jv‖ for the
// unit vector v it found is a certified lower bound of ‖J‖₂ whatever the iteration did.
#include "spectral/spectral_norm.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include <Eigen/Eigenvalues>
#include <Spectra/LinAlg/Lanczos.h>
#include <Spectra/LinAlg/UpperHessenbergQR.h>
#include <Spectra/MatOp/internal/ArnoldiOp.h>
#include <fmt/core.h>

#include "common/error.h"
#include "common/parallel.h"

namespace lipattn {

SpectralMethod parse_spectral_method(const std::string& name) {
  if (name == "auto") return SpectralMethod::Auto;
  if (name == "dense") return SpectralMethod::Dense;
  if (name == "lanczos") return SpectralMethod::Lanczos;
  if (name == "power") return SpectralMethod::Power;
  throw InputError(fmt::format("--method must be auto, dense, lanczos or power, got '{}'", name));
}

std::string to_string(SpectralMethod method) {
  switch (method) {
    case SpectralMethod::Auto: return "auto";
    case SpectralMethod::Dense: return "dense";
    case SpectralMethod::Lanczos: return "lanczos";
    case SpectralMethod::Power: return "power";
  }
  return "?";
}

MatrixD assemble_dense(const LinearOperator& op) {
  MatrixD J(op.output_size(), op.input_size());
  VectorD e = VectorD::Zero(op.input_size());
  for (Index j = 0; j < op.input_size(); ++j) {
    e(j) = 1;
    J.col(j) = op.apply(e);
    e(j) = 0;
  }
  return J;
}

Certificate certify(const LinearOperator& op, const VectorD& v_in) {
  Certificate c;
  const double norm = v_in.norm();
  if (!(norm > 0)) return c;
  const VectorD v = v_in / norm;
  const VectorD Jv = op.apply(v);
  c.lower = Jv.norm();
  const double theta = c.lower * c.lower;
  c.normal_product = op.apply_transpose(Jv);
  const VectorD r = c.normal_product - theta * v;
  c.relative_residual = theta > 0 ? r.norm() / theta : (r.norm() == 0 ? 0.0 : std::numeric_limits<double>::infinity());
  return c;
}

void apply_certificate(SpectralResult& result, const Certificate& c) {
  result.lower = c.lower;
  result.relative_residual = c.relative_residual;
  result.lipschitz = std::max(result.lipschitz, result.lower);
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

VectorD random_unit_vector(Index size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  VectorD v(size);
  for (Index i = 0; i < size; ++i) v(i) = normal(rng);
  return v / v.norm();
}

// Spectra's operator concept: anything with rows(), cols() and perform_op(x, y) = JᵀJ x.
class NormalOperator {
 public:
  using Scalar = double;
  NormalOperator(const LinearOperator& op, const SpectralOptions& o) : op_(op), options_(o) {}
  Index rows() const { return op_.input_size(); }
  Index cols() const { return op_.input_size(); }
  void perform_op(const double* x, double* y) const {
    Eigen::Map<VectorD>(y, rows()) = op_.apply_normal(Eigen::Map<const VectorD>(x, rows()));
    if (options_.on_product) options_.on_product(++products_, seconds_since(start_));
  }

 private:
  const LinearOperator& op_;
  const SpectralOptions& options_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  mutable long products_ = 0;
};

SpectralResult dense_method(const LinearOperator& op) {
  SpectralResult r;
  r.method = SpectralMethod::Dense;
  const MatrixD J = assemble_dense(op);
  // σ_max² is the top eigenvalue of the Gram matrix of the smaller side. Eigen's BDCSVD crashed on
  // Jacobians with many equal singular values (the paper's construction), and for the largest
  // singular value the Gram route loses nothing: its relative error stays at machine precision.
  if (J.rows() < J.cols()) {
    const MatrixD G = J * J.transpose();
    Eigen::SelfAdjointEigenSolver<MatrixD> eig(G);
    const Index top = G.rows() - 1;
    r.lipschitz = std::sqrt(std::max(0.0, eig.eigenvalues()(top)));
    const VectorD v = J.transpose() * eig.eigenvectors().col(top);  // Jᵀu = σ v
    r.right_vector = v.norm() > 0 ? VectorD(v / v.norm()) : VectorD(VectorD::Unit(J.cols(), 0));
  } else {
    const MatrixD G = J.transpose() * J;
    Eigen::SelfAdjointEigenSolver<MatrixD> eig(G);
    const Index top = G.rows() - 1;
    r.lipschitz = std::sqrt(std::max(0.0, eig.eigenvalues()(top)));
    r.right_vector = eig.eigenvectors().col(top);
  }
  r.matvecs = op.input_size();
  r.converged = true;
  return r;
}

// Sweeps over the Lanczos basis (N × k, N = n·d in the millions): memory-bound, so they run over
// fixed row chunks in parallel (for_fixed_chunks, common/parallel.h: sums in chunk order, the same
// for any number of threads) and fuse what can share one read.
constexpr Eigen::Index kChunkRows = 16384;

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
  return for_row_chunks(B.rows(), [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
           auto segment = f.segment(r0, len);
           segment.noalias() -= B.middleRows(r0, len) * c;
           return segment.squaredNorm();
         })
      .sum();
}

// B·y, row chunks in parallel.
VectorD chunked_product(const Eigen::Ref<const Eigen::MatrixXd>& B, const VectorD& y) {
  VectorD out(B.rows());
  for_row_chunks(B.rows(), [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
    out.segment(r0, len).noalias() = B.middleRows(r0, len) * y;
  });
  return out;
}

// Spectra's Lanczos factorization A·V_k = V_k·H_k + f·e_kᵀ (full reorthogonalisation), driven one
// product at a time so that convergence is checked after every product (docs/theory.md §4.1).
// Spectra's own SymEigsSolver checks only when the subspace is full, which costs up to krylov − 1
// wasted products per solve: at n = 65,536 each product takes minutes.
using LanczosOp = Spectra::ArnoldiOp<double, NormalOperator, Spectra::IdentityBOp>;
class SteppedLanczos : public Spectra::Lanczos<double, LanczosOp> {
  // Spectra::Lanczos re-declares the factorization's members private; they are protected in Arnoldi.
  using Arnoldi = Spectra::Arnoldi<double, LanczosOp>;

 public:
  SteppedLanczos(const NormalOperator& op, Eigen::Index krylov_dim)
      : Spectra::Lanczos<double, LanczosOp>(LanczosOp(op, identity_), krylov_dim) {}

  // The step-1 factorization from v₀ with one product. (Spectra's init() spends a second product
  // to first map v₀ into the range of A; the seeded Gaussian start does not need that.)
  void start(const VectorD& v0, Eigen::Index& products) {
    Eigen::MatrixXd& V = this->Arnoldi::m_fac_V;
    Eigen::MatrixXd& H = this->Arnoldi::m_fac_H;
    VectorD& f = this->Arnoldi::m_fac_f;
    const Eigen::Index n = this->Arnoldi::m_n, m = this->Arnoldi::m_m;
    V.resize(n, m);
    H.setZero(m, m);
    V.col(0) = v0 / v0.norm();
    VectorD w(n);
    this->Arnoldi::m_op.perform_op(V.col(0).data(), w.data());
    ++products;
    H(0, 0) = V.col(0).dot(w);
    f = w - H(0, 0) * V.col(0);
    this->Arnoldi::m_beta = f.norm();
    this->Arnoldi::m_k = 1;
  }

  Eigen::Index capacity() const { return this->Arnoldi::m_m; }

  // Extends the factorization from from_k to to_m vectors: the three-term step, then one classical
  // Gram–Schmidt pass against the whole basis, and a second pass only when the first removed much
  // (‖f‖ fell below ‖f_before‖/√2, the DGKS test; docs/theory.md §4). The three-term part must come
  // first: projecting w itself, whose components along v_i and v_{i−1} are several times ‖f‖, would
  // multiply the basis's loss of orthogonality by ‖w‖/‖f‖ at every step unless a second pass ran
  // each time. With N = n·d in the millions every sweep over the vectors is memory-bound, so the
  // sweeps are fused (w −= β v_{i−1} with α = v_iᵀw; f = w − α v_i with ‖f‖² and Vᵀf; f −= V c with
  // ‖f‖²) and run over fixed row chunks in parallel: the same sums for any number of threads, so
  // results do not depend on OMP_NUM_THREADS.
  void factorize_from(Eigen::Index from_k, Eigen::Index to_m, Eigen::Index& products) override {
    Eigen::MatrixXd& V = this->Arnoldi::m_fac_V;
    Eigen::MatrixXd& H = this->Arnoldi::m_fac_H;
    VectorD& f = this->Arnoldi::m_fac_f;
    double& beta = this->Arnoldi::m_beta;
    const Eigen::Index n = this->Arnoldi::m_n, m = this->Arnoldi::m_m;
    if (to_m <= from_k) return;
    H.rightCols(m - from_k).setZero();
    H.block(from_k, 0, m - from_k, from_k).setZero();
    w_.resize(n);
    for (Eigen::Index i = from_k; i < to_m; ++i) {
      bool restarted = false;
      if (beta < this->Arnoldi::m_near_0) {  // an invariant subspace: continue from a fresh direction
        Eigen::Map<const Eigen::MatrixXd> basis(V.data(), n, i);
        this->Arnoldi::expand_basis(basis, 2 * i, f, beta, products);
        restarted = true;
      }
      const double inverse_beta = 1.0 / beta;
      for_row_chunks(n, [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
        V.col(i).segment(r0, len) = f.segment(r0, len) * inverse_beta;
      });
      H(i, i - 1) = H(i - 1, i) = restarted ? 0.0 : beta;
      this->Arnoldi::m_op.perform_op(V.col(i).data(), w_.data());
      ++products;
      // w −= β v_{i−1} and α = v_iᵀw, in one sweep.
      const double previous = H(i, i - 1);
      H(i, i) = for_row_chunks(n, [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
                  auto segment = w_.segment(r0, len);
                  if (previous != 0) segment -= previous * V.col(i - 1).segment(r0, len);
                  return V.col(i).segment(r0, len).dot(segment);
                }).sum();
      const auto basis = V.leftCols(i + 1);
      auto [c, f_squared] = update_and_project(basis, w_, H(i, i), V.col(i), f);  // f = w − α v_i, c = Vᵀf
      double before = std::sqrt(f_squared);
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) c = project_and_norm(basis, f, [](Eigen::Index, Eigen::Index) {}).first;
        f_squared = subtract_product_and_norm(basis, c, f);
        H(i, i) += c(i);
        H(i, i - 1) = H(i - 1, i) = H(i - 1, i) + c(i - 1);
        beta = std::sqrt(f_squared);
        if (beta > before / std::sqrt(2.0)) break;  // DGKS: one pass was enough
        before = beta;
      }
    }
    this->Arnoldi::m_k = to_m;
  }

  // After the implicit QR steps (compress_H) have brought the subspace to k vectors:
  // V[:, 0..k] ← V·Q[:, 0..k] and f ← f·Q(m−1, k−1) + v_k·T(k, k−1). Spectra's compress_V does
  // this with k + 1 single-threaded passes over V (a quarter of a second per restart at n = 1024 on
  // the GPT-2-shaped layer, longer than two float32 products); here it is one parallel pass.
  void compress_basis(const Eigen::MatrixXd& Q) {
    Eigen::MatrixXd& V = this->Arnoldi::m_fac_V;
    VectorD& f = this->Arnoldi::m_fac_f;
    const Eigen::Index k = this->Arnoldi::m_k, m = this->Arnoldi::m_m;
    const auto Qk = Q.leftCols(k + 1);
    const double f_weight = Q(m - 1, k - 1), v_weight = this->Arnoldi::m_fac_H(k, k - 1);
    const VectorD partial = for_row_chunks(V.rows(), [&](Eigen::Index r0, Eigen::Index len, Eigen::Index) {
      const Eigen::MatrixXd rotated = V.middleRows(r0, len) * Qk;  // len × (k + 1)
      V.middleRows(r0, len).leftCols(k + 1) = rotated;
      f.segment(r0, len) = f.segment(r0, len) * f_weight + V.col(k).segment(r0, len) * v_weight;
      return f.segment(r0, len).squaredNorm();
    });
    this->Arnoldi::m_beta = std::sqrt(partial.sum());
  }

 private:
  VectorD w_;  // the product of the current step
  static inline Spectra::IdentityBOp identity_{};
};

// The largest Ritz pair of the leading k × k block of the tridiagonal H.
struct RitzPair {
  double theta = 0;
  VectorD y;  // unit, length k
};
RitzPair top_ritz_pair(const Eigen::MatrixXd& H, Index k) {
  const VectorD diagonal = H.diagonal().head(k);
  const VectorD subdiagonal = k > 1 ? VectorD(H.diagonal(-1).head(k - 1)) : VectorD(0);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig;
  eig.computeFromTridiagonal(diagonal, subdiagonal, Eigen::ComputeEigenvectors);
  return {eig.eigenvalues()(k - 1), eig.eigenvectors().col(k - 1)};
}

// Implicit restart (as ARPACK and Spectra do it): apply the krylov − keep smallest Ritz values of
// the full H as shifts, which compresses the factorization to the keep-dimensional one whose
// start vector is filtered towards the top eigenvectors; no product is spent.
void implicit_restart(SteppedLanczos& fac, Index keep) {
  const Index m = fac.capacity();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig;
  eig.computeFromTridiagonal(VectorD(fac.matrix_H().diagonal()), VectorD(fac.matrix_H().diagonal(-1)),
                             Eigen::EigenvaluesOnly);
  VectorD shifts = eig.eigenvalues().head(m - keep);  // ascending: the unwanted end
  std::sort(shifts.data(), shifts.data() + shifts.size(),
            [](double a, double b) { return std::abs(a) > std::abs(b); });  // large shifts first
  Spectra::TridiagQR<double> qr(m);
  Eigen::MatrixXd Q = Eigen::MatrixXd::Identity(m, m);
  for (Index i = 0; i < shifts.size(); ++i) {
    qr.compute(fac.matrix_H(), shifts(i));
    qr.apply_YQ(Q);
    fac.compress_H(qr);  // H ← QᵀHQ, subspace dimension − 1
  }
  fac.compress_basis(Q);
}

SpectralResult lanczos_method(const LinearOperator& op, const SpectralOptions& o) {
  SpectralResult r;
  r.method = SpectralMethod::Lanczos;
  const Index N = op.input_size();
  const NormalOperator normal(op, o);
  const Index krylov = std::min<Index>(std::max(o.krylov_dim, 3), N);
  // After a restart keep half the subspace (ARPACK's choice for one wanted eigenvalue).
  const Index keep = krylov >= 6 ? krylov / 2 : std::min<Index>(2, krylov - 1);
  const int max_restarts = o.max_iter > 0 ? o.max_iter : 1000;
  const double eps23 = std::pow(std::numeric_limits<double>::epsilon(), 2.0 / 3.0);

  SteppedLanczos fac(normal, krylov);
  Index products = 0;
  fac.start(random_unit_vector(N, o.seed), products);
  RitzPair ritz;
  int restarts = 0;
  while (true) {
    const Index k = fac.subspace_dim();
    ritz = top_ritz_pair(fac.matrix_H(), k);
    // ‖A·V y − θ·V y‖ = ‖f‖·|e_kᵀ y| (the Lanczos relation); Spectra's threshold tol·max(θ, ε^⅔).
    const double residual = fac.f_norm() * std::abs(ritz.y(k - 1));
    if (residual < o.tol * std::max(std::abs(ritz.theta), eps23)) {
      r.converged = true;
      break;
    }
    if (k < krylov) {
      fac.factorize_from(k, k + 1, products);
    } else {
      if (restarts == max_restarts) break;
      ++restarts;
      implicit_restart(fac, keep);
    }
  }
  r.matvecs = products;
  const Index k = fac.subspace_dim();
  r.lipschitz = std::sqrt(std::max(0.0, ritz.theta));
  r.right_vector = chunked_product(fac.matrix_V().leftCols(k), ritz.y);
  return r;
}

SpectralResult power_method(const LinearOperator& op, const SpectralOptions& o) {
  SpectralResult r;
  r.method = SpectralMethod::Power;
  const auto start = std::chrono::steady_clock::now();
  VectorD v = random_unit_vector(op.input_size(), o.seed);
  VectorD w = op.apply_normal(v);
  r.matvecs = 1;
  if (o.on_product) o.on_product(r.matvecs, seconds_since(start));
  const long max_steps = o.max_iter > 0 ? o.max_iter : 100000;
  double theta = 0;
  while (true) {
    theta = v.dot(w);  // Rayleigh quotient of JᵀJ
    const double residual = (w - theta * v).norm();
    if (residual <= o.tol * theta || residual == 0) {
      r.converged = true;
      break;
    }
    if (r.matvecs >= max_steps) break;
    v = w / w.norm();
    w = op.apply_normal(v);
    ++r.matvecs;
    if (o.on_product) o.on_product(r.matvecs, seconds_since(start));
  }
  r.lipschitz = std::sqrt(std::max(0.0, theta));
  r.right_vector = v;
  return r;
}

}  // namespace

SpectralResult spectral_norm(const LinearOperator& op, const SpectralOptions& o) {
  if (!(o.tol > 0) || !std::isfinite(o.tol)) throw InputError(fmt::format("--tol must be positive, got {}", o.tol));
  if (o.max_iter < 0) throw InputError(fmt::format("--max-iter must be ≥ 0, got {}", o.max_iter));
  const auto start = std::chrono::steady_clock::now();
  SpectralMethod method = o.method;
  const Index N = op.input_size();
  if (method == SpectralMethod::Auto)
    method = std::max(N, op.output_size()) <= o.dense_max_size ? SpectralMethod::Dense : SpectralMethod::Lanczos;
  if (method == SpectralMethod::Lanczos && N < 3) method = SpectralMethod::Dense;  // Spectra needs ncv > nev ≥ 1
  SpectralResult r;
  if (N == 0) {
    r.method = method;
    r.converged = true;
    r.right_vector = VectorD(0);
  } else if (method == SpectralMethod::Dense) {
    r = dense_method(op);
  } else if (method == SpectralMethod::Lanczos) {
    try {
      r = lanczos_method(op, o);
    } catch (const std::exception&) {
      // Spectra gives up on an operator that is exactly zero on the Krylov space (e.g. LayerNorm
      // of width 1, whose Jacobian vanishes). Power iteration handles that case; it reports itself.
      r = power_method(op, o);
    }
  } else {
    r = power_method(op, o);
  }
  if (N > 0 && o.certify) apply_certificate(r, certify(op, r.right_vector));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace lipattn
