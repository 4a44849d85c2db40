// The xclbin reader. The input is untrusted: every offset, length, count and string is checked
// against the bytes actually present before it is used, so a lying file ends in xclbin_error
// (naming the file, the section and the problem), never in an out-of-bounds read.
#include "fpyga/xclbin.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <set>
#include <sstream>
#include <system_error>

#include "fpyga/error.hpp"
#include "fpyga/network.hpp"
#include "read_file.hpp"
#include "xclbin_format.hpp"

namespace fpyga {

// ---------------------------------------------------------------------------------------------
// Names

namespace {

template <typename E, std::size_t N>
std::optional<E> lookup(const std::array<std::string_view, N>& names, std::string_view name) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == name) return static_cast<E>(i);
  return std::nullopt;
}

template <std::size_t N>
std::string_view name_of(const std::array<std::string_view, N>& names, std::size_t value) {
  return value < N ? names[value] : std::string_view("unknown");
}

constexpr std::array<std::string_view, 7> mode_names = {
    "flat", "pr", "tandem_stage2", "tandem_stage2_with_pr", "hw_emu", "sw_emu", "hw_emu_pr"};
constexpr std::array<std::string_view, 32> section_names = {"BITSTREAM",
                                                            "CLEARING_BITSTREAM",
                                                            "EMBEDDED_METADATA",
                                                            "FIRMWARE",
                                                            "DEBUG_DATA",
                                                            "SCHED_FIRMWARE",
                                                            "MEM_TOPOLOGY",
                                                            "CONNECTIVITY",
                                                            "IP_LAYOUT",
                                                            "DEBUG_IP_LAYOUT",
                                                            "DESIGN_CHECK_POINT",
                                                            "CLOCK_FREQ_TOPOLOGY",
                                                            "MCS",
                                                            "BMC",
                                                            "BUILD_METADATA",
                                                            "KEYVALUE_METADATA",
                                                            "USER_METADATA",
                                                            "DNA_CERTIFICATE",
                                                            "PDI",
                                                            "BITSTREAM_PARTIAL_PDI",
                                                            "PARTITION_METADATA",
                                                            "EMULATION_DATA",
                                                            "SYSTEM_METADATA",
                                                            "SOFT_KERNEL",
                                                            "ASK_FLASH",
                                                            "AIE_METADATA",
                                                            "ASK_GROUP_TOPOLOGY",
                                                            "ASK_GROUP_CONNECTIVITY",
                                                            "SMARTNIC",
                                                            "AIE_RESOURCES",
                                                            "OVERLAY",
                                                            "VENDER_METADATA"};
constexpr std::array<std::string_view, 12> memory_type_names = {
    "ddr3", "ddr4",     "dram", "streaming", "preallocated_glob",
    "are",  "hbm",      "bram", "uram",      "streaming_connection",
    "host", "ps_kernel"};
constexpr std::array<std::string_view, 8> ip_type_names = {
    "mb", "kernel", "dnasc", "ddr4_controller", "mem_ddr4", "mem_hbm", "mem_hbm_ecc", "ps_kernel"};
constexpr std::array<std::string_view, 6> control_names = {
    "ap_ctrl_hs", "ap_ctrl_chain", "ap_ctrl_none", "ap_ctrl_me", "accel_adapter", "fast_adapter"};
constexpr std::array<std::string_view, 4> clock_type_names = {"unused", "data", "kernel", "system"};
constexpr std::array<std::string_view, 3> arg_kind_names = {"scalar", "global", "stream"};

}  // namespace

std::string_view to_string(xclbin_mode v) {
  return name_of(mode_names, std::size_t(v));
}
std::string_view to_string(section_kind v) {
  return name_of(section_names, std::size_t(v));
}
std::string_view to_string(memory_type v) {
  return name_of(memory_type_names, std::size_t(v));
}
std::string_view to_string(ip_type v) {
  return name_of(ip_type_names, std::size_t(v));
}
std::string_view to_string(control_protocol v) {
  return name_of(control_names, std::size_t(v));
}
std::string_view to_string(clock_type v) {
  return name_of(clock_type_names, std::size_t(v));
}
std::string_view to_string(arg_kind v) {
  return name_of(arg_kind_names, std::size_t(v));
}

std::optional<xclbin_mode> xclbin_mode_from_string(std::string_view n) {
  return lookup<xclbin_mode>(mode_names, n);
}
std::optional<memory_type> memory_type_from_string(std::string_view n) {
  return lookup<memory_type>(memory_type_names, n);
}
std::optional<control_protocol> control_protocol_from_string(std::string_view n) {
  return lookup<control_protocol>(control_names, n);
}
std::optional<clock_type> clock_type_from_string(std::string_view n) {
  return lookup<clock_type>(clock_type_names, n);
}
std::optional<arg_kind> arg_kind_from_string(std::string_view n) {
  return lookup<arg_kind>(arg_kind_names, n);
}

