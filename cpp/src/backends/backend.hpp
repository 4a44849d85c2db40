// The interface every backend (emu, xrt, opencl) implements. Public types are handles over
// these; users never see them. Every method throws an fpyga::error on failure; optional
// features default to throwing not_supported_error naming the function.
//
// Division of work: the core (cpp/src/*.cpp) validates every call at the boundary (argument
// count and kinds, scalar ranges, banks, freed buffers, devices) and converts scalars to their
// declared C type before a backend sees them, so backends receive only well-formed requests.
// The one exception is kernel_impl::one_pass_call, an optional synchronous call that checks the
// arguments itself, with the core's own inline checks (core_state.hpp), in the same pass that
// sets them, and hands anything else back to the core.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fpyga/device_info.hpp"
#include "fpyga/error.hpp"
#include "fpyga/kernel.hpp"
#include "fpyga/xclbin.hpp"

namespace fpyga {
struct kernel_state;
}

namespace fpyga::backend {

class device_impl;
class program_impl;
struct call_slot;

/// Throws not_supported_error("<backend>: <function> is not supported").
[[noreturn]] void unsupported(std::string_view backend, std::string_view function);

/// Host memory the core allocates (4096-byte aligned) and owns: from the heap when small, else
/// an anonymous mapping of `mapped` bytes, whose zero pages cost nothing until touched.
struct aligned_deleter {
  std::size_t mapped = 0;
  void operator()(std::byte* p) const noexcept;
};
using host_memory = std::unique_ptr<std::byte, aligned_deleter>;
/// Allocates `bytes` (rounded up to 4096) aligned to 4096, zero-filled. @throws memory_error,
/// also when the host could not back that many bytes (RAM and swap, see host_can_back).
host_memory allocate_host(std::size_t bytes);
/// Whether `bytes` more would fit in the memory the host has available (MemAvailable + free
/// swap, read from /proc/meminfo; true when it cannot be read). Sets `available` when given.
bool host_can_back(std::uint64_t bytes, std::uint64_t* available = nullptr);

/// A number no other buffer of this process has (addresses may be reused after a free).
std::uint64_t next_buffer_serial() noexcept;

/// Device side of a buffer. The core owns the host memory (in `host`) and hands its pointer to
/// the backend, which maps or copies it (XRT user-pointer bo, CL_MEM_USE_HOST_PTR, emu copy).
///
/// Lifetime under runs: a started run holds a reference to each buffer it was given (so `del`
/// never frees memory a run uses) and counts in `uses` until it ends; a synchronous call is
/// covered by its program's gate (program_impl::enter). buffer::free() marks the buffer freed at
/// once (new calls refuse it) and hands it to program_impl::retire, which releases the device
/// memory when no run and no call can touch it any more, as XRT keeps a bo alive under a run.
class buffer_impl {
 public:
  virtual ~buffer_impl() = default;
  /// Copies [offset, offset+bytes) of host memory to the device; the core checked the range.
  virtual void sync_to_device(std::size_t bytes, std::size_t offset) = 0;
  virtual void sync_from_device(std::size_t bytes, std::size_t offset) = 0;
  virtual std::uint64_t device_address() const = 0;
  /// Releases the device memory (buffer::free); the host memory stays until destruction.
  virtual void release_device() = 0;

