// Kernels joined by streams on the emulated device: the FIFOs of a design's stream connections,
// free-running compute units, and deadlock detection.
//
// Each connection (v++ `sc=`) is one hls::stream<T> object, created by the kernel .so's glue
// (python/fpyga/toolchain/emu_stream_glue.h) and passed by reference to both ends: the producer's
// writes and the consumer's reads are Xilinx's own hls::stream code. The glue routes the stream's
// out-of-line calls here, on the threads of compute units that run inside a stream_scope:
//  - a read of an empty FIFO waits (as the header does), marked as blocked on that stream;
//  - after a write, while the FIFO holds more than its depth, the writer waits until the
//    consumer has read one (a card's write blocks on a full FIFO; here the element is already in
//    the FIFO, which changes no result: the writer resumes after the same read either way);
//  - each time a compute unit blocks, the design follows who waits for whom (a reader for the
//    stream's producer, a writer for its consumer); a cycle of compute units that all wait is a
//    deadlock: their runs fail, naming the streams, and the FIFOs between them are emptied.
// Free-running compute units (ap_ctrl_none) run their kernel in a loop on a thread of their own
// from load to unload. At unload every blocked read ends (the kernel unwinds with an exception)
// and every blocked write returns; a kernel that then never ends is left running, with its
// library kept loaded (said by a warning), rather than hanging the unload.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct fpyga_emu_stream_ops;

namespace fpyga {
struct xclbin;
}

namespace fpyga::backend::emu {

class emu_program;
class emu_cu;
class stream_design;

class stream_design {
 public:
  /// The stream design of `prog` (its .so loaded, its CUs created), or null when its xclbin has
  /// no stream arguments. Fills each CU's stream_args.
  /// @throws not_supported_error for a .so without fpyga's glue (a Vitis-made sw_emu xclbin) or
  ///         a host stream; xclbin_error when the two ends of a connection disagree on the
  ///         element's size.
  static std::unique_ptr<stream_design> create(emu_program& prog, const xclbin& bin);
  ~stream_design();

  /// Starts the free-running compute units.
  void start();
  /// Unload: cancels every run, stops the free-running units. Returns false when a kernel
  /// thread did not end (its library and this design must then stay in memory).
  bool stop();
  /// Deletes the FIFO objects (before the library is closed).
  void destroy_fifos();
  /// After stop() returned false: keeps `design` and the free-running CUs of `cus`, on which a
  /// kernel still runs, alive for the rest of the process (reachable, not leaked).
  static void abandon(std::unique_ptr<stream_design> design,
                      std::vector<std::unique_ptr<emu_cu>>& cus);

  struct fifo;
  struct unit;

  // Internal to emu_stream.cpp (the glue's callbacks reach them from the kernel's threads).
  unit* unit_of(const emu_cu& cu) const;
  [[noreturn]] void throw_cancelled(unit& u);
  void block_read(unit& u, fifo& f, void* unique_lock);
  void wait_room(unit& u, fifo& f);
  /// Under mutex_: whether `u`, which just blocked, closes a cycle of waiting units; if so
  /// cancels them (and the units waiting on them) and adds their FIFOs to `wake`.
  void detect(unit& u, std::vector<fifo*>& wake);
  /// Under mutex, at each poll of a waiting unit: cancels `u` once it has waited stall_limit on a
  /// FIFO whose other end is idle, with nothing moving.
  void check_stall(unit& u, std::vector<fifo*>& wake);
  static void wake(const std::vector<fifo*>& fifos);
  /// `u` stops making progress (it waits, or its run ended): wakes the readers of its outputs and
  /// the writers of its inputs that were left to sleep in a half-full FIFO.
  static void idle(unit& u);

  emu_program* prog = nullptr;
  std::vector<std::unique_ptr<fifo>> fifos;
  std::vector<std::unique_ptr<unit>> units;
  std::mutex mutex;  ///< guards every unit's running/blocked/cancel state and fifo::stale
  std::atomic<bool> stopping{false};
  /// FPYGA_EMU_STREAM_STALL (seconds, 0 = never): how long a run may wait on a FIFO whose other
  /// end runs nothing before it fails.
  std::chrono::milliseconds stall_limit{30000};
  std::mutex park_mutex;
  std::condition_variable park_cv;

 private:
  stream_design() = default;
  void free_running_loop(unit& u);
  std::vector<std::thread> threads_;
};

/// Marks the calling thread as running compute unit `cu` of `design` (null: not a stream
/// design) for the duration of one kernel execution.
class stream_scope {
 public:
  stream_scope(stream_design* design, emu_cu& cu);
  ~stream_scope();
  stream_scope(const stream_scope&) = delete;
  stream_scope& operator=(const stream_scope&) = delete;
  /// After the kernel returned: throws fpyga::error with the reason when the run was cancelled
  /// (a deadlock, an unload) while it ran.
  void finish();

 private:
  stream_design* design_;
  stream_design::unit* unit_ = nullptr;
  stream_design::unit* saved_ = nullptr;
};

}  // namespace fpyga::backend::emu
