// lipattn.torch_weights: a PyTorch or Hugging Face attention module's state_dict as layer-file arrays
// (docs/python.md, "PyTorch modules"). Only renames, splits and transposes; no arithmetic.
#include <fmt/core.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "common/error.h"

namespace lipattn::python {
namespace {

MatrixD matrix_of(const py::dict &sd, const std::string &key) {
  return matrix_argument(sd[py::str(key)], "state_dict['" + key + "']");
}

VectorD vector_of(const py::dict &sd, const std::string &key) {
  auto a = to_float64_array(sd[py::str(key)], "state_dict['" + key + "']");
  if (a.ndim() != 1)
    throw InputError(fmt::format("state_dict['{}']: expected a 1-D bias, got {} dimensions", key, a.ndim()), key);
  return Eigen::Map<const VectorD>(a.data(), a.size());
}

// Splits a fused (3d × d) projection (rows q, k, v) and its bias into q/k/v.weight and q/k/v.bias.
void split_fused(py::dict &out, const MatrixD &w, const VectorD *b, const std::string &key) {
  if (w.rows() % 3 != 0)
    throw InputError(fmt::format("state_dict['{}']: {} rows, expected 3·d (q, k, v stacked)", key, w.rows()), key);
  const Index d = w.rows() / 3;
  const char *names[] = {"q", "k", "v"};
  for (Index i = 0; i < 3; ++i) {
    out[py::str(fmt::format("{}.weight", names[i]))] = matrix_to_numpy(MatrixD(w.middleRows(i * d, d)));
    if (b)
      out[py::str(fmt::format("{}.bias", names[i]))] =
          vector_to_numpy(VectorD(b->segment(i * d, d)), d, 1).attr("ravel")();
  }
}

void copy_linear(py::dict &out, const py::dict &sd, const std::string &from, const std::string &to, bool conv1d) {
  if (!sd.contains(from + ".weight")) return;
  MatrixD w = matrix_of(sd, from + ".weight");
  if (conv1d) w.transposeInPlace();  // Conv1D stores (in, out)
  out[py::str(to + ".weight")] = matrix_to_numpy(std::move(w));
  if (sd.contains(from + ".bias")) out[py::str(to + ".bias")] = sd[py::str(from + ".bias")];
}

py::dict torch_weights(py::dict sd) {
  py::dict out;
  if (sd.contains("bias_k") || sd.contains("bias_v"))
    throw InputError(
        "state_dict holds bias_k/bias_v (add_bias_kv=True): extra "
        "key/value tokens are not a layer lipattn measures",
        "state_dict");
  if (sd.contains("in_proj_weight")) {  // torch.nn.MultiheadAttention
    const VectorD b = sd.contains("in_proj_bias") ? vector_of(sd, "in_proj_bias") : VectorD();
    split_fused(out, matrix_of(sd, "in_proj_weight"), b.size() ? &b : nullptr, "in_proj_weight");
    copy_linear(out, sd, "out_proj", "o", false);
  } else if (sd.contains("q_proj_weight")) {  // MultiheadAttention with kdim/vdim given
    for (const char *p : {"q", "k", "v"})
      out[py::str(fmt::format("{}.weight", p))] = sd[py::str(fmt::format("{}_proj_weight", p))];
    if (sd.contains("in_proj_bias")) {
      const VectorD b = vector_of(sd, "in_proj_bias");
      const Index d = b.size() / 3;
      const char *names[] = {"q", "k", "v"};
      for (Index i = 0; i < 3; ++i)
        out[py::str(fmt::format("{}.bias", names[i]))] =
            vector_to_numpy(VectorD(b.segment(i * d, d)), d, 1).attr("ravel")();
    }
    copy_linear(out, sd, "out_proj", "o", false);
  } else if (sd.contains("c_attn.weight")) {  // Hugging Face GPT2Attention
                                              // (Conv1D layout)
    MatrixD w = matrix_of(sd, "c_attn.weight").transpose();
    const VectorD b = sd.contains("c_attn.bias") ? vector_of(sd, "c_attn.bias") : VectorD();
    split_fused(out, w, b.size() ? &b : nullptr, "c_attn.weight");
    copy_linear(out, sd, "c_proj", "o", true);
  } else if (sd.contains("query.weight") || sd.contains("self.query.weight")) {  // BertSelfAttention / BertAttention
    const std::string self = sd.contains("self.query.weight") ? "self." : "";
    copy_linear(out, sd, self + "query", "q", false);
    copy_linear(out, sd, self + "key", "k", false);
    copy_linear(out, sd, self + "value", "v", false);
    copy_linear(out, sd, "output.dense", "o", false);
    copy_linear(out, sd, "output.LayerNorm", "post_norm", false);
  } else if (sd.contains("q_proj.weight")) {  // Hugging Face LLaMA-family
                                              // attention (no RoPE here)
    for (const auto &[from, to] : {std::pair{"q_proj", "q"}, {"k_proj", "k"}, {"v_proj", "v"}, {"o_proj", "o"}})
      copy_linear(out, sd, from, to, false);
  } else {
    throw InputError(
        "state_dict: expected torch.nn.MultiheadAttention "
        "(in_proj_weight, out_proj.*), GPT2Attention "
        "(c_attn.*, c_proj.*), BertSelfAttention/BertAttention "
        "(query/key/value.*) or q_proj/k_proj/"
        "v_proj/o_proj.weight keys",
        "state_dict");
  }
  return out;
}

}  // namespace

void bind_torch_interop(py::module_ &m) {
  m.def("torch_weights", &torch_weights, py::arg("state_dict"),
        R"(The layer-file arrays of an attention module's state_dict(), for lipattn.measure.

Understands torch.nn.MultiheadAttention (in_proj_weight [3d, d] split into q/k/v rows, in_proj_bias,
out_proj.*; or q/k/v_proj_weight), Hugging Face GPT2Attention (c_attn/c_proj in Conv1D (in, out)
layout, transposed), BertSelfAttention / BertAttention (query/key/value.*, output.dense -> o,
output.LayerNorm -> post_norm: measure with residual=True, post_norm='layernorm', norm_eps=1e-12) and
q_proj/k_proj/v_proj/o_proj (LLaMA-style; RoPE is not part of a layer file). Measure with the module's
number of heads; MultiheadAttention is not causal unless given a causal mask.)");
}

}  // namespace lipattn::python
