// The stream layout of an xclbin: derived from EMBEDDED_METADATA, MEM_TOPOLOGY, CONNECTIVITY and
// IP_LAYOUT as Vitis writes them, completed by fpyga's "fpyga_streams" USER_METADATA section, and
// checked so that a design a runtime cannot run (a dangling stream, two producers on one FIFO,
// mismatched widths, a depth of 0) is refused at load with the names of the ports involved.
#include "fpyga/stream.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "fpyga/error.hpp"
#include "fpyga/xclbin.hpp"

namespace fpyga {

std::string_view to_string(stream_direction d) {
  return d == stream_direction::input ? "input" : "output";
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

/// Splits the template arguments of "name<a, b<c>, d>" at top level; nullopt when `s` is not
/// `name<...>`.
std::optional<std::vector<std::string_view>> template_args(std::string_view s,
                                                           std::string_view name) {
  s = trim(s);
  if (!s.starts_with(name)) return std::nullopt;
  s.remove_prefix(name.size());
  s = trim(s);
  if (s.size() < 2 || s.front() != '<' || s.back() != '>') return std::nullopt;
  s = s.substr(1, s.size() - 2);
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<')
      ++depth;
    else if (s[i] == '>')
      --depth;
    else if (s[i] == ',' && depth == 0) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
    if (depth < 0) return std::nullopt;
  }
  if (depth != 0) return std::nullopt;
  out.push_back(trim(s.substr(start)));
  return out;
}

std::optional<unsigned> number(std::string_view s) {
  s = trim(s);
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

/// Removes references, cv-qualifiers and an "hls::"/"stream<...>" wrapper, leaving T.
std::string_view element_of_stream(std::string_view s) {
  s = trim(s);
  while (!s.empty() && (s.back() == '&' || s.back() == '*')) s = trim(s.substr(0, s.size() - 1));
  if (s.starts_with("const ")) s = trim(s.substr(6));
  if (s.ends_with(" const")) s = trim(s.substr(0, s.size() - 6));
  if (s.starts_with("hls::")) s = s.substr(5);
  // Vitis writes "stream<T, 0>&" (the second argument is the stream's depth template
  // parameter); sources write "hls::stream<T>".
  if (auto args = template_args(s, "stream"); args && !args->empty()) return args->front();
  return s;
}

}  // namespace

stream_element stream_element::parse(std::string_view type) {
  stream_element e;
  const std::string_view t = element_of_stream(type);
  e.type = std::string(t);
  for (const std::string_view name : {"ap_axiu", "ap_axis", "qdma_axis", "hls::axis"}) {
    auto args = template_args(t, name);
    if (!args || args->size() != 4) continue;
    const auto w = number((*args)[0]), u = number((*args)[1]), i = number((*args)[2]),
               d = number((*args)[3]);
    if (!w || !u || !i || !d) break;
    e.axis = true;
    e.is_signed = name == "ap_axis";
    e.data_bits = *w;
    e.user_bits = *u;
    e.id_bits = *i;
    e.dest_bits = *d;
    return e;
  }
  const c_type c = c_type::parse(t);
  if (!c.pointer && c.cat != c_type::category::opaque && c.cat != c_type::category::void_type) {
    e.data_bits = c.bits;
    e.is_signed = c.cat == c_type::category::signed_integer ||
                  c.cat == c_type::category::signed_fixed || c.cat == c_type::category::floating;
  }
  return e;
}

bool stream_element::compatible(const stream_element& o) const {
  return data_bits == o.data_bits && axis == o.axis && user_bits == o.user_bits &&
         id_bits == o.id_bits && dest_bits == o.dest_bits;
}

const stream_port* stream_layout::find(std::string_view instance, std::string_view arg) const {
  for (const auto& p : ports)
    if (p.instance == instance && p.arg == arg) return &p;
  return nullptr;
}

std::vector<const stream_port*> stream_layout::ports_of(unsigned ip_index) const {
  std::vector<const stream_port*> out;
  for (const auto& p : ports)
    if (p.ip_index == ip_index) out.push_back(&p);
  return out;
}

namespace {

using nlohmann::json;

/// fpyga's additions, keyed by "kernel.arg" and by tag.
struct fpyga_streams {
  std::map<std::string, stream_element> elements;  // "kernel.arg"
  struct conn {
    std::string source, sink;
    std::size_t depth = 0;
    bool used = false;
  };
  std::map<std::string, conn> connections;  // tag
};

const raw_section* find_section(const xclbin& x) {
  const raw_section* found = nullptr;
  for (const auto& s : x.other_sections)
    if (s.kind == section_kind::user_metadata && s.name == stream_layout::section_name) {
      if (found)
        throw xclbin_error("xclbin '" + x.source + "': two USER_METADATA sections named '" +
                           std::string(stream_layout::section_name) + "'");
      found = &s;
    }
  return found;
}

fpyga_streams read_section(const xclbin& x) {
  fpyga_streams out;
  const raw_section* s = find_section(x);
  if (!s) return out;
  const std::string where =
      "xclbin '" + x.source + "': USER_METADATA '" + std::string(stream_layout::section_name) + "'";
  auto fail = [&](const std::string& problem) -> void {
    throw xclbin_error(where + ": " + problem);
  };
  std::string_view text(reinterpret_cast<const char*>(s->payload.data()), s->payload.size());
  while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("is not a JSON object");
  if (!j.contains("schema") || j["schema"] != stream_layout::schema)
    fail("schema must be \"" + std::string(stream_layout::schema) + "\", got " +
         (j.contains("schema") ? j["schema"].dump() : std::string("none")));
  for (const auto& item : j.items())
    if (item.key() != "schema" && item.key() != "args" && item.key() != "connections")
      fail(item.key() + ": unknown field (known: schema, args, connections)");
  auto get_string = [&](const json& o, const char* key, const std::string& at) {
    if (!o.contains(key) || !o[key].is_string() || o[key].get<std::string>().empty())
      fail(at + "." + key + ": expected a non-empty string");
    return o[key].get<std::string>();
  };
  auto get_uint = [&](const json& o, const char* key, const std::string& at, bool required) {
    if (!o.contains(key)) {
      if (required) fail(at + "." + key + ": missing");
      return std::uint64_t{0};
    }
    if (!o[key].is_number_unsigned() || o[key].get<std::uint64_t>() > (1ull << 32))
      fail(at + "." + key + ": expected an unsigned integer below 2^32, got " + o[key].dump());
    return o[key].get<std::uint64_t>();
  };
  if (j.contains("args")) {
    if (!j["args"].is_array()) fail("args: expected an array");
    for (std::size_t i = 0; i < j["args"].size(); ++i) {
      const json& a = j["args"][i];
      const std::string at = "args[" + std::to_string(i) + "]";
      if (!a.is_object()) fail(at + ": expected an object");
      for (const auto& item : a.items())
        if (item.key() != "kernel" && item.key() != "arg" && item.key() != "type" &&
            item.key() != "data_bits" && item.key() != "axis" && item.key() != "signed" &&
            item.key() != "user_bits" && item.key() != "id_bits" && item.key() != "dest_bits" &&
            item.key() != "direction" && item.key() != "width_bytes")
          fail(at + "." + item.key() + ": unknown field");
      stream_element e;
      e.type = get_string(a, "type", at);
      e.data_bits = static_cast<unsigned>(get_uint(a, "data_bits", at, true));
      if (e.data_bits == 0) fail(at + ".data_bits: must be at least 1");
      e.user_bits = static_cast<unsigned>(get_uint(a, "user_bits", at, false));
      e.id_bits = static_cast<unsigned>(get_uint(a, "id_bits", at, false));
      e.dest_bits = static_cast<unsigned>(get_uint(a, "dest_bits", at, false));
      if (a.contains("axis")) {
        if (!a["axis"].is_boolean()) fail(at + ".axis: expected true or false");
        e.axis = a["axis"].get<bool>();
      }
      if (a.contains("signed")) {
        if (!a["signed"].is_boolean()) fail(at + ".signed: expected true or false");
        e.is_signed = a["signed"].get<bool>();
      }
      if (a.contains("width_bytes") && get_uint(a, "width_bytes", at, false) != e.bytes())
        fail(at + ".width_bytes: " + a["width_bytes"].dump() + " disagrees with data_bits " +
             std::to_string(e.data_bits) + " (" + std::to_string(e.bytes()) + " bytes)");
      const std::string key = get_string(a, "kernel", at) + "." + get_string(a, "arg", at);
      if (!out.elements.emplace(key, e).second) fail(at + ": '" + key + "' is described twice");
    }
  }
  if (j.contains("connections")) {
    if (!j["connections"].is_array()) fail("connections: expected an array");
    for (std::size_t i = 0; i < j["connections"].size(); ++i) {
      const json& c = j["connections"][i];
      const std::string at = "connections[" + std::to_string(i) + "]";
      if (!c.is_object()) fail(at + ": expected an object");
      for (const auto& item : c.items())
        if (item.key() != "tag" && item.key() != "source" && item.key() != "sink" &&
            item.key() != "depth")
          fail(at + "." + item.key() + ": unknown field (known: tag, source, sink, depth)");
      fpyga_streams::conn k;
      const std::string tag = get_string(c, "tag", at);
      k.source = get_string(c, "source", at);
      k.sink = get_string(c, "sink", at);
      k.depth = get_uint(c, "depth", at, true);
      if (k.depth == 0)
        fail(at + " (" + tag + ": " + k.source + " -> " + k.sink +
             "): depth 0; a stream needs a depth of at least 1");
      if (!out.connections.emplace(tag, k).second) fail(at + ": tag '" + tag + "' appears twice");
    }
  }
  return out;
}

}  // namespace

stream_layout stream_layout::of(const xclbin& x) {
  stream_layout layout;
  const std::string file = "xclbin '" + x.source + "'";
  auto fail = [&](const std::string& problem) -> void {
    throw xclbin_error(file + ": " + problem);
  };
  fpyga_streams extra = read_section(x);

  // Every stream argument of every compute unit, with the streaming memory it reaches.
  for (const auto& ip : x.ips) {
    if (ip.type != ip_type::kernel && ip.type != ip_type::ps_kernel) continue;
    const kernel_info* k = x.find_kernel(ip.kernel_name());
    if (!k) continue;
    for (const auto& a : k->args) {
      if (a.kind != arg_kind::stream) continue;
      stream_port p;
      p.ip_index = ip.index;
      p.kernel = k->name;
      p.instance = ip.instance_name();
      p.arg_index = a.index;
      p.arg = a.name;
      const std::string what = "stream argument '" + a.name + "' of compute unit '" + p.instance +
                               "' (kernel '" + k->name + "')";
      const auto port = std::find_if(k->ports.begin(), k->ports.end(),
                                     [&](const port_info& q) { return q.name == a.port; });
      if (port == k->ports.end())
        fail(what + " names port '" + a.port + "', which kernel '" + k->name + "' does not have");
      if (port->mode == "read_only")
        p.direction = stream_direction::input;
      else if (port->mode == "write_only")
        p.direction = stream_direction::output;
      else
        fail(what + ": port '" + port->name + "' has mode '" + port->mode +
             "'; a stream port is read_only (input) or write_only (output)");
      if (auto it = extra.elements.find(k->name + "." + a.name); it != extra.elements.end())
        p.element = it->second;
      else {
        p.element = stream_element::parse(a.type);
        if (p.element.data_bits == 0) p.element.data_bits = port->data_width;
      }
      std::vector<unsigned> mems;
      for (unsigned m : x.memories_of(ip.index, a.index))
        if (m < x.memories.size() && (x.memories[m].type == memory_type::streaming ||
                                      x.memories[m].type == memory_type::streaming_connection))
          mems.push_back(m);
      if (mems.empty())
        fail(what + " is not connected: give it a stream connection (sc=" + p.instance + "." +
             a.name + ":<cu>.<port>) or a host stream");
      if (mems.size() > 1)
        fail(what + " is connected to " + std::to_string(mems.size()) + " streams ('" +
             x.memories[mems[0]].tag + "', '" + x.memories[mems[1]].tag +
             "'); a stream has one end");
      p.memory_index = mems.front();
      layout.ports.push_back(std::move(p));
    }
  }

  // Each kernel-to-kernel stream joins one output to one input.
  for (const auto& m : x.memories) {
    if (m.type != memory_type::streaming_connection) continue;
    std::vector<std::size_t> outs, ins;
    for (std::size_t i = 0; i < layout.ports.size(); ++i)
      if (layout.ports[i].memory_index == m.index)
        (layout.ports[i].direction == stream_direction::output ? outs : ins).push_back(i);
    const std::string what =
        "stream '" + m.tag + "' (MEM_TOPOLOGY entry " + std::to_string(m.index) + ")";
    if (outs.empty() && ins.empty()) {
      // An unused entry (a tool's leftover) joins nothing and runs nothing.
      if (!m.used) continue;
      fail(what + " is connected to no kernel argument");
    }
    if (outs.size() > 1)
      fail(what + " connects two outputs, " + layout.ports[outs[0]].name() + " and " +
           layout.ports[outs[1]].name() + "; a stream joins one output to one input");
    if (ins.size() > 1)
      fail(what + " connects two inputs, " + layout.ports[ins[0]].name() + " and " +
           layout.ports[ins[1]].name() + "; a stream joins one output to one input");
    if (outs.empty())
      fail(what + " has no producer: input " + layout.ports[ins[0]].name() +
           " is connected to it but no output is");
    if (ins.empty())
      fail(what + " has no consumer: output " + layout.ports[outs[0]].name() +
           " is connected to it but no input is");
    const stream_port& src = layout.ports[outs[0]];
    const stream_port& dst = layout.ports[ins[0]];
    if (src.element.data_bits != 0 && dst.element.data_bits != 0 &&
        !src.element.compatible(dst.element))
      fail(what + " joins " + src.name() + " (" + src.element.type + ", " +
           std::to_string(src.element.data_bits) + " data bits) to " + dst.name() + " (" +
           dst.element.type + ", " + std::to_string(dst.element.data_bits) +
           " data bits): the widths and side channels of both ends must match");
    stream_connection c;
    c.memory_index = m.index;
    c.tag = m.tag;
    c.source = outs[0];
    c.sink = ins[0];
    c.depth = default_depth;
    if (auto it = extra.connections.find(m.tag); it != extra.connections.end()) {
      if (it->second.source != src.name() || it->second.sink != dst.name())
        fail("USER_METADATA '" + std::string(section_name) + "' says stream '" + m.tag +
             "' joins " + it->second.source + " to " + it->second.sink +
             ", but CONNECTIVITY joins " + src.name() + " to " + dst.name());
      c.depth = it->second.depth;
      it->second.used = true;
    }
    layout.ports[outs[0]].connection = layout.connections.size();
    layout.ports[ins[0]].connection = layout.connections.size();
    layout.connections.push_back(std::move(c));
  }
  for (const auto& [tag, c] : extra.connections)
    if (!c.used)
      fail("USER_METADATA '" + std::string(section_name) + "' gives stream '" + tag + "' (" +
           c.source + " -> " + c.sink + "), which MEM_TOPOLOGY has no STREAMING_CONNECTION for");
  return layout;
}

}  // namespace fpyga
