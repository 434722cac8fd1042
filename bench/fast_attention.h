// Bench-only prototype of faster JᵀJ products for multi-head attention, measured against
// src/attention/attention.cpp by bench/variants_bench.cpp (docs/performance.md, "Proposed changes").
// Same maths as MultiHeadAttention (docs/theory.md §2.2, §2.3); what changes is how the per-head
// n × n work is laid out:
//   causal_blocks    under the causal mask, P, dP and dS are zero above the diagonal: split the rows
//                    into blocks of `block` and multiply only the columns up to the block's end
//                    (the n² part of the flops drops to (nb+1)/(2nb) of it with nb blocks);
//   fuse_scores      dS = scale (dQ Kᵀ + Q dKᵀ) = [s·dQ, s·Q] [K, dK]ᵀ: one GEMM with inner
//                    dimension 2k instead of two with k (GEMM efficiency grows with the inner size);
//   reuse_workspace  the n × n buffer of each thread is kept between calls (thread_local) instead of
//                    allocated (and page-faulted) on every call;
//   heads_parallel   OpenMP over heads with serial GEMMs inside (as attention.cpp), or heads one
//                    after the other with Eigen's parallel GEMMs.
#pragma once

#include <cmath>
#include <memory>
#include <vector>

#include "attention/attention.h"

namespace lipattn::bench {

struct FastOptions {
  bool causal_blocks = true;
  bool fuse_scores = true;
  bool reuse_workspace = true;
  bool heads_parallel = true;
  Index block = 128;
};

template <class T>
class FastAttention final : public Map<T> {
 public:
  FastAttention(const AttentionWeights& w, FastOptions options) : o_(options) {
    w.validate();
    heads_ = w.heads;
    d_ = w.input_dim();
    k_ = w.key_dim();
    kv_ = w.value_dim();
    d_out_ = w.output_dim();
    causal_ = w.causal;
    scale_ = static_cast<T>(w.effective_scale());
    w_qkv_.resize(2 * heads_ * k_ + heads_ * kv_, d_);
    w_qkv_ << w.w_q.cast<T>(), w.w_k.cast<T>(), w.w_v.cast<T>();
    b_qkv_ = Vector<T>::Zero(w_qkv_.rows());
    if (w.b_q.size()) b_qkv_.segment(0, heads_ * k_) = w.b_q.cast<T>();
    if (w.b_k.size()) b_qkv_.segment(heads_ * k_, heads_ * k_) = w.b_k.cast<T>();
    if (w.b_v.size()) b_qkv_.segment(2 * heads_ * k_, heads_ * kv_) = w.b_v.cast<T>();
    if (w.w_o.size()) w_o_ = w.w_o.cast<T>();
    if (w.b_o.size()) b_o_ = w.b_o.cast<T>();
  }
  Index input_dim() const override { return d_; }
  Index output_dim() const override { return d_out_; }
  std::string describe() const override { return "fast attention (bench prototype)"; }

  struct FastCache : Cache<T> {
    Matrix<T> qkv;
    std::vector<Matrix<T>> p;
  };

  std::unique_ptr<Cache<T>> forward(const Matrix<T>& X) const override {
    const Index n = X.rows();
    auto cache = std::make_unique<FastCache>();
    cache->qkv.noalias() = X * w_qkv_.transpose();
    cache->qkv.rowwise() += b_qkv_.transpose();
    cache->p.resize(heads_);
    Matrix<T> O(n, heads_ * kv_);
    const Matrix<T>& qkv = cache->qkv;
#pragma omp parallel for schedule(dynamic) if (heads_ > 1)
    for (Index h = 0; h < heads_; ++h) {
      auto Q = qkv.middleCols(h * k_, k_);
      auto K = qkv.middleCols(heads_ * k_ + h * k_, k_);
      auto V = qkv.middleCols(2 * heads_ * k_ + h * kv_, kv_);
      Matrix<T>& P = cache->p[h];
      P.noalias() = scale_ * (Q * K.transpose());
      for (Index i = 0; i < n; ++i) {
        const Index width = causal_ ? i + 1 : n;
        auto row = P.row(i).head(width);
        row = (row.array() - row.maxCoeff()).exp().matrix();
        row /= row.sum();
        if (width < n) P.row(i).tail(n - width).setZero();
      }
      O.middleCols(h * kv_, kv_).noalias() = P * V;
    }
    if (w_o_.size()) {
      cache->output.noalias() = O * w_o_.transpose();
      if (b_o_.size()) cache->output.rowwise() += b_o_.transpose();
    } else {
      cache->output = std::move(O);
    }
    return cache;
  }

