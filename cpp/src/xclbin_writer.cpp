// The xclbin writer and the JSON description `fpyga xclbin pack` takes. Output is a pure
// function of the xclbin value: fixed section order, zero padding, no clock or host input, so
// the same description always gives the same bytes (and the same derived uuid).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "fpyga/error.hpp"
#include "fpyga/network.hpp"
#include "fpyga/stream.hpp"
#include "fpyga/xclbin.hpp"
#include "xclbin_format.hpp"

namespace fpyga {
namespace {

class byte_buffer {
 public:
  explicit byte_buffer(std::size_t size = 0) : bytes_(size) {}

  template <typename T>
  void put(std::size_t offset, T value) {
    const auto v = static_cast<std::make_unsigned_t<T>>(value);
    for (std::size_t i = 0; i < sizeof(T); ++i)
      bytes_.at(offset + i) = std::byte(static_cast<std::uint8_t>(std::uint64_t(v) >> (8 * i)));
  }
  void put_bytes(std::size_t offset, const void* data, std::size_t n) {
    if (n) std::memcpy(&bytes_.at(offset), data, n);
  }
  void fill(std::size_t offset, std::size_t n, std::uint8_t v) {
    for (std::size_t i = 0; i < n; ++i) bytes_.at(offset + i) = std::byte(v);
  }
  /// Writes `s` and its NUL into a fixed field; `what` names the field if it does not fit.
  void put_string(std::size_t offset, std::size_t field, const std::string& s,
                  const std::string& what) {
    if (s.size() >= field)
      throw value_error("xclbin writer: " + what + " '" + s + "' is " + std::to_string(s.size()) +
                        " characters, the field holds at most " + std::to_string(field - 1));
    if (s.find('\0') != std::string::npos)
      throw value_error("xclbin writer: " + what + " contains a NUL");
    if (format::utf8_error(s) != std::string::npos)
      throw value_error("xclbin writer: " + what + " is not valid UTF-8");
    put_bytes(offset, s.data(), s.size());
  }
  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

std::vector<std::byte> to_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return std::vector<std::byte>(p, p + s.size());
}

std::vector<std::byte> mem_topology_payload(const std::vector<memory_info>& memories) {
  byte_buffer b(format::mem_entries + memories.size() * format::mem_entry_size);
  b.put<std::int32_t>(0, static_cast<std::int32_t>(memories.size()));
  for (std::size_t i = 0; i < memories.size(); ++i) {
    const auto& m = memories[i];
    const std::size_t e = format::mem_entries + i * format::mem_entry_size;
    if (m.size_bytes % 1024 != 0)
      throw value_error("xclbin writer: memory '" + m.tag + "' size " +
                        std::to_string(m.size_bytes) +
                        " bytes is not a multiple of 1024 (MEM_TOPOLOGY stores KiB)");
    if (!format::is_stream_memory(m.type) && !format::memory_range_fits(m.base_address, m.size_bytes))
      throw value_error("xclbin writer: memory '" + m.tag + "' at base " +
                        std::to_string(m.base_address) + " with " + std::to_string(m.size_bytes) +
                        " bytes runs past the end of the 64-bit address space");
    b.put<std::uint8_t>(e + format::mem_type, static_cast<std::uint8_t>(m.type));
    b.put<std::uint8_t>(e + format::mem_used, m.used ? 1 : 0);
    b.put<std::uint64_t>(e + format::mem_size_kb, m.size_bytes / 1024);
    b.put<std::uint64_t>(e + format::mem_base, m.base_address);
    b.put_string(e + format::mem_tag, format::mem_tag_size, m.tag, "memory tag");
  }
  return std::move(b.bytes());
}

std::vector<std::byte> ip_layout_payload(const std::vector<ip_info>& ips) {
  byte_buffer b(format::ip_entries + ips.size() * format::ip_entry_size);
  b.put<std::int32_t>(0, static_cast<std::int32_t>(ips.size()));
  for (std::size_t i = 0; i < ips.size(); ++i) {
    const auto& ip = ips[i];
    const std::size_t e = format::ip_entries + i * format::ip_entry_size;
    if (ip.interrupt_id > 0x7F)
      throw value_error("xclbin writer: IP '" + ip.name + "' interrupt id " +
                        std::to_string(ip.interrupt_id) + " does not fit 7 bits");
    std::uint32_t props = 0;
    if (ip.type == ip_type::kernel || ip.type == ip_type::ps_kernel)
      props = (ip.interrupt_enabled ? 1u : 0u) | (std::uint32_t(ip.interrupt_id) << 1) |
              (std::uint32_t(ip.control) << 8);
    b.put<std::uint32_t>(e + format::ip_type, static_cast<std::uint32_t>(ip.type));
    b.put<std::uint32_t>(e + format::ip_properties, props);
    b.put<std::uint64_t>(e + format::ip_base, ip.base_address);
    b.put_string(e + format::ip_name, format::ip_name_size, ip.name, "IP name");
  }
  return std::move(b.bytes());
}

std::vector<std::byte> connectivity_payload(const xclbin& x) {
  byte_buffer b(format::conn_entries + x.connectivity.size() * format::conn_entry_size);
  b.put<std::int32_t>(0, static_cast<std::int32_t>(x.connectivity.size()));
  for (std::size_t i = 0; i < x.connectivity.size(); ++i) {
    const auto& c = x.connectivity[i];
    if (c.arg_index < 0 || c.ip_index < 0 || std::size_t(c.ip_index) >= x.ips.size() ||
        c.memory_index < 0 || std::size_t(c.memory_index) >= x.memories.size())
      throw value_error("xclbin writer: connectivity entry " + std::to_string(i) + " (arg " +
                        std::to_string(c.arg_index) + ", IP " + std::to_string(c.ip_index) +
                        ", memory " + std::to_string(c.memory_index) +
                        ") names an IP or memory that does not exist");
    const std::size_t e = format::conn_entries + i * format::conn_entry_size;
    b.put<std::int32_t>(e, c.arg_index);
    b.put<std::int32_t>(e + 4, c.ip_index);
    b.put<std::int32_t>(e + 8, c.memory_index);
  }
  return std::move(b.bytes());
}

std::vector<std::byte> clock_payload(const std::vector<clock_info>& clocks) {
  if (clocks.size() > std::size_t(std::numeric_limits<std::int16_t>::max()))
    throw value_error("xclbin writer: " + std::to_string(clocks.size()) +
                      " clocks, at most 32767 fit");
  byte_buffer b(format::clock_entries + clocks.size() * format::clock_entry_size);
  b.put<std::int16_t>(0, static_cast<std::int16_t>(clocks.size()));
  for (std::size_t i = 0; i < clocks.size(); ++i) {
    const std::size_t e = format::clock_entries + i * format::clock_entry_size;
    b.put<std::uint16_t>(e + format::clock_freq, clocks[i].frequency_mhz);
    b.put<std::uint8_t>(e + format::clock_type, static_cast<std::uint8_t>(clocks[i].type));
    b.put_string(e + format::clock_name, format::clock_name_size, clocks[i].name, "clock name");
  }
  return std::move(b.bytes());
}

std::string hex(std::uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::uppercase << std::hex << v;
  return s.str();
}

/// Splits "vendor_board_name_major_minor" the way Xilinx composes platform names; the XML only
/// matters to readers that look for the platform there (the header carries the VBNV).
struct platform_parts {
  std::string vendor, board, name, major, minor;
};
platform_parts split_vbnv(const std::string& vbnv) {
  std::vector<std::string> t;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= vbnv.size(); ++i)
    if (i == vbnv.size() || vbnv[i] == '_') {
      t.push_back(vbnv.substr(start, i - start));
      start = i + 1;
    }
  platform_parts p;
  if (t.size() >= 5) {
    p.vendor = t[0];
    p.board = t[1];
    for (std::size_t i = 2; i + 2 < t.size(); ++i) p.name += (i > 2 ? "_" : "") + t[i];
    p.major = t[t.size() - 2];
    p.minor = t[t.size() - 1];
  } else {
    p.board = vbnv;
  }
  return p;
}

/// The ports of a kernel whose description lists none: one slave control port (unless
/// `control_port` is false: a free-running kernel without scalars has no AXI-lite interface),
/// one master port per m_axi bundle, one port per stream argument. `stream_modes` gives a
/// stream's mode by argument name (read_only / write_only, as Vitis writes them; "stream" when
/// unknown) and `stream_widths` its TDATA width.
std::vector<port_info> derived_ports(const kernel_info& k,
                                     const std::map<std::string, std::string>& stream_modes,
                                     bool control_port,
                                     const std::map<std::string, unsigned>& stream_widths = {}) {
  std::vector<port_info> ports;
  std::set<std::string> seen;
  for (const auto& a : k.args) {
    if (a.port.empty() || !seen.insert(a.port).second) continue;
    if (a.kind == arg_kind::scalar && !control_port) continue;
    port_info p;
    p.name = a.port;
    p.mode = a.kind == arg_kind::scalar   ? "slave"
             : a.kind == arg_kind::global ? "master"
                                          : "stream";
    if (a.kind == arg_kind::stream)
      if (auto m = stream_modes.find(a.name); m != stream_modes.end()) p.mode = m->second;
    p.range = a.kind == arg_kind::scalar   ? 0x1000
              : a.kind == arg_kind::global ? 0xFFFFFFFFFFFFFFFFull
                                           : 0;
    p.data_width = 32;
    if (auto w = stream_widths.find(a.name); a.kind == arg_kind::stream && w != stream_widths.end())
      p.data_width = w->second;
    ports.push_back(p);
  }
  if (control_port && !std::any_of(ports.begin(), ports.end(),
                                   [](const port_info& p) { return p.mode == "slave"; }))
    ports.push_back({"S_AXI_CONTROL", "slave", 0x1000, 32});
  return ports;
}

std::string embedded_metadata_xml(const xclbin& x) {
  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto project = doc.append_child("project");
  project.append_attribute("name") = x.platform_vbnv.empty() ? "fpyga" : x.platform_vbnv.c_str();
  const auto parts = split_vbnv(x.platform_vbnv);
  auto platform = project.append_child("platform");
  platform.append_attribute("vendor") = parts.vendor.c_str();
  platform.append_attribute("boardid") = parts.board.c_str();
  platform.append_attribute("name") = parts.name.c_str();
  platform.append_attribute("featureRomTime") = "0";
  if (!parts.major.empty()) {
    auto version = platform.append_child("version");
    version.append_attribute("major") = parts.major.c_str();
    version.append_attribute("minor") = parts.minor.c_str();
  }
  auto device = platform.append_child("device");
  device.append_attribute("name") = "fpga0";
  auto core = device.append_child("core");
  core.append_attribute("name") = "OCL_REGION_0";
  core.append_attribute("target") = x.target() == "sw_emu" ? "csim" : "bitstream";
  core.append_attribute("type") = "clc_region";
  std::size_t cus = 0;
  for (const auto& k : x.kernels) cus += k.instances.size();
  core.append_attribute("numComputeUnits") = std::to_string(cus).c_str();

  for (const auto& k : x.kernels) {
    auto kernel = core.append_child("kernel");
    kernel.append_attribute("name") = k.name.c_str();
    kernel.append_attribute("language") = k.language.c_str();
    kernel.append_attribute("vlnv") = k.vlnv.c_str();
    kernel.append_attribute("preferredWorkGroupSizeMultiple") = "0";
    kernel.append_attribute("workGroupSize") = "1";
    kernel.append_attribute("interrupt") = "true";
    const std::vector<port_info> ports = k.ports.empty() ? derived_ports(k, {}, true) : k.ports;
    // PYNQ reads the block protocol here; written when every compute unit agrees on one other
    // than the default ap_ctrl_hs (free-running ap_ctrl_none kernels, ap_ctrl_chain).
    std::optional<control_protocol> control;
    bool agree = true;
    for (const auto& ip : x.ips)
      if (ip.type == ip_type::kernel && ip.kernel_name() == k.name) {
        if (control && *control != ip.control) agree = false;
        control = ip.control;
      }
    if (agree && control && *control != control_protocol::ap_ctrl_hs)
      kernel.append_attribute("hwControlProtocol") = std::string(to_string(*control)).c_str();
    for (const auto& p : ports) {
      auto port = kernel.append_child("port");
      port.append_attribute("name") = p.name.c_str();
      port.append_attribute("mode") = p.mode.c_str();
      port.append_attribute("range") = hex(p.range).c_str();
      port.append_attribute("dataWidth") = std::to_string(p.data_width).c_str();
      const bool stream = p.mode == "stream" || p.mode == "read_only" || p.mode == "write_only";
      port.append_attribute("portType") = stream ? "stream" : "addressable";
      port.append_attribute("base") = "0x0";
    }
    for (const auto& a : k.args) {
      auto arg = kernel.append_child("arg");
      arg.append_attribute("name") = a.name.c_str();
      arg.append_attribute("addressQualifier") = std::to_string(a.address_qualifier).c_str();
      arg.append_attribute("id") = std::to_string(a.index).c_str();
      arg.append_attribute("port") = a.port.c_str();
      arg.append_attribute("size") = hex(a.size).c_str();
      arg.append_attribute("offset") = hex(a.offset).c_str();
      arg.append_attribute("hostOffset") = hex(a.host_offset).c_str();
      arg.append_attribute("hostSize") = hex(a.host_size).c_str();
      arg.append_attribute("type") = a.type.c_str();
    }
    for (const auto& in : k.instances) {
      auto inst = kernel.append_child("instance");
      inst.append_attribute("name") = in.name.c_str();
      auto remap = inst.append_child("addrRemap");
      remap.append_attribute("base") = hex(in.base_address).c_str();
      remap.append_attribute("port") = "S_AXI_CONTROL";
    }
  }
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_default | pugi::format_no_declaration, pugi::encoding_utf8);
  return out.str();  // the declaration node above is written once
}

