// fpyga._core: the compiled core of the Python package. The pure-Python layer (fpyga/*.py)
// shapes it into PYNQ's API; everything on the per-call path lives here.
#include <exception>

#include "bindings.hpp"

namespace fpyga::python {

// The core's exception hierarchy, mapped once to the built-in exceptions a PYNQ user expects,
// carrying the core's message unchanged. Most derived first. Returns false for exceptions that
// are not fpyga's.
bool set_python_error(std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (const fpyga::type_error& e) {
    PyErr_SetString(PyExc_TypeError, e.what());
  } catch (const fpyga::value_error& e) {  // also xclbin_error
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const fpyga::memory_error& e) {
    PyErr_SetString(PyExc_MemoryError, e.what());
  } catch (const fpyga::not_supported_error& e) {
    PyErr_SetString(PyExc_NotImplementedError, e.what());
  } catch (const fpyga::error& e) {  // backend_error and the root
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    return false;
  }
  return true;
}

void set_python_error_any(std::exception_ptr p) {
  if (set_python_error(p)) return;
  try {
    std::rethrow_exception(p);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const py::builtin_exception& e) {
    e.set_error();
  } catch (const std::bad_alloc&) {
    PyErr_SetString(PyExc_MemoryError, "out of memory");
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unknown C++ exception");
  }
}

void bind_errors(py::module_&) {
  py::register_exception_translator([](std::exception_ptr p) {
    if (p && !set_python_error(p)) std::rethrow_exception(p);
  });
}

}  // namespace fpyga::python

PYBIND11_MODULE(_core, m) {
  using namespace fpyga::python;
  m.doc() =
      "Compiled core of fpyga: devices, xclbins, overlays, buffers and kernels over the C++ "
      "library libfpyga. Use the PYNQ-shaped API of the `fpyga` package instead of this module.";
  m.attr("__version__") = FPYGA_VERSION;  // project(fpyga VERSION ...), from CMake
  bind_errors(m);
  bind_xclbin(m);
  bind_device(m);
  bind_memory(m);
  bind_buffer(m);
  bind_kernel(m);
  bind_overlay(m);
  bind_bench(m);
  bind_nn(m);
#ifdef FPYGA_HAVE_BIND_FIXED
  bind_fixed(m);
#endif
}
