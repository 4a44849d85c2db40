// Timing helpers for bench/python_roundtrip.py: the same per-sample round trip as the Python
// flow (sync in, call, sync out), written against the C++ API and timed in C++, so that the
// benchmark compares both in one process.
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "kernel_call.hpp"

namespace fpyga::python {

void bind_bench(py::module_& m) {
  m.def(
      "_bench_cpp_roundtrip",
      [](const py_kernel& k, py::handle in, py::handle out, const py::tuple& args,
         std::size_t iterations) {
        const buffer_span src = require_buffer(in, "input");
        const buffer_span dst = require_buffer(out, "output");
        converted_args c;
        convert_args(k, py::reinterpret_borrow<py::args>(args), py::kwargs(), c);
        std::vector<std::int64_t> ns(iterations);
        {
          py::gil_scoped_release release;
          using clock = std::chrono::steady_clock;
          for (std::size_t i = 0; i < iterations; ++i) {
            const auto t0 = clock::now();
            src.buffer->sync_to_device(src.bytes, src.offset);
            k.k.call_args(c.values);
            dst.buffer->sync_from_device(dst.bytes, dst.offset);
            const auto t1 = clock::now();
            ns[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
          }
        }
        return ns;
      },
      py::arg("kernel"), py::arg("input"), py::arg("output"), py::arg("args"),
      py::arg("iterations"),
      "Times `iterations` round trips (sync `input` to the device, call `kernel` with `args`, sync "
      "`output` back) through the C++ API; returns nanoseconds per round trip.");
  m.def(
      "_bench_gil_release", [] {}, py::call_guard<py::gil_scoped_release>(),
      "Does nothing with the GIL released: the cost of one release and re-acquisition.");
}

}  // namespace fpyga::python
