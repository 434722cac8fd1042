// The Python module `lipattn` (docs/python.md): errors, the result type, and the submodules' bindings.
#include <map>

#include <pybind11/stl.h>

#include "bindings.h"
#include "common/allocator.h"
#include "common/error.h"

namespace lipattn::python {
namespace {

void bind_errors(py::module_& m) {
  static py::exception<InputError> input_error(m, "InputError", PyExc_ValueError);
  input_error.doc() =
      "Bad input (a file, tensor, array or argument): the library's message, as the CLI prints it. A ValueError; "
      "`.field` names the argument it is about, or is '' when the message names a file or tensor.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const InputError& e) {
      py::object error = py::handle(input_error.ptr())(e.what());
      // The library's field, under the Python argument's name where the two differ.
      static const std::map<std::string, std::string> renamed = {
          {"input", "X"}, {"center", "around"}, {"krylov_dim", "krylov"}, {"precision", "dtype"},
          {"layernorm_image", "layernorm"}, {"text_file", "text"}};
      const auto it = renamed.find(e.field());
      error.attr("field") = it == renamed.end() ? e.field() : it->second;
      PyErr_SetObject(input_error.ptr(), error.ptr());
    }
  });
}

}  // namespace

PYBIND11_MODULE(lipattn, m) {
  m.doc() =
      "lipattn: the exact local Lipschitz constant ‖Df(X)‖₂ of self-attention layers (docs/python.md).\n\n"
      "measure(weights, X, ...) measures one layer on NumPy/PyTorch arrays; bound, attack and meanfield bound, "
      "attack and weigh it as the CLI's commands do; Model.load(...) runs real or random models; sweep and "
      "reproduce run experiments. Everything runs in the same C++ library as the lipattn CLI.";
  // As the CLI's main does (common/allocator.h): products reuse their freed pages instead of faulting
  // and zero-filling fresh ones. Without it a solve at n = 1536 took 1.2 s in Python against 0.95 s
  // (docs/performance.md, "Python overhead"). Process-wide: docs/python.md, "Memory".
  keep_freed_buffers_for_reuse();
  bind_errors(m);
  bind_records(m);
  bind_layer(m);
  bind_model(m);
  bind_torch_interop(m);
  bind_analysis(m);
  bind_experiments(m);
}

}  // namespace lipattn::python
