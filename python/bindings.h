// Shared pieces of the Python module (docs/python.md): array conversion, results, the solve guard.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common/types.h"
#include "spectral/measure.h"

namespace lipattn::python {

namespace py = pybind11;

// Any float32/float64 array-like (NumPy array, anything with __array__, a DLPack producer such as a
// CPU torch tensor) as an n × d float64 matrix; [1, n, d] is accepted as the CLI accepts it. `what`
// names the argument in InputError messages. One copy into the library's row-major float64 matrix.
MatrixD to_matrix(py::handle obj, const std::string& what);
// The float64 C-contiguous NumPy view of an array-like (float32/float64 only), any shape.
py::array_t<double, py::array::c_style> to_float64_array(py::handle obj, const std::string& what);

// A NumPy array over a matrix's own buffer: the matrix moves into a capsule the array keeps alive,
// so nothing is copied (docs/python.md, "Copies").
py::array matrix_to_numpy(MatrixD&& m);
py::array vector_to_numpy(VectorD&& v, Index rows, Index cols);

// JSON (nlohmann) to Python objects, through the json module: results keep the library's own keys.
py::object json_to_python(const nlohmann::json& j);

// Solver options from the keyword arguments every solve takes; on_product checks Ctrl-C between
// products (PyErr_CheckSignals with the GIL re-acquired briefly) and throws to stop the solve.
SpectralOptions solver_options(const std::string& method, double tol, int max_iter, int krylov, std::uint64_t seed);
AttentionMemory attention_memory(const std::string& storage, py::object max_memory);

// The result object: `measure --json`'s fields as attributes, plus the top right singular vector.
py::object make_result(const nlohmann::json& fields, py::object right_vector);

void bind_layer(py::module_& m);
void bind_model(py::module_& m);
void bind_torch_interop(py::module_& m);

}  // namespace lipattn::python
