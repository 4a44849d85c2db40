// Overlays: an xclbin loaded onto a device, its kernels (by kernel, "kernel:instance" or instance
// name) and its memories.
#include "fpyga/overlay.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <mutex>

#include "backends/backend.hpp"
#include "core_state.hpp"
#include "fpyga/error.hpp"
#include "fpyga/stream.hpp"

namespace fpyga {
namespace {

/// Loads on one device are serialised: replacing a program must not race with another load.
std::mutex& load_mutex() {
  static std::mutex m;
  return m;
}

const overlay_state& require(const std::shared_ptr<overlay_state>& st) {
  if (!st) throw error("fpyga::overlay: empty overlay handle");
  return *st;
}

/// Compute units of every kernel: IP_LAYOUT entries, else the metadata's instances, else one CU
/// named like the kernel (old sw_emu files describe nothing more).
void collect_cus(overlay_state& st) {
  const xclbin& bin = st.program->bin;
  for (const auto& k : bin.kernels) {
    std::vector<backend::compute_unit> cus;
    auto arg_mems = [&](unsigned ip_index) {
      std::vector<std::vector<unsigned>> v;
      for (const auto& a : k.args) v.push_back(bin.memories_of(ip_index, a.index));
      return v;
    };
    for (const auto& ip : bin.ips) {
      if ((ip.type != ip_type::kernel && ip.type != ip_type::ps_kernel) || ip.kernel_name() != k.name) continue;
      cus.push_back(
          {ip.index, bin.cu_instance(ip), ip.base_address, ip.control, arg_mems(ip.index)});
    }
    if (cus.empty()) {
      constexpr unsigned no_ip = std::numeric_limits<unsigned>::max();
      std::vector<std::vector<unsigned>> none(k.args.size());
      for (const auto& inst : k.instances) cus.push_back({no_ip, inst.name, inst.base_address, control_protocol::ap_ctrl_hs, none});
      if (cus.empty()) cus.push_back({no_ip, k.name, 0, control_protocol::ap_ctrl_hs, none});
    }
    st.kernel_order.push_back(k.name);
    st.cus.emplace(k.name, std::move(cus));
  }
}

std::string list_kernels(const overlay_state& st) {
  std::string s;
  for (const auto& name : st.kernel_order) {
    s += (s.empty() ? "" : ", ") + name + " (";
    const auto& cus = st.cus.find(name)->second;
    for (std::size_t i = 0; i < cus.size(); ++i) s += (i ? ", " : "") + cus[i].name;
    s += ")";
  }
  return s.empty() ? "none" : s;
}

/// Unloads `p`, whose gate is closed (no call inside): calls that wait at the gate then raise
/// "unloaded", and buffers freed under its last runs are released.
void unload(backend::program_impl& p) {
  p.shut_gate();
  try {
    p.release();
  } catch (...) {
    p.released = true;  // half released is not usable: calls waiting at the gate must not spin
    throw;
  }
  p.released = true;
  p.drain_retired();
}

std::string alnum(std::string_view s) {
  std::string out;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c))) out += c;
  return out;
}

}  // namespace

overlay::overlay(const std::string& path) : overlay(fpyga::device::open(), path) {}

overlay::overlay(const fpyga::device& dev, const std::string& path) {
  if (!dev) throw value_error("fpyga::overlay: empty device handle");
  // An OpenCL C source (.cl) is an overlay for the opencl backend, which builds it and
  // describes its kernels itself (program->bin); other backends refuse it at load.
  fpyga::xclbin bin;
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".cl") == 0)
    bin.source = path;
  else
    bin = fpyga::xclbin::read(path);
  // A stream design no runtime can run (a dangling stream, two producers on one FIFO,
  // mismatched widths) is refused before the device is touched, naming the ports.
  (void)stream_layout::of(bin);
  auto& d = *dev.impl();
  std::lock_guard lock(load_mutex());
  auto old = d.current && !d.current->released ? d.current : nullptr;
  if (old) {
    if (!old->close_gate())
      throw error("cannot load '" + path + "' on device " + dev.spec() + ": " +
                  std::to_string(old->calls_in_flight()) + " call(s) of '" + old->bin.source +
                  "' are in progress");
    if (const std::size_t n = old->runs_in_flight()) {
      old->open_gate();
      throw error("cannot load '" + path + "' on device " + dev.spec() + ": " + std::to_string(n) +
                  " run(s) of '" + old->bin.source + "' are still in flight");
    }
    if (!d.loads_beside_current()) {
      // A card holds one image: the old one goes first, and a failed load leaves the device
      // with nothing loaded (never an overlay that says "not loaded" while the device is its).
      if (d.current == old) d.current = nullptr;
      unload(*old);
    }
  }
  std::shared_ptr<backend::program_impl> prog;
  auto st = std::make_shared<overlay_state>();
  try {
    prog = d.load(bin, path);  // where it can, a failure here leaves `old` loaded and usable
    if (!prog->device) prog->device = dev.impl();
    st->program = prog;
    st->dev = dev;
    st->path = path;
    collect_cus(*st);
  } catch (...) {
    if (prog && prog != old) {
      unload(*prog);
      if (d.current == prog) d.current = nullptr;
    }
    if (old && !old->released) {
      old->open_gate();
      d.current = old;
    } else if (d.current && d.current->released) {
      d.current = nullptr;
    }
    throw;
  }
  if (old && !old->released) unload(*old);
  d.current = prog;
  st_ = std::move(st);
}