// ---------------------------------------------------------------------------------------------
// Reader

// Names and tags reach Python as str and the CLI as JSON, both UTF-8: the reader refuses other
// bytes once, naming the field, instead of each consumer failing its own way.
std::size_t format::utf8_error(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n;
    std::uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07, min = 0x10000;
    else return i;
    if (s.size() - i <= n) return i;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = cp << 6 | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n + 1;
  }
  return std::string_view::npos;
}


namespace {

std::string hex(std::uint64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
  return "0x" + std::string(buf, end);
}

std::string byte_hex(unsigned char c) {
  static const char digits[] = "0123456789abcdef";
  return std::string("0x") + digits[c >> 4] + digits[c & 0xF];
}

/// A bounds-checked view of one region (the header or a section payload).
class region {
 public:
  region(std::span<const std::byte> bytes, std::string source, std::string name)
      : bytes_(bytes), source_(std::move(source)), name_(std::move(name)) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw xclbin_error(source_ + ": " + name_ + ": " + problem);
  }

  std::size_t size() const { return bytes_.size(); }
  std::span<const std::byte> bytes() const { return bytes_; }

  /// Throws unless [offset, offset + n) lies inside the region; `what` names the field.
  void need(std::uint64_t offset, std::uint64_t n, std::string_view what) const {
    if (offset > bytes_.size() || n > bytes_.size() - offset)
      fail(std::string(what) + " at byte " + std::to_string(offset) + " (" + std::to_string(n) +
           " bytes) lies past the end of the " + std::to_string(bytes_.size()) + "-byte " +
           (name_ == "header" ? "file" : "section"));
  }

  template <typename T>
  T get(std::uint64_t offset, std::string_view what) const {
    need(offset, sizeof(T), what);
    // Little-endian on disk, assembled byte by byte so the host's order does not matter.
    std::make_unsigned_t<T> v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      v |= static_cast<std::make_unsigned_t<T>>(std::to_integer<std::uint8_t>(bytes_[offset + i]))
           << (8 * i);
    return static_cast<T>(v);
  }

  /// A NUL-terminated string in a fixed-size field; a field without NUL is an error (XRT
  /// would read past it).
  std::string fixed_string(std::uint64_t offset, std::size_t field, std::string_view what) const {
    need(offset, field, what);
    const char* p = reinterpret_cast<const char*>(bytes_.data() + offset);
    const void* nul = std::memchr(p, '\0', field);
    if (!nul)
      fail(std::string(what) + " is not NUL-terminated within its " + std::to_string(field) +
           " bytes");
    std::string out(p, static_cast<const char*>(nul));
    if (const auto bad = format::utf8_error(out); bad != std::string_view::npos)
      fail(std::string(what) + " is not valid UTF-8 (byte " +
           byte_hex(static_cast<unsigned char>(out[bad])) + " at position " + std::to_string(bad) +
           ")");
    return out;
  }

  template <std::size_t N>
  std::array<std::uint8_t, N> array(std::uint64_t offset, std::string_view what) const {
    need(offset, N, what);
    std::array<std::uint8_t, N> a{};
    for (std::size_t i = 0; i < N; ++i) a[i] = std::to_integer<std::uint8_t>(bytes_[offset + i]);
    return a;
  }

