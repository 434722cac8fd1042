#include "experiments/fit.h"

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

#include <fmt/core.h>

#include "common/json.h"

namespace lipattn::experiments {

namespace {

// The continued fraction of I_x(a, b) (Abramowitz & Stegun 26.5.8), evaluated by the modified
// Lentz method; it converges fast for x < (a + 1)/(a + b + 2).
double beta_continued_fraction(double x, double a, double b) {
  constexpr double tiny = 1e-300;
  constexpr double eps = 1e-15;
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::abs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double value = d;
  for (int m = 1; m <= 10000; ++m) {
    // Even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m)).
    double coefficient = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    d = 1.0 + coefficient * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + coefficient / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    value *= d * c;
    // Odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    coefficient = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    d = 1.0 + coefficient * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1.0 + coefficient / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    value *= delta;
    if (std::abs(delta - 1.0) < eps) return value;
  }
  return value;
}

}  // namespace

double regularized_incomplete_beta(double x, double a, double b) {
  if (!(a > 0) || !(b > 0)) throw std::invalid_argument("incomplete beta: a and b must be positive");
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_continued_fraction(x, a, b) / a;
  // The symmetry I_x(a, b) = 1 − I_{1−x}(b, a) keeps the fraction in its fast region.
  return 1.0 - front * beta_continued_fraction(1.0 - x, b, a) / b;
}

double student_t_cdf(double t, double dof) {
  if (!(dof > 0)) throw std::invalid_argument("student t: dof must be positive");
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // P(|T| > |t|) = I_{ν/(ν+t²)}(ν/2, 1/2).
  const double tail = 0.5 * regularized_incomplete_beta(dof / (dof + t * t), 0.5 * dof, 0.5);
  return t >= 0 ? 1.0 - tail : tail;
}

double student_t_quantile(double p, double dof) {
  if (!(p > 0 && p < 1)) throw std::invalid_argument("student t quantile: p must be in (0, 1)");
  if (p == 0.5) return 0;
  // Bracket, then bisect: the CDF is monotone, and 200 halvings reach double precision.
  double low = -1, high = 1;
  while (student_t_cdf(low, dof) > p) low *= 2;
  while (student_t_cdf(high, dof) < p) high *= 2;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (low + high);
    if (student_t_cdf(mid, dof) < p)
      low = mid;
    else
      high = mid;
    if (high - low <= 1e-15 * std::max(1.0, std::abs(mid))) break;
  }
  return 0.5 * (low + high);
}

PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("fit_power_law: x and y differ in length");
  std::vector<double> u, v;
  std::set<double> distinct;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] > 0) || !(y[i] > 0) || !std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    u.push_back(std::log(x[i]));
    v.push_back(std::log(y[i]));
    distinct.insert(x[i]);
  }
  PowerLawFit fit;
  fit.points = static_cast<int>(u.size());
  fit.distinct_n = static_cast<int>(distinct.size());
  if (fit.distinct_n < 2) return fit;
  const double m = static_cast<double>(u.size());
  double mean_u = 0, mean_v = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    mean_u += u[i];
    mean_v += v[i];
  }
  mean_u /= m;
  mean_v /= m;
  double suu = 0, suv = 0, svv = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    suu += (u[i] - mean_u) * (u[i] - mean_u);
    suv += (u[i] - mean_u) * (v[i] - mean_v);
    svv += (v[i] - mean_v) * (v[i] - mean_v);
  }
  fit.exponent = suv / suu;
  const double intercept = mean_v - fit.exponent * mean_u;
  fit.constant = std::exp(intercept);
  double rss = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    const double r = v[i] - intercept - fit.exponent * u[i];
    rss += r * r;
  }
  fit.r_squared = svv > 0 ? 1.0 - rss / svv : 1.0;
  fit.valid = true;
  if (u.size() <= 2) {
    fit.standard_error = std::numeric_limits<double>::infinity();
    fit.ci_low = -std::numeric_limits<double>::infinity();
    fit.ci_high = std::numeric_limits<double>::infinity();
    return fit;
  }
  // se(α) = √(RSS/(m−2) / Σ(u − ū)²); the interval uses t with m − 2 degrees of freedom.
  fit.standard_error = std::sqrt(rss / (m - 2.0) / suu);
  const double t = student_t_quantile(0.975, m - 2.0);
  fit.ci_low = fit.exponent - t * fit.standard_error;
  fit.ci_high = fit.exponent + t * fit.standard_error;
  return fit;
}

double fit_constant(const std::vector<double>& x, const std::vector<double>& y, double exponent) {
  double sum = 0;
  int count = 0;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!(x[i] > 0) || !(y[i] > 0) || !std::isfinite(y[i])) continue;
    sum += std::log(y[i]) - exponent * std::log(x[i]);
    ++count;
  }
  return count ? std::exp(sum / count) : std::numeric_limits<double>::quiet_NaN();
}

nlohmann::json to_json(const PowerLawFit& fit) {
  return {{"exponent", finite_or_null(fit.exponent)},
          {"ci_low", finite_or_null(fit.ci_low)},
          {"ci_high", finite_or_null(fit.ci_high)},
          {"standard_error", finite_or_null(fit.standard_error)},
          {"constant", finite_or_null(fit.constant)},
          {"r_squared", finite_or_null(fit.r_squared)},
          {"points", fit.points},
          {"distinct_n", fit.distinct_n},
          {"valid", fit.valid}};
}

}  // namespace lipattn::experiments
