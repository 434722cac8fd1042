// The typed results (bindings.h, Record): one Python class per command, each with the fields of
// that command's `--json` output (docs/python.md, "Results").
#include <fmt/core.h>
#include <pybind11/stl.h>

#include "bindings.h"

namespace lipattn::python {
namespace {

bool is_number(py::handle x) {
  return (py::isinstance<py::int_>(x) || py::isinstance<py::float_>(x)) && !py::isinstance<py::bool_>(x);
}

// The JSON value with every non-empty list of numbers turned into a NumPy array, in nested dicts too.
py::object with_arrays(py::handle value) {
  if (py::isinstance<py::dict>(value)) {
    py::dict out;
    for (auto [k, v] : value.cast<py::dict>()) out[k] = with_arrays(v);
    return out;
  }
  if (py::isinstance<py::list>(value)) {
    py::list list = value.cast<py::list>();
    bool numeric = py::len(list) > 0;
    for (auto x : list) numeric = numeric && is_number(x);
    if (numeric) return py::module_::import("numpy").attr("asarray")(list);
    py::list out;
    for (auto x : list) out.append(with_arrays(x));
    return out;
  }
  return py::reinterpret_borrow<py::object>(value);
}

std::string short_repr(py::handle v) {
  if (py::isinstance<py::dict>(v)) return "{…}";
  if (py::isinstance<py::list>(v)) return fmt::format("[{} items]", py::len(v));
  if (py::isinstance<py::array>(v)) return fmt::format("array(shape={})", std::string(py::str(v.attr("shape"))));
  return py::repr(v);
}

template <class T>
void bind_record(py::module_& m, const char* name, const char* doc) {
  py::class_<T> c(m, name, doc);
  c.def(
       "__getattr__",
       [name](const T& r, const std::string& key) -> py::object {
         if (r.fields.contains(key)) return r.fields[py::str(key)];
         std::string message = name;
         message += " has no field '";
         message += key;
         message += "'";
         throw py::attribute_error(message);
       },
       "The field `key` (an AttributeError when absent).")
      .def(
          "__getitem__", [](const T& r, const std::string& key) -> py::object { return r.fields[py::str(key)]; },
          "The field `key` (a KeyError when absent).")
      .def(
          "__contains__", [](const T& r, const std::string& key) { return r.fields.contains(key); },
          "Whether the result has the field `key`.")
      .def(
          "to_dict", [](const T& r) { return py::module_::import("copy").attr("deepcopy")(r.json); },
          "The JSON object the CLI prints with --json, as a dict of plain Python values (lists, not arrays).")
      .def(
          "keys", [](const T& r) { return py::list(r.fields.attr("keys")()); }, "The field names.")
      .def("__dir__",
           [](const T& r) {
             py::list names(r.fields.attr("keys")());
             for (const char* method : {"to_dict", "keys"}) names.append(method);
             return names;
           })
      .def("__repr__", [name](const T& r) {
        // Built piece by piece: GCC 12 warns (-Wstringop-overflow) on a chain of std::string +.
        std::string out = "lipattn.";
        out += name;
        out += "(";
        bool first = true;
        for (auto [k, v] : r.fields) {
          if (!first) out += ", ";
          out += std::string(py::str(k));
          out += "=";
          out += short_repr(v);
          first = false;
        }
        out += ")";
        return out;
      });
}

}  // namespace

Record make_record(const nlohmann::json& json, const py::dict& arrays) {
  Record r;
  r.json = json_to_python(json).cast<py::dict>();
  r.fields = with_arrays(r.json).cast<py::dict>();
  for (auto [k, v] : arrays) r.fields[k] = v;
  return r;
}

py::object make_result(const nlohmann::json& fields, py::object right_vector) {
  py::dict arrays;
  arrays["right_vector"] = right_vector;
  return make<Result>(fields, arrays);
}

void bind_records(py::module_& m) {
  bind_record<Result>(m, "Result",
                      "A measurement: the fields of `lipattn measure --json` as attributes (lipschitz, lower, matvecs, "
                      "converged, relative_residual, seconds, method, n, d, heads, causal, dtype, ...), and "
                      "right_vector, the top right singular vector of Df(X) shaped like X (None for Model.measure): "
                      "‖Df(X) v‖ = lower, a certified lower bound.");
  bind_record<BoundResult>(m, "BoundResult",
                           "Upper bounds: the fields of `lipattn bound --json` (bounds, attention_bounds, status, "
                           "best, n, radius, mode, factors, notes, structured_terms, hardmax, exact, exact_detail, "
                           "sweep; those that apply).");
  bind_record<AttackResult>(m, "AttackResult",
                            "An attack: the fields of `lipattn attack --json` (lower, lipschitz, construction, "
                            "constructions, upper, upper_name, n, d, set, radius, eps, n_star, log_n_star, regime, "
                            "in_set, certificate, starts, seconds), and `witness`, the input X found [n, d] "
                            "(to_dict()['witness'] is the path it was saved to, or None, as the CLI prints).");
  bind_record<MeanFieldResult>(m, "MeanFieldResult",
                               "Mean-field constants of a cloud: the fields of `lipattn meanfield --input X.npy "
                               "--json` (n, d, masked, euclidean, meanfield, euclidean_detail, meanfield_detail, "
                               "reduced, split).");
  bind_record<RegimeCurve>(m, "RegimeCurve",
                           "A regime curve over n: the fields of `lipattn meanfield --regime ... --json` (regime, "
                           "radius, points, and head, applies, lambda_max, lambda_min, uses_lambda_max, log_n_star, "
                           "n_star, slope_below_n_star, slope_above_n_star, peak for the construction; sigma, slope, "
                           "slope_last_decade for iid).");
  bind_record<SweepSummary>(m, "SweepSummary",
                            "A sweep run: total, ran, skipped, failed, errors, notes, results (the results file, "
                            "JSON lines, as `lipattn sweep --out` writes it).");
  bind_record<ReproduceSummary>(m, "ReproduceSummary",
                                "A reproduce run: fits, report_md, report_html (the paths `lipattn reproduce` "
                                "prints), jobs, ran, skipped, failed, seconds, errors, notes.");
}

}  // namespace lipattn::python