  /// The payload as text, without the NUL padding tools append.
  std::string_view text() const {
    std::string_view s(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
    while (!s.empty() && s.back() == '\0') s.remove_suffix(1);
    return s;
  }

  /// Checks a table of `count` entries of `entry` bytes from `first` fits; returns count.
  std::size_t table(std::int64_t count, std::size_t first, std::size_t entry) const {
    if (count < 0) fail("entry count " + std::to_string(count) + " is negative");
    const std::uint64_t room = bytes_.size() >= first ? (bytes_.size() - first) / entry : 0;
    if (static_cast<std::uint64_t>(count) > room)
      fail("entry count " + std::to_string(count) + " needs " + std::to_string(first) + " + " +
           std::to_string(count) + " x " + std::to_string(entry) + " bytes, the section has " +
           std::to_string(bytes_.size()));
    return static_cast<std::size_t>(count);
  }

 private:
  std::span<const std::byte> bytes_;
  std::string source_;
  std::string name_;
};

struct section_entry {
  std::uint32_t kind = 0;
  std::string name;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::size_t table_index = 0;
};

std::string section_label(const section_entry& s) {
  std::string label = "section " + std::to_string(s.table_index) + " (";
  label += s.kind < section_names.size() ? std::string(section_names[s.kind])
                                         : "kind " + std::to_string(s.kind);
  if (!s.name.empty()) label += " '" + s.name + "'";
  return label + ")";
}

/// Parses an XML attribute holding an unsigned number, decimal or 0x-hex.
std::optional<std::uint64_t> parse_number(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

void parse_mem_topology(const region& r, xclbin& x) {
  const auto n =
      r.table(r.get<std::int32_t>(0, "entry count"), format::mem_entries, format::mem_entry_size);
  x.memories.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t e = format::mem_entries + i * format::mem_entry_size;
    const std::string entry = "entry " + std::to_string(i);
    memory_info m;
    m.index = static_cast<unsigned>(i);
    const auto type = r.get<std::uint8_t>(e + format::mem_type, entry + " type");
    if (type >= memory_type_names.size())
      r.fail(entry + " has unknown memory type " + std::to_string(type));
    m.type = static_cast<memory_type>(type);
    m.used = r.get<std::uint8_t>(e + format::mem_used, entry + " used") != 0;
    const auto kb = r.get<std::uint64_t>(e + format::mem_size_kb, entry + " size");
    if (kb > std::numeric_limits<std::uint64_t>::max() / 1024)
      r.fail(entry + " size " + std::to_string(kb) + " KiB overflows 64 bits in bytes");
    m.size_bytes = kb * 1024;
    m.base_address = r.get<std::uint64_t>(e + format::mem_base, entry + " base address");
    m.tag = r.fixed_string(e + format::mem_tag, format::mem_tag_size, entry + " tag");
    // Streams keep a route and a flow id in these fields, not an address range.
    if (!format::is_stream_memory(m.type) && !format::memory_range_fits(m.base_address, m.size_bytes))
      r.fail(entry + " ('" + m.tag + "') at base " + hex(m.base_address) + " with " +
             std::to_string(m.size_bytes) + " bytes runs past the end of the 64-bit address space");
    x.memories.push_back(std::move(m));
  }
}

void parse_connectivity(const region& r, xclbin& x) {
  const auto n =
      r.table(r.get<std::int32_t>(0, "entry count"), format::conn_entries, format::conn_entry_size);
  x.connectivity.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t e = format::conn_entries + i * format::conn_entry_size;
    const std::string entry = "entry " + std::to_string(i);
    connection c;
    c.arg_index = r.get<std::int32_t>(e, entry + " arg index");
    c.ip_index = r.get<std::int32_t>(e + 4, entry + " IP index");
    c.memory_index = r.get<std::int32_t>(e + 8, entry + " memory index");
    x.connectivity.push_back(c);
  }
}

void parse_ip_layout(const region& r, xclbin& x) {
  const auto n =
      r.table(r.get<std::int32_t>(0, "entry count"), format::ip_entries, format::ip_entry_size);
  x.ips.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t e = format::ip_entries + i * format::ip_entry_size;
    const std::string entry = "entry " + std::to_string(i);
    ip_info ip;
    ip.index = static_cast<unsigned>(i);
    const auto type = r.get<std::uint32_t>(e + format::ip_type, entry + " type");
    if (type >= ip_type_names.size())
      r.fail(entry + " has unknown IP type " + std::to_string(type));
    ip.type = static_cast<ip_type>(type);
    const auto props = r.get<std::uint32_t>(e + format::ip_properties, entry + " properties");
    ip.base_address = r.get<std::uint64_t>(e + format::ip_base, entry + " base address");
    ip.name = r.fixed_string(e + format::ip_name, format::ip_name_size, entry + " name");
    // Only kernels use the properties word for interrupt and control bits; memory IPs keep
    // bank indices there.
    if (ip.type == ip_type::kernel || ip.type == ip_type::ps_kernel) {
      ip.interrupt_enabled = (props & 0x1u) != 0;
      ip.interrupt_id = static_cast<std::uint8_t>((props & 0xFEu) >> 1);
      const auto control = (props & 0xFF00u) >> 8;
      if (control >= control_names.size())
        r.fail(entry + " ('" + ip.name + "') has unknown control protocol " +
               std::to_string(control));
      ip.control = static_cast<control_protocol>(control);
    }
    x.ips.push_back(std::move(ip));
  }
}

void parse_clocks(const region& r, xclbin& x) {
  const auto n = r.table(r.get<std::int16_t>(0, "entry count"), format::clock_entries,
                         format::clock_entry_size);
  x.clocks.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t e = format::clock_entries + i * format::clock_entry_size;
    const std::string entry = "entry " + std::to_string(i);
    clock_info c;
    c.frequency_mhz = r.get<std::uint16_t>(e + format::clock_freq, entry + " frequency");
    const auto type = r.get<std::uint8_t>(e + format::clock_type, entry + " type");
    if (type >= clock_type_names.size())
      r.fail(entry + " has unknown clock type " + std::to_string(type));
    c.type = static_cast<clock_type>(type);
    c.name = r.fixed_string(e + format::clock_name, format::clock_name_size, entry + " name");
    x.clocks.push_back(std::move(c));
  }
}