fpyga::kernel overlay::kernel(std::string_view name) const {
  auto& st = const_cast<overlay_state&>(require(st_));
  check_loaded(*st.program, "overlay '" + st.path + "'");
  std::lock_guard lock(st.mutex);
  if (auto it = st.handles.find(name); it != st.handles.end()) return fpyga::kernel(it->second);

  const kernel_info* info = nullptr;
  std::vector<backend::compute_unit> cus;
  const std::size_t colon = name.find(':');
  if (colon == std::string_view::npos) {
    if (auto it = st.cus.find(name); it != st.cus.end()) {
      info = st.program->bin.find_kernel(name);
      cus = it->second;
    } else {
      for (const auto& [kname, kcus] : st.cus)
        for (const auto& cu : kcus)
          if (cu.name == name) {
            info = st.program->bin.find_kernel(kname);
            cus = {cu};
          }
    }
  } else {
    const auto kname = name.substr(0, colon);
    const auto iname = name.substr(colon + 1);
    if (auto it = st.cus.find(kname); it != st.cus.end())
      for (const auto& cu : it->second)
        if (cu.name == iname) {
          info = st.program->bin.find_kernel(kname);
          cus = {cu};
        }
  }
  if (!info)
    throw value_error("overlay '" + st.path + "' has no kernel or compute unit '" + std::string(name) +
                      "'; kernels (compute units): " + list_kernels(st));
  auto ks = make_kernel_state(st.program, st.path, *info, std::move(cus));
  st.handles.emplace(std::string(name), ks);
  return fpyga::kernel(ks);
}

std::vector<fpyga::kernel> overlay::kernels() const {
  const auto& st = require(st_);
  std::vector<fpyga::kernel> out;
  for (const auto& name : st.kernel_order) {
    const auto it = st.cus.find(name);
    if (it != st.cus.end() && !it->second.empty() &&
        std::all_of(it->second.begin(), it->second.end(), [](const backend::compute_unit& cu) {
          return cu.control == control_protocol::ap_ctrl_none;
        }))
      continue;
    out.push_back(kernel(name));
  }
  return out;
}

fpyga::memory overlay::memory(std::string_view tag) const {
  const auto& st = require(st_);
  const auto& mems = st.program->memories;
  for (unsigned i = 0; i < mems.size(); ++i)
    if (mems[i].tag == tag) return fpyga::memory(st.program, i);
  // PYNQ names memories by their tag with non-alphanumerics removed ("PLRAM[0]" -> "PLRAM0").
  for (unsigned i = 0; i < mems.size(); ++i)
    if (alnum(mems[i].tag) == tag) return fpyga::memory(st.program, i);
  std::string tags;
  for (const auto& m : mems) tags += (tags.empty() ? "" : ", ") + m.tag;
  throw value_error("overlay '" + st.path + "' has no memory '" + std::string(tag) + "'; memories: " +
                    (tags.empty() ? "none" : tags));
}

std::vector<fpyga::memory> overlay::memories() const {
  const auto& st = require(st_);
  std::vector<fpyga::memory> out;
  for (unsigned i = 0; i < st.program->memories.size(); ++i) out.emplace_back(st.program, i);
  return out;
}

fpyga::device overlay::device() const { return require(st_).dev; }
const fpyga::xclbin& overlay::xclbin() const { return require(st_).program->bin; }
const std::string& overlay::path() const { return require(st_).path; }

bool overlay::loaded() const {
  const auto& st = require(st_);
  return !st.program->released && st.dev.impl()->current == st.program;
}

void overlay::release() {
  const auto& st = require(st_);
  std::lock_guard lock(load_mutex());
  if (st.program->released) return;
  if (!st.program->close_gate())
    throw error("cannot release overlay '" + st.path + "': " +
                std::to_string(st.program->calls_in_flight()) +
                " call(s) are in progress on other threads; wait for them first");
  if (const std::size_t n = st.program->runs_in_flight()) {
    st.program->open_gate();
    throw error("cannot release overlay '" + st.path + "': " + std::to_string(n) +
                " run(s) are still in flight; wait for them first");
  }
  unload(*st.program);
  if (st.dev.impl()->current == st.program) st.dev.impl()->current = nullptr;
}

}  // namespace fpyga
