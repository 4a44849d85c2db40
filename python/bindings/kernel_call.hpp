// The Python call path of a kernel: a per-kernel plan made once from the kernel's metadata,
// and the conversion of Python arguments to fpyga::arg_value in C++ (no Python-level loop).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "bindings.hpp"

namespace fpyga::python {

/// What the call path needs to know about one argument, precomputed from kernel::args().
struct arg_plan {
  std::string name;
  std::string type;                ///< C type string, for messages
  bool global = false;             ///< a pointer (buffer) argument
  std::size_t wide_bytes = 0;      ///< > 0: a scalar wider than 64 bits, passed as raw bytes
  bool wide_signed = false;
};

/// `_core.kernel`: a kernel handle with its call plan.
struct py_kernel {
  explicit py_kernel(fpyga::kernel k);

  fpyga::kernel k;
  std::vector<arg_plan> plan;
};

/// Converted arguments of one call. Buffer arguments point at the `_core.buffer` objects the
/// Python arguments keep alive; wide scalars point into `wide`.
struct converted_args {
  std::vector<arg_value> values;
  std::vector<std::vector<std::byte>> wide;
};

/// Converts positional and keyword arguments following the kernel's plan. Raises TypeError or
/// ValueError naming the argument where a Python object cannot become an argument at all; the
/// core checks count, kinds, ranges and banks.
void convert_args(const py_kernel& k, const py::args& args, const py::kwargs& kwargs,
                  converted_args& out);
/// The same over CPython's vectorcall layout: `nargs` positional values, then one value per
/// name in `kwnames` (a tuple, or nullptr). `skip` names a keyword to ignore (start's waitfor).
void convert_args(const py_kernel& k, PyObject* const* args, std::size_t nargs, PyObject* kwnames,
                  converted_args& out, const char* skip = nullptr);

}  // namespace fpyga::python