void parse_build_metadata(const region& r, xclbin& x) {
  const auto text = r.text();
  if (!nlohmann::json::accept(text)) r.fail("is not valid JSON");
  x.build_metadata = std::string(text);
}

std::uint64_t xml_number(const region& r, const pugi::xml_node& node, const char* attr,
                         const std::string& where, bool required) {
  const pugi::xml_attribute a = node.attribute(attr);
  if (!a) {
    if (required) r.fail(where + " has no '" + attr + "' attribute");
    return 0;
  }
  const auto v = parse_number(a.value());
  if (!v) r.fail(where + " attribute " + attr + "=\"" + a.value() + "\" is not a number");
  return *v;
}

void parse_embedded_metadata(const region& r, xclbin& x) {
  const auto text = r.text();
  // A NUL inside the text would make XML parsers disagree on where the document ends.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos)
    r.fail("XML is malformed: NUL byte at character " + std::to_string(nul));
  if (const auto bad = format::utf8_error(text); bad != std::string_view::npos)
    r.fail("XML is not valid UTF-8 (byte " + byte_hex(static_cast<unsigned char>(text[bad])) +
           " at byte " + std::to_string(bad) + ")");
  x.embedded_metadata = std::string(text);
  pugi::xml_document doc;
  const pugi::xml_parse_result ok =
      doc.load_buffer(text.data(), text.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!ok)
    r.fail(std::string("XML is malformed: ") + ok.description() + " at character " +
           std::to_string(ok.offset));
  const pugi::xml_node project = doc.document_element();
  if (std::string_view(project.name()) != "project")
    r.fail(std::string("XML root element is <") + project.name() + ">, expected <project>");

  std::set<std::string> kernel_names;
  for (pugi::xml_node platform : project.children("platform"))
    for (pugi::xml_node device : platform.children("device"))
      for (pugi::xml_node core : device.children("core"))
        for (pugi::xml_node k : core.children("kernel")) {
          kernel_info kernel;
          kernel.name = k.attribute("name").value();
          if (kernel.name.empty()) r.fail("a <kernel> element has no name");
          const std::string where = "kernel '" + kernel.name + "'";
          if (!kernel_names.insert(kernel.name).second) r.fail(where + " is described twice");
          kernel.language = k.attribute("language").value();
          kernel.vlnv = k.attribute("vlnv").value();
          for (pugi::xml_node p : k.children("port")) {
            port_info port;
            port.name = p.attribute("name").value();
            const std::string pwhere = where + " port '" + port.name + "'";
            port.mode = p.attribute("mode").value();
            port.range = xml_number(r, p, "range", pwhere, false);
            const auto width = xml_number(r, p, "dataWidth", pwhere, false);
            if (width > std::numeric_limits<unsigned>::max())
              r.fail(pwhere + " dataWidth is too large");
            port.data_width = static_cast<unsigned>(width);
            kernel.ports.push_back(std::move(port));
          }
          std::set<unsigned> ids;
          for (pugi::xml_node a : k.children("arg")) {
            arg_info arg;
            arg.name = a.attribute("name").value();
            const std::string awhere = where + " arg '" + arg.name + "'";
            if (arg.name.empty()) r.fail(where + " has an <arg> without a name");
            const auto id = xml_number(r, a, "id", awhere, true);
            if (id > 0xFFFF) r.fail(awhere + " id " + std::to_string(id) + " is out of range");
            arg.index = static_cast<unsigned>(id);
            if (!ids.insert(arg.index).second)
              r.fail(awhere + " repeats argument id " + std::to_string(id));
            const auto q = xml_number(r, a, "addressQualifier", awhere, true);
            switch (q) {
              case 0:
                arg.kind = arg_kind::scalar;
                break;
              case 1:  // global
              case 2:  // constant
              case 3:  // local: a pointer in another address space, still not a value
                arg.kind = arg_kind::global;
                break;
              case 4:
                arg.kind = arg_kind::stream;
                break;
              default:
                r.fail(awhere + " has unknown addressQualifier " + std::to_string(q));
            }
            arg.address_qualifier = static_cast<unsigned>(q);
            arg.port = a.attribute("port").value();
            arg.offset = xml_number(r, a, "offset", awhere, false);
            arg.size = xml_number(r, a, "size", awhere, false);
            arg.host_offset = xml_number(r, a, "hostOffset", awhere, false);
            arg.host_size = xml_number(r, a, "hostSize", awhere, false);
            arg.type = a.attribute("type").value();
            kernel.args.push_back(std::move(arg));
          }
          std::sort(kernel.args.begin(), kernel.args.end(),
                    [](const arg_info& a, const arg_info& b) { return a.index < b.index; });
          for (pugi::xml_node in : k.children("instance")) {
            instance_info inst;
            inst.name = in.attribute("name").value();
            if (inst.name.empty()) r.fail(where + " has an <instance> without a name");
            if (pugi::xml_node remap = in.child("addrRemap"))
              inst.base_address = xml_number(
                  r, remap, "base", where + " instance '" + inst.name + "' addrRemap", false);
            kernel.instances.push_back(std::move(inst));
          }
          x.kernels.push_back(std::move(kernel));
        }
}

