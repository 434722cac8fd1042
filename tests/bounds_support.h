// Helpers shared by the bounds tests: the exact local constant every bound is compared with, and the
// projection that keeps inputs inside the ball B_R the set bounds are stated on.
#pragma once

#include <omp.h>

#include "attention/layer.h"
#include "spectral/operator.h"
#include "spectral/spectral_norm.h"

namespace lipattn::testing {

// The bounds tests measure thousands of tiny Jacobians: OpenMP threads only add overhead there (and
// stall on a busy machine). Call once, from a namespace-scope initializer, before any test runs.
inline int use_single_openmp_thread() {
  omp_set_num_threads(1);
  return 1;
}

// The exact local Lipschitz constant at X: dense SVD of the Jacobian assembled from the map's jvp,
// a computation independent of the bounds.
inline double exact(const LayerSpec& spec, const MatrixD& X) {
  Linearization<double> J(build_map<double>(spec), X);
  SpectralOptions o;
  o.method = SpectralMethod::Dense;
  return spectral_norm(J, o).lipschitz;
}

// Each token (row) longer than R scaled back onto the sphere of radius R.
inline MatrixD project_to_ball(MatrixD X, double R) {
  for (Index i = 0; i < X.rows(); ++i) {
    const double norm = X.row(i).norm();
    if (norm > R) X.row(i) *= R / norm;
  }
  return X;
}

}  // namespace lipattn::testing
