// The backends of this build, in default-device order: hardware first, emu last. emu is part of
// libfpyga; xrt and opencl are plugins (backends/plugin.hpp), loaded here at the first device
// discovery from the directory `fpyga` beside libfpyga (<libdir>/fpyga/ in an install prefix, a
// wheel and the build tree alike), or from FPYGA_PLUGIN_DIR, or from the file FPYGA_PLUGIN_<NAME>
// names. CMake defines FPYGA_PLUGIN_<NAME> for each plugin it builds.
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "backends/backend.hpp"
#include "backends/plugin.hpp"
#include "fpyga/device.hpp"
#include "fpyga/warning.hpp"

namespace fpyga::backend {

backend_entry emu_backend();

namespace {

/// The directory libfpyga was loaded from (build tree, install prefix or Python wheel alike).
std::string library_directory() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&library_directory), &info) == 0 || !info.dli_fname)
    return {};
  std::string path = info.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string environment(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

/// Loads backend `name`'s plugin. Never throws: a plugin that cannot be loaded gives an entry
/// with available = false and the reason, and no devices.
backend_entry load_plugin(const std::string& name, bool hardware) {
  backend_entry e{name, hardware, nullptr};
  e.available = false;
  std::string upper = name;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string file_variable = "FPYGA_PLUGIN_" + upper;
  std::string path = environment(file_variable);
  std::string origin = file_variable;
  if (path.empty()) {
    std::string dir = environment("FPYGA_PLUGIN_DIR");
    origin = "FPYGA_PLUGIN_DIR";
    if (dir.empty()) {
      dir = library_directory() + "/fpyga";
      origin = "libfpyga's plugin directory";
    }
    path = dir + "/" + plugin_file_name(name);
  }
  e.plugin = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    e.reason = "no plugin " + path + " (" + origin + ")";
    return e;
  }
  // Never closed: its devices live as long as the process (devices_once).
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    e.reason = "cannot load " + path + ": " + (why ? why : "unknown dlopen error");
    return e;
  }
  auto fn = reinterpret_cast<plugin_function>(::dlsym(handle, "fpyga_backend_plugin"));
  if (!fn) {
    e.reason = path + " is not an fpyga backend plugin (it exports no fpyga_backend_plugin)";
    return e;
  }
  const plugin_descriptor* d = fn();
  if (!d || !d->abi || std::strcmp(d->abi, plugin_abi) != 0 || !d->entry) {
    e.reason = path + " was built for another fpyga (" + (d && d->abi ? d->abi : "?") +
               "; this library is " + plugin_abi + ")";
    return e;
  }
  try {
    backend_entry loaded = d->entry();
    if (loaded.name != name || !loaded.enumerate) {
      e.reason = path + " provides backend '" + loaded.name + "', not '" + name + "'";
      return e;
    }
    loaded.available = true;
    loaded.plugin = path;
    return loaded;
  } catch (const std::exception& x) {
    e.reason = path + ": " + x.what();
    return e;
  }
}

}  // namespace

const std::vector<backend_entry>& backends() {
  static const std::vector<backend_entry> all = [] {
    std::vector<backend_entry> v;
#ifdef FPYGA_PLUGIN_XRT
    v.push_back(load_plugin("xrt", true));
#endif
#ifdef FPYGA_PLUGIN_OPENCL
    v.push_back(load_plugin("opencl", false));
#endif
    v.push_back(emu_backend());
    for (const auto& b : v) {
      if (b.available)
        fpyga::log(log_level::debug, "backend " + b.name + ": " + (b.plugin.empty() ? "built in" : b.plugin));
      else
        fpyga::log(log_level::info, "backend " + b.name + " not available: " + b.reason);
    }
    return v;
  }();
  return all;
}

void unsupported(std::string_view backend, std::string_view function) {
  throw not_supported_error(std::string(backend) + ": " + std::string(function) +
                            " is not supported by this backend");
}