/// Cross-section checks: indices in CONNECTIVITY must name entries that exist.
/// Kernels have tens of arguments; Vitis caps an AXI-lite register map at 64 KiB, so no real
/// argument index comes near this.
constexpr std::int32_t max_arg_index_without_metadata = 4095;

void check_connectivity(const region& r, const xclbin& x) {
  for (std::size_t i = 0; i < x.connectivity.size(); ++i) {
    const auto& c = x.connectivity[i];
    const std::string entry = "entry " + std::to_string(i);
    if (c.arg_index < 0) r.fail(entry + " has negative arg index " + std::to_string(c.arg_index));
    if (c.ip_index < 0 || static_cast<std::size_t>(c.ip_index) >= x.ips.size())
      r.fail(entry + " names IP " + std::to_string(c.ip_index) + ", IP_LAYOUT has " +
             std::to_string(x.ips.size()));
    if (c.memory_index < 0 || static_cast<std::size_t>(c.memory_index) >= x.memories.size())
      r.fail(entry + " names memory " + std::to_string(c.memory_index) + ", MEM_TOPOLOGY has " +
             std::to_string(x.memories.size()));
    // XRT indexes the kernel's argument list with arg_index while opening a kernel, unchecked:
    // an index past it must never reach a backend.
    const ip_info& ip = x.ips[static_cast<std::size_t>(c.ip_index)];
    if (ip.type != ip_type::kernel && ip.type != ip_type::ps_kernel) continue;
    const kernel_info* k = x.find_kernel(ip.kernel_name());
    if (!k) {
      // No metadata: no backend opens it as a kernel, but XRT still sizes per-IP tables by the
      // largest arg_index while loading (a fuzzed 100663298 asked it for 2.4 GB).
      if (c.arg_index > max_arg_index_without_metadata)
        r.fail(entry + " names argument " + std::to_string(c.arg_index) + " of '" + ip.name +
               "', which has no kernel metadata; at most " +
               std::to_string(max_arg_index_without_metadata) + " is accepted");
      continue;
    }
    const bool known = std::any_of(k->args.begin(), k->args.end(), [&](const arg_info& a) {
      return a.index == static_cast<unsigned>(c.arg_index);
    });
    // (XRT counts positions, the XML ids: both must hold.)
    if (!known || static_cast<std::size_t>(c.arg_index) >= k->args.size())
      r.fail(entry + " names argument " + std::to_string(c.arg_index) + " of '" + ip.name +
             "', but kernel '" + k->name + "' has " + std::to_string(k->args.size()) +
             " argument(s) in EMBEDDED_METADATA");
  }
}

}  // namespace

