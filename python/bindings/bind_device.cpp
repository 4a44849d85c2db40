// fpyga::device and fpyga::devices().
#include <pybind11/stl.h>

#include <functional>
#include <string>

#include "bindings.hpp"
#include "fpyga/device_info.hpp"

namespace fpyga::python {

void bind_device(py::module_& m) {
  // What a device reports about itself (fpyga/device_info.hpp); absent values are None.
  py::class_<rail_reading>(m, "rail_reading", "One power rail as the runtime reports it.")
      .def_readonly("name", &rail_reading::name)
      .def_readonly("description", &rail_reading::description)
      .def_readonly("volts", &rail_reading::volts)
      .def_readonly("amps", &rail_reading::amps)
      .def_readonly("watts", &rail_reading::watts, "volts * amps, when both were measured.")
      .def("__repr__", [](const rail_reading& r) { return "<fpyga rail_reading " + r.name + ">"; });
  py::class_<temperature_reading>(m, "temperature_reading", "One temperature sensor.")
      .def_readonly("name", &temperature_reading::name)
      .def_readonly("description", &temperature_reading::description)
      .def_readonly("celsius", &temperature_reading::celsius);
  py::class_<sensor_readings>(m, "sensor_readings", "A device's sensors, read when asked.")
      .def_readonly(
          "source", &sensor_readings::source,
          "'xrt' when XRT's device information gave values; '' when nothing was measured.")
      .def_readonly("note", &sensor_readings::note, "Why values are missing ('' when none is).")
      .def_readonly("power_watts", &sensor_readings::power_watts)
      .def_readonly("rails", &sensor_readings::rails)
      .def_readonly("temperatures", &sensor_readings::temperatures)
      .def("__repr__", [](const sensor_readings& r) {
        return "<fpyga sensor_readings source='" + r.source +
               "' rails=" + std::to_string(r.rails.size()) +
               " temperatures=" + std::to_string(r.temperatures.size()) +
               (r.note.empty() ? "" : " note='" + r.note + "'") + ">";
      });
  py::class_<clock_reading>(m, "clock_reading", "One clock of the loaded xclbin.")
      .def_readonly("name", &clock_reading::name)
      .def_property_readonly("type",
                             [](const clock_reading& c) { return std::string(to_string(c.type)); })
      .def_readonly("frequency_mhz", &clock_reading::frequency_mhz)
      .def_readonly("source", &clock_reading::source, "'xclbin': CLOCK_FREQ_TOPOLOGY.")
      .def("__repr__", [](const clock_reading& c) {
        return "<fpyga clock_reading " + c.name + " " + std::to_string(c.frequency_mhz) + " MHz>";
      });
  py::class_<memory_usage>(m, "memory_usage", "Device memory in use in one bank.")
      .def_readonly("index", &memory_usage::index)
      .def_readonly("tag", &memory_usage::tag)
      .def_readonly("used_bytes", &memory_usage::used_bytes)
      .def_readonly("buffers", &memory_usage::buffers)
      .def_readonly("source", &memory_usage::source,
                    "'emu' (emu's bank allocator), 'xrt' (XRT's report on a card) or 'fpyga' "
                    "(fpyga's own count of this process's buffers).")
      .def("__repr__", [](const memory_usage& u) {
        return "<fpyga memory_usage " + u.tag + ": " + std::to_string(u.used_bytes) + " bytes in " +
               std::to_string(u.buffers) + " buffer(s), from " + u.source + ">";
      });

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
      .def_property_readonly("loads_xclbin", &loads_xclbin,
                             "False for OpenCL devices that build OpenCL C sources only.")
      .def("sensors", &read_sensors,
           "Reads the sensors now (empty, with `note` saying why, where nothing is measured).")
      .def("clocks", &clocks, "Clocks of the loaded xclbin (CLOCK_FREQ_TOPOLOGY).")
      .def("max_clock_frequency_mhz", &max_clock_frequency_mhz,
           "The runtime's highest clock frequency (XRT on a card), else None.")
      .def("memory_usage", &memory_usage_of,
           "Device memory in use in every bank of the loaded xclbin.")
      .def("__eq__", [](const device& a, const device& b) { return a == b; })
      .def("__hash__", [](const device& d) { return std::hash<const void*>()(d.impl().get()); })
      .def("__bool__", [](const device& d) { return static_cast<bool>(d); })
      .def("__repr__", [](const device& d) {
        return d ? "<fpyga device " + d.spec() + " '" + d.name() + "'>" : "<fpyga device (none)>";
      });

  m.def("devices", &devices,
        "Every device of this build's backends: the default device first, then the devices that "
        "load xclbins (cards, emu), then OpenCL devices that build OpenCL C only.");

  py::class_<backend_info>(m, "backend_info", "A backend of this build and whether it can be used.")
      .def_readonly("name", &backend_info::name)
      .def_readonly("hardware", &backend_info::hardware)
      .def_readonly("available", &backend_info::available)
      .def_readonly("reason", &backend_info::reason, "Why it is not available ('' when it is).")
      .def_readonly("plugin", &backend_info::plugin, "Its plugin file ('' for emu, built in).")
      .def("__repr__", [](const backend_info& b) {
        return "<fpyga backend " + b.name +
               (b.available ? ": available>" : ": not available: " + b.reason + ">");
      });
  m.def("backends", &backends,
        "The backends of this build, cards first, emu last; the first call loads the plugins.");
}

}  // namespace fpyga::python
