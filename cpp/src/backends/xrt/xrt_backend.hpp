// The XRT backend: fpyga's backend interface over XRT's native C++ API (xrt::device, xrt::xclbin,
// xrt::bo, xrt::kernel, xrt::run from libxrt_coreutil). Internal: the classes are declared here
// so the backend's tests can look at what XRT received (bo groups, run packets).
#pragma once

#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.hpp"

namespace fpyga::backend::xrtb {

/// Prepares XRT's environment once, before XRT's first call: when XILINX_XRT is unset, points it
/// at the install holding libxrt_coreutil (a private directory whose `lib` links to Debian's
/// multiarch directory). Returns why XRT cannot be used here, or "" when it can.
const std::string& prepare_environment();

/// True when XCL_EMULATION_MODE=noop (XRT's shim that accepts everything and runs nothing).
bool noop_mode();

class xrt_device;
class xrt_program;

/// A buffer as an xrt::bo over fpyga's 4 KiB-aligned host memory (user-pointer bo).
class xrt_buffer final : public buffer_impl {
 public:
  xrt_buffer(std::shared_ptr<xrt_program> prog, host_memory mem, std::size_t bytes, unsigned bank);
  void sync_to_device(std::size_t bytes, std::size_t offset) override;
  void sync_from_device(std::size_t bytes, std::size_t offset) override;
  std::uint64_t device_address() const override;
  void release_device() override;

  /// The XRT buffer object (empty once released).
  const xrt::bo& bo() const { return bo_; }
  /// Device bytes its bo covers (whole pages) while it holds them, else 0 (memory usage).
  std::size_t device_bytes() const { return holds_device_.load() ? mapped_ : 0; }

 private:
  void check_usable(const char* what) const;
  xrt::bo bo_;
  std::size_t mapped_ = 0;
  std::atomic<bool> holds_device_{true};
};

/// A start that waits for other runs. XRT 2.13's native API has no run dependencies, so the
/// program's launcher thread starts the run once they have completed; the caller returns at once.
struct deferred_start {
  enum class phase : std::uint8_t { waiting, started, failed };
  std::atomic<phase> state{phase::waiting};
  std::string error;  ///< why it failed (written before `state` becomes failed)
  void finish(phase p, std::string why = {});
  /// Blocks until the run has left `waiting`, at most `timeout`; returns the phase then.
  phase wait(std::optional<std::chrono::nanoseconds> timeout);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
};

/// The thread that starts deferred runs, one per program, created at the first one. It holds
/// only what its jobs need (never the program), so a program may end while it runs.
class launcher {
 public:
  struct job {
    xrt::run run;  ///< arguments already set
    std::vector<std::shared_ptr<run_impl>> waitfor;
    std::shared_ptr<deferred_start> start;
  };
  static std::shared_ptr<launcher> create();
  void submit(job j);
  /// Jobs queued or being waited on: they count as runs in flight.
  std::size_t pending() const { return pending_.load(); }
  /// Fails the jobs still queued and the one waiting for its runs, then joins the thread
  /// (detaches it if called on it).
  void shutdown();

 private:
  static void loop(std::shared_ptr<launcher> self);
  bool stopping();
  std::weak_ptr<launcher> self_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  bool stop_ = false;
  std::atomic<std::size_t> pending_{0};
  std::thread thread_;
};

/// One reusable xrt::run with the arguments last set on it, so a call sets only what changed.
struct run_slot {
  xrt::run run;
  /// What the run holds for one argument: the buffer's serial and byte offset, or a scalar's
  /// bits and 0. `unset` (an offset no buffer has) marks an argument to set at the next call.
  struct cached_arg {
    static constexpr std::size_t unset = ~std::size_t{0};
    std::uint64_t key = 0;
    std::size_t offset = unset;
    void forget() { offset = unset; }
  };
  std::vector<cached_arg> args;
  std::vector<xrt::bo> sub_buffers;  ///< sub-bos for buffer arguments at an offset
  bool busy = false;
  /// Taken by a call or start that uses `run` outside the kernel's lock (set by acquire(),
  /// cleared under the lock when done): drop_shared() leaves such a run alone.
  bool in_use = false;
  /// Started by start(): counts as in flight while XRT says it runs.
  bool started = false;
  /// Set while a deferred start of this run waits: the slot is not reused before it launches.
  std::shared_ptr<deferred_start> deferred;
};

class xrt_kernel;

/// A started execution on one run slot; hands the slot back when destroyed.
class xrt_run final : public run_impl {
 public:
  xrt_run(std::shared_ptr<xrt_kernel> kernel, std::shared_ptr<run_slot> slot,
          std::shared_ptr<deferred_start> deferred = nullptr);
  ~xrt_run() override;
  run_state state() const override;
  run_state wait(std::optional<std::chrono::nanoseconds> timeout) override;

