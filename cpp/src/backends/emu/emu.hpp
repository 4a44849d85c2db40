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

/// Address ranges of one bank: first-fit over a free list, 4 KiB granules.
class bank_allocator {
 public:
  bank_allocator(std::uint64_t base, std::uint64_t size);
  /// Returns the device address, or nullopt when no free range is large enough.
  std::optional<std::uint64_t> allocate(std::uint64_t bytes);
  void release(std::uint64_t address, std::uint64_t bytes);
  std::uint64_t free_bytes() const;
  std::uint64_t largest_free() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::uint64_t> free_;  ///< address -> length
};

/// How one argument reaches the kernel function under the SysV x86-64 ABI.
enum class pass : std::uint8_t {
  pointer,  ///< global memory: the device-side address of the buffer (+ offset)
  value,    ///< C scalar in a register, from bound_arg::bits
  by_ref,   ///< ap_int/ap_uint/ap_fixed: not trivially copyable, so g++ passes the address of a
            ///< temporary copy ("invisible reference"); we pass the address of a scratch copy
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

class emu_run;

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

  emu_program& prog;
  kernel_entry& k;
  std::string name;
  std::uint64_t base_address;
  /// Runs queued or executing on this CU, direct calls included: 0 means idle.
  std::atomic<unsigned> pending{0};

 private:
  void worker_loop();
  bool stopping();
  void start_from_registers(bool restarting = false);
  /// ap_start with auto_restart: rerun the kernel from the registers until the host clears
  /// auto_restart (or the xclbin is unloaded), on a thread of its own.
  void start_auto_restart();
  void auto_restart_loop();

  std::mutex exec_;  ///< one kernel execution at a time on a CU
  std::mutex regs_mutex_;
  std::vector<std::uint32_t> regs_;
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<emu_run>> queue_;
  bool stopping_ = false;
  std::thread worker_;
  std::mutex restart_mutex_;  ///< guards restart_thread_
  std::thread restart_thread_;
  std::atomic<bool> restarting_{false};  ///< the auto-restart loop is running
  std::atomic<bool> stop_restart_{false};
};

/// A run started with start(): owns a copy of its arguments.
class emu_run : public run_impl {
 public:
  run_state state() const override { return state_.load(std::memory_order_acquire); }
  run_state wait(std::optional<std::chrono::nanoseconds> timeout) override;
  void finish(run_state s);

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
  emu_buffer(std::shared_ptr<emu_program> prog, std::uint64_t address, std::size_t bytes, unsigned bank);
  ~emu_buffer() override;
  void sync_to_device(std::size_t bytes, std::size_t offset) override;
  void sync_from_device(std::size_t bytes, std::size_t offset) override;
  std::uint64_t device_address() const override { return address; }
  void release_device() override;

  std::uint64_t address = 0;
  std::byte* device = nullptr;  ///< device memory: only kernels and syncs touch it
  std::size_t device_bytes = 0;  ///< allocated (rounded to 4 KiB)

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
  std::atomic<std::size_t> in_flight{0};
  bool check_sync = false;

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
