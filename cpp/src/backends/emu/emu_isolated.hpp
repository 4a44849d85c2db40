// emu's isolated mode (FPYGA_EMU_ISOLATE=1, read when an overlay loads): each compute unit runs
// its kernel in a helper process of its own (fpyga-emu-host), as Vitis sw_emu runs its device
// model beside the host. A kernel that crashes (SIGSEGV, SIGILL, abort, exit) fails its run with
// an error naming the kernel and the signal; the host process lives on, and the next run starts a
// new helper. Banks are shared memory mapped at the same addresses in both processes, so buffers,
// syncs and the register map stay in the host and device addresses mean the same in the helper.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace fpyga::backend::emu {

class emu_program;
struct kernel_entry;
struct kernel_fault;

/// Whether FPYGA_EMU_ISOLATE asks for isolated mode.
bool isolation_requested();
/// Refuses, naming the kernel and argument, a design isolated mode cannot run (AXI streams
/// between kernels need both ends in one process).
void check_isolatable(const xclbin& bin, const std::string& path);
/// The helper executable: $FPYGA_EMU_HOST, else beside libfpyga, in its plugin directory
/// (<libdir>/fpyga, where a wheel may put it), else <prefix>/libexec/fpyga.
std::string helper_executable();

/// The helper process of one compute unit, started at load and again at the run after it ended.
class isolated_cu {
 public:
  isolated_cu(emu_program& prog, kernel_entry& k, std::string cu_name);
  ~isolated_cu();
  isolated_cu(const isolated_cu&) = delete;
  isolated_cu& operator=(const isolated_cu&) = delete;

  /// Runs the kernel in the helper with the arguments `values` as emu_cu::execute prepared them
  /// (pointers into the shared banks, scalars, ap_* copies); blocks until it returns. Returns
  /// false with `fault` set when it touched a guard page of a bank (as guarded_invoke does).
  /// @throws error naming the kernel, the compute unit and the signal or exit status when the
  /// helper died in the run, or when no helper could be started.
  bool invoke(void** values, std::span<const bound_arg> args, kernel_fault& fault);
  /// Starts the helper (at load): it maps the banks, loads the .so and finds the kernel.
  /// @throws error naming the kernel and why it could not start (the .so crashed it, ...).
  void start();
  /// Ends the helper at once (the program is unloaded): a run inside it fails.
  void stop() noexcept;
  /// In a forked child: the helper belongs to the parent, and so do the banks it shares.
  void forget_after_fork() noexcept;

 private:
  void start_once();
  /// Kills (when `kill`) and reaps the helper; returns how it ended ("" if unknown).
  std::string end(bool kill) noexcept;
  std::string who() const;

  emu_program& prog_;
  kernel_entry& k_;
  std::string cu_name_;
  std::mutex mutex_;  ///< pid_ and stopped_ against stop() from another thread
  pid_t pid_ = 0;
  int fd_ = -1;
  bool stopped_ = false;
  bool running_ = false;  ///< a run is inside invoke()
  bool forked_ = false;
  std::vector<std::uint64_t> message_;  ///< the run message, reused (8-byte aligned)
};

}  // namespace fpyga::backend::emu
