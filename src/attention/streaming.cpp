// Streaming attention kernels. Formulas: docs/theory.md §8; the stored counterparts are in
// attention.cpp (§2). Every tile is Bq query rows × Bk key columns; under the causal mask a row
// block only visits the key columns up to its last row, and zeroes the entries above the diagonal.
#include "attention/streaming.h"

#include "attention/accumulate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/parallel.h"

namespace lipattn::streaming {
namespace {

// Tile sizes: a Bq × Bk tile of doubles (256 KiB) and its partner stay in L2 while the GEMMs that
// fill and consume it run over the k = 64 wide Q, K, V slices.
// (LIPATTN_STREAM_TILE_ROWS/COLS override them for tuning builds: bench/streaming.sh.)
#ifndef LIPATTN_STREAM_TILE_ROWS
#define LIPATTN_STREAM_TILE_ROWS 128
#endif
#ifndef LIPATTN_STREAM_TILE_COLS
#define LIPATTN_STREAM_TILE_COLS 256
#endif
constexpr Index kTileRows = LIPATTN_STREAM_TILE_ROWS;
constexpr Index kTileCols = LIPATTN_STREAM_TILE_COLS;

Index row_blocks(Index n) { return (n + kTileRows - 1) / kTileRows; }

// Query rows r0..r0+rows; under the causal mask only key columns < c_end can be nonzero.
struct RowBlock {
  Index r0, rows, c_end;
};

template <class T>
RowBlock row_block(Index b, const KeyMask<T>& mask) {
  const Index r0 = b * kTileRows, rows = std::min(kTileRows, mask.size() - r0);
  return {r0, rows, mask.columns_end(r0, rows)};
}

// Calls f(c0, cols) for the key tiles of a row block, left to right.
template <class F>
void for_key_tiles(const RowBlock& block, F&& f) {
  for (Index c0 = 0; c0 < block.c_end; c0 += kTileCols) f(c0, std::min(kTileCols, block.c_end - c0));
}

// The row blocks as parallel tasks (common/parallel.h): each thread makes its scratch once (tiles,
// accumulators), calls body(block, scratch) for each block it takes, then finish(scratch, thread).
template <class T, class MakeScratch, class Body, class Finish>
void parallel_row_blocks(const KeyMask<T>& mask, Schedule schedule, MakeScratch&& make_scratch, Body&& body,
                         Finish&& finish) {
  parallel_tasks(
      row_blocks(mask.size()), schedule, true, make_scratch,
      [&](Index b, auto& scratch) { body(row_block(b, mask), scratch); }, finish);
}

template <class T, class MakeScratch, class Body>
void parallel_row_blocks(const KeyMask<T>& mask, MakeScratch&& make_scratch, Body&& body) {
  parallel_row_blocks(mask, Schedule::Dynamic, make_scratch, body, [](auto&, int) {});
}

// P tile = exp(scale Q_r K_cᵀ + B − ℓ_r), masked entries 0.
template <class T, class Tile>
void probabilities(const Head<T>& h, const Vector<T>& lse, Index r0, Index rows, Index c0, Index cols, Tile& P) {
  P.noalias() = h.Q.middleRows(r0, rows) * h.K.middleRows(c0, cols).transpose();
  const bool masked = h.mask.touches(r0, c0, cols);
  if (masked) {  // the bias and −∞ go in before exp
    P *= h.scale;
    h.mask.apply(P, r0, c0, -std::numeric_limits<T>::infinity());
  }
  // Row by row: a column-vector broadcast over a row-major tile (colwise() − ℓ) defeats Eigen's
  // packet path and sends every entry through the scalar libm exp, a quarter of the product's time.
  const T scale = masked ? T(1) : h.scale;
  for (Index i = 0; i < rows; ++i) P.row(i) = (P.row(i).array() * scale - lse(r0 + i)).exp().matrix();
}

}  // namespace

// §8.1: one pass with the online softmax: per row a running max m, sum l and unnormalised output.
template <class T>
void forward(const Head<T>& h, View<T> O, Vector<T>& lse) {
  const Index n = h.Q.rows(), kv = h.V.cols();
  lse.resize(n);
  const T minus_inf = -std::numeric_limits<T>::infinity();
  struct Scratch {
    Matrix<T> tile, acc;
    Vector<T> m;
    Eigen::VectorXd l;  // softmax sums, accumulated in float64
  };
  parallel_row_blocks(
      h.mask,
      [&] {
        return Scratch{Matrix<T>(kTileRows, kTileCols), Matrix<T>(kTileRows, kv), Vector<T>(kTileRows),
                       Eigen::VectorXd(kTileRows)};
      },
      [&](const RowBlock& block, Scratch& t) {
        const Index r0 = block.r0, rows = block.rows;
        auto a = t.acc.topRows(rows);
        auto m = t.m.head(rows);
        auto l = t.l.head(rows);
        a.setZero();
        m.setConstant(minus_inf);
        l.setZero();
        for_key_tiles(block, [&](Index c0, Index cols) {
          auto s = t.tile.topLeftCorner(rows, cols);
          s.noalias() = h.Q.middleRows(r0, rows) * h.K.middleRows(c0, cols).transpose();
          s *= h.scale;
          if (h.mask.touches(r0, c0, cols)) h.mask.apply(s, r0, c0, minus_inf);
          for (Index i = 0; i < rows; ++i) {
            // A row sees its own key, so its max is finite by the end; until then a tile may hide all.
            const T m_new = std::max(m(i), s.row(i).maxCoeff());
            if (m_new == minus_inf) {
              s.row(i).setZero();
              continue;
            }
            const T rescale = std::exp(m(i) - m_new);  // 0 on the first tile (m = −∞)
            s.row(i) = (s.row(i).array() - m_new).exp().matrix();
            l(i) = rescale * l(i) + sum64(s.row(i));
            a.row(i) *= rescale;
            m(i) = m_new;
          }
          a.noalias() += s * h.V.middleRows(c0, cols);
        });
        O.middleRows(r0, rows) = (a.array().colwise() / l.array().template cast<T>()).matrix();
        lse.segment(r0, rows) = m + l.array().log().matrix().template cast<T>();
      });
}

// §8.2
template <class T>
void jvp(const Head<T>& h, ConstView<T> O, const Vector<T>& lse, ConstView<T> dQ, ConstView<T> dK, ConstView<T> dV,
         View<T> dO) {
  const Index n = h.Q.rows(), kv = h.V.cols();
  struct Scratch {
    Matrix<T> P, W, acc;
    Eigen::VectorXd c;  // c_i = Σ_j P_ij dS_ij, accumulated in float64
  };
  parallel_row_blocks(
      h.mask,
      [&] {
        return Scratch{Matrix<T>(kTileRows, kTileCols), Matrix<T>(kTileRows, kTileCols), Matrix<T>(kTileRows, kv),
                       Eigen::VectorXd(kTileRows)};
      },
      [&](const RowBlock& block, Scratch& t) {
        const Index r0 = block.r0, rows = block.rows;
        auto a = t.acc.topRows(rows);
        auto c = t.c.head(rows);
        a.setZero();
        c.setZero();
        for_key_tiles(block, [&](Index c0, Index cols) {
          auto p = t.P.topLeftCorner(rows, cols);
          auto w = t.W.topLeftCorner(rows, cols);
          probabilities(h, lse, r0, rows, c0, cols, p);
          // W = P ⊙ dS with dS = scale (dQ Kᵀ + Q dKᵀ); masked entries of P make W zero there.
          w.noalias() = dQ.middleRows(r0, rows) * h.K.middleRows(c0, cols).transpose();
          w.noalias() += h.Q.middleRows(r0, rows) * dK.middleRows(c0, cols).transpose();
          w.array() *= p.array() * h.scale;
          for (Index i = 0; i < rows; ++i) c(i) += sum64(w.row(i));
          a.noalias() += w * h.V.middleRows(c0, cols);
          a.noalias() += p * dV.middleRows(c0, cols);
        });
        dO.middleRows(r0, rows) =
            a - (O.middleRows(r0, rows).array().colwise() * c.array().template cast<T>()).matrix();
      });
}

// §8.3: query blocks in parallel; dK and dV gather over all queries, so each thread sums into its own
// copy. The blocks go to the threads cyclically and the copies are added in thread order, so a rerun
// repeats its bits (for a given number of threads; common/parallel.h).
template <class T>
void vjp(const Head<T>& h, ConstView<T> O, const Vector<T>& lse, ConstView<T> dO, View<T> dQ, View<T> dK,
         View<T> dV) {
  const Index n = h.Q.rows(), k = h.Q.cols(), kv = h.V.cols();
  Vector<T> r(n);  // r_i = dO_i·O_i = rowsum(P ⊙ dP)_i, accumulated in float64
  for (Index i = 0; i < n; ++i) r(i) = static_cast<T>(dot64(dO.row(i), O.row(i)));
  struct Scratch {
    Matrix<T> P, G, dq, dK_local, dV_local;
  };
  PartialsByThread<Matrix<T>> dK_parts, dV_parts;
  parallel_row_blocks(
      h.mask, Schedule::Cyclic,
      [&] {
        return Scratch{Matrix<T>(kTileRows, kTileCols), Matrix<T>(kTileRows, kTileCols), Matrix<T>(kTileRows, k),
                       Matrix<T>::Zero(n, k), Matrix<T>::Zero(n, kv)};
      },
      [&](const RowBlock& block, Scratch& t) {
        const Index r0 = block.r0, rows = block.rows;
        auto q = t.dq.topRows(rows);
        q.setZero();
        for_key_tiles(block, [&](Index c0, Index cols) {
          auto p = t.P.topLeftCorner(rows, cols);
          auto g = t.G.topLeftCorner(rows, cols);
          probabilities(h, lse, r0, rows, c0, cols, p);
          g.noalias() = dO.middleRows(r0, rows) * h.V.middleRows(c0, cols).transpose();  // dP
          for (Index i = 0; i < rows; ++i)  // dS, row by row for the packet path (see probabilities)
            g.row(i) = ((g.row(i).array() - r(r0 + i)) * p.row(i).array() * h.scale).matrix();
          q.noalias() += g * h.K.middleRows(c0, cols);
          t.dK_local.middleRows(c0, cols).noalias() += g.transpose() * h.Q.middleRows(r0, rows);
          t.dV_local.middleRows(c0, cols).noalias() += p.transpose() * dO.middleRows(r0, rows);
        });
        dQ.middleRows(r0, rows) = q;
      },
      [&](Scratch& t, int thread) {
        dK_parts.store(thread, std::move(t.dK_local));
        dV_parts.store(thread, std::move(t.dV_local));
      });
  dK.setZero();
  dV.setZero();
  dK_parts.add_in_thread_order(dK);
  dV_parts.add_in_thread_order(dV);
}

template <class T>
Matrix<T> attention_matrix(const Head<T>& h, const Vector<T>& lse) {
  const Index n = h.Q.rows();
  Matrix<T> P = Matrix<T>::Zero(n, n);
  parallel_row_blocks(
      h.mask, [] { return Matrix<T>(); },
      [&](const RowBlock& block, Matrix<T>& tile) {
        tile.resize(block.rows, block.c_end);
        probabilities(h, lse, block.r0, block.rows, 0, block.c_end, tile);
        P.block(block.r0, 0, block.rows, block.c_end) = tile;
      });
  return P;
}

template Matrix<double> attention_matrix<double>(const Head<double>&, const Vector<double>&);
template Matrix<float> attention_matrix<float>(const Head<float>&, const Vector<float>&);
template void forward<double>(const Head<double>&, View<double>, Vector<double>&);
template void forward<float>(const Head<float>&, View<float>, Vector<float>&);
template void jvp<double>(const Head<double>&, ConstView<double>, const Vector<double>&, ConstView<double>,
                          ConstView<double>, ConstView<double>, View<double>);
template void jvp<float>(const Head<float>&, ConstView<float>, const Vector<float>&, ConstView<float>,
                         ConstView<float>, ConstView<float>, View<float>);
template void vjp<double>(const Head<double>&, ConstView<double>, const Vector<double>&, ConstView<double>,
                          View<double>, View<double>, View<double>);
template void vjp<float>(const Head<float>&, ConstView<float>, const Vector<float>&, ConstView<float>, View<float>,
                         View<float>, View<float>);

}  // namespace lipattn::streaming