  host_memory host;
  std::size_t size = 0;
  unsigned memory_index = 0;
  std::shared_ptr<program_impl> program;  ///< the program whose bank holds it
  std::atomic<bool> freed{false};
  /// Started runs that were given this buffer and have not ended.
  std::atomic<std::uint32_t> uses{0};
  /// Names this buffer in backends' argument caches (passed as bound_arg::bits).
  const std::uint64_t serial = next_buffer_serial();
};

/// A scalar or buffer argument after the core's validation and conversion.
struct bound_arg {
  buffer_impl* buffer = nullptr;  ///< global args
  std::size_t offset = 0;         ///< byte offset into `buffer`
  /// Scalars up to 64 bits: the declared type's little-endian storage. Global args:
  /// `buffer->serial`, copied so an argument cache compares one word without a pointer chase.
  std::uint64_t bits = 0;
  std::span<const std::byte> wide;  ///< scalars wider than 64 bits (valid for the call only)
};

/// One compute unit of a kernel, as the xclbin describes it.
struct compute_unit {
  unsigned ip_index = 0;  ///< IP_LAYOUT index
  std::string name;       ///< instance name
  std::uint64_t base_address = 0;
  control_protocol control = control_protocol::ap_ctrl_hs;
  /// For each argument (by position in kernel_info::args), the memory indices it reaches.
  std::vector<std::vector<unsigned>> arg_memories;
};

/// A started execution.
class run_impl {
 public:
  virtual ~run_impl() { release_holds(); }
  /// Set by the core's run::wait(): a run is waited on once.
  std::atomic<bool> waited{false};
  /// Why the run ended in run_state::error (set by the backend before it reports the state).
  std::string error_message;
  virtual run_state state() const = 0;
  /// Blocks until done or `timeout` passes; returns the state then.
  virtual run_state wait(std::optional<std::chrono::nanoseconds> timeout) = 0;

  /// The core, once start() returned: the buffers this run was given, each already counted in
  /// its `uses`. Kept (and counted) until release_holds(); at once if the run already ended.
  void hold(std::vector<std::shared_ptr<buffer_impl>> buffers);
  /// The run has ended (or is destroyed): its buffers' uses drop, and device memory freed under
  /// it is released. Backends that see the end call it (emu's worker, before waking waiters);
  /// the core calls it when a wait or a state query sees the end. Idempotent.
  void release_holds() noexcept;

 private:
  std::mutex holds_mutex_;
  std::vector<std::shared_ptr<buffer_impl>> held_;
  bool ended_ = false;
};

/// Waits for every run of `waitfor` (runs another runtime cannot wait on for the backend), in
/// 20 ms slices so that `stopping` (when given) can cut it short. Returns why the run that waits
/// must not start: "" when all completed, else the first failure, or the unload when `stopping`
/// turned true first.
std::string wait_for_runs(std::span<const std::shared_ptr<run_impl>> waitfor,
                          const std::function<bool()>& stopping = {});

/// A kernel over a set of compute units. `cu_mask` bit i selects `cus[i]`: the core passes the
/// CUs whose connectivity fits the buffers given (at least one bit set).
class kernel_impl {
 public:
  virtual ~kernel_impl() = default;
  /// Runs and waits; the backend may run on the calling thread.
  virtual void call(std::span<const bound_arg> args, std::uint64_t cu_mask) = 0;
  /// Queues on an idle CU (after `waitfor` complete) and returns at once. Must copy what it keeps
  /// of `args` (wide scalars).
  virtual std::shared_ptr<run_impl> start(std::span<const bound_arg> args, std::uint64_t cu_mask,
                                          std::span<const std::shared_ptr<run_impl>> waitfor) = 0;
  virtual std::uint32_t read_register(unsigned cu, std::uint32_t offset);
  virtual void write_register(unsigned cu, std::uint32_t offset, std::uint32_t value);

  /// A call in one pass over the caller's arguments: checks each with the core's inline checks
  /// (buffer_fits, integer_bits in core_state.hpp), sets what changed, runs and waits. Returns
  /// false, having started nothing, for anything else (another kind of argument, a failed check,
  /// a busy or differently masked run): the core then takes its full path, which checks again
  /// and reports errors. It saves building bound_args and a second loop over them.
  using one_pass_fn = bool (*)(kernel_impl&, const fpyga::kernel_state&,
                               std::span<const arg_value>);
  /// This backend's one-pass call, or null (the default: the core always binds, then call()).
  virtual one_pass_fn one_pass_call() const { return nullptr; }

