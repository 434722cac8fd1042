// Shared pieces of the Python module (docs/python.md): array conversion, layer arguments, typed
// results, and the interruptible solve.
#pragma once

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common/stop.h"
#include "common/types.h"
#include "models/layer_file.h"
#include "spectral/measure.h"

namespace lipattn::python {

namespace py = pybind11;

// The float64 C-contiguous NumPy view of an array-like (float32/float64 only), any shape.
py::array_t<double, py::array::c_style> to_float64_array(py::handle obj, const std::string& what);
// A str or os.PathLike: a file the CLI would be given.
bool is_path(py::handle obj);
std::string path_string(py::handle obj);
// X as the CLI's --input: a path to an .npy file (read as the CLI reads it, messages naming the
// file) or any float32/float64 array-like (NumPy array, anything with __array__, a DLPack producer
// such as a CPU torch tensor) [n, d], or [1, n, d] as the CLI accepts it. `what` names the argument in
// InputError messages. A copy the library owns, for calls that keep or change X (an attack's centre,
// a bound's input); InputMatrix below reads it in place.
MatrixD matrix_argument(py::handle obj, const std::string& what);
// The same argument for a call that only reads X (measure): a float64, C-contiguous [n, d] or
// [1, n, d] array-like is read in place through view() (no copy; the object keeps the caller's
// array alive), anything else is converted once as matrix_argument does. Build it with the GIL held.
class InputMatrix {
 public:
  InputMatrix(py::handle obj, const std::string& what);
  MatrixView<double> view() const { return Eigen::Map<const MatrixD>(data_, rows_, cols_); }
  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  const double* data() const { return data_; }

 private:
  py::object array_;  // the caller's buffer, when borrowed
  MatrixD owned_;     // the converted copy otherwise
  const double* data_ = nullptr;
  Index rows_ = 0, cols_ = 0;
};
// One value per token: a path to an .npy file (messages name the file and `what`, "the masses", as
// the CLI's) or a 1-D array-like of n values (messages name `field`, the argument).
VectorD vector_argument(py::handle obj, Index n, const std::string& what, const std::string& field);

// A NumPy array over a matrix's own buffer: the matrix moves into a capsule the array keeps alive,
// so nothing is copied (docs/python.md, "Copies").
py::array matrix_to_numpy(MatrixD&& m);
py::array vector_to_numpy(VectorD&& v, Index rows, Index cols);

// JSON (nlohmann) to Python objects, through the json module: results keep the library's own keys.
py::object json_to_python(const nlohmann::json& j);

// The layer arguments every layer call takes (the CLI's --heads --causal --pre-norm --residual
// --post-norm --norm-eps), and the layer itself: a path to a layer file (models::load_layer_file,
// as the CLI) or a dict of arrays named as in one (written to a temporary file and read the same way).
models::LayerFileOptions layer_options(Index heads, bool causal, const std::optional<std::string>& pre_norm,
                                       bool residual, const std::optional<std::string>& post_norm, double norm_eps);
LayerSpec layer_argument(py::handle weights, const models::LayerFileOptions& options);

// Solver options from the keyword arguments every solve takes (the CLI's --method --tol --max-iter
// --krylov --seed).
SpectralOptions solver_options(const std::string& method, double tol, int max_iter, int krylov, std::uint64_t seed);
AttentionMemory attention_memory(const std::string& storage, py::object max_memory);

// Typed results: a command's `--json` object as attributes and items (lists of numbers as NumPy
// arrays), to_dict() giving the JSON object itself, and `arrays`: arrays the CLI writes to files or
// keeps (right_vector, witness), which shadow a JSON field of the same name.
struct Record {
  py::dict json;    // exactly the JSON object the CLI prints
  py::dict fields;  // json with numeric lists as arrays, plus the extra arrays
};
struct Result : Record {};           // measure, Model.measure
struct BoundResult : Record {};      // bound
struct AttackResult : Record {};     // attack
struct MeanFieldResult : Record {};  // meanfield on a cloud
struct RegimeCurve : Record {};      // meanfield --regime
struct SweepSummary : Record {};     // sweep
struct ReproduceSummary : Record {}; // reproduce
Record make_record(const nlohmann::json& json, const py::dict& arrays = py::dict());
template <class T>
py::object make(const nlohmann::json& json, const py::dict& arrays = py::dict()) {
  T t;
  static_cast<Record&>(t) = make_record(json, arrays);
  return py::cast(std::move(t));
}
py::object make_result(const nlohmann::json& fields, py::object right_vector);

// Runs fn() on a thread of its own without the GIL, so other Python threads run meanwhile. The
// calling thread checks for signals every 20 ms; on Ctrl-C it asks the computation to stop
// (common/stop.h: between products and between jobs), waits for it, and raises KeyboardInterrupt.
// fn must not touch Python objects.
template <class F>
auto run_interruptible(F&& fn) -> decltype(fn()) {
  using R = decltype(fn());
  std::packaged_task<R()> task(std::forward<F>(fn));
  std::future<R> done = task.get_future();
  bool interrupted = false;
  {
    py::gil_scoped_release release;
    std::thread worker(std::move(task));
    while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      py::gil_scoped_acquire acquire;
      if (PyErr_CheckSignals() != 0) {  // the error indicator now holds KeyboardInterrupt (or the handler's)
        interrupted = true;
        break;
      }
    }
    if (interrupted) stop::request();
    worker.join();
    if (interrupted) stop::clear();
  }
  if (interrupted) throw py::error_already_set();
  return done.get();
}

void bind_records(py::module_& m);
void bind_layer(py::module_& m);
void bind_model(py::module_& m);
void bind_torch_interop(py::module_& m);
void bind_analysis(py::module_& m);
void bind_experiments(py::module_& m);

}  // namespace lipattn::python
