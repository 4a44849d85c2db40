// Devices: opening by spec and enumeration across the backends compiled into this build.
#include "fpyga/device.hpp"

#include <charconv>
#include <cstdlib>
#include <string>

#include "backends/backend.hpp"
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
    if (!b.hardware) continue;
    auto devs = b.enumerate();
    if (!devs.empty()) return device(devs.front());
  }
  return open_spec("emu:0");
}

std::vector<device> devices() {
  std::vector<device> out;
  for (const auto& b : backend::backends())
    if (b.hardware)
      for (auto& d : b.enumerate()) out.emplace_back(d);
  for (const auto& b : backend::backends())
    if (!b.hardware)
      for (auto& d : b.enumerate()) out.emplace_back(d);
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
    if (prog->memories[i].used) used.push_back(i);
  if (used.empty()) throw error("device " + spec() + ": no active memories in the loaded xclbin");
  if (used.size() > 1) {
    std::string tags;
    for (unsigned i : used) tags += (tags.empty() ? "" : ", ") + prog->memories[i].tag;
    throw error("device " + spec() + ": multiple memories active (" + tags +
                "); name one (fpyga::memory) or allocate for a kernel argument");
  }
  return memory(prog, used.front());
}

}  // namespace fpyga