  /// The CU register map XRT sent for this run (ert_start_kernel_cmd payload after the CU masks).
  std::vector<std::uint32_t> register_map() const;
  /// The mandatory CU mask of the command XRT built.
  std::uint32_t cu_mask() const;
  /// The XRT run (a copy of the handle, taken under the kernel's lock: register access on another
  /// handle may empty the slot meanwhile; an empty run means it was dropped after finishing).
  xrt::run native() const;

 private:
  std::shared_ptr<xrt_kernel> kernel_;
  std::shared_ptr<run_slot> slot_;
  std::shared_ptr<deferred_start> deferred_;
  std::once_flag error_copied_;  ///< error_message is set from deferred_ once
};

/// A kernel over a set of compute units, as xrt::kernel objects (one per CU subset asked for).
class xrt_kernel final : public kernel_impl, public std::enable_shared_from_this<xrt_kernel> {
 public:
  xrt_kernel(std::shared_ptr<xrt_program> prog, const kernel_info& k, std::vector<compute_unit> cus);
  /// Takes its exclusive contexts off the program's count.
  ~xrt_kernel() override;
  void call(std::span<const bound_arg> args, std::uint64_t cu_mask) override;
  one_pass_fn one_pass_call() const override;
  std::shared_ptr<run_impl> start(std::span<const bound_arg> args, std::uint64_t cu_mask,
                                  std::span<const std::shared_ptr<run_impl>> waitfor) override;
  std::uint32_t read_register(unsigned cu, std::uint32_t offset) override;
  void write_register(unsigned cu, std::uint32_t offset, std::uint32_t value) override;

  /// XRT's kernel name for a CU subset: "vadd:{vadd_1,vadd_2}".
  std::string xrt_name(std::uint64_t cu_mask) const;
  /// Drops every XRT handle (the program was released).
  void drop();
  /// Gives back the shared CU contexts (reopened at the next call or start).
  void drop_shared();
  /// Gives back the exclusive CU contexts register access opened; returns how many.
  std::size_t drop_exclusive();
  /// Register map words of the last run this kernel started or called.
  std::vector<std::uint32_t> last_register_map() const;
  /// The CU mask of the command XRT built for that run.
  std::uint32_t last_cu_mask() const;
  /// Number of xrt::run objects created so far (reuse means this stays small).
  std::size_t runs_created() const { return runs_created_; }
  /// Runs this handle keeps track of (its pools): bounded by the most runs held at once, not by
  /// how many were ever started.
  std::size_t tracked_runs() const;

  void give_back(const std::shared_ptr<run_slot>& slot, std::uint64_t cu_mask);
  /// `slot.run`, copied under the lock drop_shared() takes to empty it.
  xrt::run run_of(const run_slot& slot) const;
  std::size_t in_flight() const;

 private:
  struct per_mask {
    xrt::kernel kernel;
    std::vector<std::shared_ptr<run_slot>> slots;
  };
  /// A free run slot for `cu_mask`, marked busy and in use (see run_slot::in_use).
  std::shared_ptr<run_slot> acquire(std::uint64_t cu_mask);
  /// Sets on the run what differs from what it holds.
  void bind(run_slot& slot, std::span<const bound_arg> args);
  [[gnu::noinline]] void reserve_fast(std::uint64_t cu_mask);
  /// `read(run)` of the last run this kernel started or called (default value when none).
  template <class F>
  auto on_last_run(F read) const;
  template <class F>
  bool run_reserved(F&& set_args);
  /// one_pass_call()'s function itself (`k` is an xrt_kernel): on the reserved run, under the
  /// fast claim.
  static bool call_one_pass(kernel_impl& k, const fpyga::kernel_state& st,
                            std::span<const arg_value> args);
  [[gnu::noinline]] void call_pooled(std::span<const bound_arg> args, std::uint64_t cu_mask);
  [[noreturn, gnu::noinline, gnu::cold]] void ended_badly(ert_cmd_state s) const;
  void set_arg(run_slot& slot, std::size_t i, const bound_arg& v);
  void check_usable(const char* what) const;
  /// A handle (not a reference: another thread may drop the map's entry meanwhile).
  xrt::kernel exclusive_kernel(unsigned cu, const char* what);