std::string wait_for_runs(std::span<const std::shared_ptr<run_impl>> waitfor,
                          const std::function<bool()>& stopping) {
  std::string why;
  for (const auto& w : waitfor) {
    if (!w) continue;
    run_state s;
    while ((s = w->wait(std::chrono::milliseconds(20))) == run_state::queued ||
           s == run_state::running)
      if (stopping && stopping())
        return "its xclbin was unloaded before the runs it waited for completed";
    if (s == run_state::error && why.empty())
      why = "a run it was to wait for failed" +
            (w->error_message.empty() ? std::string() : ": " + w->error_message);
  }
  return why;
}

std::uint64_t next_buffer_serial() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void aligned_deleter::operator()(std::byte* p) const noexcept {
  if (mapped)
    ::munmap(p, mapped);
  else
    std::free(p);
}

bool host_can_back(std::uint64_t bytes, std::uint64_t* available) {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return true;
  std::uint64_t mem_available = 0, swap_free = 0;
  bool found = false;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kb = 0;
    if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
      mem_available = kb * 1024;
      found = true;
    } else if (std::sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
      swap_free = kb * 1024;
    }
  }
  std::fclose(f);
  if (!found) return true;
  if (available) *available = mem_available + swap_free;
  return bytes <= mem_available + swap_free;
}

namespace {
/// From here on, host memory is mapped rather than taken from the heap: its zero pages are
/// free until touched (no memset of gigabytes that may never be read), and it goes back to the
/// system at once when freed. Below it, the heap is faster.
constexpr std::size_t map_threshold = std::size_t(1) << 20;
/// Sizes from which host_can_back() is asked first (reading /proc/meminfo costs microseconds).
constexpr std::size_t check_threshold = std::size_t(64) << 20;
}  // namespace

host_memory allocate_host(std::size_t bytes) {
  constexpr std::size_t page = 4096;
  const std::size_t rounded = bytes == 0 ? page : (bytes + page - 1) / page * page;
  if (rounded < bytes) throw memory_error("host allocation of " + std::to_string(bytes) + " bytes overflows");
  if (rounded >= check_threshold) {
    std::uint64_t available = 0;
    if (!host_can_back(rounded, &available))
      throw memory_error("cannot allocate " + std::to_string(bytes) + " bytes of host memory: the host has " +
                         std::to_string(available) + " bytes available (RAM and swap)");
  }
  if (rounded >= map_threshold) {
    void* p = ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      throw memory_error("cannot map " + std::to_string(bytes) + " bytes of host memory: " + std::strerror(errno));
    return host_memory(static_cast<std::byte*>(p), aligned_deleter{rounded});
  }
  void* p = std::aligned_alloc(page, rounded);
  if (!p) throw memory_error("cannot allocate " + std::to_string(bytes) + " bytes of aligned host memory");
  std::memset(p, 0, rounded);
  return host_memory(static_cast<std::byte*>(p));
}

// ----------------------------------------------------------------------------------------------
// Buffers under runs and calls (see buffer_impl)

void run_impl::hold(std::vector<std::shared_ptr<buffer_impl>> buffers) {
  {
    std::lock_guard lock(holds_mutex_);
    if (!ended_) {
      held_ = std::move(buffers);
      return;
    }
  }
  for (auto& b : buffers)
    if (b->uses.fetch_sub(1) == 1 && b->program) b->program->drain_retired();
}

void run_impl::release_holds() noexcept {
  std::vector<std::shared_ptr<buffer_impl>> held;
  {
    std::lock_guard lock(holds_mutex_);
    if (ended_) return;
    ended_ = true;
    held.swap(held_);
  }
  for (auto& b : held)
    if (b->uses.fetch_sub(1) == 1 && b->program) b->program->drain_retired();
}

// ----------------------------------------------------------------------------------------------
// The gate: per-thread call slots and an asymmetric barrier
//
// A call stores its program in its thread's slot and then reads the program's `closing_` flag;
// unloading stores `closing_` and then reads every slot. Either side must see the other's store
// (Dekker). Instead of a full fence on every call, the rare side runs membarrier(), which makes
// every running thread of the process pass a full barrier: a call's compiler barrier then
// suffices (the technique of liburcu and folly's asymmetric barriers).