xclbin xclbin::parse(std::span<const std::byte> data, std::string_view source_name) {
  xclbin x;
  x.source = std::string(source_name);
  region file(data, x.source, "header");

  if (data.size() < format::section_table)
    file.fail("file is " + std::to_string(data.size()) + " bytes, shorter than the " +
              std::to_string(format::section_table) + "-byte xclbin header (truncated?)");
  if (std::memcmp(data.data(), format::magic, sizeof format::magic) != 0)
    file.fail("bad magic: expected \"xclbin2\\0\" (not an xclbin, or an old xclbin0 file)");

  const auto length = file.get<std::uint64_t>(format::length, "m_length");
  if (length > data.size())
    file.fail("m_length says " + std::to_string(length) + " bytes but the file has " +
              std::to_string(data.size()) + " (truncated?)");
  if (length < format::section_table)
    file.fail("m_length " + std::to_string(length) + " is shorter than the header");
  // Bytes past m_length are ignored (some tools pad); nothing may point there.
  region whole(data.first(static_cast<std::size_t>(length)), x.source, "header");

  x.unique_id = whole.get<std::uint64_t>(format::unique_id, "m_uniqueId");
  x.timestamp = whole.get<std::uint64_t>(format::timestamp, "m_timeStamp");
  x.feature_rom_timestamp =
      whole.get<std::uint64_t>(format::feature_rom_ts, "m_featureRomTimeStamp");
  x.version_patch = whole.get<std::uint16_t>(format::version_patch, "m_versionPatch");
  x.version_major = whole.get<std::uint8_t>(format::version_major, "m_versionMajor");
  x.version_minor = whole.get<std::uint8_t>(format::version_minor, "m_versionMinor");
  const auto mode = whole.get<std::uint16_t>(format::mode, "m_mode");
  if (mode >= mode_names.size()) whole.fail("unknown m_mode " + std::to_string(mode));
  x.mode = static_cast<xclbin_mode>(mode);
  x.action_mask = whole.get<std::uint16_t>(format::action_mask, "m_actionMask");
  x.interface_uuid = whole.array<16>(format::interface_uuid, "rom_uuid");
  x.platform_vbnv =
      whole.fixed_string(format::platform_vbnv, format::platform_vbnv_size, "m_platformVBNV");
  x.uuid = whole.array<16>(format::uuid, "uuid");

  const auto count = whole.get<std::uint32_t>(format::num_sections, "m_numSections");
  const std::uint64_t table_end =
      format::section_table + std::uint64_t(count) * format::section_header_size;
  if (table_end > length)
    whole.fail("m_numSections " + std::to_string(count) + " needs a section table up to byte " +
               std::to_string(table_end) + ", past m_length " + std::to_string(length));

  std::vector<section_entry> sections(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t h = format::section_table + std::size_t(i) * format::section_header_size;
    const std::string sh = "section header " + std::to_string(i);
    section_entry& s = sections[i];
    s.table_index = i;
    s.kind = whole.get<std::uint32_t>(h + format::sh_kind, sh + " kind");
    s.name = whole.fixed_string(h + format::sh_name, format::sh_name_size, sh + " name");
    s.offset = whole.get<std::uint64_t>(h + format::sh_offset, sh + " offset");
    s.size = whole.get<std::uint64_t>(h + format::sh_size, sh + " size");
    region sr({}, x.source, section_label(s));
    if (s.offset > length || s.size > length - s.offset)
      sr.fail("payload at offset " + std::to_string(s.offset) + " of " + std::to_string(s.size) +
              " bytes lies past the end of the file (m_length " + std::to_string(length) + ")");
    if (s.size != 0 && s.offset < table_end)
      sr.fail("payload at offset " + std::to_string(s.offset) +
              " overlaps the header and section table (which end at " + std::to_string(table_end) +
              ")");
  }
  {
    std::vector<const section_entry*> by_offset;
    for (const auto& s : sections)
      if (s.size != 0) by_offset.push_back(&s);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const section_entry* a, const section_entry* b) { return a->offset < b->offset; });
    for (std::size_t i = 1; i < by_offset.size(); ++i) {
      const auto* a = by_offset[i - 1];
      const auto* b = by_offset[i];
      if (b->offset < a->offset + a->size)
        region({}, x.source, section_label(*b))
            .fail("payload at offset " + std::to_string(b->offset) + " overlaps " +
                  section_label(*a) + " (bytes " + std::to_string(a->offset) + ".." +
                  std::to_string(a->offset + a->size) + ")");
    }
  }

  for (const auto& s : sections)
    x.sections.push_back({static_cast<section_kind>(s.kind), s.name, s.offset, s.size});

  std::set<std::uint32_t> seen_typed;
  std::optional<region> connectivity_region;
  for (const auto& s : sections) {
    const auto payload =
        data.subspan(static_cast<std::size_t>(s.offset), static_cast<std::size_t>(s.size));
    region r(payload, x.source, section_label(s));
    const auto kind = static_cast<section_kind>(s.kind);
    const bool typed = kind == section_kind::bitstream || kind == section_kind::embedded_metadata ||
                       kind == section_kind::mem_topology || kind == section_kind::connectivity ||
                       kind == section_kind::ip_layout ||
                       kind == section_kind::clock_freq_topology ||
                       kind == section_kind::build_metadata;
    if (!typed) {
      raw_section raw;
      raw.kind = kind;
      raw.name = s.name;
      raw.payload.assign(payload.begin(), payload.end());
      x.other_sections.push_back(std::move(raw));
      continue;
    }
    if (!seen_typed.insert(s.kind).second)
      r.fail(std::string("appears more than once; fpyga reads one ") +
             std::string(to_string(kind)));
    switch (kind) {
      case section_kind::bitstream:
        x.bitstream.assign(payload.begin(), payload.end());
        break;
      case section_kind::embedded_metadata:
        parse_embedded_metadata(r, x);
        break;
      case section_kind::mem_topology:
        parse_mem_topology(r, x);
        break;
      case section_kind::connectivity:
        parse_connectivity(r, x);
        connectivity_region.emplace(r);
        break;
      case section_kind::ip_layout:
        parse_ip_layout(r, x);
        break;
      case section_kind::clock_freq_topology:
        parse_clocks(r, x);
        break;
      case section_kind::build_metadata:
        parse_build_metadata(r, x);
        break;
      default:
        break;
    }
  }
  if (connectivity_region) check_connectivity(*connectivity_region, x);
  // A network description is checked with the rest of the file, so a damaged one is refused
  // here, naming the file and field, never later by info or a host (fuzz finding: to_json threw).
  (void)network_info::of(x);
  return x;
}

