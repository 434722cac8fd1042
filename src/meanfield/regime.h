// The regime change as a computation (docs/theory.md §MF.6):
//  (a) the paper's construction at fixed R: the n-token constant grows like √n, then saturates once
//      n passes n* ≈ e^{λ_max R²/4} (resp. e^{2|λ_min| R²}). The construction has two distinct tokens,
//      so the n-token problem reduces exactly to a 2-point measure (§MF.4): n up to 10⁸ is cheap;
//  (b) i.i.d. tokens from a fixed law N(0, (R²/d) I): the constant converges as n grows.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "meanfield/lipschitz.h"

namespace lipattn::meanfield {

// The paper's construction for one head (biases ignored, as in the paper): A = c W_Kᵀ W_Q, u its
// top real eigenvector; x_1 = R u, x_2..n = R u/2 if λ_max > −8 λ_min, else x_1 = −R u, x_2..n = R u
// with u the eigenvector of λ_min. Computed here, not taken from src/attack (folder dependencies).
struct ConstructionPoints {
  bool applies = false;  // false when A has no real eigenvalue
  double lambda_max = 0, lambda_min = 0;
  bool uses_lambda_max = true;
  VectorD direction;     // u, unit
  VectorD first, rest;   // x_1 and the common x_2..n
  double radius = 0;
  double log_n_star = 0; // λ_max R²/4 (resp. 2|λ_min| R²)
};
ConstructionPoints construction_points(const AttentionWeights& single_head, double radius);
MatrixD construction_tokens(const ConstructionPoints& c, Index n);     // the n × d input
Measure construction_two_point(const ConstructionPoints& c, Index n);  // masses 1/n and (n−1)/n

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct RegimePoint {
  Index n = 0;
  double lipschitz = kNaN;  // the n-token constant (Euclidean = mean-field with masses 1/n, §MF.3)
  double merged = kNaN;     // (a) the 2-point measure's constant (copies move together)
  double query = kNaN;      // (a) ‖Q‖ at the repeated token (copies move apart with their mean fixed)
  double full = kNaN;       // the full n-token computation ‖Df(X)‖₂ (MultiHeadAttention), when run
  double seconds = 0;
  bool converged = true;
};

struct RegimeOptions {
  Index n_min = 2;
  Index n_max = 100000;
  int per_decade = 4;          // points per decade of the log grid
  Index full_max = 256;        // run the full n-token computation up to this n
  std::uint64_t seed = 0;      // (b) the sample, and the solver's start vectors
  SpectralOptions spectral;
  AttentionMemory memory;  // stored or streaming weighted attention (large n streams)
};

struct RegimeCurve {
  std::string regime;  // "construction" | "iid"
  double radius = 0;
  std::vector<RegimePoint> points;
  // (a)
  ConstructionPoints construction;
  double slope_below = kNaN;  // fitted d log L / d log n over n ≤ n*/10
  double slope_above = kNaN;  // over n ≥ 10 n*
  Index peak_n = 0;           // where the curve is largest: the n-token constant peaks near a few n*
  double peak_value = kNaN;   // and decays beyond (the outlier's mass 1/n no longer buys attention)
  // (b)
  double sigma = kNaN;        // standard deviation of each coordinate, R/√d
  double slope_all = kNaN;    // over the whole grid
  double slope_last_decade = kNaN;
};

// Integers n_min ≤ n ≤ n_max spaced evenly in log n (duplicates removed), n_max included.
std::vector<Index> log_grid(Index n_min, Index n_max, int per_decade);
// Least-squares slope of log L against log n over the points with n_lo ≤ n ≤ n_hi (NaN if < 2).
double loglog_slope(const std::vector<RegimePoint>& points, double n_lo, double n_hi);

// (a) for head `head` of the layer (its attention alone, with its W_O block; norms and residual are
// not part of the construction). Unmasked layers use the 2-point reduction at every n and the full
// computation up to full_max; causal layers have distinct positions, so only the full computation.
RegimeCurve construction_curve(const AttentionWeights& weights, Index head, double radius,
                               const RegimeOptions& options);
// (b) for the whole layer (norms, residual, all heads) on the first n tokens of one i.i.d. sample.
RegimeCurve iid_curve(const LayerSpec& spec, double radius, const RegimeOptions& options);

}  // namespace lipattn::meanfield
