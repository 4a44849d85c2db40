// fpyga::device and fpyga::devices().
#include <pybind11/stl.h>

#include <functional>
#include <string>

#include "bindings.hpp"

namespace fpyga::python {

void bind_device(py::module_& m) {
  py::class_<device>(m, "device", "A handle to one device (a card, or the emulated device).")
      .def_static("open", &device::open, py::arg("spec") = "",
                  "Opens a device by spec: '' (FPYGA_DEVICE, else the first card, else emu), "
                  "'emu', 'emu:N', 'xrt:N', 'opencl:N'.")
      .def_property_readonly("name", &device::name)
      .def_property_readonly("backend", &device::backend)
      .def_property_readonly("index", &device::index)
      .def_property_readonly("spec", &device::spec)
      .def_property_readonly("bdf", &device::bdf)
      .def_property_readonly("shell", &device::shell)
      .def("memories", &device::memories, "Memories of the xclbin loaded on the device.")
      .def("default_memory", &device::default_memory,
           "The single used memory of the loaded xclbin; raises RuntimeError otherwise.")
      .def("__eq__", [](const device& a, const device& b) { return a == b; })
      .def("__hash__", [](const device& d) { return std::hash<const void*>()(d.impl().get()); })
      .def("__bool__", [](const device& d) { return static_cast<bool>(d); })
      .def("__repr__", [](const device& d) {
        return d ? "<fpyga device " + d.spec() + " '" + d.name() + "'>" : "<fpyga device (none)>";
      });

  m.def("devices", &devices, "Every device of every backend in this build: cards first, emu last.");
}

}  // namespace fpyga::python