xclbin xclbin::read(const std::string& path) {
  const auto bytes = detail::read_file(path, "xclbin", detail::max_xclbin_bytes);
  return parse(bytes, path);
}

void format::check_memory_ranges(const std::vector<memory_info>& memories,
                                 std::string_view source) {
  for (const auto& m : memories)
    if (!is_stream_memory(m.type) && !memory_range_fits(m.base_address, m.size_bytes))
      throw xclbin_error(std::string(source) + ": memory " + std::to_string(m.index) + " ('" +
                         m.tag + "') at base " + hex(m.base_address) + " with " +
                         std::to_string(m.size_bytes) +
                         " bytes runs past the end of the 64-bit address space");
}

// ---------------------------------------------------------------------------------------------
// Accessors

std::string ip_info::kernel_name() const {
  const auto colon = name.find(':');
  return colon == std::string::npos ? name : name.substr(0, colon);
}

std::string ip_info::instance_name() const {
  const auto colon = name.find(':');
  return colon == std::string::npos ? name : name.substr(colon + 1);
}

std::string xclbin::target() const {
  if (mode == xclbin_mode::sw_emu || bitstream_is_elf()) return "sw_emu";
  if (mode == xclbin_mode::hw_emu || mode == xclbin_mode::hw_emu_pr) return "hw_emu";
  return "hw";
}

std::optional<std::string> xclbin::agfi() const {
  std::string_view s(reinterpret_cast<const char*>(bitstream.data()), bitstream.size());
  while (!s.empty() && (s.back() == '\0' || s.back() == '\n' || s.back() == ' '))
    s.remove_suffix(1);
  std::string_view rest;
  if (s.starts_with("agfi-"))
    rest = s.substr(5);
  else if (s.starts_with("afi-"))
    rest = s.substr(4);
  else
    return std::nullopt;
  // AWS ids are a prefix and 17 hex digits; accept any non-empty hex run so newer formats pass.
  if (rest.empty() || rest.size() > 64 || !std::all_of(rest.begin(), rest.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      }))
    return std::nullopt;
  return std::string(s);
}

bool xclbin::bitstream_is_elf() const {
  return bitstream.size() >= 4 && std::to_integer<char>(bitstream[0]) == 0x7f &&
         std::to_integer<char>(bitstream[1]) == 'E' && std::to_integer<char>(bitstream[2]) == 'L' &&
         std::to_integer<char>(bitstream[3]) == 'F';
}

std::string xclbin::uuid_string() const {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += digits[uuid[i] >> 4];
    s += digits[uuid[i] & 0xF];
  }
  return s;
}

