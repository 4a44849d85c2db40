// The emulated device. Runs HLS C++ kernels compiled to an ELF shared object (the BITSTREAM of a
// sw_emu xclbin) in this process: the .so is loaded from memory, every kernel symbol is resolved
// at load, and calls go through libffi with argument types from the metadata. Device memory is
// separate from host memory; compute units run on the calling thread (call) or on one worker
// thread each (start), and expose an AXI-lite register map.
#pragma once

#include <ffi.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.hpp"

namespace fpyga::backend {
/// Delivers the sync checker's queued warnings through fpyga::warn (also fpyga::flush_warnings).
void emu_flush_pending_warnings();
}  // namespace fpyga::backend

namespace fpyga::backend::emu {

class emu_program;

/// One bank of device memory: address ranges (first-fit over a free list, 4 KiB granules) and
/// the memory itself, as a card has it. The bank is one anonymous mapping of its own, reserved
/// at its first allocation without committing host memory (MAP_NORESERVE: a page costs memory
/// when first touched), with a guard page at each end. Buffers are placed inside it, so a kernel
/// that overruns its buffer writes into the bank (another buffer, or free space), as on a card,
/// never into host memory; one that runs off the bank faults in a guard page, which fails its run
/// (see guarded_invoke).
class bank_allocator {
 public:
  bank_allocator(std::uint64_t base, std::uint64_t size, std::string tag);
  ~bank_allocator();
  bank_allocator(const bank_allocator&) = delete;
  bank_allocator& operator=(const bank_allocator&) = delete;
  /// Returns the device address, or nullopt when no free range is large enough.
  std::optional<std::uint64_t> allocate(std::uint64_t bytes);
  void release(std::uint64_t address, std::uint64_t bytes);
  std::uint64_t free_bytes() const;
  std::uint64_t largest_free() const;
  /// The host address of device address `address` of this bank (mapping the bank at the first
  /// call). @throws memory_error when the address space cannot hold the bank.
  std::byte* view(std::uint64_t address);
  /// Whether `p` lies in this bank's mapping, guard pages included. Async-signal-safe.
  bool maps(const void* p) const noexcept;
  /// The device address of host address `p` (which maps() accepts).
  std::uint64_t address_of(const void* p) const noexcept;
  /// Gives device memory back to the host: its pages read as zero again.
  void decommit(std::byte* p, std::uint64_t bytes) const noexcept;

  /// Isolated mode (emu_isolated.hpp): the bank is shared memory (a memfd) that helper
  /// processes map at the same address. Set before the first view().
  bool shared = false;
  int shared_fd() const noexcept { return fd_; }
  std::byte* mapping() const noexcept { return map_.load(); }
  std::size_t mapping_bytes() const noexcept { return map_bytes_.load(); }

  const std::uint64_t base;
  const std::uint64_t size;
  const std::string tag;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::uint64_t> free_;  ///< address -> length
  std::mutex map_mutex_;
  std::atomic<std::byte*> map_{nullptr};  ///< the mapping: a guard page, the bank, a guard page
  std::atomic<std::size_t> map_bytes_{0};
  int fd_ = -1;  ///< shared: the memfd behind the mapping
};

/// How one argument reaches the kernel function under the SysV x86-64 ABI.
enum class pass : std::uint8_t {
  pointer,  ///< global memory: the device-side address of the buffer (+ offset)
  value,    ///< C scalar in a register, from bound_arg::bits
  by_ref,   ///< ap_int/ap_uint/ap_fixed: not trivially copyable, so g++ passes the address of a
            ///< temporary copy ("invisible reference"); we pass the address of a scratch copy
  stream,   ///< hls::stream<T>&: the address of its connection's FIFO (emu_stream.hpp)
};

/// A kernel function of the loaded .so with its prepared libffi call interface.
struct kernel_entry {
  const kernel_info* info = nullptr;
  void (*fn)() = nullptr;
  ffi_cif cif{};
  std::vector<ffi_type*> types;
  std::vector<pass> passing;
  std::vector<std::size_t> storage;  ///< by_ref: bytes of the copy
  std::vector<bool> reads_only;      ///< pointer to const: the kernel only reads it
  std::size_t by_ref_bytes = 0;      ///< scratch a call needs for by_ref copies (8-aligned slots)
  std::uint32_t register_bytes = 0;  ///< size of the CU register file
};

/// Calls the kernel with `values` (libffi argument pointers).
void invoke(kernel_entry& k, void** values);

/// Where a kernel touched a guard page of emu's device memory.
struct kernel_fault {
  const void* address = nullptr;
  bool write = false;
};
/// invoke() on this thread, abandoning the kernel if it touches a guard page of `prog`'s banks
/// (the ends of a bank; with FPYGA_EMU_CHECK_BOUNDS=1 also the pages around each buffer): then
/// returns false with `fault` set. A SIGSEGV handler, installed at the first emu load and
/// passing every other fault on to the handler before it, jumps back out of the kernel. What the
/// kernel left half done (its own statics, memory it allocated) stays so; emu's own state is
/// consistent, as no emu lock or allocation happens inside the kernel.
bool guarded_invoke(const emu_program& prog, kernel_entry& k, void** values, kernel_fault& fault);
void install_fault_handler();

class emu_run;
class isolated_cu;
class stream_design;

/// One compute unit: its register file, an execution lock, and a worker thread for start().
class emu_cu {
 public:
  emu_cu(emu_program& prog, kernel_entry& k, std::string name, std::uint64_t base);
  ~emu_cu();
  /// Refuses new runs and fails a queued run still waiting for its dependencies; returns at once.
  void request_stop();
  /// request_stop(), then joins the worker (after the run it is executing, if any).
  void stop_worker();

