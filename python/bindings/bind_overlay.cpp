// fpyga::overlay: an xclbin loaded on a device.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings.hpp"

namespace fpyga::python {

void bind_overlay(py::module_& m) {
  py::class_<overlay>(m, "overlay", "An xclbin or awsxclbin loaded on a device.")
      .def(py::init<const device&, const std::string&>(), py::arg("device"), py::arg("path"),
           py::call_guard<py::gil_scoped_release>(),
           "Loads `path` onto `device`. Raises ValueError for a malformed file.")
      .def(
          "kernel_names",
          [](const overlay& o) {
            std::vector<std::string> names;
            for (const auto& k : o.kernels()) names.push_back(k.name());
            return names;
          },
          "Names of the kernels of the xclbin.")
      .def("memory", &overlay::memory, py::arg("tag"))
      .def("memories", &overlay::memories)
      .def_property_readonly("device", &overlay::device)
      .def_property_readonly("xclbin", &overlay::xclbin, py::return_value_policy::copy)
      .def_property_readonly("path", &overlay::path)
      .def_property_readonly("loaded", &overlay::loaded)
      .def("release", &overlay::release, py::call_guard<py::gil_scoped_release>(),
           "Unloads now; raises RuntimeError while runs are in flight.")
      .def("__repr__", [](const overlay& o) { return "<fpyga overlay " + o.path() + ">"; });
}

}  // namespace fpyga::python
