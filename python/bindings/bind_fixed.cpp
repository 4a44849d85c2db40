// fpyga._core's fixed-point conversions: NumPy float arrays <-> ap_fixed raw bits, through the
// same C++ code (fpyga/fixed.hpp) the C++ hosts use, so Python and C++ hosts send identical bits.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>

#include "bindings.hpp"
#include "fpyga/fixed.hpp"

namespace fpyga::python {
namespace {

fixed_format as_format(const py::handle& h) {
  if (py::isinstance<fixed_format>(h)) return h.cast<fixed_format>();
  if (py::isinstance<py::str>(h)) return fixed_format::parse(h.cast<std::string>());
  throw py::type_error(
      "fixed-point type: expected a string such as 'ap_fixed<16,6>' or a fixed_format, got " +
      py::str(py::type::of(h).attr("__name__")).cast<std::string>());
}

py::dtype container_dtype(const fixed_format& f) {
  const std::size_t b = f.storage_bytes();
  const char* names_s[] = {"int8", "int16", "int32", "int64"};
  const char* names_u[] = {"uint8", "uint16", "uint32", "uint64"};
  const int i = b == 1 ? 0 : b == 2 ? 1 : b == 4 ? 2 : 3;
  return py::dtype(f.is_signed ? names_s[i] : names_u[i]);
}

// A writable C-contiguous integer array of `n` elements, or a ValueError naming what is wrong.
void check_out(const py::array& out, std::size_t n, const fixed_format& f, const char* what) {
  const char kind = out.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::value_error(std::string(what) + ": expected an integer array for the raw bits of " +
                          f.to_string() + ", got dtype " +
                          py::repr(static_cast<py::handle>(out.dtype())).cast<std::string>());
  if (!(out.flags() & py::array::c_style))
    throw py::value_error(std::string(what) + ": the array must be C-contiguous");
  if (!out.writeable()) throw py::value_error(std::string(what) + ": the array is read-only");
  if (static_cast<std::size_t>(out.size()) != n)
    throw py::value_error(std::string(what) + ": has " + std::to_string(out.size()) +
                          " elements for " + std::to_string(n) + " values");
}

py::object to_fixed_py(const py::array& x, const py::handle& type, const py::object& out) {
  const fixed_format f = as_format(type);
  py::array result;
  if (out.is_none()) {
    std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
    result = py::array(container_dtype(f), shape);
  } else {
    result = py::reinterpret_borrow<py::array>(out);
    if (!py::isinstance<py::array>(out))
      throw py::type_error("to_fixed: out must be a NumPy array");
    check_out(result, static_cast<std::size_t>(x.size()), f, "to_fixed: out");
  }
  const auto n = static_cast<std::size_t>(x.size());
  void* dst = result.mutable_data();
  const auto bytes = static_cast<std::size_t>(result.itemsize());
  if (py::isinstance<py::array_t<float>>(x) && (x.flags() & py::array::c_style)) {
    const auto* src = static_cast<const float*>(x.data());
    if (n > 4096) {
      py::gil_scoped_release nogil;
      fpyga::to_fixed(src, n, dst, bytes, f);
    } else {
      fpyga::to_fixed(src, n, dst, bytes, f);
    }
  } else {
    auto d = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(x);
    if (!d) throw py::type_error("to_fixed: expected an array of numbers");
    const double* src = d.data();
    if (n > 4096) {
      py::gil_scoped_release nogil;
      fpyga::to_fixed(src, n, dst, bytes, f);
    } else {
      fpyga::to_fixed(src, n, dst, bytes, f);
    }
  }
  return result;
}

py::array from_fixed_py(const py::array& raw, const py::handle& type, const py::object& dtype) {
  const fixed_format f = as_format(type);
  const char kind = raw.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::value_error("from_fixed: expected an integer array of raw " + f.to_string() +
                          " bits, got dtype " +
                          py::repr(static_cast<py::handle>(raw.dtype())).cast<std::string>());
  py::array src = raw;
  if (!(raw.flags() & py::array::c_style)) src = py::array::ensure(raw, py::array::c_style);
  const py::dtype want = py::dtype::from_args(dtype);
  std::vector<py::ssize_t> shape(raw.shape(), raw.shape() + raw.ndim());
  const auto n = static_cast<std::size_t>(raw.size());
  const auto bytes = static_cast<std::size_t>(raw.itemsize());
  if (want.equal(py::dtype::of<float>())) {
    py::array_t<float> out(shape);
    fpyga::from_fixed(src.data(), bytes, n, out.mutable_data(), f);
    return out;
  }
  if (want.equal(py::dtype::of<double>())) {
    py::array_t<double> out(shape);
    fpyga::from_fixed(src.data(), bytes, n, out.mutable_data(), f);
    return out;
  }
  throw py::value_error("from_fixed: dtype must be float32 or float64, got " +
                        py::repr(static_cast<py::handle>(want)).cast<std::string>());
}

void bind_fixed_impl(py::module_& m) {
  py::class_<fixed_format>(
      m, "fixed_format", "An ap_fixed<W, I, Q, O, N> / ap_ufixed type: how raw bits map to values.")
      .def(py::init([](const std::string& type) { return fixed_format::parse(type); }),
           py::arg("type"),
           "Parses 'ap_fixed<16,6>', 'ap_ufixed<8,3,AP_RND,AP_SAT>', 'ap_fixed<32, 14, 5, 3, 0>', "
           "'ap_int<12>'.")
      .def_readonly("width", &fixed_format::width)
      .def_readonly("integer", &fixed_format::integer)
      .def_readonly("signed", &fixed_format::is_signed)
      .def_property_readonly("quantization",
                             [](const fixed_format& f) { return static_cast<int>(f.q); })
      .def_property_readonly("overflow",
                             [](const fixed_format& f) { return static_cast<int>(f.o); })
      .def_readonly("sat_bits", &fixed_format::sat_bits)
      .def_property_readonly("storage_bytes", &fixed_format::storage_bytes)
      .def_property_readonly("dtype", &container_dtype,
                             "NumPy dtype of the host container of one value")
      .def_property_readonly("lsb", &fixed_format::lsb)
      .def_property_readonly("min", &fixed_format::min)
      .def_property_readonly("max", &fixed_format::max)
      .def("__eq__", [](const fixed_format& a, const fixed_format& b) { return a == b; })
      .def("__str__", &fixed_format::to_string)
      .def("__repr__",
           [](const fixed_format& f) { return "fixed_format('" + f.to_string() + "')"; });

  m.def(
      "to_fixed", &to_fixed_py, py::arg("x"), py::arg("type") = "ap_fixed<16,6>",
      py::arg("out") = py::none(),
      "Converts floats to the raw bits of `type` exactly as Xilinx's ap_fixed(double) does.\n\n"
      "Returns a new integer array of the type's container (int16 for ap_fixed<16,6>), or writes\n"
      "into `out` (any writable C-contiguous integer array of the same size, e.g. a 'u2' or 'i2'\n"
      "PynqBuffer) and returns it. Raises ValueError for NaN/inf or a bad type or `out`.");
  m.def("from_fixed", &from_fixed_py, py::arg("raw"), py::arg("type") = "ap_fixed<16,6>",
        py::arg("dtype") = py::dtype::of<float>(),
        "Converts raw ap_fixed bits (only the low W bits of each integer are read) to float32 or "
        "float64.");
}

}  // namespace
}  // namespace fpyga::python

// Declared (in the global namespace) by bindings.hpp; module.cpp calls it.
void bind_fixed(pybind11::module_& m) {
  fpyga::python::bind_fixed_impl(m);
}
