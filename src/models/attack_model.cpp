#include "models/attack_model.h"

#include <cmath>

#include <fmt/core.h>

#include "common/error.h"
#include "models/forward.h"

namespace lipattn::models {

namespace {

// The block as the builder both the ascent and the certificate take.
MapBuilder block_builder(const PreparedModel& p, const ModelMeasureRequest& request) {
  if (!is_attention_block(p.block)) return whole_block_builder(p.weights, p.block, request.layer, request.layers);
  const LayerSpec spec = block_spec(p.weights, request.layer, p.block, request.head);
  MapBuilder builder;
  builder.attention_heads = spec.attention.heads;
  builder.f64 = [spec](const AttentionMemory& memory) { return build_map<double>(spec, memory); };
  builder.f32 = [spec](const AttentionMemory& memory) { return build_map<float>(spec, memory); };
  return builder;
}

}  // namespace

ModelAttackReport attack_model(const ModelMeasureRequest& request, double eps, const attack::AttackOptions& options) {
  if (!(eps > 0) || !std::isfinite(eps))
    throw InputError(fmt::format("eps must be a positive number, got {}", eps), "eps");
  const PreparedModel p = prepare_model(request);
  const MapBuilder builder = block_builder(p, request);
  ForwardOptions forward;
  forward.last_layer = p.span.last - 1;
  const text::Window& w = p.windows.front();
  const ForwardResult taps = run_forward(p.weights, w.ids, forward);

  ModelAttackReport report;
  static_cast<BlockIdentity&>(report) =
      block_identity(request.model, p.block, request.layer, p.span, request.head, w.n);
  report.eps = eps;
  report.center = block_input(taps.layers[p.span.first], p.block);
  SpectralOptions certificate;
  certificate.tol = options.final_tol;
  report.unperturbed = measure_local_lipschitz(builder, report.center, certificate).lower;
  const attack::ConstraintSet set = attack::ConstraintSet::around(report.center, eps);
  report.result = attack::maximize_lipschitz(builder, set, {{"input", report.center}}, options);
  report.distance = (report.result.witness - report.center).norm();
  return report;
}

}  // namespace lipattn::models