  std::shared_ptr<xrt_program> program_;
  /// What bind() reads of each argument, packed: its kind, and for scalars the bytes XRT copies
  /// into the register image (the declared size, at most 8).
  struct arg_layout {
    arg_kind kind;
    std::uint8_t bytes;
  };
  std::vector<arg_layout> layout_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, per_mask> by_mask_;
  std::map<unsigned, xrt::kernel> exclusive_;  ///< register access needs exclusive CU contexts
  std::shared_ptr<run_slot> last_;
  std::size_t runs_created_ = 0;

  // The synchronous call path takes no lock: one run slot reserved for call(), claimed with an
  // atomic flag (a concurrent call falls back to the pool). It serves one CU mask at a time.
  bool claim_fast() { return !fast_busy_.exchange(true, std::memory_order_acquire); }
  void release_fast() { fast_busy_.store(false, std::memory_order_release); }
  std::atomic<bool> fast_busy_{false};
  std::shared_ptr<run_slot> fast_slot_;
  std::uint64_t fast_mask_ = 0;
  /// The last run was on the reserved slot. Written by call() under the fast claim and by the
  /// others under mutex_, so atomic; read under both.
  std::atomic<bool> last_is_fast_{false};
};

/// An xclbin loaded on an XRT device.
class xrt_program final : public program_impl {
 public:
  std::shared_ptr<buffer_impl> allocate(host_memory host, std::size_t bytes,
                                        unsigned memory_index) override;
  std::shared_ptr<kernel_impl> open_kernel(const kernel_info& kernel,
                                           std::vector<compute_unit> cus) override;
  std::size_t runs_in_flight() const override;
  void release() override;
  /// XRT's memory report where the device gives one (a card), else fpyga's own count of this
  /// program's buffers (the noop shim answers no device queries).
  memory_usage usage(unsigned memory_index) override;
  ~xrt_program() override;
  /// Starts `j.run` once every run in `j.waitfor` has completed, on the launcher thread.
  void launch_later(launcher::job j);

  xrt_device& xdev() const;
  /// "<xclbin path>" for messages.
  std::string what() const;

  xrt::uuid uuid;
  std::string path;
  /// Exclusive CU contexts open for register access (any kernel handle of this program).
  std::atomic<int> exclusive_open{0};
  void release_shared_contexts();
  void release_exclusive_contexts();
  std::vector<std::shared_ptr<xrt_kernel>> live_kernels() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<xrt_kernel>> kernels_;
  std::vector<std::weak_ptr<xrt_buffer>> buffers_;
  std::shared_ptr<launcher> launcher_;
};

/// One XRT device (a card, or the noop shim's device).
class xrt_device final : public device_impl {
 public:
  xrt_device(unsigned index, xrt::device dev);
  std::string name() const override { return name_; }
  std::string backend_name() const override { return "xrt"; }
  unsigned index() const override { return index_; }
  std::string bdf() const override { return bdf_; }
  std::string shell() const override { return shell_; }
  std::shared_ptr<program_impl> load(const xclbin& bin, const std::string& path) override;
  /// From XRT's device information (electrical, thermal); empty with a note where XRT has none.
  sensor_readings read_sensors() const override;
  std::optional<unsigned long> max_clock_frequency_mhz() const override;

  xrt::device native;

 private:
  unsigned index_;
  std::string name_, bdf_, shell_;
  std::mutex load_mutex_;
};

/// Sensor readings from XRT's device information texts (xrt::info::device::electrical and
/// ::thermal, the JSON XRT writes: every value a string, absent sensors "is_present": "false").
/// Absent values stay absent; `why` (a query's failure) and XRT's first error go to `note`.
sensor_readings sensors_from_xrt_info(const std::string& electrical, const std::string& thermal,
                                      std::string why = {});
/// Bank `tag`'s use from XRT's memory report (xrt::info::device::memory); nullopt when the
/// report gives none.
std::optional<memory_usage> usage_from_xrt_info(const std::string& memory, const std::string& tag);

/// Maps XRT's command state to fpyga's.
run_state to_run_state(ert_cmd_state s);

}  // namespace fpyga::backend::xrtb