std::string build_metadata_json(const xclbin& x) {
  using nlohmann::ordered_json;
  ordered_json kernels = ordered_json::array();
  for (const auto& k : x.kernels) {
    ordered_json instances = ordered_json::array();
    for (const auto& in : k.instances) instances.push_back({{"name", in.name}});
    kernels.push_back({{"name", k.name}, {"instances", instances}});
  }
  ordered_json j = {{"build_metadata",
                     {{"xclbin",
                       {{"generated_by", {{"name", "fpyga"}}},
                        {"packaged_by", {{"name", "fpyga xclbin pack"}}},
                        {"user_regions", ordered_json::array({{{"name", "OCL_REGION_0"},
                                                               {"type", "clc_region"},
                                                               {"kernels", kernels}}})}}},
                      {"dsa", {{"name", x.platform_vbnv}}}}}};
  return j.dump(4, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

struct out_section {
  section_kind kind;
  std::string name;
  std::vector<std::byte> payload;
};

}  // namespace

std::vector<std::byte> xclbin::write() const {
  std::vector<out_section> sections;
  if (!bitstream.empty()) sections.push_back({section_kind::bitstream, "", bitstream});
  if (!embedded_metadata.empty() || !kernels.empty())
    sections.push_back(
        {section_kind::embedded_metadata, "runtime_data",
         to_bytes(embedded_metadata.empty() ? embedded_metadata_xml(*this) : embedded_metadata)});
  if (!memories.empty())
    sections.push_back(
        {section_kind::mem_topology, "runtime_data", mem_topology_payload(memories)});
  if (!connectivity.empty())
    sections.push_back({section_kind::connectivity, "runtime_data", connectivity_payload(*this)});
  if (!ips.empty())
    sections.push_back({section_kind::ip_layout, "runtime_data", ip_layout_payload(ips)});
  if (!clocks.empty())
    sections.push_back({section_kind::clock_freq_topology, "runtime_data", clock_payload(clocks)});
  sections.push_back(
      {section_kind::build_metadata, "runtime_data",
       to_bytes(build_metadata.empty() ? build_metadata_json(*this) : build_metadata)});
  for (const auto& s : other_sections) {
    const auto k = s.kind;
    if (k == section_kind::bitstream || k == section_kind::embedded_metadata ||
        k == section_kind::mem_topology || k == section_kind::connectivity ||
        k == section_kind::ip_layout || k == section_kind::clock_freq_topology ||
        k == section_kind::build_metadata)
      throw value_error("xclbin writer: other_sections holds a " + std::string(to_string(k)) +
                        " section; set the typed field instead");
    sections.push_back({s.kind, s.name, s.payload});
  }

  const auto align = [](std::size_t n) {
    return (n + format::alignment - 1) / format::alignment * format::alignment;
  };
  std::size_t end = format::section_table + sections.size() * format::section_header_size;
  std::vector<std::size_t> offsets;
  for (const auto& s : sections) {
    end = align(end);
    offsets.push_back(end);
    end += s.payload.size();
  }

  byte_buffer b(end);
  b.put_bytes(0, format::magic, sizeof format::magic);
  b.put<std::int32_t>(format::signature_length, -1);
  b.fill(format::reserved, 28, 0xFF);
  b.fill(format::key_block, 256, 0xFF);
  b.put<std::uint64_t>(format::unique_id, unique_id);
  b.put<std::uint64_t>(format::length, end);
  b.put<std::uint64_t>(format::timestamp, timestamp);
  b.put<std::uint64_t>(format::feature_rom_ts, feature_rom_timestamp);
  b.put<std::uint16_t>(format::version_patch, version_patch);
  b.put<std::uint8_t>(format::version_major, version_major);
  b.put<std::uint8_t>(format::version_minor, version_minor);
  b.put<std::uint16_t>(format::mode, static_cast<std::uint16_t>(mode));
  b.put<std::uint16_t>(format::action_mask, action_mask);
  b.put_bytes(format::interface_uuid, interface_uuid.data(), interface_uuid.size());
  b.put_string(format::platform_vbnv, format::platform_vbnv_size, platform_vbnv, "platform VBNV");
  b.put_bytes(format::uuid, uuid.data(), uuid.size());
  b.put<std::uint32_t>(format::num_sections, static_cast<std::uint32_t>(sections.size()));
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const std::size_t h = format::section_table + i * format::section_header_size;
    b.put<std::uint32_t>(h + format::sh_kind, static_cast<std::uint32_t>(sections[i].kind));
    b.put_string(h + format::sh_name, format::sh_name_size, sections[i].name, "section name");
    b.put<std::uint64_t>(h + format::sh_offset, offsets[i]);
    b.put<std::uint64_t>(h + format::sh_size, sections[i].payload.size());
    b.put_bytes(offsets[i], sections[i].payload.data(), sections[i].payload.size());
  }
  return std::move(b.bytes());
}

