// lipattn.Model: real and random models (load, tokenize, forward taps, measure on windows).
#include <memory>

#include <pybind11/stl.h>

#include "bindings.h"
#include "common/error.h"
#include "models/forward.h"
#include "models/measure_model.h"
#include "models/tokenizer.h"
#include "models/weights.h"

namespace lipattn::python {
namespace {

struct Model {
  std::string spec;
  std::uint64_t seed = 0;
  models::ModelSource source;
  std::shared_ptr<models::ModelWeights> weights;
};

Model load(const std::string& spec, std::uint64_t seed) {
  Model m{spec, seed, models::resolve_model(spec), nullptr};
  models::LoadOptions load;
  load.seed = seed;
  m.weights = run_interruptible(
      [&] { return std::make_shared<models::ModelWeights>(models::load_model(m.source, load)); });
  return m;
}

py::dict forward(const Model& m, const std::vector<int>& ids, const std::string& dtype, bool logits) {
  models::ForwardOptions options;
  options.precision = parse_precision(dtype);
  options.logits = logits;
  models::ForwardResult r = run_interruptible([&] { return models::run_forward(*m.weights, ids, options); });
  // The names `lipattn forward --dump` gives its files (src/cli/forward.cpp), without ".npy".
  py::dict taps;
  if (r.hidden.size()) taps["hidden"] = matrix_to_numpy(std::move(r.hidden));
  for (std::size_t l = 0; l < r.layers.size(); ++l) {
    taps[py::str("layer{}.block_in").format(l)] = matrix_to_numpy(std::move(r.layers[l].block_in));
    taps[py::str("layer{}.attn_in").format(l)] = matrix_to_numpy(std::move(r.layers[l].attn_in));
    taps[py::str("layer{}.attn_out").format(l)] = matrix_to_numpy(std::move(r.layers[l].attn_out));
  }
  if (r.logits.size()) taps["logits"] = matrix_to_numpy(std::move(r.logits));
  return taps;
}

py::list measure(const Model& m, int layer, std::optional<int> head, const std::string& block,
                 std::optional<std::pair<int, int>> layers, std::vector<int> ids,
                 std::optional<std::string> text, int n, int samples, bool causal, const std::string& method,
                 double tol, int max_iter, int krylov, const std::string& dtype, const std::string& storage,
                 py::object max_memory, std::optional<std::string> tokenizer) {
  models::ModelMeasureRequest request;
  request.model = m.spec;
  request.seed = m.seed;
  request.layer = layer;
  request.head = head;
  request.block = block;
  if (layers) request.layers = models::LayerRange{layers->first, layers->second};
  request.ids = std::move(ids);
  request.n = n;
  request.samples = samples;
  request.causal_override = causal;
  request.tokenizer_dir = tokenizer.value_or("");
  request.memory = attention_memory(storage, max_memory);
  // measure_model reads its text from a file; the Python API takes the text itself.
  struct TextFile {
    std::filesystem::path path;
    ~TextFile() {
      if (!path.empty()) std::filesystem::remove(path);
    }
  } text_file;
  if (text) {
    text_file.path = std::filesystem::temp_directory_path() /
                     ("lipattn-py-text-" + std::to_string(reinterpret_cast<std::uintptr_t>(&text_file)) + ".txt");
    py::module_::import("pathlib")
        .attr("Path")(text_file.path.string())
        .attr("write_text")(*text, py::arg("encoding") = "utf-8");
    request.text_file = text_file.path.string();
  }
  const SpectralOptions options = solver_options(method, tol, max_iter, krylov, m.seed);
  std::vector<models::BlockMeasurement> records;
  const Precision precision = parse_precision(dtype);
  run_interruptible([&] {
    models::measure_model(request, options, precision,
                          [&](const models::BlockMeasurement& record) { records.push_back(record); });
  });
  py::list results;
  for (const auto& r : records) results.append(make_result(nlohmann::json(r), py::none()));
  return results;
}

}  // namespace

void bind_model(py::module_& m) {
  using namespace pybind11::literals;
  py::class_<Model>(m, "Model",
                    "A transformer (Hugging Face GPT-2, BERT, LLaMA family; llama2.c; or random:...) held in "
                    "float64, as `lipattn inspect/tokenize/forward/measure --model` load it.")
      .def_static("load", &load, "spec"_a, "seed"_a = 0,
                  "Model.load('folder' | 'file.bin' | 'cached-name' | 'random:gpt2' | 'random:CONFIG.json', seed=0): "
                  "the seed initialises random: models as transformers does.")
      .def_property_readonly(
          "config", [](const Model& m) { return json_to_python(m.source.config.to_json()); },
          "The model's configuration as a dict (lipattn's names, config.json-like).")
      .def_property_readonly(
          "spec", [](const Model& m) { return m.spec; }, "The spec it was loaded from.")
      .def(
          "tokenize",
          [](const Model& m, const std::string& text, std::optional<std::string> tokenizer) {
            const auto t = models::ModelTokenizer::load(m.source, tokenizer.value_or(""));
            return t.encode(text, "text");
          },
          "text"_a, "tokenizer"_a = py::none(),
          "The token ids of text, as `lipattn tokenize` gives them (GPT-2/BERT without special tokens; LLaMA "
          "with BOS). tokenizer: a folder or file other than the model's.")
      .def("forward", &forward, "ids"_a, py::kw_only(), "dtype"_a = "f64", "logits"_a = true,
           "Runs the model on ids; returns a dict of [n, d] float64 arrays named as `forward --dump` names its "
           "files: 'layer{L}.block_in', 'layer{L}.attn_in', 'layer{L}.attn_out', 'hidden', and 'logits' "
           "[n, vocab] where the model has a head (GPT-2, LLaMA) and logits=True.")
      .def("measure", &measure, py::kw_only(), "layer"_a = 0, "head"_a = py::none(), "block"_a = "",
           "layers"_a = py::none(),
           "ids"_a = std::vector<int>{}, "text"_a = py::none(), "n"_a = 0, "samples"_a = 1, "causal"_a = false,
           "method"_a = "auto", "tol"_a = 1e-10, "max_iter"_a = 0, "krylov"_a = 20, "dtype"_a = "f64",
           "storage"_a = "auto", "max_memory"_a = py::none(), "tokenizer"_a = py::none(),
           "The local Lipschitz constant of one block on the inputs it sees: `lipattn measure --model`. block: "
           "'attn'/'attention'/'self', or the whole blocks 'mlp', 'layer', 'stack' (with layers=(A, B): layers "
           "A..B-1) and 'model'. "
           "ids=[...] measures one window; text='...' with n and samples cuts consecutive windows. Returns a list "
           "of Result, one per window, with the CLI's fields (model, layer, head, block, n, sample, radius, "
           "lipschitz, lower, matvecs, converged, seconds, layers, concentration, composition). Releases the GIL; Ctrl-C stops it.")
      .def("__repr__", [](const Model& m) { return "lipattn.Model(" + m.weights->description + ")"; });
}

}  // namespace lipattn::python
