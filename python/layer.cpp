// lipattn.measure: one layer, given as arrays, at an input X (the library call `measure --weights` makes).
#include <fmt/core.h>
#include <pybind11/stl.h>

#include "attention/memory.h"
#include "bindings.h"
#include "spectral/result_json.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "models/layer_file.h"

namespace lipattn::python {
namespace {

// The weights dict as the bytes of a float64 layer file in memory (exact for float32 and float64), read
// by load_layer_file, so arrays are validated, named and laid out exactly as the CLI's files are
// (docs/formats.md, "Layer files"); messages name "weights" where they would name the file.
std::vector<io::TensorToWrite> tensors_of(const py::dict& weights) {
  std::vector<io::TensorToWrite> tensors;
  for (auto [key, value] : weights) {
    const std::string name = py::str(key);
    auto a = to_float64_array(value, "weights['" + name + "']");
    io::TensorToWrite t{name, {}, std::vector<double>(a.data(), a.data() + a.size())};
    for (py::ssize_t i = 0; i < a.ndim(); ++i) t.shape.push_back(a.shape(i));
    tensors.push_back(std::move(t));
  }
  return tensors;
}

LayerSpec layer_from_arrays(const py::dict& weights, const models::LayerFileOptions& options) {
  const io::SafetensorsFile file = io::SafetensorsFile::from_bytes(
      io::safetensors_bytes(tensors_of(weights), io::DType::F64, {}, "weights"), "weights");
  return models::load_layer_file(file, options);
}

std::optional<NormKind> norm_kind(const std::optional<std::string>& name, const std::string& field) {
  if (!name) return std::nullopt;
  return models::parse_norm_kind(*name, field);
}

}  // namespace

models::LayerFileOptions layer_options(Index heads, bool causal, const std::optional<std::string>& pre_norm,
                                       bool residual, const std::optional<std::string>& post_norm, double norm_eps) {
  models::LayerFileOptions o;
  o.heads = heads;
  o.causal = causal;
  o.pre_norm = norm_kind(pre_norm, "pre_norm");
  o.residual = residual;
  o.post_norm = norm_kind(post_norm, "post_norm");
  o.norm_eps = norm_eps;
  return o;
}

LayerSpec layer_argument(py::handle weights, const models::LayerFileOptions& options) {
  if (is_path(weights)) return models::load_layer_file(path_string(weights), options);
  if (!py::isinstance<py::dict>(weights))
    throw InputError("weights: expected a dict of arrays named as in a layer file, or the path of one", "weights");
  return layer_from_arrays(weights.cast<py::dict>(), options);
}

namespace {

py::object measure(py::object weights, py::object X, Index heads, bool causal, std::optional<std::string> pre_norm,
                   bool residual, std::optional<std::string> post_norm, double norm_eps, const std::string& method,
                   double tol, int max_iter, int krylov, std::uint64_t seed, const std::string& dtype,
                   const std::string& storage, py::object max_memory) {
  const LayerSpec spec = layer_argument(weights, layer_options(heads, causal, pre_norm, residual, post_norm, norm_eps));
  const InputMatrix x(X, "X");
  if (x.cols() != spec.attention.input_dim())
    throw InputError(fmt::format("X has d = {} features per token, but the weights expect d = {}", x.cols(),
                                 spec.attention.input_dim()),
                     "X");
  const SpectralOptions options = solver_options(method, tol, max_iter, krylov, seed);
  const Precision precision = parse_precision(dtype);
  const AttentionMemory memory = attention_memory(storage, max_memory);
  SpectralResult r =
      run_interruptible([&] { return measure_local_lipschitz(spec, x.view(), options, precision, memory); });
  // The same object `measure --json` prints (src/cli/measure.cpp).
  nlohmann::json j = r;  // spectral/result_json.h, as `measure --json` prints it
  j["n"] = x.rows();
  j["d"] = x.cols();
  j["heads"] = spec.attention.heads;
  j["causal"] = spec.attention.causal;
  j["dtype"] = to_string(precision);
  return make_result(j, vector_to_numpy(std::move(r.right_vector), x.rows(), x.cols()));
}

}  // namespace

SpectralOptions solver_options(const std::string& method, double tol, int max_iter, int krylov, std::uint64_t seed) {
  SpectralOptions o;
  o.method = parse_spectral_method(method);
  if (!(tol > 0)) throw InputError(fmt::format("tol must be positive, got {}", tol), "tol");
  o.tol = tol;
  o.max_iter = max_iter;
  o.seed = seed;
  if (krylov < 3) throw InputError(fmt::format("krylov must be at least 3, got {}", krylov), "krylov");
  o.krylov_dim = krylov;
  return o;
}

AttentionMemory attention_memory(const std::string& storage, py::object max_memory) {
  AttentionMemory m;
  m.storage = parse_attention_storage(storage);
  if (max_memory.is_none()) return m;
  if (py::isinstance<py::int_>(max_memory)) {
    const long long bytes = max_memory.cast<long long>();
    if (bytes <= 0) throw InputError(fmt::format("max_memory must be positive, got {}", bytes), "max_memory");
    m.budget_bytes = static_cast<std::uint64_t>(bytes);
  } else {
    m.budget_bytes = parse_memory_size(py::str(max_memory), "max_memory");
  }
  return m;
}

void bind_layer(py::module_& m) {
  using namespace pybind11::literals;
  m.def("measure", &measure,
        R"(measure(weights, X, heads=12, causal=True, ...) -> Result

The local Lipschitz constant ‖Df(X)‖₂ of one attention layer at X: the call `lipattn measure --weights
LAYER.safetensors --input X.npy --json` makes, on arrays.

weights: dict of arrays named and laid out as in a layer file (docs/formats.md): 'q.weight', 'k.weight',
  'v.weight' in nn.Linear layout (out, in), optionally 'o.weight', 'q.bias' ... 'o.bias', 'pre_norm.weight',
  'pre_norm.bias', 'post_norm.weight', 'post_norm.bias'; or 'A' and 'V' for the paper's single head.
  Or the path of a layer file, read as the CLI reads it.
X: float32/float64 array-like [n, d] (or [1, n, d]): NumPy, __array__ (CPU torch tensors), DLPack; or the
  path of an .npy file, read as the CLI reads it.
heads, causal, pre_norm ('layernorm'|'rmsnorm'|None), residual, post_norm, norm_eps: the layer.
method ('auto'|'dense'|'lanczos'|'power'), tol, max_iter, krylov, seed, dtype ('f64'|'f32'),
storage ('auto'|'stored'|'streaming'), max_memory (bytes or '2G'): the solver, as the CLI's flags.
The solve releases the GIL; Ctrl-C stops it (KeyboardInterrupt). Bad input raises lipattn.InputError.)",
        "weights"_a, "X"_a, py::kw_only(), "heads"_a = 12, "causal"_a = true, "pre_norm"_a = py::none(),
        "residual"_a = false, "post_norm"_a = py::none(), "norm_eps"_a = 1e-5, "method"_a = "auto", "tol"_a = 1e-10,
        "max_iter"_a = 0, "krylov"_a = 20, "seed"_a = 0, "dtype"_a = "f64", "storage"_a = "auto",
        "max_memory"_a = py::none());
  m.def(
      "_input_address",
      [](py::object X) { return reinterpret_cast<std::uintptr_t>(InputMatrix(X, "X").data()); }, "X"_a,
      "The address of the float64 data measure() reads for X: the caller's own buffer when X is a float64, "
      "C-contiguous array (no copy), a converted copy otherwise. For the zero-copy tests.");
  m.def(
      "save_weights",
      [](const std::string& path, py::dict weights, const std::string& dtype) {
        io::write_safetensors(path, tensors_of(weights), io::parse_dtype(dtype));
      },
      "path"_a, "weights"_a, "dtype"_a = "F64",
      "Writes a dict of arrays as a safetensors file (dtype 'F64', 'F32', 'F16' or 'BF16'), e.g. a layer file "
      "for `lipattn measure --weights` (docs/formats.md).");
}

}  // namespace lipattn::python