void xclbin::write(const std::string& path) const {
  const auto bytes = write();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw error("cannot create xclbin '" + path + "': " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw error("cannot write xclbin '" + path + "': " + std::strerror(errno));
}

// ---------------------------------------------------------------------------------------------
// The JSON description

namespace {

using nlohmann::json;

/// Field access with messages naming the path ("kernels[0].args[2].offset").
class desc_reader {
 public:
  [[noreturn]] static void fail(const std::string& where, const std::string& problem) {
    throw value_error("xclbin description: " + where + ": " + problem);
  }

  static void only_keys(const json& obj, const std::string& where,
                        std::initializer_list<const char*> keys) {
    if (!obj.is_object()) fail(where, "expected an object, got " + std::string(obj.type_name()));
    for (const auto& item : obj.items()) {
      const std::string& k = item.key();
      if (std::none_of(keys.begin(), keys.end(), [&](const char* a) { return k == a; })) {
        std::string known;
        for (const char* a : keys) known += (known.empty() ? "" : ", ") + std::string(a);
        fail(where, "unknown field '" + k + "' (known: " + known + ")");
      }
    }
  }

  static std::optional<std::string> string(const json& obj, const char* key,
                                           const std::string& where) {
    if (!obj.contains(key)) return std::nullopt;
    const auto& v = obj[key];
    if (!v.is_string())
      fail(where + "." + key, "expected a string, got " + std::string(v.type_name()));
    return v.get<std::string>();
  }

  static std::optional<std::uint64_t> number(
      const json& obj, const char* key, const std::string& where,
      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
    if (!obj.contains(key)) return std::nullopt;
    const auto& v = obj[key];
    if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      const auto n = v.get<std::uint64_t>();
      if (n > max)
        fail(where + "." + key, std::to_string(n) + " is above the maximum " + std::to_string(max));
      return n;
    }
    fail(where + "." + key, "expected a non-negative integer, got " + v.dump());
  }

  static std::optional<bool> boolean(const json& obj, const char* key, const std::string& where) {
    if (!obj.contains(key)) return std::nullopt;
    const auto& v = obj[key];
    if (!v.is_boolean()) fail(where + "." + key, "expected true or false, got " + v.dump());
    return v.get<bool>();
  }

  static const json& array(const json& obj, const char* key, const std::string& where) {
    static const json empty = json::array();
    if (!obj.contains(key)) return empty;
    const auto& v = obj[key];
    if (!v.is_array())
      fail(where + "." + key, "expected an array, got " + std::string(v.type_name()));
    return v;
  }
};

std::array<std::uint8_t, 16> parse_uuid(const std::string& s) {
  std::array<std::uint8_t, 16> u{};
  std::string digits;
  for (char c : s)
    if (c != '-') digits += c;
  if (digits.size() != 32 || !std::all_of(digits.begin(), digits.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      }))
    desc_reader::fail("uuid", "'" + s + "' is not 32 hex digits (dashes allowed)");
  for (std::size_t i = 0; i < 16; ++i)
    u[i] = static_cast<std::uint8_t>(std::stoul(digits.substr(2 * i, 2), nullptr, 16));
  return u;
}

