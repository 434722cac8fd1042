// `meanfield` as one call per mode (docs/theory.md §MF): a weighted (optionally masked) cloud's
// mean-field and Euclidean constants, with the reduction of coinciding tokens and the effect of
// splitting one; or a regime curve over n. The CLI's `meanfield` and the Python module's
// lipattn.meanfield make these calls; meanfield/report_json.h prints them.
#pragma once

#include <optional>
#include <string>

#include "meanfield/lipschitz.h"
#include "meanfield/regime.h"

namespace lipattn::meanfield {

struct CloudRequest {
  VectorD masses;     // one positive mass per token, or empty: 1/n
  VectorD positions;  // one position in [0, 1] per token (a causal layer only), or empty: (i+1)/n when causal
  std::string what = "the measure";  // what the masses' and positions' messages name (a file, an argument)
  std::optional<Index> head;         // one head's map
  std::optional<Index> split;        // split this token into `copies` copies
  Index copies = 2;
  double spread = 0;  // > 0: also move the copies apart by N(0, spread²) offsets (seeded by seed + 7)
  SpectralOptions options;
};

struct CloudReport {
  Index n = 0, d = 0;
  bool masked = false;
  SpectralResult euclidean;  // ‖Df(X)‖₂, every token of mass 1/n
  SpectralResult meanfield;  // ‖M^½ Df M^-½‖₂ in L²(μ)
  std::optional<ReducedConstant> reduced;  // when some tokens coincide (§MF.4)
  std::optional<SplitEffect> split;        // when asked (§MF.5)
  Index split_token = 0, copies = 0;
  double spread = 0;
};

// InputError naming the request's field ("masses", "positions", "copies", "spread", "split", "head")
// or X when they do not fit the layer.
CloudReport analyse_cloud(LayerSpec spec, const MatrixD& X, const CloudRequest& request);

struct RegimeRequest {
  std::string regime;  // "construction" | "iid"
  double radius = 0;
  std::optional<Index> head;  // construction: the head built on (default 0); iid: one head's map
  RegimeOptions options;
};
RegimeCurve regime_curve(LayerSpec spec, const RegimeRequest& request);

}  // namespace lipattn::meanfield
