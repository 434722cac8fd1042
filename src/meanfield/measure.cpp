#include "meanfield/measure.h"

#include <cmath>
#include <map>
#include <random>

#include <fmt/core.h>

#include "common/error.h"

namespace lipattn::meanfield {

Measure Measure::uniform(const MatrixD& X, bool causal) {
  Measure mu;
  mu.points = X;
  const Index n = X.rows();
  mu.masses = VectorD::Constant(n, n ? 1.0 / static_cast<double>(n) : 0.0);
  if (causal) {
    mu.positions.resize(n);
    for (Index i = 0; i < n; ++i) mu.positions(i) = static_cast<double>(i + 1) / static_cast<double>(n);
  }
  return mu;
}

void Measure::validate_and_normalise(const std::string& what) {
  const Index n = points.rows();
  if (n < 1) throw InputError(fmt::format("{}: the measure has no tokens", what));
  if (!points.allFinite()) throw InputError(fmt::format("{}: the tokens hold NaN or infinite values", what));
  if (masses.size() != n)
    throw InputError(fmt::format("{}: {} masses for {} tokens; give one mass per token", what, masses.size(), n));
  for (Index i = 0; i < n; ++i)
    if (!(masses(i) > 0) || !std::isfinite(masses(i)))
      throw InputError(fmt::format("{}: mass {} of token {} must be positive and finite", what, masses(i), i));
  if (positions.size() != 0) {
    if (positions.size() != n)
      throw InputError(
          fmt::format("{}: {} positions for {} tokens; give one position per token", what, positions.size(), n));
    for (Index i = 0; i < n; ++i)
      if (!(positions(i) >= 0 && positions(i) <= 1))
        throw InputError(fmt::format("{}: position {} of token {} must lie in [0, 1]", what, positions(i), i));
  }
  masses /= masses.sum();
}

MatrixD gaussian_offsets(Index copies, Index d, double spread, std::uint64_t seed) {
  if (!(spread > 0) || !std::isfinite(spread))
    throw InputError(fmt::format("spread must be positive and finite, got {}", spread), "spread");
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, spread);
  MatrixD offsets(copies, d);
  for (Index i = 0; i < offsets.size(); ++i) offsets.data()[i] = normal(rng);
  return offsets;
}

Measure split_token(const Measure& mu, Index token, Index copies, const MatrixD& offsets) {
  const Index n = mu.size(), d = mu.points.cols();
  if (token < 0 || token >= n)
    throw InputError(fmt::format("split token {} is out of range: the input has {} tokens", token, n), "split");
  if (copies < 1) throw InputError(fmt::format("copies must be at least 1, got {}", copies), "copies");
  if (offsets.size() != 0 && (offsets.rows() != copies || offsets.cols() != d))
    throw InputError(fmt::format("split offsets must be {} × {}, got {} × {}", copies, d, offsets.rows(),
                                 offsets.cols()));
  Measure out;
  const Index N = n + copies - 1;
  out.points.resize(N, d);
  out.masses.resize(N);
  if (mu.masked()) out.positions.resize(N);
  Index row = 0;
  for (Index i = 0; i < n; ++i) {
    const Index count = i == token ? copies : 1;
    for (Index c = 0; c < count; ++c, ++row) {
      out.points.row(row) = mu.points.row(i);
      if (i == token && offsets.size()) out.points.row(row) += offsets.row(c);
      out.masses(row) = mu.masses(i) / static_cast<double>(count);
      if (mu.masked()) out.positions(row) = mu.positions(i);
    }
  }
  return out;
}

Measure as_uniform_tokens(const Measure& mu) {
  Measure out = mu;
  out.masses = VectorD::Constant(mu.size(), 1.0 / static_cast<double>(mu.size()));
  return out;
}

MergedMeasure merge_identical(const Measure& mu) {
  const Index n = mu.size(), d = mu.points.cols();
  // Exact equality of (position, point) as the key: only copies made without moving merge.
  std::map<std::vector<double>, Index> index_of;
  MergedMeasure merged;
  merged.group.resize(n);
  for (Index i = 0; i < n; ++i) {
    std::vector<double> key;
    key.reserve(d + 1);
    key.push_back(mu.masked() ? mu.positions(i) : 0.0);
    for (Index c = 0; c < d; ++c) key.push_back(mu.points(i, c));
    auto [it, inserted] = index_of.emplace(std::move(key), static_cast<Index>(merged.members.size()));
    if (inserted) merged.members.emplace_back();
    merged.group[i] = it->second;
    merged.members[it->second].push_back(i);
  }
  const Index g = merged.members.size();
  Measure& m = merged.measure;
  m.points.resize(g, d);
  m.masses = VectorD::Zero(g);
  if (mu.masked()) m.positions.resize(g);
  for (Index k = 0; k < g; ++k) {
    const Index first = merged.members[k].front();
    m.points.row(k) = mu.points.row(first);
    if (mu.masked()) m.positions(k) = mu.positions(first);
    for (Index i : merged.members[k]) m.masses(k) += mu.masses(i);
  }
  return merged;
}

}  // namespace lipattn::meanfield
