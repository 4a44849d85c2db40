// Compute units, runs and the AXI-lite register map of the emulated device.
//
// call() runs the kernel on the calling thread when one of its CUs is idle: a hand-off to another
// thread costs 15-40 us on these machines, a direct call well under 1 us. start() queues the run
// on the least busy CU's worker thread and returns at once; CUs run concurrently.
#include <immintrin.h>
#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <set>

#include "backends/emu/emu.hpp"
#include "backends/emu/emu_isolated.hpp"
#include "backends/emu/emu_stream.hpp"
#include "fpyga/warning.hpp"

namespace fpyga::backend {

namespace emu {
namespace {

// AXI-lite control register bits (Vitis HLS ap_ctrl_hs / ap_ctrl_chain).
constexpr std::uint32_t ap_start = 1u << 0;
constexpr std::uint32_t ap_done = 1u << 1;
constexpr std::uint32_t ap_idle = 1u << 2;
constexpr std::uint32_t ap_ready = 1u << 3;
constexpr std::uint32_t ap_continue = 1u << 4;
constexpr std::uint32_t auto_restart = 1u << 7;

constexpr std::size_t stack_args = 32;
constexpr std::size_t stack_scratch = 1024;

std::string hex(std::uint64_t v) {
  char s[24];
  std::snprintf(s, sizeof s, "0x%llx", static_cast<unsigned long long>(v));
  return s;
}

// Every live CU, for fork(): the child re-creates what the parent's threads did for them.
std::mutex& cu_registry_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::set<emu_cu*>& cu_registry() {
  static auto* s = new std::set<emu_cu*>;
  return *s;
}

void before_fork() {
  cu_registry_mutex().lock();
  for (emu_cu* cu : cu_registry()) cu->before_fork();
}
void after_fork_parent() {
  for (emu_cu* cu : cu_registry()) cu->after_fork_parent();
  cu_registry_mutex().unlock();
}
void after_fork_child() {
  for (emu_cu* cu : cu_registry()) cu->after_fork_child();
  cu_registry_mutex().unlock();
}

void register_cu(emu_cu* cu) {
  static std::once_flag once;
  std::call_once(once, [] { ::pthread_atfork(&before_fork, &after_fork_parent, &after_fork_child); });
  std::lock_guard lock(cu_registry_mutex());
  cu_registry().insert(cu);
}

void unregister_cu(emu_cu* cu) {
  std::lock_guard lock(cu_registry_mutex());
  cu_registry().erase(cu);
}

/// The auto-restart loop of this thread, if it runs one (it never waits for itself).
thread_local const emu_cu* restart_loop_of = nullptr;

}  // namespace

void invoke(kernel_entry& k, void** values) {
  ffi_arg ret = 0;
  ffi_call(&k.cif, k.fn, &ret, values);
}

// ----------------------------------------------------------------------------------------------
// Compute units

emu_cu::emu_cu(emu_program& p, kernel_entry& ke, std::string n, std::uint64_t base)
    : prog(p), k(ke), name(std::move(n)), base_address(base), regs_(ke.register_bytes / 4, 0) {
  regs_[0] = ap_idle;
  if (p.isolate) isolated = std::make_unique<isolated_cu>(p, ke, name);
  register_cu(this);
}

emu_cu::~emu_cu() {
  stop_worker();
  unregister_cu(this);
}

void emu_cu::request_stop() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
}

bool emu_cu::stopping() {
  std::lock_guard lock(queue_mutex_);
  return stopping_;
}

void emu_cu::stop_worker() {
  request_stop();
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
  stop_restart_ = true;
  if (restart_loop_of == this) return;
  std::unique_lock lock(restart_mutex_);
  restart_cv_.wait(lock, [this] { return !restart_loop_live_; });
}

void emu_cu::before_fork() {
  queue_mutex_.lock();
  regs_mutex_.lock();
}

void emu_cu::after_fork_parent() {
  regs_mutex_.unlock();
  queue_mutex_.unlock();
}

void emu_cu::after_fork_child() {
  regs_mutex_.unlock();
  queue_mutex_.unlock();
  // Held by threads that do not exist here, or with their waiters' state: fresh ones. The old
  // std::thread handles name threads of the parent; they are dropped without join or detach.
  new (&exec_) std::mutex;
  new (&queue_cv_) std::condition_variable;
  new (&restart_mutex_) std::mutex;
  new (&restart_cv_) std::condition_variable;
  new (&worker_) std::thread;
  std::deque<std::shared_ptr<emu_run>> lost;
  lost.swap(queue_);
  if (current_) lost.push_front(std::move(current_));
  for (auto& r : lost) {
    r->reset_locks_after_fork();
    r->error_message = "emu: the process forked while this run was queued or running on compute unit '" +
                       name + "'; it runs in the parent process only";
    r->release_holds();
    prog.in_flight.fetch_sub(1);
    r->finish(run_state::error);
  }
  if (restarting_) {
    prog.in_flight.fetch_sub(1);
    restarting_ = false;
    warn("emu: compute unit '" + name + "' of kernel '" + k.info->name +
         "' stopped auto-restarting in this forked process (its loop runs in the parent only)");
  }
  restart_loop_live_ = false;
  if (isolated) isolated->forget_after_fork();
  // No thread but this one runs a kernel here.
  pending.store(0);
  prog.reset_calls_after_fork();
  regs_[0] = (regs_[0] & ~ap_start) | ap_idle;
}

void emu_cu::execute(std::span<const bound_arg> args, bool restarting) {
  std::lock_guard exec(exec_);
  const std::size_t n = k.types.size();
  if (prog.check_sync) sync_check::before_kernel(*this, args);

  void* small_values[stack_args];
  void* small_ptrs[stack_args];
  alignas(64) std::byte small_scratch[stack_scratch];
  std::vector<void*> big_values, big_ptrs;
  std::vector<std::uint64_t> big_scratch;
  void** values = small_values;
  void** ptrs = small_ptrs;
  std::byte* scratch = small_scratch;
  if (n > stack_args) {
    big_values.resize(n);
    big_ptrs.resize(n);
    values = big_values.data();
    ptrs = big_ptrs.data();
  }
  if (k.by_ref_bytes > stack_scratch) {
    big_scratch.resize(k.by_ref_bytes / 8 + 1);
    scratch = reinterpret_cast<std::byte*>(big_scratch.data());
  }

  {
    // The register file shows what the host would see on a card: the arguments and ap_start.
    std::lock_guard lock(regs_mutex_);
    auto* bytes = reinterpret_cast<std::byte*>(regs_.data());
    for (std::size_t i = 0; i < n; ++i) {
      const auto& a = k.info->args[i];
      if (a.offset + 4 > k.register_bytes || k.passing[i] == pass::stream) continue;
      const std::size_t room = std::min<std::size_t>(k.register_bytes - a.offset, std::max<std::uint64_t>(a.size, 4));
      if (k.passing[i] == pass::pointer) {
        const std::uint64_t addr = static_cast<emu_buffer*>(args[i].buffer)->address + args[i].offset;
        std::memcpy(bytes + a.offset, &addr, std::min<std::size_t>(room, 8));
      } else if (!args[i].wide.empty()) {
        std::memcpy(bytes + a.offset, args[i].wide.data(), std::min(room, args[i].wide.size()));
      } else {
        std::memcpy(bytes + a.offset, &args[i].bits, std::min<std::size_t>(room, 8));
      }
    }
    // ap_done and ap_ready stay set until the host reads them (clear-on-read), across runs.
    regs_[0] = (regs_[0] & (auto_restart | ap_done | ap_ready)) | ap_start;
  }

  std::size_t used = 0;
  for (std::size_t i = 0; i < n; ++i) {
    switch (k.passing[i]) {
      case pass::pointer:
        ptrs[i] = static_cast<emu_buffer*>(args[i].buffer)->device + args[i].offset;
        values[i] = &ptrs[i];
        break;
      case pass::value:
        values[i] = const_cast<std::uint64_t*>(&args[i].bits);
        break;
      case pass::stream:  // hls::stream<T>&: its connection's FIFO, whatever the host passed
        ptrs[i] = stream_args[i];
        values[i] = &ptrs[i];
        break;
      case pass::by_ref: {
        // The callee owns its parameter object and may modify it: give it a private copy.
        std::byte* slot = scratch + used;
        used += (k.storage[i] + 7) / 8 * 8;
        std::memset(slot, 0, k.storage[i]);
        if (!args[i].wide.empty())
          std::memcpy(slot, args[i].wide.data(), std::min(k.storage[i], args[i].wide.size()));
        else
          std::memcpy(slot, &args[i].bits, std::min<std::size_t>(k.storage[i], 8));
        ptrs[i] = slot;
        values[i] = &ptrs[i];
        break;
      }
    }
  }
  kernel_fault fault;
  bool ran = false;
  try {
    stream_scope streams(prog.streams.get(), *this);
    ran = isolated ? isolated->invoke(values, args, fault) : guarded_invoke(prog, k, values, fault);
    streams.finish();
  } catch (...) {
    // A stream run cancelled (a deadlock, an unload): the CU ends as after any run.
    std::lock_guard lock(regs_mutex_);
    regs_[0] = (regs_[0] & auto_restart) | ap_done | ap_ready | ap_idle;
    throw;
  }

  {
    std::lock_guard lock(regs_mutex_);
    // A kernel abandoned at a guard page ends as a finished one does: the CU takes new runs.
    regs_[0] = (regs_[0] & auto_restart) | ap_done | ap_ready | (restarting && ran ? ap_start : ap_idle);
  }
  if (!ran) [[unlikely]]
    throw error(describe_fault(args, fault));
  if (prog.check_sync) sync_check::after_kernel(*this, args);
}

std::string emu_cu::describe_fault(std::span<const bound_arg> args, const kernel_fault& fault) const {
  const auto* at = static_cast<const std::byte*>(fault.address);
  const std::string access = fault.write ? "write" : "read";
  const std::string head = "kernel '" + k.info->name + "' (compute unit '" + name + "'): out-of-bounds " + access;
  const std::string tail = "; the run failed and the kernel was abandoned there";
  // A guard page of one of its own buffers: name the argument and the offset from the pointer
  // the kernel was given.
  for (std::size_t i = 0; i < args.size() && i < k.passing.size(); ++i) {
    if (k.passing[i] != pass::pointer || !args[i].buffer) continue;
    const auto* b = static_cast<const emu_buffer*>(args[i].buffer);
    const bool before = b->guard_before && at >= b->guard_before && at < b->guard_before + 4096;
    const bool after = b->guard_after && at >= b->guard_after && at < b->guard_after + 4096;
    if (!before && !after) continue;
    const std::byte* given = b->device + args[i].offset;
    const long long offset = static_cast<long long>(at - given);
    const auto& a = k.info->args[i];
    return head + " at byte offset " + std::to_string(offset) + " of argument " + std::to_string(i) + " ('" +
           a.name + "', " + a.type + "), whose buffer holds " + std::to_string(b->size - args[i].offset) +
           " bytes from there (device address " + hex(b->address + args[i].offset) + ")" + tail;
  }
  for (const auto& bank : prog.banks) {
    if (!bank->maps(at)) continue;
    const std::uint64_t addr = bank->address_of(at);
    const bool outside = at < bank->view(bank->base) || addr >= bank->base + bank->size;
    return head + " at device address " + hex(addr) +
           (outside ? ", outside bank '" + bank->tag + "' (" + std::to_string(bank->size) + " bytes at " +
                          hex(bank->base) + ")"
                    : " in bank '" + bank->tag + "', in a guard page of a buffer it was not given") +
           tail;
  }
  return head + " at host address " + hex(reinterpret_cast<std::uintptr_t>(at)) + tail;
}

void emu_cu::enqueue(std::shared_ptr<emu_run> r) {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_) throw error("emu: compute unit '" + name + "' is stopped (its xclbin was unloaded)");
    if (!worker_.joinable()) worker_ = std::thread([this] { worker_loop(); });
    queue_.push_back(std::move(r));
  }
  queue_cv_.notify_one();
}

