// Array conversion between NumPy-likes and the library's Eigen matrices (docs/python.md, "Copies").
#include <memory>

#include <fmt/core.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "common/error.h"
#include "io/npy.h"

namespace lipattn::python {

py::array_t<double, py::array::c_style> to_float64_array(py::handle obj, const std::string& what) {
  py::module_ np = py::module_::import("numpy");
  py::object array;
  // DLPack producers without __array__ (e.g. other frameworks' CPU tensors) go through from_dlpack.
  if (!py::hasattr(obj, "__array__") && py::hasattr(obj, "__dlpack__") && !py::isinstance<py::array>(obj))
    array = np.attr("from_dlpack")(obj);
  else
    array = np.attr("asarray")(obj);
  const std::string kind = py::str(array.attr("dtype"));
  if (kind != "float64" && kind != "float32")
    throw InputError(fmt::format("{}: expected a float32 or float64 array, got dtype {}", what, kind), what);
  return py::array_t<double, py::array::c_style>::ensure(array);
}

InputMatrix::InputMatrix(py::handle obj, const std::string& what) {
  if (is_path(obj)) {
    owned_ = io::read_npy_matrix(path_string(obj));
    data_ = owned_.data();
    rows_ = owned_.rows();
    cols_ = owned_.cols();
    return;
  }
  auto a = to_float64_array(obj, what);  // the caller's own buffer when it is float64 and C-contiguous
  if (a.ndim() == 3 && a.shape(0) == 1) a = a.reshape({a.shape(1), a.shape(2)});  // a view, still contiguous
  if (a.ndim() != 2)
    throw InputError(fmt::format("{}: expected a 2-D array [n, d] (or [1, n, d]), got {} dimensions", what, a.ndim()),
                     what);
  for (py::ssize_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(a.data()[i])) throw InputError(fmt::format("{}: element {} is not finite", what, i), what);
  data_ = a.data();
  rows_ = a.shape(0);
  cols_ = a.shape(1);
  array_ = std::move(a);
}


py::array vector_to_numpy(VectorD&& v, Index rows, Index cols) {
  auto* owned = new VectorD(std::move(v));
  py::capsule owner(owned, [](void* p) { delete static_cast<VectorD*>(p); });
  return py::array_t<double>({rows, cols}, owned->data(), owner);
}

py::array matrix_to_numpy(MatrixD&& m) {
  auto* owned = new MatrixD(std::move(m));
  py::capsule owner(owned, [](void* p) { delete static_cast<MatrixD*>(p); });
  return py::array_t<double>({owned->rows(), owned->cols()}, owned->data(), owner);
}

bool is_path(py::handle obj) {
  return py::isinstance<py::str>(obj) || py::isinstance(obj, py::module_::import("os").attr("PathLike"));
}

std::string path_string(py::handle obj) { return py::str(py::module_::import("os").attr("fspath")(obj)); }

MatrixD matrix_argument(py::handle obj, const std::string& what) { return InputMatrix(obj, what).view(); }

VectorD vector_argument(py::handle obj, Index n, const std::string& what, const std::string& field) {
  if (is_path(obj)) return io::read_npy_vector(path_string(obj), n, what);
  auto a = to_float64_array(obj, field);
  if (a.ndim() != 1 || a.shape(0) != n)
    throw InputError(fmt::format("{}: expected {} values, one per token (shape [{}]), got shape {}", field, n, n,
                                 std::string(py::str(a.attr("shape")))),
                     field);
  return Eigen::Map<const VectorD>(a.data(), n);
}

py::object json_to_python(const nlohmann::json& j) { return py::module_::import("json").attr("loads")(j.dump()); }

}  // namespace lipattn::python
