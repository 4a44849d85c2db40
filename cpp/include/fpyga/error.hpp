// fpyga's exception hierarchy. Every failure in the C++ core is one of these; the Python
// bindings map them once to the exceptions a PYNQ user expects (see python/bindings).
#pragma once

#include <stdexcept>
#include <string>

namespace fpyga {

/// Root of every fpyga exception (Python: RuntimeError).
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value of the right type but not acceptable: out of range, unknown name (Python: ValueError).
class value_error : public error {
 public:
  using error::error;
};

/// An argument of the wrong kind or count for a kernel or function (Python: TypeError).
class type_error : public error {
 public:
  using error::error;
};

/// A malformed, truncated or inconsistent xclbin; the message names the file and the section
/// (Python: ValueError).
class xclbin_error : public value_error {
 public:
  using value_error::value_error;
};

/// A memory bank or host allocation is exhausted (Python: MemoryError).
class memory_error : public error {
 public:
  using error::error;
};

/// The backend or build does not offer this function (Python: NotImplementedError).
class not_supported_error : public error {
 public:
  using error::error;
};

/// A vendor runtime (XRT, OpenCL, dlopen, libffi) reported a failure; the message carries the
/// routine and its code (Python: RuntimeError).
class backend_error : public error {
 public:
  using error::error;
};

}  // namespace fpyga