void emu_cu::worker_loop() {
  for (;;) {
    std::shared_ptr<emu_run> r;
    {
      std::unique_lock lock(queue_mutex_);
      current_.reset();
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      r = std::move(queue_.front());
      queue_.pop_front();
      current_ = r;
    }
    run_state result = run_state::completed;
    // Unloading never waits on a run that does not end (a held run, a hung kernel of another
    // device): request_stop() cuts the wait short and fails this run.
    if (std::string why = wait_for_runs(r->waitfor, [this] { return stopping(); }); !why.empty()) {
      result = run_state::error;
      r->error_message = std::move(why);
    }
    if (result == run_state::completed) {
      r->finish(run_state::running);
      try {
        execute(r->args);
      } catch (const std::exception& e) {
        result = run_state::error;
        r->error_message = e.what();
      }
    }
    // Buffers and counters drop before waiters wake, so a host that waited may free a buffer
    // or release the overlay at once.
    r->release_holds();
    {
      std::lock_guard lock(queue_mutex_);
      current_.reset();
    }
    prog.in_flight.fetch_sub(1);
    pending.fetch_sub(1);
    r->finish(result);
  }
}

std::uint32_t emu_cu::read_register(std::uint32_t offset) {
  if (offset % 4 != 0 || offset + 4 > k.register_bytes)
    throw value_error("compute unit '" + name + "' of kernel '" + k.info->name + "': register offset " +
                      hex(offset) + " is outside its control interface (0x0.." + hex(k.register_bytes - 4) +
                      ", 4-byte aligned)");
  std::lock_guard lock(regs_mutex_);
  const std::uint32_t v = regs_[offset / 4];
  // ap_done and ap_ready are clear-on-read, as in Vitis HLS control interfaces.
  if (offset == 0) regs_[0] &= ~(ap_done | ap_ready);
  return v;
}

