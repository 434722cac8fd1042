// Fits: Student's t against published table values, the incomplete beta against closed forms, and
// the power-law fit on synthetic data with known exponents (the 95% interval covers the truth at
// about the nominal rate over many seeds).
#include <cmath>
#include <iostream>
#include <random>

#include <gtest/gtest.h>

#include "experiments/fit.h"

namespace lipattn::experiments {
namespace {

TEST(IncompleteBeta, MatchesClosedForms) {
  for (double x : {0.01, 0.2, 0.5, 0.77, 0.99}) {
    EXPECT_NEAR(regularized_incomplete_beta(x, 1, 1), x, 1e-13);
    EXPECT_NEAR(regularized_incomplete_beta(x, 3.5, 1), std::pow(x, 3.5), 1e-13);
    EXPECT_NEAR(regularized_incomplete_beta(x, 1, 2.5), 1 - std::pow(1 - x, 2.5), 1e-13);
    EXPECT_NEAR(regularized_incomplete_beta(x, 2.3, 4.1) + regularized_incomplete_beta(1 - x, 4.1, 2.3), 1.0, 1e-13);
  }
  // I_x(1/2, 1/2) = (2/π) asin(√x).
  EXPECT_NEAR(regularized_incomplete_beta(0.3, 0.5, 0.5), 2 / M_PI * std::asin(std::sqrt(0.3)), 1e-12);
}

TEST(StudentT, QuantilesMatchTables) {
  // Two-sided 95% critical values from standard t tables.
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.7062047, 1e-6);
  EXPECT_NEAR(student_t_quantile(0.975, 2), 4.30265273, 1e-7);
  EXPECT_NEAR(student_t_quantile(0.975, 5), 2.57058184, 1e-7);
  EXPECT_NEAR(student_t_quantile(0.975, 10), 2.22813885, 1e-7);
  EXPECT_NEAR(student_t_quantile(0.975, 30), 2.04227246, 1e-7);
  EXPECT_NEAR(student_t_quantile(0.975, 1e7), 1.95996398, 1e-6);
  EXPECT_NEAR(student_t_quantile(0.025, 10), -2.22813885, 1e-7);
  // t with 1 dof is Cauchy: CDF = 1/2 + atan(t)/π.
  for (double t : {-3.0, -0.4, 0.0, 1.7, 20.0}) EXPECT_NEAR(student_t_cdf(t, 1), 0.5 + std::atan(t) / M_PI, 1e-13);
}

TEST(PowerLawFit, ExactDataGivesExactExponent) {
  std::vector<double> x, y;
  for (int n = 2; n <= 98; n += 4) {
    x.push_back(n);
    y.push_back(3.7 * std::pow(n, 0.37));
  }
  const PowerLawFit f = fit_power_law(x, y);
  ASSERT_TRUE(f.valid);
  EXPECT_NEAR(f.exponent, 0.37, 1e-12);
  EXPECT_NEAR(f.constant, 3.7, 1e-10);
  EXPECT_LT(f.ci_high - f.ci_low, 1e-9);
  EXPECT_EQ(f.points, static_cast<int>(x.size()));
  EXPECT_NEAR(fit_constant(x, y, 0.37), 3.7, 1e-10);
}

TEST(PowerLawFit, SkipsUnusablePoints) {
  const PowerLawFit f = fit_power_law({0, 1, 2, 4, -3, 8}, {5, 2, 2 * std::sqrt(2.0), 4, 1, NAN});
  EXPECT_EQ(f.points, 3);
  EXPECT_NEAR(f.exponent, 0.5, 1e-12);
  EXPECT_FALSE(fit_power_law({3, 3, 3}, {1, 2, 3}).valid);  // one distinct n: no slope
  const PowerLawFit two = fit_power_law({2, 4}, {1, 2});
  EXPECT_TRUE(two.valid);
  EXPECT_TRUE(std::isinf(two.ci_high));  // no residual degrees of freedom
}

// The interval must cover the true exponent in about 95% of noisy samples. With 2000 trials the
// binomial standard deviation is 0.5%, so [0.93, 0.97] is a ±4σ band around 0.95.
TEST(PowerLawFit, ConfidenceIntervalCoversTheTruthAtTheNominalRate) {
  for (const auto& [alpha, sigma, windows] : std::vector<std::tuple<double, double, int>>{
           {0.25, 0.1, 1}, {0.5, 0.3, 3}, {0.51, 0.05, 10}}) {
    int covered = 0;
    const int trials = 2000;
    for (int seed = 0; seed < trials; ++seed) {
      std::mt19937_64 rng(seed);
      std::normal_distribution<double> noise(0.0, sigma);
      std::vector<double> x, y;
      for (int n = 2; n <= 98; n += 8)
        for (int w = 0; w < windows; ++w) {
          x.push_back(n);
          y.push_back(14.3 * std::pow(n, alpha) * std::exp(noise(rng)));
        }
      const PowerLawFit f = fit_power_law(x, y);
      covered += f.ci_low <= alpha && alpha <= f.ci_high;
    }
    const double rate = static_cast<double>(covered) / trials;
    std::cout << "alpha " << alpha << ", sigma " << sigma << ", windows " << windows << ": coverage " << rate << "\n";
    EXPECT_GT(rate, 0.93) << "alpha " << alpha;
    EXPECT_LT(rate, 0.97) << "alpha " << alpha;
  }
}

}  // namespace
}  // namespace lipattn::experiments