  /// Runs the kernel on the calling thread (the caller holds no lock). `restarting`: one pass
  /// of an auto-restart loop (ap_start stays set and ap_idle clear between passes).
  void execute(std::span<const bound_arg> args, bool restarting = false);
  void enqueue(std::shared_ptr<emu_run> r);

  std::uint32_t read_register(std::uint32_t offset);
  void write_register(std::uint32_t offset, std::uint32_t value);

  /// fork() support (pthread_atfork): the parent's side holds the CU's short locks across the
  /// fork; in the child, where only the forking thread exists, the worker, the auto-restart
  /// loop and the kernels they ran are gone: their runs fail, and the next start makes a worker.
  void before_fork();
  void after_fork_parent();
  void after_fork_child();

  emu_program& prog;
  kernel_entry& k;
  std::string name;
  std::uint64_t base_address;
  /// Runs queued or executing on this CU, direct calls included: 0 means idle.
  std::atomic<unsigned> pending{0};
  /// Per argument, the FIFO object of a stream argument (null elsewhere; emu_stream.hpp).
  std::vector<void*> stream_args;
  bool free_running = false;  ///< ap_ctrl_none: runs from load to unload, never called
  /// Isolated mode: the helper process that runs this CU's kernel (null in-process).
  std::unique_ptr<isolated_cu> isolated;

 private:
  void worker_loop();
  bool stopping();
  void start_from_registers(bool restarting = false);
  /// ap_start with auto_restart: rerun the kernel from the registers until the host clears
  /// auto_restart (or the xclbin is unloaded), on a thread of its own.
  void start_auto_restart();
  void auto_restart_loop();
  /// The message of a run abandoned at a guard page.
  std::string describe_fault(std::span<const bound_arg> args, const kernel_fault& fault) const;

  std::mutex exec_;  ///< one kernel execution at a time on a CU
  std::mutex regs_mutex_;
  std::vector<std::uint32_t> regs_;
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<emu_run>> queue_;
  std::shared_ptr<emu_run> current_;  ///< the run the worker executes (under queue_mutex_)
  bool stopping_ = false;
  std::thread worker_;
  /// The auto-restart loop runs on a detached thread of its own, which says when it has ended
  /// (under restart_mutex_), so stopping waits for it and no finished thread is left unjoined.
  std::mutex restart_mutex_;
  std::condition_variable restart_cv_;
  bool restart_loop_live_ = false;  ///< guarded by restart_mutex_
  std::atomic<bool> restarting_{false};  ///< the auto-restart loop is running
  std::atomic<bool> stop_restart_{false};
};

/// A run started with start(): owns a copy of its arguments.
class emu_run : public run_impl {
 public:
  run_state state() const override { return state_.load(std::memory_order_acquire); }
  run_state wait(std::optional<std::chrono::nanoseconds> timeout) override;
  void finish(run_state s);
  /// In a forked child: its lock may have been held by a thread that does not exist there.
  void reset_locks_after_fork();

  std::vector<bound_arg> args;
  std::vector<std::byte> wide_storage;
  std::vector<std::shared_ptr<run_impl>> waitfor;
  emu_cu* cu = nullptr;

 private:
  std::atomic<run_state> state_{run_state::queued};
  std::mutex mutex_;
  std::condition_variable cv_;
};

class emu_buffer : public buffer_impl {
 public:
  /// Places the buffer in the bank range [range_address, +range_bytes) that `prog` allocated.
  emu_buffer(std::shared_ptr<emu_program> prog, std::uint64_t range_address, std::uint64_t range_bytes,
             std::size_t bytes, unsigned bank);
  ~emu_buffer() override;
  void sync_to_device(std::size_t bytes, std::size_t offset) override;
  void sync_from_device(std::size_t bytes, std::size_t offset) override;
  std::uint64_t device_address() const override { return address; }
  void release_device() override;

