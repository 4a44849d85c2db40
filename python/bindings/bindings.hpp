// Shared declarations of the fpyga._core pybind11 module: one bind_* function per concept, and
// the helpers that find the fpyga buffer behind a NumPy array (used by the buffer methods and
// the kernel call path, which both must recognise a PynqBuffer or any view of one).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <exception>
#include <string>

#include "fpyga/fpyga.hpp"

namespace fpyga::python {

namespace py = pybind11;

void bind_errors(py::module_& m);
/// Sets the Python error for a C++ exception (fpyga's hierarchy, pybind11's, std); used by the
/// entry points that bypass pybind11's dispatcher.
void set_python_error_any(std::exception_ptr p);
void bind_xclbin(py::module_& m);
void bind_device(py::module_& m);
void bind_memory(py::module_& m);
void bind_buffer(py::module_& m);
void bind_kernel(py::module_& m);
void bind_overlay(py::module_& m);
void bind_bench(py::module_& m);
void bind_nn(py::module_& m);

/// A byte range of an fpyga buffer that a Python object (a buffer, or an ndarray whose `.base`
/// chain leads to one) covers.
struct buffer_span {
  fpyga::buffer* buffer = nullptr;
  std::size_t offset = 0;
  std::size_t bytes = 0;
};

/// Finds the buffer behind `obj` without Python-level work: `obj` itself when it is a
/// `_core.buffer`, else the first `_core.buffer` on an ndarray's `.base` chain, with the byte
/// range the array's data covers. Returns false when `obj` is neither.
bool find_buffer(PyObject* obj, buffer_span& out);

/// Like find_buffer, but raises ValueError saying why an array is not device memory.
buffer_span require_buffer(py::handle obj, const char* what);

/// The Python type object of `_core.buffer` (set by bind_buffer).
extern PyTypeObject* buffer_type;

}  // namespace fpyga::python

/// Defined by bind_fixed.cpp (the demo's fixed-point conversions) when that file is built.
void bind_fixed(pybind11::module_& m);