const kernel_info* xclbin::find_kernel(std::string_view name) const {
  for (const auto& k : kernels)
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<unsigned> xclbin::memories_of(unsigned ip_index, unsigned arg_index) const {
  std::vector<unsigned> out;
  for (const auto& c : connectivity)
    if (c.ip_index >= 0 && static_cast<unsigned>(c.ip_index) == ip_index && c.arg_index >= 0 &&
        static_cast<unsigned>(c.arg_index) == arg_index && c.memory_index >= 0 &&
        std::find(out.begin(), out.end(), static_cast<unsigned>(c.memory_index)) == out.end())
      out.push_back(static_cast<unsigned>(c.memory_index));
  return out;
}

namespace {
bool is_cu(const ip_info& ip) {
  return ip.type == ip_type::kernel || ip.type == ip_type::ps_kernel;
}
}  // namespace

std::string xclbin::cu_instance(const ip_info& ip) const {
  if (ip.name.find(':') != std::string::npos || !is_cu(ip)) return ip.instance_name();
  // An old file: IP_LAYOUT says "vector_add", the metadata's instance "vector_add_1". XRT matches
  // compute units as "kernel:instance" and PYNQ names them by the metadata's instance.
  const kernel_info* k = find_kernel(ip.name);
  if (!k || k->instances.empty()) return ip.name;
  const instance_info* at_base = nullptr;
  for (const auto& in : k->instances)
    if (in.base_address == ip.base_address) {
      if (at_base) {
        at_base = nullptr;  // two instances at one address: fall back to the position
        break;
      }
      at_base = &in;
    }
  if (at_base) return at_base->name;
  std::size_t position = 0;
  for (const auto& other : ips) {
    if (&other == &ip || other.index == ip.index) break;
    if (is_cu(other) && other.name == ip.name) ++position;
  }
  return position < k->instances.size() ? k->instances[position].name : ip.name;
}

bool xclbin::has_bare_cu_names() const {
  return std::any_of(ips.begin(), ips.end(), [](const ip_info& ip) {
    return is_cu(ip) && ip.name.find(':') == std::string::npos;
  });
}

xclbin xclbin::with_full_cu_names() const {
  xclbin copy = *this;
  for (auto& ip : copy.ips)
    if (is_cu(ip) && ip.name.find(':') == std::string::npos) {
      const std::string instance = cu_instance(ip);
      if (instance != ip.name || find_kernel(ip.name)) ip.name = ip.name + ":" + instance;
    }
  return copy;
}

std::string xclbin::platform_name() const {
  if (!platform_vbnv.empty()) return platform_vbnv;
  if (embedded_metadata.empty()) return {};
  pugi::xml_document doc;
  if (!doc.load_buffer(embedded_metadata.data(), embedded_metadata.size())) return {};
  const pugi::xml_node p = doc.child("project").child("platform");
  if (!p) return {};
  // XRT composes the VBNV the same way: vendor_boardid_name_major_minor.
  std::string vbnv = std::string(p.attribute("vendor").value()) + "_" +
                     p.attribute("boardid").value() + "_" + p.attribute("name").value();
  if (const pugi::xml_node v = p.child("version"))
    vbnv += std::string("_") + v.attribute("major").value() + "_" + v.attribute("minor").value();
  return vbnv == "__" ? std::string() : vbnv;
}

std::string xclbin::to_json(int indent) const {
  using nlohmann::ordered_json;
  ordered_json j;
  j["uuid"] = uuid_string();
  j["target"] = target();
  if (auto id = agfi())
    j["agfi"] = *id;
  else
    j["agfi"] = nullptr;
  j["platform"] = platform_name();
  j["mode"] = std::string(to_string(mode));
  j["clocks"] = ordered_json::array();
  for (const auto& c : clocks)
    j["clocks"].push_back({{"name", c.name},
                           {"frequency_mhz", c.frequency_mhz},
                           {"type", std::string(to_string(c.type))}});
  j["memories"] = ordered_json::array();
  for (const auto& m : memories)
    j["memories"].push_back({{"index", m.index},
                             {"tag", m.tag},
                             {"type", std::string(to_string(m.type))},
                             {"used", m.used},
                             {"base_address", m.base_address},
                             {"size_bytes", m.size_bytes}});
  j["kernels"] = ordered_json::array();
  for (const auto& k : kernels) {
    // Compute units of this kernel: IP_LAYOUT kernel entries whose name starts with it.
    std::vector<const ip_info*> cus;
    for (const auto& ip : ips)
      if ((ip.type == ip_type::kernel || ip.type == ip_type::ps_kernel) &&
          ip.kernel_name() == k.name)
        cus.push_back(&ip);
    ordered_json kj;
    kj["name"] = k.name;
    kj["language"] = k.language;
    kj["args"] = ordered_json::array();
    for (const auto& a : k.args) {
      ordered_json tags = ordered_json::array();
      std::vector<unsigned> seen;
      for (const ip_info* ip : cus)
        for (unsigned m : memories_of(ip->index, a.index))
          if (m < memories.size() && std::find(seen.begin(), seen.end(), m) == seen.end()) {
            seen.push_back(m);
            tags.push_back(memories[m].tag);
          }
      kj["args"].push_back({{"index", a.index},
                            {"name", a.name},
                            {"type", a.type},
                            {"kind", std::string(to_string(a.kind))},
                            {"offset", a.offset},
                            {"size", a.size},
                            {"host_size", a.host_size},
                            {"port", a.port},
                            {"memories", tags}});
    }
    kj["instances"] = ordered_json::array();
    if (!cus.empty()) {
      for (const ip_info* ip : cus) {
        kj["instances"].push_back({{"name", cu_instance(*ip)},
                                   {"base_address", ip->base_address},
                                   {"control", std::string(to_string(ip->control))},
                                   {"interrupt", ip->interrupt_enabled}});
        // Old files name the IP by its kernel only; say so (pack writes it back the same way).
        if (ip->name != k.name + ":" + cu_instance(*ip))
          kj["instances"].back()["ip_layout_name"] = ip->name;
      }
    } else {
      // No IP_LAYOUT (old sw_emu builds): the XML instances, control protocol unknown.
      for (const auto& in : k.instances)
        kj["instances"].push_back({{"name", in.name},
                                   {"base_address", in.base_address},
                                   {"control", nullptr},
                                   {"interrupt", nullptr}});
    }
    j["kernels"].push_back(std::move(kj));
  }
  if (const auto net = network_info::of(*this))
    j["network"] = ordered_json::parse(net->to_json());
  else
    j["network"] = nullptr;
  // Names come from the file and need not be UTF-8; JSON output must be, so bad bytes become
  // U+FFFD instead of an exception.
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace fpyga