  Matrix<T> jvp(const Cache<T>& cache_base, const Matrix<T>& dX) const override {
    const auto& cache = static_cast<const FastCache&>(cache_base);
    const Index n = dX.rows();
    Matrix<T> dqkv;
    dqkv.noalias() = dX * w_qkv_.transpose();
    Matrix<T> dO(n, heads_ * kv_);
    auto body = [&](Index h) {
      const Matrix<T>& qkv = cache.qkv;
      auto Q = qkv.middleCols(h * k_, k_), dQ = dqkv.middleCols(h * k_, k_);
      auto K = qkv.middleCols(heads_ * k_ + h * k_, k_), dK = dqkv.middleCols(heads_ * k_ + h * k_, k_);
      auto V = qkv.middleCols(2 * heads_ * k_ + h * kv_, kv_);
      auto dV = dqkv.middleCols(2 * heads_ * k_ + h * kv_, kv_);
      const Matrix<T>& P = cache.p[h];
      Matrix<T> local;
      Matrix<T>& G = buffer(0, n, n, local);
      Matrix<T> localA, localB;
      Matrix<T>& A = buffer(1, n, 2 * k_, localA);
      Matrix<T>& B = buffer(2, n, 2 * k_, localB);
      if (o_.fuse_scores) {
        A.leftCols(k_) = scale_ * dQ;
        A.rightCols(k_) = scale_ * Q;
        B.leftCols(k_) = K;
        B.rightCols(k_) = dK;
      }
      auto dOh = dO.middleCols(h * kv_, kv_);
      for_row_blocks(n, [&](Index r0, Index rb, Index c_end) {
        auto g = G.block(r0, 0, rb, c_end);
        if (o_.fuse_scores) {
          g.noalias() = A.middleRows(r0, rb) * B.topRows(c_end).transpose();
        } else {
          g.noalias() = dQ.middleRows(r0, rb) * K.topRows(c_end).transpose();
          g.noalias() += Q.middleRows(r0, rb) * dK.topRows(c_end).transpose();
          g *= scale_;
        }
        softmax_jacobian_rows(P, G, r0, rb, c_end);
        dOh.middleRows(r0, rb).noalias() = g * V.topRows(c_end);
        dOh.middleRows(r0, rb).noalias() += P.block(r0, 0, rb, c_end) * dV.topRows(c_end);
      });
    };
    run_heads(body);
    if (w_o_.size()) return dO * w_o_.transpose();
    return dO;
  }

  Matrix<T> vjp(const Cache<T>& cache_base, const Matrix<T>& dY) const override {
    const auto& cache = static_cast<const FastCache&>(cache_base);
    const Index n = dY.rows();
    Matrix<T> dO;
    if (w_o_.size())
      dO.noalias() = dY * w_o_;
    else
      dO = dY;
    Matrix<T> dqkv(n, w_qkv_.rows());
    auto body = [&](Index h) {
      const Matrix<T>& qkv = cache.qkv;
      auto Q = qkv.middleCols(h * k_, k_);
      auto K = qkv.middleCols(heads_ * k_ + h * k_, k_);
      auto V = qkv.middleCols(2 * heads_ * k_ + h * kv_, kv_);
      auto dOh = dO.middleCols(h * kv_, kv_);
      auto dQ = dqkv.middleCols(h * k_, k_);
      auto dK = dqkv.middleCols(heads_ * k_ + h * k_, k_);
      auto dV = dqkv.middleCols(2 * heads_ * k_ + h * kv_, kv_);
      const Matrix<T>& P = cache.p[h];
      Matrix<T> local;
      Matrix<T>& G = buffer(0, n, n, local);
      // dP by row blocks, then the softmax Jacobian (times scale) makes it dS.
      for_row_blocks(n, [&](Index r0, Index rb, Index c_end) {
        G.block(r0, 0, rb, c_end).noalias() = dOh.middleRows(r0, rb) * V.topRows(c_end).transpose();
        softmax_jacobian_rows(P, G, r0, rb, c_end);
        G.block(r0, 0, rb, c_end) *= scale_;
        dQ.middleRows(r0, rb).noalias() = G.block(r0, 0, rb, c_end) * K.topRows(c_end);
      });
      // Column blocks of the lower-triangular P and dS: rows above the block are zero.
      for_row_blocks(n, [&](Index c0, Index cb, Index) {
        const Index r0 = causal_ ? c0 : 0;
        dV.middleRows(c0, cb).noalias() = P.block(r0, c0, n - r0, cb).transpose() * dOh.bottomRows(n - r0);
        dK.middleRows(c0, cb).noalias() = G.block(r0, c0, n - r0, cb).transpose() * Q.bottomRows(n - r0);
      });
    };
    run_heads(body);
    return dqkv * w_qkv_;
  }

 private:
  // Calls f(r0, rows, c_end) for each row block; c_end is the last column that can be non-zero.
  template <class F>
  void for_row_blocks(Index n, F&& f) const {
    const Index b = (causal_ && o_.causal_blocks) ? o_.block : n;
    for (Index r0 = 0; r0 < n; r0 += b) {
      const Index rb = std::min(b, n - r0);
      f(r0, rb, causal_ ? r0 + rb : n);
    }
  }

  // Rows r0..r0+rb of G (columns < c_end): G ← P ⊙ (G − rowsum(P ⊙ G)), zero above the diagonal.
  void softmax_jacobian_rows(const Matrix<T>& P, Matrix<T>& G, Index r0, Index rb, Index c_end) const {
    for (Index i = r0; i < r0 + rb; ++i) {
      const Index width = causal_ ? i + 1 : c_end;
      auto p = P.row(i).head(width);
      auto g = G.row(i).head(width);
      const T c = p.dot(g);
      g = p.cwiseProduct((g.array() - c).matrix());
      if (width < c_end) G.row(i).segment(width, c_end - width).setZero();
    }
  }

  template <class F>
  void run_heads(F&& body) const {
    if (o_.heads_parallel) {
#pragma omp parallel for schedule(dynamic) if (heads_ > 1)
      for (Index h = 0; h < heads_; ++h) body(h);
    } else {
      for (Index h = 0; h < heads_; ++h) body(h);
    }
  }

  Matrix<T>& buffer(int slot, Index rows, Index cols, Matrix<T>& local) const {
    if (!o_.reuse_workspace) {
      local.resize(rows, cols);
      return local;
    }
    static thread_local Matrix<T> buffers[3];
    buffers[slot].resize(rows, cols);  // no reallocation when the size is unchanged
    return buffers[slot];
  }

  FastOptions o_;
  Index heads_, d_, k_, kv_, d_out_;
  bool causal_;
  T scale_;
  Matrix<T> w_qkv_;
  Vector<T> b_qkv_;
  Matrix<T> w_o_;
  Vector<T> b_o_;
};

}  // namespace lipattn::bench
