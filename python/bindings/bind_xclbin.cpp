// fpyga::xclbin and its plain-data parts. Enums are given to Python as the names the JSON
// description and `fpyga xclbin info` use ("ddr4", "ap_ctrl_hs", ...), with the raw numbers
// alongside where PYNQ's dictionaries need them.
#include <pybind11/stl.h>

#include <cstddef>
#include <string>

#include "bindings.hpp"
#include "fpyga/stream.hpp"

namespace fpyga::python {

void bind_xclbin(py::module_& m) {
  py::class_<memory_info>(m, "memory_info", "One MEM_TOPOLOGY entry.")
      .def_readonly("index", &memory_info::index)
      .def_property_readonly("type", [](const memory_info& i) { return std::string(to_string(i.type)); })
      .def_property_readonly("raw_type", [](const memory_info& i) { return static_cast<int>(i.type); })
      .def_readonly("used", &memory_info::used)
      .def_readonly("base_address", &memory_info::base_address)
      .def_readonly("size_bytes", &memory_info::size_bytes)
      .def_readonly("tag", &memory_info::tag)
      .def("__repr__", [](const memory_info& i) {
        return "<memory_info " + std::to_string(i.index) + " '" + i.tag + "' " +
               std::string(to_string(i.type)) + (i.used ? " used>" : " unused>");
      });

  py::class_<ip_info>(m, "ip_info", "One IP_LAYOUT entry.")
      .def_readonly("index", &ip_info::index)
      .def_property_readonly("type", [](const ip_info& i) { return std::string(to_string(i.type)); })
      .def_property_readonly("raw_type", [](const ip_info& i) { return static_cast<int>(i.type); })
      .def_readonly("name", &ip_info::name)
      .def_readonly("base_address", &ip_info::base_address)
      .def_property_readonly("control",
                             [](const ip_info& i) { return std::string(to_string(i.control)); })
      .def_readonly("interrupt_enabled", &ip_info::interrupt_enabled)
      .def_readonly("interrupt_id", &ip_info::interrupt_id)
      .def_property_readonly("kernel_name", &ip_info::kernel_name)
      .def_property_readonly("instance_name", &ip_info::instance_name)
      .def("__repr__", [](const ip_info& i) { return "<ip_info " + i.name + ">"; });

  py::class_<connection>(m, "connection", "One CONNECTIVITY entry.")
      .def_readonly("arg_index", &connection::arg_index)
      .def_readonly("ip_index", &connection::ip_index)
      .def_readonly("memory_index", &connection::memory_index);

  py::class_<clock_info>(m, "clock_info", "One CLOCK_FREQ_TOPOLOGY entry.")
      .def_readonly("name", &clock_info::name)
      .def_readonly("frequency_mhz", &clock_info::frequency_mhz)
      .def_property_readonly("type", [](const clock_info& c) { return std::string(to_string(c.type)); })
      .def_property_readonly("raw_type", [](const clock_info& c) { return static_cast<int>(c.type); });

  py::class_<arg_info>(m, "arg_info", "One kernel argument from EMBEDDED_METADATA.")
      .def_readonly("index", &arg_info::index)
      .def_readonly("name", &arg_info::name)
      .def_readonly("type", &arg_info::type)
      .def_property_readonly("kind", [](const arg_info& a) { return std::string(to_string(a.kind)); })
      .def_readonly("address_qualifier", &arg_info::address_qualifier)
      .def_readonly("port", &arg_info::port)
      .def_readonly("offset", &arg_info::offset)
      .def_readonly("size", &arg_info::size)
      .def_readonly("host_offset", &arg_info::host_offset)
      .def_readonly("host_size", &arg_info::host_size);

  py::class_<port_info>(m, "port_info")
      .def_readonly("name", &port_info::name)
      .def_readonly("mode", &port_info::mode)
      .def_readonly("range", &port_info::range)
      .def_readonly("data_width", &port_info::data_width);

  py::class_<instance_info>(m, "instance_info")
      .def_readonly("name", &instance_info::name)
      .def_readonly("base_address", &instance_info::base_address);

  py::class_<kernel_info>(m, "kernel_info", "One kernel from EMBEDDED_METADATA.")
      .def_readonly("name", &kernel_info::name)
      .def_readonly("language", &kernel_info::language)
      .def_readonly("vlnv", &kernel_info::vlnv)
      .def_readonly("ports", &kernel_info::ports)
      .def_readonly("args", &kernel_info::args)
      .def_readonly("instances", &kernel_info::instances);

  py::class_<xclbin>(m, "xclbin",
                     "A parsed xclbin or awsxclbin (XRT's axlf container), read without XRT.")
      .def_static("read", &xclbin::read, py::arg("path"), py::call_guard<py::gil_scoped_release>(),
                  "Reads and validates a file. Raises ValueError for a malformed file.")
      .def_static(
          "parse",
          [](py::bytes data, const std::string& source) {
            const std::string_view v = data;
            return xclbin::parse(
                std::span<const std::byte>(reinterpret_cast<const std::byte*>(v.data()), v.size()),
                source);
          },
          py::arg("data"), py::arg("source") = "<memory>", "Parses the bytes of an xclbin.")
      .def_property_readonly("uuid", &xclbin::uuid_string)
      .def_property_readonly("mode", [](const xclbin& x) { return std::string(to_string(x.mode)); })
      .def_property_readonly("target", &xclbin::target)
      .def_property_readonly("agfi", &xclbin::agfi)
      .def_property_readonly("platform", &xclbin::platform_name)
      .def_readonly("source", &xclbin::source)
      .def_readonly("timestamp", &xclbin::timestamp)
      .def_readonly("memories", &xclbin::memories)
      .def_readonly("ips", &xclbin::ips)
      .def_readonly("connectivity", &xclbin::connectivity)
      .def_readonly("clocks", &xclbin::clocks)
      .def_readonly("kernels", &xclbin::kernels)
      .def_readonly("embedded_metadata", &xclbin::embedded_metadata)
      .def_readonly("build_metadata", &xclbin::build_metadata)
      .def_property_readonly("bitstream_size", [](const xclbin& x) { return x.bitstream.size(); })
      .def_property_readonly("bitstream_is_elf", &xclbin::bitstream_is_elf)
      .def("memories_of", &xclbin::memories_of, py::arg("ip_index"), py::arg("arg_index"),
           "MEM_TOPOLOGY indices argument `arg_index` of IP `ip_index` is connected to.")
      .def(
          "stream_layout",
          [](const xclbin& x) {
            // One derivation of the streams for C++ and Python: fpyga::stream_layout.
            const auto layout = stream_layout::of(x);
            py::list ports, connections;
            for (const auto& p : layout.ports) {
              py::dict d;
              d["kernel"] = p.kernel;
              d["instance"] = p.instance;
              d["arg"] = p.arg;
              d["arg_index"] = p.arg_index;
              d["ip_index"] = p.ip_index;
              d["direction"] = std::string(to_string(p.direction));
              d["type"] = p.element.type;
              d["data_bits"] = p.element.data_bits;
              d["axis"] = p.element.axis;
              d["memory_index"] = p.memory_index;
              d["connection"] = p.connection ? py::object(py::int_(*p.connection)) : py::none();
              ports.append(d);
            }
            for (const auto& c : layout.connections) {
              py::dict d;
              d["tag"] = c.tag;
              d["memory_index"] = c.memory_index;
              d["source"] = layout.ports[c.source].name();
              d["sink"] = layout.ports[c.sink].name();
              d["depth"] = c.depth;
              connections.append(d);
            }
            py::dict out;
            out["ports"] = ports;
            out["connections"] = connections;
            return out;
          },
          "The stream ports and kernel-to-kernel streams (fpyga::stream_layout): {'ports': [...], "
          "'connections': [{tag, memory_index, source, sink, depth}]}. Raises ValueError for a "
          "stream design that cannot run (naming the ports).")
      .def("cu_instance", &xclbin::cu_instance, py::arg("ip"),
           "The compute unit an IP_LAYOUT kernel entry stands for, as XRT and PYNQ name it (old "
           "files name the IP by its kernel only: the metadata's instance at its base address).")
      .def("to_json", &xclbin::to_json, py::arg("indent") = 2)
      .def("__repr__", [](const xclbin& x) {
        return "<xclbin " + x.source + " uuid=" + x.uuid_string() + " target=" + x.target() + ">";
      });
}

}  // namespace fpyga::python
