// The Python module `lipattn` (docs/python.md): errors, the result type, and the submodules' bindings.
#include <pybind11/stl.h>

#include "bindings.h"
#include "common/error.h"

namespace lipattn::python {
namespace {

// A result: the library's JSON fields (the same keys `measure --json` prints) as attributes and
// items, and the top right singular vector as an [n, d] array.
struct Result {
  py::dict fields;
  py::object right_vector;
};

void bind_result(py::module_& m) {
  py::class_<Result>(m, "Result",
                     "A measurement: the fields of `lipattn measure --json` as attributes (lipschitz, lower, "
                     "matvecs, converged, relative_residual, seconds, method, n, d, heads, causal, dtype, ...) and "
                     "right_vector, the top right singular vector of Df(X) shaped like X.")
      .def_readonly("right_vector", &Result::right_vector,
                    "The unit vector v found (shape [n, d]): ‖Df(X) v‖ = lower, a certified lower bound.")
      .def(
          "__getattr__",
          [](const Result& r, const std::string& name) -> py::object {
            if (r.fields.contains(name)) return r.fields[py::str(name)];
            throw py::attribute_error("Result has no field '" + name + "'");
          },
          "The JSON field `name`.")
      .def(
          "__getitem__", [](const Result& r, const std::string& name) { return r.fields[py::str(name)]; },
          "The JSON field `name` (KeyError if absent).")
      .def(
          "to_dict", [](const Result& r) { return r.fields.attr("copy")(); },
          "The fields as a dict, exactly the JSON object `lipattn measure --json` prints.")
      .def(
          "keys", [](const Result& r) { return r.fields.attr("keys")(); }, "The field names.")
      .def("__dir__",
           [](const Result& r) {
             py::list names = py::list(r.fields.attr("keys")());
             names.append("right_vector");
             names.append("to_dict");
             return names;
           })
      .def("__repr__", [](const Result& r) { return "lipattn.Result(" + std::string(py::repr(r.fields)) + ")"; });
}

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
      error.attr("field") = e.field();
      PyErr_SetObject(input_error.ptr(), error.ptr());
    }
  });
}

}  // namespace

py::object make_result(const nlohmann::json& fields, py::object right_vector) {
  return py::cast(Result{json_to_python(fields).cast<py::dict>(), std::move(right_vector)});
}

PYBIND11_MODULE(lipattn, m) {
  m.doc() =
      "lipattn: the exact local Lipschitz constant ‖Df(X)‖₂ of self-attention layers (docs/python.md).\n\n"
      "measure(weights, X, ...) measures one layer on NumPy/PyTorch arrays; Model.load(...) runs real or "
      "random models. Everything runs in the same C++ library as the lipattn CLI.";
  bind_errors(m);
  bind_result(m);
  bind_layer(m);
  bind_model(m);
  bind_torch_interop(m);
}

}  // namespace lipattn::python