void emu_cu::write_register(std::uint32_t offset, std::uint32_t value) {
  if (offset % 4 != 0 || offset + 4 > k.register_bytes)
    throw value_error("compute unit '" + name + "' of kernel '" + k.info->name + "': register offset " +
                      hex(offset) + " is outside its control interface (0x0.." + hex(k.register_bytes - 4) +
                      ", 4-byte aligned)");
  if (offset != 0) {
    std::lock_guard lock(regs_mutex_);
    regs_[offset / 4] = value;
    return;
  }
  {
    std::lock_guard lock(regs_mutex_);
    regs_[0] = (regs_[0] & ~(auto_restart | ap_continue)) | (value & (auto_restart | ap_continue));
  }
  if (!(value & ap_start)) return;
  if (restarting_) return;  // already running: ap_start is high until the loop stops
  if (value & auto_restart)
    start_auto_restart();
  else
    start_from_registers();
}

void emu_cu::start_auto_restart() {
  std::unique_lock lock(restart_mutex_);
  if (restarting_ || stop_restart_) return;
  restart_cv_.wait(lock, [this] { return !restart_loop_live_; });  // a loop that is ending
  {
    std::lock_guard regs(regs_mutex_);
    regs_[0] = (regs_[0] & ~ap_idle) | ap_start;
  }
  // A kernel that restarts by itself is a run in flight: the xclbin cannot be replaced under it.
  restarting_ = true;
  prog.in_flight.fetch_add(1);
  pending.fetch_add(1);
  restart_loop_live_ = true;
  std::thread([this] { auto_restart_loop(); }).detach();
}

