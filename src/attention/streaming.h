// One attention head's forward, jvp and vjp without its n × n matrices (docs/theory.md §8).
//
// The scores are recomputed tile by tile (rows of queries × columns of keys), as flash attention
// does. Forward keeps, per query i, the output O_i and the log-sum-exp ℓ_i of its scores, from which
// any tile of P is P_ij = exp(S_ij − ℓ_i). Each product is then a single pass over the tiles:
//   jvp: dO_i = Σ_j P_ij dS_ij V_j + Σ_j P_ij dV_j − c_i O_i,   c_i = Σ_j P_ij dS_ij       (§8.2)
//   vjp: dS_ij = scale P_ij (dO_i·V_j − r_i),   r_i = dO_i·O_i                          (§8.3)
//        dQ_i = Σ_j dS_ij K_j,  dK_j = Σ_i dS_ij Q_i,  dV_j = Σ_i P_ij dO_i
// Memory: O(n·(k + k_v)) per head plus one tile per thread.
//
// Shapes: Q, K (n × k), V (n × kv); O (n × kv); ℓ (n). Query row blocks run in parallel (OpenMP).
#pragma once

#include "attention/scores.h"
#include "common/types.h"

namespace lipattn::streaming {

template <class T>
using ConstView = Eigen::Ref<const Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using View = Eigen::Ref<Matrix<T>, 0, Eigen::OuterStride<>>;

// One query head with the K/V head it reads, and the score tensor's mask and bias (§2.7).
template <class T>
struct Head {
  ConstView<T> Q, K, V;
  T scale;
  const KeyMask<T>& mask;
};

// O = softmax(scale Q Kᵀ + B) V, and ℓ_i = log Σ_j exp(S_ij + B_ij) (§8.1).
template <class T>
void forward(const Head<T>& head, View<T> O, Vector<T>& log_sum_exp);

// dO for tangents dQ, dK, dV of the head's Q, K, V.
template <class T>
void jvp(const Head<T>& head, ConstView<T> O, const Vector<T>& log_sum_exp, ConstView<T> dQ, ConstView<T> dK,
         ConstView<T> dV, View<T> dO);

// dQ, dK, dV (overwritten) for a cotangent dO of the head's output.
template <class T>
void vjp(const Head<T>& head, ConstView<T> O, const Vector<T>& log_sum_exp, ConstView<T> dO, View<T> dQ,
         View<T> dK, View<T> dV);

// The head's attention matrix P_ij = exp(scale Q_i·K_j + B_ij − ℓ_i) (n × n), tile by tile.
template <class T>
Matrix<T> attention_matrix(const Head<T>& head, const Vector<T>& log_sum_exp);

}  // namespace lipattn::streaming
