// Devices: opening by spec and enumeration across the backends compiled into this build.
#include "fpyga/device.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>

#include "backends/backend.hpp"
#include "fpyga/device_info.hpp"
#include "fpyga/error.hpp"
#include "fpyga/memory.hpp"

namespace fpyga {
namespace {

// Backends fpyga knows about, compiled in or not: a spec naming one of these that is missing
// from this build is "not enabled", anything else is a malformed spec.
bool known_backend(std::string_view name) {
  return name == "emu" || name == "xrt" || name == "opencl";
}

const backend::backend_entry* find_backend(std::string_view name) {
  for (const auto& b : backend::backends())
    if (b.name == name) return &b;
  return nullptr;
}

std::string list_backends() {
  std::string s;
  for (const auto& b : backend::backends()) s += (s.empty() ? "" : ", ") + b.name;
  return s;
}

const std::shared_ptr<backend::device_impl>& require(const std::shared_ptr<backend::device_impl>& d) {
  if (!d) throw error("fpyga::device: empty device handle");
  return d;
}

device open_spec(std::string_view spec) {
  std::string_view name = spec;
  std::string_view index_text;
  bool has_index = false;
  if (auto colon = spec.find(':'); colon != std::string_view::npos) {
    name = spec.substr(0, colon);
    index_text = spec.substr(colon + 1);
    has_index = true;
  }
  if (!known_backend(name))
    throw value_error("device spec '" + std::string(spec) +
                      "' is not one of \"\", \"emu\", \"emu:N\", \"xrt:N\", \"opencl:N\"");
  unsigned index = 0;
  if (has_index) {
    auto [end, ec] = std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
    if (index_text.empty() || ec != std::errc() || end != index_text.data() + index_text.size())
      throw value_error("device spec '" + std::string(spec) + "': '" + std::string(index_text) +
                        "' is not a device index (expected a number such as " + std::string(name) +
                        ":0)");
  }
  const auto* b = find_backend(name);
  if (!b)
    throw not_supported_error("backend '" + std::string(name) +
                              "' is not enabled in this build (enabled: " + list_backends() + ")");
  if (!b->available)
    throw not_supported_error("backend '" + std::string(name) + "' is not available: " + b->reason);
  auto devs = b->enumerate();
  if (index >= devs.size())
    throw value_error("device spec '" + std::string(spec) + "': backend '" + std::string(name) +
                      "' has " + std::to_string(devs.size()) + " device(s)" +
                      (devs.empty() ? std::string()
                                    : " (indices 0.." + std::to_string(devs.size() - 1) + ")"));
  return device(devs[index]);
}

}  // namespace

device device::open(std::string_view spec) {
  if (!spec.empty()) return open_spec(spec);
  if (const char* env = std::getenv("FPYGA_DEVICE"); env && *env) {
    try {
      return open_spec(env);
    } catch (const error& e) {
      // Rethrow with the variable named, so a stale environment is easy to spot.
      const std::string msg = std::string("FPYGA_DEVICE: ") + e.what();
      if (dynamic_cast<const not_supported_error*>(&e)) throw not_supported_error(msg);
      throw value_error(msg);
    }
  }
  for (const auto& b : backend::backends()) {
    if (!b.hardware || !b.available) continue;
    auto devs = b.enumerate();
    if (!devs.empty()) return device(devs.front());
  }
  return open_spec("emu:0");
}

std::vector<device> devices() {
  std::vector<device> out;
  for (const auto& b : backend::backends())
    if (b.hardware && b.available)
      for (auto& d : b.enumerate()) out.emplace_back(d);
  for (const auto& b : backend::backends())
    if (!b.hardware && b.available)
      for (auto& d : b.enumerate()) out.emplace_back(d);
  // PYNQ's Device.devices[0] is the default device, and every device before the first that can
  // run the user's xclbin must be able to: the default first, then the devices that load
  // xclbins (cards, then emu), then OpenCL devices that only build OpenCL C (PoCL).
  device first;
  try {
    first = device::open();
  } catch (const error&) {
    // A stale FPYGA_DEVICE: opening the default says so; the list stays in backend order.
  }
  // Two passes rather than std::stable_partition: its temporary buffer trips ASan's
  // alloc-dealloc-mismatch check in GCC 12's libstdc++ (operator new, then free).
  std::vector<device> ordered;
  ordered.reserve(out.size());
  for (bool loads : {true, false})
    for (const auto& d : out)
      if (d.impl()->loads_xclbin() == loads) ordered.push_back(d);
  out = std::move(ordered);
  if (first)
    if (auto it = std::find(out.begin(), out.end(), first); it != out.end())
      std::rotate(out.begin(), it, it + 1);
  return out;
}

std::vector<backend_info> backends() {
  std::vector<backend_info> out;
  for (const auto& b : backend::backends())
    out.push_back(backend_info{b.name, b.hardware, b.available, b.reason, b.plugin});
  return out;
}

std::string device::name() const { return require(impl_)->name(); }
std::string device::backend() const { return require(impl_)->backend_name(); }
unsigned device::index() const { return require(impl_)->index(); }
std::string device::spec() const { return backend() + ":" + std::to_string(index()); }
std::string device::bdf() const { return require(impl_)->bdf(); }
std::string device::shell() const { return require(impl_)->shell(); }

std::vector<memory> device::memories() const {
  std::vector<memory> out;
  auto prog = require(impl_)->current;
  if (!prog || prog->released) return out;
  for (unsigned i = 0; i < prog->memories.size(); ++i) out.emplace_back(prog, i);
  return out;
}

memory device::default_memory() const {
  auto prog = require(impl_)->current;
  if (!prog || prog->released)
    throw error("device " + spec() + " has no xclbin loaded, so it has no memory to allocate in");
  std::vector<unsigned> used;
  for (unsigned i = 0; i < prog->memories.size(); ++i)
    // Streams (kernel-to-kernel dc_N, host streams) are no bank a buffer goes to.
    if (prog->memories[i].used && prog->memories[i].type != memory_type::streaming &&
        prog->memories[i].type != memory_type::streaming_connection)
      used.push_back(i);
  if (used.empty()) throw error("device " + spec() + ": no active memories in the loaded xclbin");
  if (used.size() > 1) {
    std::string tags;
    for (unsigned i : used) tags += (tags.empty() ? "" : ", ") + prog->memories[i].tag;
    throw error("device " + spec() + ": multiple memories active (" + tags +
                "); name one (fpyga::memory) or allocate for a kernel argument");
  }
  return memory(prog, used.front());
}

// ----------------------------------------------------------------------------------------------
// What a device reports about itself (device_info.hpp)

namespace backend {

sensor_readings device_impl::read_sensors() const {
  sensor_readings r;
  r.note = backend_name() + ":" + std::to_string(index()) + " (" + name() + ") reports no sensors";
  return r;
}

memory_usage program_impl::usage(unsigned) {
  unsupported(device ? device->backend_name() : "?", "memory usage");
}

}  // namespace backend

bool loads_xclbin(const device& dev) {
  return require(dev.impl())->loads_xclbin();
}

sensor_readings read_sensors(const device& dev) {
  return require(dev.impl())->read_sensors();
}

std::optional<unsigned long> max_clock_frequency_mhz(const device& dev) {
  return require(dev.impl())->max_clock_frequency_mhz();
}

std::vector<clock_reading> clocks(const device& dev) {
  std::vector<clock_reading> out;
  auto prog = require(dev.impl())->current;
  if (!prog || prog->released) return out;
  for (const auto& c : prog->bin.clocks) out.push_back({c.name, c.type, c.frequency_mhz, "xclbin"});
  return out;
}

memory_usage usage(const memory& mem) {
  const auto& prog = mem.program();
  if (!prog) throw error("fpyga::memory: empty memory handle");
  if (prog->released)
    throw error("memory '" + mem.tag() + "' of '" + prog->bin.source +
                "': the xclbin is no longer loaded, so it has no usage to report");
  memory_usage u = prog->usage(mem.index());
  u.index = mem.index();
  u.tag = mem.tag();
  return u;
}

std::vector<memory_usage> memory_usage_of(const device& dev) {
  std::vector<memory_usage> out;
  for (const auto& m : dev.memories()) out.push_back(usage(m));
  return out;
}

}  // namespace fpyga