/// A name-based uuid (RFC 9562 version 8 layout) from two FNV-1a hashes of the bytes.
std::array<std::uint8_t, 16> content_uuid(const std::vector<std::byte>& bytes) {
  std::uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;
  for (std::byte b : bytes) {
    h1 = (h1 ^ std::to_integer<std::uint8_t>(b)) * 0x100000001b3ull;
    h2 = (h2 ^ std::to_integer<std::uint8_t>(b)) * 0x100000001b3ull;
    h2 ^= h2 >> 29;
  }
  std::array<std::uint8_t, 16> u{};
  for (int i = 0; i < 8; ++i) {
    u[i] = static_cast<std::uint8_t>(h1 >> (56 - 8 * i));
    u[8 + i] = static_cast<std::uint8_t>(h2 >> (56 - 8 * i));
  }
  u[6] = static_cast<std::uint8_t>((u[6] & 0x0F) | 0x80);
  u[8] = static_cast<std::uint8_t>((u[8] & 0x3F) | 0x80);
  return u;
}

/// TDATA widths of a kernel's stream arguments as the description's "streams" section gives
/// them (its "args" entries); empty when it gives none.
std::map<std::string, unsigned> stream_widths_of(const json& j, const kernel_info& k) {
  std::map<std::string, unsigned> out;
  if (!j.contains("streams") || !j["streams"].is_object() || !j["streams"].contains("args") ||
      !j["streams"]["args"].is_array())
    return out;
  for (const auto& a : j["streams"]["args"])
    if (a.is_object() && a.value("kernel", "") == k.name && a.contains("arg") &&
        a["arg"].is_string() && a.contains("data_bits") && a["data_bits"].is_number_unsigned() &&
        a["data_bits"].get<std::uint64_t>() <= 0xFFFFFFFFu)
      out[a["arg"].get<std::string>()] = a["data_bits"].get<unsigned>();
  return out;
}

}  // namespace