  kernel_info info;
  std::vector<compute_unit> cus;
};

/// An xclbin loaded on a device.
class program_impl : public std::enable_shared_from_this<program_impl> {
 public:
  virtual ~program_impl() = default;
  /// Creates the device side of a buffer of `bytes` in bank `memory_index` (checked by the core)
  /// over `host` (4096-aligned, at least `bytes` rounded up to 4096), which it takes over.
  /// @throws memory_error when the bank is full.
  virtual std::shared_ptr<buffer_impl> allocate(host_memory host, std::size_t bytes,
                                                unsigned memory_index) = 0;
  /// Opens `kernel` restricted to `cus` (a non-empty subset of its compute units).
  virtual std::shared_ptr<kernel_impl> open_kernel(const kernel_info& kernel,
                                                   std::vector<compute_unit> cus) = 0;
  /// Number of runs started and not yet completed (release refuses while non-zero).
  virtual std::size_t runs_in_flight() const = 0;
  /// Unloads; afterwards kernels and buffers of this program raise "unloaded" errors.
  virtual void release() = 0;
  /// Device memory in use in bank `memory_index` (checked by the core), saying where the
  /// numbers come from (memory_usage::source). The default throws not_supported_error.
  virtual memory_usage usage(unsigned memory_index);

  std::shared_ptr<device_impl> device;
  xclbin bin;
  /// MEM_TOPOLOGY, or a single default bank where the xclbin has none (old sw_emu builds).
  std::vector<memory_info> memories;
  std::atomic<bool> released{false};

  // The gate: host calls inside this program (call(), and start() while it hands its run to the
  // backend) mark themselves in their thread's call_slot; unloading closes the gate first, then
  // looks for threads inside. A call that finds it closing waits for the outcome: refused (runs
  // in flight), it goes on; unloaded, it raises "unloaded". The call path pays two plain stores
  // and a load (see program_call); the rare side (unload, free) pays a process-wide barrier.
  /// Threads inside now.
  std::size_t calls_in_flight() const noexcept;
  /// Closes the gate for unloading; false (gate left open) while calls are inside.
  bool close_gate() noexcept;
  /// Closes it for good, calls inside or not (the program is being unloaded).
  void shut_gate() noexcept { closing_.store(true); }
  /// Reopens it (the unload was refused).
  void open_gate() noexcept { closing_.store(false); }
  /// In a forked child: calls of the parent's other threads do not exist there.
  static void reset_calls_after_fork() noexcept;
  /// buffer::free() of one of its buffers (already marked freed): released now, or once the
  /// runs and calls that may use it have ended.
  void retire(std::shared_ptr<buffer_impl> b);
  /// Releases retired buffers no run or call uses any more.
  void drain_retired() noexcept;

 private:
  friend class program_call;
  /// program_call's way in when the gate is closing: false once the program is unloaded.
  bool enter_slow(call_slot& slot, const program_impl* previous) noexcept;
  std::atomic<bool> closing_{false};
  std::atomic<bool> retired_pending_{false};
  std::mutex retired_mutex_;
  std::vector<std::shared_ptr<buffer_impl>> retired_;
};

/// Which program one thread is calling into (null: none). One per thread that ever called, kept
/// in a list that only grows (a thread's slot is reused by a later thread).
struct call_slot {
  std::atomic<const program_impl*> inside{nullptr};
  std::atomic<bool> taken{true};
  call_slot* next = nullptr;
};
/// This thread's slot (registered at its first call).
call_slot& this_thread_slot() noexcept;
/// Where the membarrier system call is missing: the call path fences itself (set once, early).
extern bool light_side_fences;

/// Orders a call_slot store before the loads that follow it, against the rare side's
/// process-wide barrier (membarrier): a compiler barrier, or a full fence without membarrier.
inline void light_barrier() noexcept {
  if (light_side_fences) [[unlikely]]
    std::atomic_thread_fence(std::memory_order_seq_cst);
  else
    std::atomic_signal_fence(std::memory_order_seq_cst);
}

/// A host call inside `program` (see program_impl's gate), for the length of a scope.
class program_call {
 public:
  explicit program_call(program_impl& p) noexcept
      : p_(p), slot_(this_thread_slot()), previous_(slot_.inside.load(std::memory_order_relaxed)) {
    slot_.inside.store(&p, std::memory_order_relaxed);
    light_barrier();
    entered_ = !p.closing_.load(std::memory_order_relaxed) || p.enter_slow(slot_, previous_);
  }
  ~program_call() {
    if (!entered_) return;
    slot_.inside.store(previous_, std::memory_order_release);
    light_barrier();
    if (p_.retired_pending_.load(std::memory_order_relaxed)) [[unlikely]]
      p_.drain_retired();
  }
  program_call(const program_call&) = delete;
  program_call& operator=(const program_call&) = delete;
  /// False when the program was unloaded (the caller raises its "unloaded" error).
  explicit operator bool() const noexcept { return entered_; }