  std::uint64_t address = 0;     ///< device address of its first byte
  std::byte* device = nullptr;   ///< its bytes in the bank's mapping: only kernels and syncs touch them
  std::uint64_t range_address = 0;  ///< the bank range it holds (guard pages included)
  std::uint64_t range_bytes = 0;
  /// FPYGA_EMU_CHECK_BOUNDS: the inaccessible pages just before and just after its bytes.
  std::byte* guard_before = nullptr;
  std::byte* guard_after = nullptr;

  // Sync checker state (FPYGA_EMU_CHECK_SYNC=1 only).
  std::vector<std::byte> shadow;  ///< host bytes as of the last moment host and device agreed
  int watch_slot = -1;            ///< armed page watch (kernel results the host has not fetched)
  std::string written_by;         ///< the kernel and CU that last changed the device memory

  emu_program& prog() const;
};

class emu_kernel : public kernel_impl {
 public:
  emu_kernel(std::shared_ptr<emu_program> prog, kernel_entry& k, std::vector<emu_cu*> cus);
  void call(std::span<const bound_arg> args, std::uint64_t cu_mask) override;
  std::shared_ptr<run_impl> start(std::span<const bound_arg> args, std::uint64_t cu_mask,
                                  std::span<const std::shared_ptr<run_impl>> waitfor) override;
  std::uint32_t read_register(unsigned cu, std::uint32_t offset) override;
  void write_register(unsigned cu, std::uint32_t offset, std::uint32_t value) override;

 private:
  void refuse_free_running(std::uint64_t cu_mask) const;
  std::shared_ptr<emu_program> prog_;
  kernel_entry& k_;
  std::vector<emu_cu*> cus_;
};

/// A loaded sw_emu .so with its banks, kernels and compute units.
class emu_program : public program_impl {
 public:
  emu_program() = default;
  ~emu_program() override;
  std::shared_ptr<buffer_impl> allocate(host_memory host, std::size_t bytes, unsigned memory_index) override;
  std::shared_ptr<kernel_impl> open_kernel(const kernel_info& kernel, std::vector<compute_unit> cus) override;
  std::size_t runs_in_flight() const override { return in_flight.load(); }
  /// From the bank's allocator: the bytes it holds and the buffers placed in it.
  memory_usage usage(unsigned memory_index) override;
  void release() override;

  /// Loads the .so, resolves and types every kernel, and creates the compute units.
  void load(const std::string& path);

  /// The buffer holding device address `address` (for pointers written to registers).
  emu_buffer* find_buffer(std::uint64_t address, std::size_t* offset);

  std::string source;
  void* library = nullptr;
  int memfd = -1;
  std::vector<std::unique_ptr<bank_allocator>> banks;
  std::map<std::string, kernel_entry> entries;
  std::vector<std::unique_ptr<emu_cu>> cus;
  /// The FIFOs and free-running units of its stream connections (null without streams).
  std::unique_ptr<stream_design> streams;
  std::atomic<std::size_t> in_flight{0};
  bool check_sync = false;
  /// FPYGA_EMU_CHECK_BOUNDS=1: guard pages around every buffer; a kernel touching one fails its
  /// run with the argument and offset (guarded_invoke).
  bool check_bounds = false;
  /// FPYGA_EMU_ISOLATE=1: kernels run in helper processes, one per CU (emu_isolated.hpp).
  bool isolate = false;
  /// Whether `p` lies in one of its banks' mappings. Async-signal-safe.
  bool maps(const void* p) const noexcept;

  std::shared_mutex buffers_mutex;
  std::map<std::uint64_t, emu_buffer*> buffers;  ///< by device address
};

// Sync checker (emu_sync_check.cpp).
namespace sync_check {
/// Before a kernel runs: warns for inputs whose host memory changed since the last sync_to_device.
void before_kernel(const emu_cu& cu, std::span<const bound_arg> args);
/// After a kernel ran: watches host pages of buffers whose device memory the kernel changed.
void after_kernel(const emu_cu& cu, std::span<const bound_arg> args);
void on_sync_to_device(emu_buffer& b, std::size_t bytes, std::size_t offset);
void on_sync_from_device(emu_buffer& b, std::size_t bytes, std::size_t offset);
/// Before the host memory is read by fpyga itself or freed: stops watching, silently.
void disarm(emu_buffer& b);
}  // namespace sync_check

}  // namespace fpyga::backend::emu
