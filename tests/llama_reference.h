// A plain LLaMA forward pass for the tests (shares no code with src/models or src/attention): RMSNorm,
// causal attention with rotary embeddings in either convention and grouped K/V heads, SwiGLU, the LM
// head. It checks that loaded weights are the trained model (greedy decoding gives llama2.c's
// published sample) and that the two rope conventions of the two file formats agree.
#pragma once

#include <cmath>
#include <vector>

#include <Eigen/Dense>

#include "models/weights.h"

namespace llama_reference {

using Eigen::MatrixXd;
using Eigen::VectorXd;

inline MatrixXd rms_norm(const MatrixXd& x, const VectorXd& gamma, double eps) {
  MatrixXd y = x;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double r = std::sqrt(x.row(i).squaredNorm() / static_cast<double>(x.cols()) + eps);
    y.row(i) = (x.row(i) / r).cwiseProduct(gamma.transpose());
  }
  return y;
}

// Rotates every head's pairs of m (n × heads·k) by position·theta^(−2j/k): pairs (2j, 2j+1) when
// interleaved (llama2.c run.c), (j, j + k/2) when rotate-half (Hugging Face).
inline void rope(MatrixXd& m, int heads, int k, bool interleaved, double theta) {
  for (Eigen::Index pos = 0; pos < m.rows(); ++pos)
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < k / 2; ++j) {
        const double angle = static_cast<double>(pos) * std::pow(theta, -2.0 * j / k);
        const int a = h * k + (interleaved ? 2 * j : j), b = h * k + (interleaved ? 2 * j + 1 : j + k / 2);
        const double x0 = m(pos, a), x1 = m(pos, b);
        m(pos, a) = x0 * std::cos(angle) - x1 * std::sin(angle);
        m(pos, b) = x0 * std::sin(angle) + x1 * std::cos(angle);
      }
}

inline MatrixXd attention(const MatrixXd& a, const lipattn::AttentionWeights& w) {
  const int H = static_cast<int>(w.heads), Hkv = static_cast<int>(w.kv_heads > 0 ? w.kv_heads : w.heads);
  const int k = static_cast<int>(w.w_q.rows()) / H;
  MatrixXd Q = a * w.w_q.transpose(), K = a * w.w_k.transpose(), V = a * w.w_v.transpose();
  if (w.b_q.size()) Q.rowwise() += w.b_q.transpose();
  if (w.b_k.size()) K.rowwise() += w.b_k.transpose();
  if (w.b_v.size()) V.rowwise() += w.b_v.transpose();
  const bool interleaved = w.rope.style == lipattn::RopeStyle::Interleaved;
  rope(Q, H, k, interleaved, w.rope.theta);
  rope(K, Hkv, k, interleaved, w.rope.theta);
  const Eigen::Index n = a.rows();
  MatrixXd O = MatrixXd::Zero(n, H * k);
  for (int h = 0; h < H; ++h) {
    const int g = h / (H / Hkv);
    for (Eigen::Index i = 0; i < n; ++i) {
      VectorXd s(i + 1);
      for (Eigen::Index j = 0; j <= i; ++j)
        s(j) = Q.row(i).segment(h * k, k).dot(K.row(j).segment(g * k, k)) / std::sqrt(k);
      s = (s.array() - s.maxCoeff()).exp();
      s /= s.sum();
      for (Eigen::Index j = 0; j <= i; ++j) O.row(i).segment(h * k, k) += s(j) * V.row(j).segment(g * k, k);
    }
  }
  MatrixXd Y = O * w.w_o.transpose();
  if (w.b_o.size()) Y.rowwise() += w.b_o.transpose();
  return Y;
}

// Logits (n × vocab) of every position.
inline MatrixXd logits(const lipattn::models::ModelWeights& m, const std::vector<int>& ids) {
  const double eps = m.config.layer_norm_eps;
  MatrixXd x(ids.size(), m.config.hidden_size);
  for (std::size_t i = 0; i < ids.size(); ++i) x.row(i) = m.token_embeddings.row(ids[i]);
  for (const auto& L : m.layers) {
    x += attention(rms_norm(x, L.attention_norm.gamma, eps), L.attention);
    const MatrixXd b = rms_norm(x, L.mlp_norm.gamma, eps);
    const MatrixXd gate = b * L.mlp.w_gate.transpose(), up = b * L.mlp.w_in.transpose();
    const MatrixXd act = (gate.array() / (1.0 + (-gate.array()).exp())) * up.array();
    x += act * L.mlp.w_out.transpose();
  }
  x = rms_norm(x, m.final_norm->gamma, eps);
  return x * (m.lm_head.size() ? m.lm_head : m.token_embeddings).transpose();
}

// Greedy decoding from BOS (id 1) for `steps` tokens, as run.c with temperature 0.
inline std::vector<int> greedy(const lipattn::models::ModelWeights& m, int steps) {
  std::vector<int> ids{1};
  for (int s = 0; s < steps; ++s) {
    const MatrixXd l = logits(m, ids);
    Eigen::Index best;
    l.row(l.rows() - 1).maxCoeff(&best);
    ids.push_back(static_cast<int>(best));
  }
  return ids;
}

}  // namespace llama_reference