 private:
  program_impl& p_;
  call_slot& slot_;
  const program_impl* previous_;
  bool entered_ = false;
};

/// One device of a backend.
class device_impl : public std::enable_shared_from_this<device_impl> {
 public:
  virtual ~device_impl() = default;
  virtual std::string name() const = 0;
  virtual std::string backend_name() const = 0;
  virtual unsigned index() const = 0;
  virtual std::string bdf() const { return {}; }
  virtual std::string shell() const { return {}; }
  /// False for devices that build OpenCL C sources only (never an xclbin).
  virtual bool loads_xclbin() const { return true; }
  /// Its sensors now. The default measures nothing and says so in `note`.
  virtual sensor_readings read_sensors() const;
  /// The runtime's highest clock frequency, where it reports one.
  virtual std::optional<unsigned long> max_clock_frequency_mhz() const { return std::nullopt; }
  /// Loads a parsed xclbin (read from `path`), replacing what was loaded.
  virtual std::shared_ptr<program_impl> load(const xclbin& bin, const std::string& path) = 0;
  /// Whether load() can run while the current program stays loaded. Then the core releases the
  /// old program only once the new one has loaded, so a failed load loses nothing. A card holds
  /// one image: there the old program is released first, as XRT itself requires.
  virtual bool loads_beside_current() const { return false; }
  /// The program loaded now, or nullptr.
  std::shared_ptr<program_impl> current;
};

/// fpyga's own count of the device memory in bank `memory_index`, where the runtime reports
/// none: the buffers of `buffers` (a backend's weak handles, each with device_bytes(), 0 once
/// released) that hold device memory there.
template <class Buffer>
memory_usage count_own_buffers(const std::vector<std::weak_ptr<Buffer>>& buffers,
                               unsigned memory_index) {
  memory_usage u;
  u.source = "fpyga";
  for (const auto& w : buffers)
    if (auto b = w.lock(); b && b->memory_index == memory_index)
      if (const std::size_t n = b->device_bytes()) {
        u.used_bytes += n;
        ++u.buffers;
      }
  return u;
}

/// The bank used when an xclbin has no MEM_TOPOLOGY (Vitis sw_emu builds of 2019, OpenCL C
/// overlays): index 0, tag "bank0", used, DDR4, at address 0, of `size_bytes`.
memory_info default_bank(std::uint64_t size_bytes = 16ull << 30);

/// A backend's `enumerate`: the devices `Discover` finds, found once. Devices keep state (the
/// loaded program), so every enumeration returns the same objects. Never destroyed: a device and
/// its program refer to each other, and tearing a runtime's handles, or emu's threads and kernel
/// libraries, down during static destruction races the rest of the process's teardown.
/// Reachable from here, they are not leaks.
template <std::vector<std::shared_ptr<device_impl>> (*Discover)()>
std::vector<std::shared_ptr<device_impl>> devices_once() {
  static const auto* devices = new std::vector<std::shared_ptr<device_impl>>(Discover());
  return *devices;
}

/// A backend as the registry sees it. Backends return {name, hardware, enumerate}; the registry
/// fills in the rest.
struct backend_entry {
  using enumerate_fn = std::vector<std::shared_ptr<device_impl>> (*)();
  backend_entry() = default;
  backend_entry(std::string n, bool hw, enumerate_fn e)
      : name(std::move(n)), hardware(hw), enumerate(e) {}

  std::string name;
  bool hardware = false;  ///< hardware backends come before emu in the default-device order
  /// Devices present now; never throws for "no driver" (returns none). Null when unavailable.
  enumerate_fn enumerate = nullptr;
  /// False when its plugin could not be loaded (see backends/plugin.hpp); `reason` says why.
  bool available = true;
  std::string reason;
  /// The plugin file it came from ("" for emu, which is part of libfpyga).
  std::string plugin;
};

/// Backends of this build, hardware first (xrt, opencl), emu last; plugins are loaded at the
/// first call, and those that failed to load are listed with available = false.
const std::vector<backend_entry>& backends();

}  // namespace fpyga::backend