namespace {

std::atomic<call_slot*> all_slots{nullptr};

/// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), registered once; false where the kernel lacks it.
bool membarrier_ready() {
  static const bool ready = [] {
    constexpr int register_private_expedited = 1 << 4;
    return ::syscall(SYS_membarrier, register_private_expedited, 0, 0) == 0;
  }();
  return ready;
}

void heavy_barrier() noexcept {
  constexpr int private_expedited = 1 << 3;
  if (!light_side_fences && ::syscall(SYS_membarrier, private_expedited, 0, 0) == 0) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the call side fences itself then
}

/// Gives the slot back when its thread ends.
struct slot_owner {
  call_slot* slot = nullptr;
  ~slot_owner() {
    if (slot) {
      slot->inside.store(nullptr);
      slot->taken.store(false);
    }
  }
};
thread_local slot_owner owner;
thread_local call_slot* cached = nullptr;

[[gnu::noinline]] call_slot& register_this_thread() noexcept {
  for (call_slot* s = all_slots.load(); s; s = s->next) {
    bool free = false;
    if (!s->taken.load() && s->taken.compare_exchange_strong(free, true)) {
      owner.slot = cached = s;
      return *s;
    }
  }
  auto* s = new call_slot;  // never freed: other threads may be reading the list
  s->next = all_slots.load();
  while (!all_slots.compare_exchange_weak(s->next, s)) {
  }
  owner.slot = cached = s;
  return *s;
}

/// Threads inside `p` now (after the barrier that makes their slots visible).
std::size_t threads_inside(const program_impl* p) noexcept {
  heavy_barrier();
  std::size_t n = 0;
  for (call_slot* s = all_slots.load(); s; s = s->next)
    if (s->inside.load() == p) ++n;
  return n;
}

}  // namespace

bool light_side_fences = !membarrier_ready();

call_slot& this_thread_slot() noexcept {
  if (call_slot* s = cached) [[likely]]
    return *s;
  return register_this_thread();
}

std::size_t program_impl::calls_in_flight() const noexcept { return threads_inside(this); }

bool program_impl::close_gate() noexcept {
  closing_.store(true);
  if (threads_inside(this) != 0) {
    open_gate();
    return false;
  }
  return true;
}

void program_impl::reset_calls_after_fork() noexcept {
  for (call_slot* s = all_slots.load(); s; s = s->next) s->inside.store(nullptr);
}

bool program_impl::enter_slow(call_slot& slot, const program_impl* previous) noexcept {
  for (;;) {
    slot.inside.store(previous);
    // Closing: wait for the unload to happen (then refuse) or to be refused (then go on).
    if (released.load()) return false;
    std::this_thread::yield();
    slot.inside.store(this);
    light_barrier();
    if (!closing_.load()) return true;
  }
}

void program_impl::retire(std::shared_ptr<buffer_impl> b) {
  {
    std::lock_guard lock(retired_mutex_);
    retired_.push_back(std::move(b));
    retired_pending_.store(true);
  }
  drain_retired();
}

void program_impl::drain_retired() noexcept {
  if (!retired_pending_.load()) return;
  // A call inside may be using any of them: the next one to leave drains (~program_call).
  if (threads_inside(this) != 0) return;
  std::vector<std::shared_ptr<buffer_impl>> now;
  {
    std::lock_guard lock(retired_mutex_);
    auto keep = retired_.begin();
    for (auto& b : retired_) {
      if (b->uses.load() == 0)
        now.push_back(std::move(b));
      else
        *keep++ = std::move(b);
    }
    retired_.erase(keep, retired_.end());
    retired_pending_.store(!retired_.empty());
  }
  for (auto& b : now) {
    try {
      b->release_device();
    } catch (...) {
      // Releasing device memory throws only for handles already gone (an unloaded program).
    }
  }
}

memory_info default_bank(std::uint64_t size_bytes) {
  memory_info m;
  m.index = 0;
  m.type = memory_type::ddr4;
  m.used = true;
  m.base_address = 0;
  m.size_bytes = size_bytes;
  m.tag = "bank0";
  return m;
}

std::uint32_t kernel_impl::read_register(unsigned, std::uint32_t) {
  unsupported("this backend", "read_register");
}

void kernel_impl::write_register(unsigned, std::uint32_t, std::uint32_t) {
  unsupported("this backend", "write_register");
}

}  // namespace fpyga::backend