xclbin xclbin::from_description(std::string_view json_text, std::vector<std::byte> bits) {
  using R = desc_reader;
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for huge numbers
    throw value_error(std::string("xclbin description is not valid JSON: ") + e.what());
  }
  R::only_keys(j, "description", {"mode", "platform", "uuid", "timestamp", "clocks", "memories",
                                  "kernels", "network", "streams"});

  xclbin x;
  x.bitstream = std::move(bits);
  if (auto m = R::string(j, "mode", "description")) {
    auto mode = xclbin_mode_from_string(*m);
    if (!mode) R::fail("mode", "unknown mode '" + *m + "' (flat, pr, hw_emu, sw_emu, ...)");
    x.mode = *mode;
  } else {
    x.mode = x.bitstream_is_elf() ? xclbin_mode::sw_emu : xclbin_mode::flat;
  }
  x.platform_vbnv = R::string(j, "platform", "description").value_or("");
  x.timestamp = R::number(j, "timestamp", "description").value_or(0);
  const auto uuid_text = R::string(j, "uuid", "description");
  if (uuid_text) x.uuid = parse_uuid(*uuid_text);

  const auto& clocks = R::array(j, "clocks", "description");
  for (std::size_t i = 0; i < clocks.size(); ++i) {
    const std::string where = "clocks[" + std::to_string(i) + "]";
    R::only_keys(clocks[i], where, {"name", "frequency_mhz", "type"});
    clock_info c;
    c.name = R::string(clocks[i], "name", where).value_or("");
    if (c.name.empty()) R::fail(where, "needs a name");
    c.frequency_mhz = static_cast<std::uint16_t>(
        R::number(clocks[i], "frequency_mhz", where, 0xFFFF).value_or(0));
    const auto type = R::string(clocks[i], "type", where).value_or("data");
    const auto t = clock_type_from_string(type);
    if (!t)
      R::fail(where + ".type", "unknown clock type '" + type + "' (data, kernel, system, unused)");
    c.type = *t;
    x.clocks.push_back(std::move(c));
  }

  std::map<std::string, unsigned> memory_by_tag;
  std::vector<bool> used_given;
  const auto& memories = R::array(j, "memories", "description");
  std::uint64_t next_base = 0;
  for (std::size_t i = 0; i < memories.size(); ++i) {
    const std::string where = "memories[" + std::to_string(i) + "]";
    R::only_keys(memories[i], where, {"tag", "type", "used", "base_address", "size_bytes"});
    memory_info m;
    m.index = static_cast<unsigned>(i);
    m.tag = R::string(memories[i], "tag", where).value_or("");
    if (m.tag.empty()) R::fail(where, "needs a tag");
    if (!memory_by_tag.emplace(m.tag, m.index).second)
      R::fail(where, "tag '" + m.tag + "' is used twice");
    const auto type = R::string(memories[i], "type", where).value_or("ddr4");
    const auto t = memory_type_from_string(type);
    if (!t) R::fail(where + ".type", "unknown memory type '" + type + "'");
    m.type = *t;
    const auto used = R::boolean(memories[i], "used", where);
    m.used = used.value_or(false);
    used_given.push_back(used.has_value());
    // F1 and most Alveo DDR banks are 16 GiB; banks follow each other unless placed.
    m.size_bytes = R::number(memories[i], "size_bytes", where).value_or(16ull << 30);
    if (m.size_bytes % 1024) R::fail(where + ".size_bytes", "must be a multiple of 1024");
    m.base_address = R::number(memories[i], "base_address", where).value_or(next_base);
    if (!format::is_stream_memory(m.type) && !format::memory_range_fits(m.base_address, m.size_bytes))
      R::fail(where, "base_address " + std::to_string(m.base_address) + " + size_bytes " +
                         std::to_string(m.size_bytes) +
                         " runs past the end of the 64-bit address space");
    next_base = m.base_address + m.size_bytes;
    x.memories.push_back(std::move(m));
  }

  const auto& kernels = R::array(j, "kernels", "description");
  std::uint64_t next_cu_base = 0x1800000;  // the first CU base address Vitis assigns on F1
  std::set<std::string> kernel_names;
  for (std::size_t ki = 0; ki < kernels.size(); ++ki) {
    const std::string kwhere = "kernels[" + std::to_string(ki) + "]";
    const auto& kj = kernels[ki];
    R::only_keys(kj, kwhere, {"name", "language", "args", "instances"});
    kernel_info k;
    k.name = R::string(kj, "name", kwhere).value_or("");
    if (k.name.empty()) R::fail(kwhere, "needs a name");
    if (!kernel_names.insert(k.name).second)
      R::fail(kwhere, "kernel '" + k.name + "' is described twice");
    k.language = R::string(kj, "language", kwhere).value_or("c++");
    k.vlnv = "xilinx.com:hls:" + k.name + ":1.0";

    const auto& args = R::array(kj, "args", kwhere);
    std::uint64_t next_offset = 0x10;  // after the control, GIE, IER and ISR registers
    std::map<std::string, unsigned> arg_by_name;
    std::map<std::string, std::string> stream_modes;  // arg name -> read_only / write_only
    for (std::size_t ai = 0; ai < args.size(); ++ai) {
      const std::string where = kwhere + ".args[" + std::to_string(ai) + "]";
      const auto& aj = args[ai];
      R::only_keys(aj, where,
                   {"name", "type", "kind", "offset", "size", "port", "host_size", "direction"});
      arg_info a;
      a.index = static_cast<unsigned>(ai);
      a.name = R::string(aj, "name", where).value_or("");
      if (a.name.empty()) R::fail(where, "needs a name");
      if (!arg_by_name.emplace(a.name, a.index).second)
        R::fail(where, "argument '" + a.name + "' appears twice");
      a.type = R::string(aj, "type", where).value_or("");
      if (a.type.empty()) R::fail(where, "needs a type (the C type, e.g. \"float*\")");
      const c_type ct = c_type::parse(a.type);
      const bool is_stream = a.type.find("stream") != std::string::npos;
      if (auto kind = R::string(aj, "kind", where)) {
        const auto kd = arg_kind_from_string(*kind);
        if (!kd) R::fail(where + ".kind", "unknown kind '" + *kind + "' (scalar, global, stream)");
        a.kind = *kd;
      } else {
        a.kind = is_stream ? arg_kind::stream : ct.pointer ? arg_kind::global : arg_kind::scalar;
      }
      a.address_qualifier = a.kind == arg_kind::scalar ? 0 : a.kind == arg_kind::global ? 1 : 4;
      std::uint64_t default_size = 0;
      std::string default_port;
      switch (a.kind) {
        case arg_kind::global:
          default_size = 8;
          default_port = "M_AXI_GMEM";
          break;
        case arg_kind::scalar:
          default_size = ct.storage_bytes();
          default_port = "S_AXI_CONTROL";
          break;
        case arg_kind::stream:
          default_size = ct.storage_bytes();
          default_port = a.name;
          break;
      }
      a.size = R::number(aj, "size", where).value_or(default_size);
      if (a.kind == arg_kind::scalar && a.size == 0)
        R::fail(where, "scalar of type '" + a.type +
                           "' needs an explicit size (fpyga cannot lay out that type)");
      a.port = R::string(aj, "port", where).value_or(default_port);
      a.host_size = R::number(aj, "host_size", where).value_or(a.size);
      if (auto dir = R::string(aj, "direction", where)) {
        if (a.kind != arg_kind::stream)
          R::fail(where + ".direction", "only a stream argument has a direction");
        if (*dir != "input" && *dir != "output")
          R::fail(where + ".direction", "expected \"input\" or \"output\", got '" + *dir + "'");
        stream_modes[a.name] = *dir == "input" ? "read_only" : "write_only";
      }
      if (a.kind == arg_kind::stream) {
        a.offset = R::number(aj, "offset", where).value_or(0);
      } else {
        a.offset = R::number(aj, "offset", where).value_or(next_offset);
        // Vitis HLS gives each register argument its data words plus one reserved word.
        next_offset = a.offset + (a.size + 3) / 4 * 4 + 4;
      }
      k.args.push_back(std::move(a));
    }

    const auto& instances = R::array(kj, "instances", kwhere);
    json default_instances = json::array({json{{"name", k.name + "_1"}}});
    const json& inst_list = instances.empty() ? default_instances : instances;
    bool all_free_running = true;
    for (std::size_t ii = 0; ii < inst_list.size(); ++ii) {
      const std::string where = kwhere + ".instances[" + std::to_string(ii) + "]";
      const auto& ij = inst_list[ii];
      R::only_keys(ij, where, {"name", "base_address", "control", "connections", "ip_layout_name"});
      instance_info in;
      in.name = R::string(ij, "name", where).value_or("");
      if (in.name.empty()) R::fail(where, "needs a name");
      const auto control = R::string(ij, "control", where).value_or("ap_ctrl_hs");
      const auto c = control_protocol_from_string(control);
      if (!c) R::fail(where + ".control", "unknown control protocol '" + control + "'");
      if (*c == control_protocol::ap_ctrl_none) {
        // A free-running compute unit has no control registers: Vitis leaves its IP_LAYOUT
        // base address all ones, which XRT reads as "not host-controlled".
        in.base_address = R::number(ij, "base_address", where).value_or(~std::uint64_t{0});
      } else {
        in.base_address = R::number(ij, "base_address", where).value_or(next_cu_base);
        next_cu_base = std::max(next_cu_base, in.base_address + 0x10000);
        all_free_running = false;
      }
      ip_info ip;
      ip.index = static_cast<unsigned>(x.ips.size());
      ip.type = ip_type::kernel;
      // SDAccel 2018 awsxclbins name the IP by its kernel only; "ip_layout_name" writes such files.
      ip.name = R::string(ij, "ip_layout_name", where).value_or(k.name + ":" + in.name);
      if (ip.name.empty()) R::fail(where + ".ip_layout_name", "must not be empty");
      // Instances must differ; old-style names repeat the kernel for every compute unit.
      for (const auto& other : k.instances)
        if (other.name == in.name)
          R::fail(where, "compute unit '" + k.name + ":" + in.name + "' appears twice");
      ip.base_address = in.base_address;
      ip.control = *c;
      ip.interrupt_enabled = ip.control != control_protocol::ap_ctrl_none;
      if (ij.contains("connections")) {
        const auto& conns = ij["connections"];
        if (!conns.is_object())
          R::fail(where + ".connections", "expected an object {arg name: memory tag}");
        for (const auto& [arg_name, tag] : conns.items()) {
          const auto ai = arg_by_name.find(arg_name);
          if (ai == arg_by_name.end())
            R::fail(where + ".connections",
                    "kernel '" + k.name + "' has no argument '" + arg_name + "'");
          if (!tag.is_string())
            R::fail(where + ".connections." + arg_name, "expected a memory tag string");
          const auto mi = memory_by_tag.find(tag.get<std::string>());
          if (mi == memory_by_tag.end())
            R::fail(where + ".connections." + arg_name,
                    "no memory with tag '" + tag.get<std::string>() + "'");
          x.connectivity.push_back({static_cast<std::int32_t>(ai->second),
                                    static_cast<std::int32_t>(ip.index),
                                    static_cast<std::int32_t>(mi->second)});
          if (!used_given[mi->second]) x.memories[mi->second].used = true;
        }
      }
      x.ips.push_back(std::move(ip));
      k.instances.push_back(std::move(in));
    }
    // Stream directions, or a free-running kernel, need ports the plain derivation cannot
    // give: read_only/write_only stream ports (PYNQ and XRT take a stream's direction from
    // them) and no control port when nothing is host-controlled.
    const bool has_scalar = std::any_of(
        k.args.begin(), k.args.end(), [](const arg_info& a) { return a.kind == arg_kind::scalar; });
    if (!stream_modes.empty() || (all_free_running && !has_scalar))
      k.ports = derived_ports(k, stream_modes, !(all_free_running && !has_scalar),
                              stream_widths_of(j, k));
    x.kernels.push_back(std::move(k));
  }

  // The network a host feeds through these kernels: checked against them, stored canonical.
  if (j.contains("network")) {
    try {
      const auto net = network_info::from_json(j["network"].dump());
      net.check_kernels(x);
      const auto text = net.to_json(2);
      const auto* p = reinterpret_cast<const std::byte*>(text.data());
      x.other_sections.push_back({section_kind::user_metadata,
                                  std::string(network_info::section_name),
                                  std::vector<std::byte>(p, p + text.size())});
    } catch (const value_error& e) {
      throw value_error(std::string("xclbin description: ") + e.what());
    }
  }

  // fpyga's stream additions (FIFO depths, element layouts): stored as given, then the whole
  // stream layout is checked, so a design no runtime can run is refused at build time.
  if (j.contains("streams")) {
    if (!j["streams"].is_object())
      R::fail("streams", "expected an object (schema fpyga.streams/1)");
    const auto text = j["streams"].dump(1);
    const auto* p = reinterpret_cast<const std::byte*>(text.data());
    x.other_sections.push_back({section_kind::user_metadata,
                                std::string(stream_layout::section_name),
                                std::vector<std::byte>(p, p + text.size())});
    const std::string source = std::exchange(x.source, "<description>");
    try {
      (void)stream_layout::of(x);
    } catch (const xclbin_error& e) {
      throw value_error(e.what());
    }
    x.source = source;
  }

  // Field sizes are checked once, by writing; the bytes also give the default uuid.
  auto bytes = x.write();
  if (!uuid_text) x.uuid = content_uuid(bytes);
  return x;
}

}  // namespace fpyga