void emu_cu::auto_restart_loop() {
  restart_loop_of = this;
  try {
    while (!stop_restart_) {
      start_from_registers(true);
      std::lock_guard lock(regs_mutex_);
      if (!(regs_[0] & auto_restart)) break;
    }
  } catch (const std::exception& e) {
    // No host call is waiting to receive this: say it, and stop as a card's kernel would hang.
    warn("emu: compute unit '" + name + "' of kernel '" + k.info->name +
         "' stopped auto-restarting: " + e.what());
  }
  pending.fetch_sub(1);
  prog.in_flight.fetch_sub(1);
  // Accept a new ap_start before showing ap_idle, so a host that waits for idle never has its
  // start ignored (a new loop joins this thread before it touches the registers).
  restarting_ = false;
  {
    std::lock_guard lock(regs_mutex_);
    regs_[0] = (regs_[0] & ~ap_start) | ap_idle;
  }
  // The last touch of the CU: once this lock is given up, stop_worker() may destroy it.
  std::lock_guard lock(restart_mutex_);
  restart_loop_live_ = false;
  restart_cv_.notify_all();
}

/// ap_start written by the host: read the arguments from the registers, as the hardware does,
/// and run the kernel to completion before returning (the host polls ap_done either way).
void emu_cu::start_from_registers(bool restarting) {
  const std::size_t n = k.types.size();
  std::vector<bound_arg> args(n);
  std::vector<std::vector<std::byte>> wide(n);
  {
    std::lock_guard lock(regs_mutex_);
    const auto* bytes = reinterpret_cast<const std::byte*>(regs_.data());
    for (std::size_t i = 0; i < n; ++i) {
      const auto& a = k.info->args[i];
      const std::size_t room =
          a.offset + 4 > k.register_bytes ? 0 : std::min<std::size_t>(k.register_bytes - a.offset, std::max<std::uint64_t>(a.size, 4));
      if (k.passing[i] == pass::stream) continue;
      if (k.passing[i] == pass::pointer) {
        std::uint64_t addr = 0;
        std::memcpy(&addr, bytes + a.offset, std::min<std::size_t>(room, 8));
        std::size_t off = 0;
        emu_buffer* b = prog.find_buffer(addr, &off);
        if (!b)
          throw value_error("compute unit '" + name + "' of kernel '" + k.info->name + "': register " +
                            hex(a.offset) + " (argument '" + a.name + "') holds " + hex(addr) +
                            ", which is not the device address of any live buffer of this xclbin");
        args[i].buffer = b;
        args[i].offset = off;
      } else if (k.passing[i] == pass::by_ref && k.storage[i] > 8) {
        wide[i].assign(k.storage[i], std::byte{0});
        std::memcpy(wide[i].data(), bytes + a.offset, std::min(room, k.storage[i]));
        args[i].wide = wide[i];
      } else {
        std::memcpy(&args[i].bits, bytes + a.offset, std::min<std::size_t>(room, 8));
      }
    }
  }
  pending.fetch_add(1);
  try {
    execute(args, restarting);
  } catch (...) {
    pending.fetch_sub(1);
    throw;
  }
  pending.fetch_sub(1);
}

