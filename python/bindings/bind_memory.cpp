// fpyga::memory: one bank of the xclbin loaded on a device.
#include <functional>
#include <string>

#include "bindings.hpp"
#include "fpyga/device_info.hpp"

namespace fpyga::python {

void bind_memory(py::module_& m) {
  py::class_<memory>(m, "memory", "A memory bank (MEM_TOPOLOGY entry) of a loaded xclbin.")
      .def_property_readonly("index", &memory::index)
      .def_property_readonly("tag", &memory::tag)
      .def_property_readonly("type",
                             [](const memory& x) { return std::string(to_string(x.type())); })
      .def_property_readonly("raw_type", [](const memory& x) { return static_cast<int>(x.type()); })
      .def_property_readonly("used", &memory::used)
      .def_property_readonly("base_address", &memory::base_address)
      .def_property_readonly("size", &memory::size)
      .def_property_readonly("device", &memory::device)
      .def("usage", &usage, "Device memory in use in this bank now (a memory_usage).")
      .def("__eq__", [](const memory& a, const memory& b) { return a == b; })
      .def("__hash__",
           [](const memory& x) {
             return std::hash<const void*>()(x.program().get()) ^ (std::size_t{x.index()} << 1);
           })
      .def("__repr__", [](const memory& x) {
        return "<fpyga memory " + std::to_string(x.index()) + " '" + x.tag() + "'>";
      });
}

}  // namespace fpyga::python
