// Growth rates: least-squares fits of log L against log n, L ≈ C · n^α, with the exponent's 95%
// confidence interval from Student's t distribution (docs/experiments.md, "Fits").
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lipattn::experiments {

struct PowerLawFit {
  double exponent = 0;      // α
  double ci_low = 0;        // α ± t_{0.975, m−2} · se(α)
  double ci_high = 0;
  double standard_error = 0;
  double constant = 0;      // C = e^{intercept}
  double r_squared = 0;
  int points = 0;           // points used (L > 0, n > 0)
  int distinct_n = 0;       // distinct n among them: the interval needs at least 3
  bool valid = false;       // at least 2 distinct n (with 2, the interval is (−inf, inf))
};

// Ordinary least squares of log(y) on log(x). Points with x ≤ 0, y ≤ 0 or non-finite values are
// skipped. Repeated x (several windows per n) are kept as separate points, as the paper fits them.
PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y);

// The same fit with the exponent fixed (C = exp(mean(log y − α log x))), e.g. C·√n on adversarial data.
double fit_constant(const std::vector<double>& x, const std::vector<double>& y, double exponent);

// Student's t distribution: CDF and quantile (dof > 0), by the regularised incomplete beta function.
double student_t_cdf(double t, double dof);
double student_t_quantile(double p, double dof);
// I_x(a, b), the regularised incomplete beta function (continued fraction, Lentz's method).
double regularized_incomplete_beta(double x, double a, double b);

nlohmann::json to_json(const PowerLawFit& fit);

}  // namespace lipattn::experiments