// ----------------------------------------------------------------------------------------------
// Runs

void emu_run::finish(run_state s) {
  {
    std::lock_guard lock(mutex_);
    state_.store(s, std::memory_order_release);
  }
  cv_.notify_all();
}

void emu_run::reset_locks_after_fork() {
  new (&mutex_) std::mutex;
  new (&cv_) std::condition_variable;
}

run_state emu_run::wait(std::optional<std::chrono::nanoseconds> timeout) {
  auto ended = [this] {
    const run_state s = state_.load(std::memory_order_acquire);
    return s == run_state::completed || s == run_state::error;
  };
  // Spin briefly: most emulated runs end within microseconds, and blocking costs a wake-up.
  const auto spin_until = std::chrono::steady_clock::now() +
                          std::min<std::chrono::nanoseconds>(timeout.value_or(std::chrono::microseconds(50)),
                                                             std::chrono::microseconds(50));
  while (!ended()) {
    if (std::chrono::steady_clock::now() >= spin_until) break;
    for (int i = 0; i < 64; ++i) _mm_pause();
  }
  if (!ended()) {
    std::unique_lock lock(mutex_);
    if (timeout)
      cv_.wait_for(lock, *timeout, ended);
    else
      cv_.wait(lock, ended);
  }
  return state_.load(std::memory_order_acquire);
}

// ----------------------------------------------------------------------------------------------
// Kernels

emu_kernel::emu_kernel(std::shared_ptr<emu_program> prog, kernel_entry& k, std::vector<emu_cu*> cus)
    : prog_(std::move(prog)), k_(k), cus_(std::move(cus)) {}

void emu_kernel::call(std::span<const bound_arg> args, std::uint64_t cu_mask) {
  if (prog_->check_sync) emu_flush_pending_warnings();
  refuse_free_running(cu_mask);
  for (std::size_t i = 0; i < cus_.size(); ++i) {
    if (!(cu_mask & (std::uint64_t(1) << i))) continue;
    unsigned idle = 0;
    if (cus_[i]->pending.compare_exchange_strong(idle, 1)) {
      try {
        cus_[i]->execute(args);
      } catch (...) {
        cus_[i]->pending.fetch_sub(1);
        throw;
      }
      cus_[i]->pending.fetch_sub(1);
      return;
    }
  }
  // Every eligible CU is busy: queue behind the least busy one, like any other run.
  auto r = start(args, cu_mask, {});
  if (r->wait(std::nullopt) == run_state::error)
    throw error("kernel '" + k_.info->name + "' failed: " + r->error_message);
}

std::shared_ptr<run_impl> emu_kernel::start(std::span<const bound_arg> args, std::uint64_t cu_mask,
                                            std::span<const std::shared_ptr<run_impl>> waitfor) {
  if (prog_->check_sync) emu_flush_pending_warnings();
  refuse_free_running(cu_mask);
  emu_cu* best = nullptr;
  for (std::size_t i = 0; i < cus_.size(); ++i) {
    if (!(cu_mask & (std::uint64_t(1) << i))) continue;
    if (!best || cus_[i]->pending.load() < best->pending.load()) best = cus_[i];
  }
  if (!best) throw value_error("kernel '" + k_.info->name + "': no compute unit selected");
  auto r = std::make_shared<emu_run>();
  r->args.assign(args.begin(), args.end());
  std::size_t wide = 0;
  for (const auto& a : args) wide += a.wide.size();
  r->wide_storage.resize(wide);
  std::size_t used = 0;
  for (auto& a : r->args) {
    if (a.wide.empty()) continue;
    std::memcpy(r->wide_storage.data() + used, a.wide.data(), a.wide.size());
    a.wide = {r->wide_storage.data() + used, a.wide.size()};
    used += a.wide.size();
  }
  r->waitfor.assign(waitfor.begin(), waitfor.end());
  r->cu = best;
  prog_->in_flight.fetch_add(1);
  best->pending.fetch_add(1);
  try {
    best->enqueue(r);
  } catch (...) {
    prog_->in_flight.fetch_sub(1);
    best->pending.fetch_sub(1);
    throw;
  }
  return r;
}

void emu_kernel::refuse_free_running(std::uint64_t cu_mask) const {
  for (std::size_t i = 0; i < cus_.size(); ++i)
    if ((cu_mask & (std::uint64_t(1) << i)) && cus_[i]->free_running)
      throw value_error("kernel '" + k_.info->name + "': compute unit '" + cus_[i]->name +
                        "' is free-running (ap_ctrl_none): it runs from load to unload and cannot be called or started");
}

std::uint32_t emu_kernel::read_register(unsigned cu, std::uint32_t offset) {
  return cus_.at(cu)->read_register(offset);
}

void emu_kernel::write_register(unsigned cu, std::uint32_t offset, std::uint32_t value) {
  cus_.at(cu)->write_register(offset, value);
}

}  // namespace emu
}  // namespace fpyga::backend
