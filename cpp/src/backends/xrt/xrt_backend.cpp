// The XRT backend over XRT's native C++ API.
//
// Calls reuse xrt::run objects: each kernel handle keeps a small pool of runs per compute-unit
// subset, each remembering the arguments last set on it, so a call sets only the arguments that
// changed and then start()/wait(). XRT's noop shim (XCL_EMULATION_MODE=noop) accepts the whole
// flow without a card; enumerate_devices() says 0 there, so fpyga then exposes
// $FPYGA_XRT_NOOP_DEVICES devices (default 1) opened by index, as xrt:0, xrt:1, ...
#include "backends/xrt/xrt_backend.hpp"

#include <experimental/xrt_system.h>
#include <experimental/xrt_xclbin.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <thread>

#include "core_state.hpp"

namespace fpyga::backend {
namespace xrtb {
namespace {

// Every XRT call goes through here: XRT throws std::exception subclasses (xrt_core::error is a
// std::system_error); this names the routine and maps out-of-memory to memory_error.
[[noreturn]] void rethrow(const std::string& routine, const std::exception& e) {
  const std::string msg = "xrt: " + routine + ": " + e.what();
  if (dynamic_cast<const std::bad_alloc*>(&e)) throw memory_error(msg);
  if (auto* se = dynamic_cast<const std::system_error*>(&e);
      se && (se->code().value() == ENOMEM || se->code().value() == -ENOMEM))
    throw memory_error(msg);
  throw backend_error(msg);
}

#define FPYGA_XRT_CALL(routine, ...)                                  \
  [&]() -> decltype(auto) {                                           \
    try {                                                             \
      return __VA_ARGS__;                                             \
    } catch (const ::fpyga::error&) {                                 \
      throw;                                                          \
    } catch (const std::exception& e) {                               \
      ::fpyga::backend::xrtb::rethrow(routine, e);             \
    }                                                                 \
  }()

const char* state_name(ert_cmd_state s) {
  switch (s) {
    case ERT_CMD_STATE_NEW: return "NEW";
    case ERT_CMD_STATE_QUEUED: return "QUEUED";
    case ERT_CMD_STATE_RUNNING: return "RUNNING";
    case ERT_CMD_STATE_COMPLETED: return "COMPLETED";
    case ERT_CMD_STATE_ERROR: return "ERROR";
    case ERT_CMD_STATE_ABORT: return "ABORT";
    case ERT_CMD_STATE_SUBMITTED: return "SUBMITTED";
    case ERT_CMD_STATE_TIMEOUT: return "TIMEOUT";
    case ERT_CMD_STATE_NORESPONSE: return "NORESPONSE";
    case ERT_CMD_STATE_SKERROR: return "SKERROR";
    case ERT_CMD_STATE_SKCRASHED: return "SKCRASHED";
    default: return "UNKNOWN";
  }
}

bool in_flight_state(ert_cmd_state s) {
  return s == ERT_CMD_STATE_QUEUED || s == ERT_CMD_STATE_RUNNING || s == ERT_CMD_STATE_SUBMITTED;
}

std::string hex(std::uint64_t v) {
  std::ostringstream o;
  o << "0x" << std::hex << v;
  return o.str();
}

unsigned noop_device_count() {
  if (const char* n = std::getenv("FPYGA_XRT_NOOP_DEVICES"); n && *n) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(n, &end, 10);
    if (end && *end == '\0' && v <= 64) return static_cast<unsigned>(v);
  }
  return 1;
}

template <class T>
void prune(std::vector<std::weak_ptr<T>>& v) {
  std::erase_if(v, [](const std::weak_ptr<T>& w) { return w.expired(); });
}

}  // namespace

run_state to_run_state(ert_cmd_state s) {
  switch (s) {
    case ERT_CMD_STATE_NEW:
    case ERT_CMD_STATE_QUEUED:
    case ERT_CMD_STATE_SUBMITTED: return run_state::queued;
    case ERT_CMD_STATE_RUNNING: return run_state::running;
    case ERT_CMD_STATE_COMPLETED: return run_state::completed;
    default: return run_state::error;
  }
}

// ---------------------------------------------------------------------------------------------
// Buffers

xrt_buffer::xrt_buffer(std::shared_ptr<xrt_program> prog, host_memory mem, std::size_t bytes,
                       unsigned bank) {
  host = std::move(mem);
  size = bytes;
  memory_index = bank;
  program = prog;
  // The host block is rounded up to whole pages, all of it ours; XRT wants a non-empty range.
  const std::size_t mapped = bytes == 0 ? 4096 : (bytes + 4095) / 4096 * 4096;
  mapped_ = mapped;
  bo_ = FPYGA_XRT_CALL("xrt::bo(user pointer, " + std::to_string(bytes) + " bytes, bank " +
                           std::to_string(bank) + ") of " + prog->what(),
                       xrt::bo(prog->xdev().native, host.get(), mapped, bank));
}

void xrt_buffer::check_usable(const char* what) const {
  if (program && program->released)
    throw error(std::string("xrt: ") + what + " on a buffer of " +
                static_cast<const xrt_program&>(*program).what() + ", which was unloaded");
  if (freed || !bo_) throw error(std::string("xrt: ") + what + " on a freed buffer");
}

// The core has checked the buffer is neither freed nor of an unloaded program; the backend's own
// check runs only when the XRT object is gone (then it says why).
[[gnu::hot]] void xrt_buffer::sync_to_device(std::size_t bytes, std::size_t offset) {
  if (!bo_) [[unlikely]]
    check_usable("sync_to_device");
  FPYGA_XRT_CALL("xrt::bo::sync(to device)", bo_.sync(XCL_BO_SYNC_BO_TO_DEVICE, bytes, offset));
}

[[gnu::hot]] void xrt_buffer::sync_from_device(std::size_t bytes, std::size_t offset) {
  if (!bo_) [[unlikely]]
    check_usable("sync_from_device");
  FPYGA_XRT_CALL("xrt::bo::sync(from device)",
                 bo_.sync(XCL_BO_SYNC_BO_FROM_DEVICE, bytes, offset));
}

std::uint64_t xrt_buffer::device_address() const {
  check_usable("device_address");
  return FPYGA_XRT_CALL("xrt::bo::address", bo_.address());
}

void xrt_buffer::release_device() {
  holds_device_.store(false);
  bo_ = xrt::bo();
}

// ---------------------------------------------------------------------------------------------
// Deferred starts

void deferred_start::finish(phase p, std::string why) {
  {
    std::lock_guard lock(mutex_);
    error = std::move(why);
    state.store(p, std::memory_order_release);
  }
  cv_.notify_all();
}

deferred_start::phase deferred_start::wait(std::optional<std::chrono::nanoseconds> timeout) {
  const auto left = [this] { return state.load(std::memory_order_acquire) != phase::waiting; };
  if (!left()) {
    std::unique_lock lock(mutex_);
    if (timeout)
      cv_.wait_for(lock, *timeout, left);
    else
      cv_.wait(lock, left);
  }
  return state.load(std::memory_order_acquire);
}

std::shared_ptr<launcher> launcher::create() {
  auto l = std::make_shared<launcher>();
  l->self_ = l;
  return l;
}

void launcher::submit(job j) {
  {
    std::lock_guard lock(mutex_);
    if (stop_) throw error("xrt: the xclbin is being unloaded; the run was not started");
    if (!thread_.joinable())
      thread_ = std::thread(loop, self_.lock());  // may throw: nothing queued
    pending_.fetch_add(1);
    queue_.push_back(std::move(j));
  }
  cv_.notify_one();
}

void launcher::loop(std::shared_ptr<launcher> self) {
  for (;;) {
    job j;
    {
      std::unique_lock lock(self->mutex_);
      self->cv_.wait(lock, [&] { return self->stop_ || !self->queue_.empty(); });
      if (self->queue_.empty()) return;
      j = std::move(self->queue_.front());
      self->queue_.pop_front();
    }
    // In submission order: a run waits only for runs started before it, so none of them is
    // queued behind it here.
    // Unloading the program never waits on a run that does not end (a hung kernel, a held run of
    // another device): shutdown() cuts the wait short and fails this job.
    std::string why = wait_for_runs(j.waitfor, [&] { return self->stopping(); });
    if (why.empty() && self->stopping())
      why = "its xclbin was unloaded before the runs it waited for completed";
    if (why.empty()) {
      try {
        j.run.start();
      } catch (const std::exception& e) {
        why = std::string("xrt::run::start: ") + e.what();
      }
    }
    // No longer pending once started (XRT counts it in flight from here) or failed; only then
    // may a waiter see it, so nobody finds it both finished and still pending.
    self->pending_.fetch_sub(1);
    // (The phase is decided before `why` is moved into the call: argument order is unspecified.)
    const auto phase = why.empty() ? deferred_start::phase::started : deferred_start::phase::failed;
    j.start->finish(phase, std::move(why));
    // `j` goes here. If that ends the program, its destructor detaches this thread, which
    // then leaves at the next look at stop_.
  }
}

bool launcher::stopping() {
  std::lock_guard lock(mutex_);
  return stop_;
}

void launcher::shutdown() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    for (auto& j : queue_) {
      j.start->finish(deferred_start::phase::failed,
                      "its xclbin was unloaded before the runs it waited for completed");
      pending_.fetch_sub(1);
    }
    queue_.clear();
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id())
    thread_.detach();
  else
    thread_.join();
}

// ---------------------------------------------------------------------------------------------
// Runs

xrt_run::xrt_run(std::shared_ptr<xrt_kernel> kernel, std::shared_ptr<run_slot> slot,
                 std::shared_ptr<deferred_start> deferred)
    : kernel_(std::move(kernel)), slot_(std::move(slot)), deferred_(std::move(deferred)) {}

xrt_run::~xrt_run() { kernel_->give_back(slot_, 0); }

xrt::run xrt_run::native() const { return kernel_->run_of(*slot_); }

run_state xrt_run::state() const {
  if (deferred_) {
    const auto p = deferred_->state.load(std::memory_order_acquire);
    if (p == deferred_start::phase::waiting) return run_state::queued;
    if (p == deferred_start::phase::failed) return run_state::error;
  }
  const xrt::run run = native();
  if (!run) return run_state::completed;  // dropped (program unloaded, registers accessed) after it finished
  return to_run_state(FPYGA_XRT_CALL("xrt::run::state", run.state()));
}

run_state xrt_run::wait(std::optional<std::chrono::nanoseconds> timeout) {
  if (deferred_) {
    const auto begin = std::chrono::steady_clock::now();
    const auto p = deferred_->wait(timeout);
    if (p == deferred_start::phase::waiting) return run_state::queued;
    if (p == deferred_start::phase::failed) {
      // Once, whoever waits first: several threads may wait on the same run.
      std::call_once(error_copied_, [this] { error_message = deferred_->error; });
      return run_state::error;
    }
    if (timeout) {  // what is left of it for XRT's wait
      const auto spent = std::chrono::steady_clock::now() - begin;
      timeout = spent >= *timeout ? std::chrono::nanoseconds(0) : *timeout - spent;
    }
  }
  // A copy: register access on another handle may empty the slot while this waits.
  xrt::run run = native();
  if (!run) return run_state::completed;
  ert_cmd_state s;
  if (!timeout) {
    s = FPYGA_XRT_CALL("xrt::run::wait", run.wait());
  } else {
    // XRT counts whole milliseconds and reads 0 as "forever": round up, and poll for 0.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout);
    if (ms.count() <= 0)
      s = FPYGA_XRT_CALL("xrt::run::state", run.state());
    else
      s = FPYGA_XRT_CALL("xrt::run::wait(timeout)", run.wait(ms));
    if (s == ERT_CMD_STATE_TIMEOUT) s = FPYGA_XRT_CALL("xrt::run::state", run.state());
  }
  return to_run_state(s);
}

namespace {
std::vector<std::uint32_t> packet_registers(const xrt::run& r) {
  if (!r) return {};
  auto* pkt = reinterpret_cast<ert_start_kernel_cmd*>(
      FPYGA_XRT_CALL("xrt::run::get_ert_packet", r.get_ert_packet()));
  if (!pkt || pkt->count < 1 + pkt->extra_cu_masks) return {};
  const std::uint32_t* regs = pkt->data + pkt->extra_cu_masks;
  return {regs, regs + (pkt->count - 1 - pkt->extra_cu_masks)};
}

std::uint32_t packet_cu_mask(const xrt::run& r) {
  if (!r) return 0;
  auto* pkt = reinterpret_cast<ert_start_kernel_cmd*>(
      FPYGA_XRT_CALL("xrt::run::get_ert_packet", r.get_ert_packet()));
  return pkt ? pkt->cu_mask : 0;
}
}  // namespace

std::vector<std::uint32_t> xrt_run::register_map() const {
  return packet_registers(native());
}

std::uint32_t xrt_run::cu_mask() const {
  return packet_cu_mask(native());
}

// ---------------------------------------------------------------------------------------------
// Kernels

xrt_kernel::xrt_kernel(std::shared_ptr<xrt_program> prog, const kernel_info& k,
                       std::vector<compute_unit> units)
    : program_(std::move(prog)) {
  info = k;
  cus = std::move(units);
  for (const auto& a : info.args)
    layout_.push_back(
        {a.kind, static_cast<std::uint8_t>(a.size ? std::min<std::uint64_t>(a.size, 8) : 4)});
}

xrt_kernel::~xrt_kernel() {
  program_->exclusive_open.fetch_sub(static_cast<int>(exclusive_.size()));
}

std::string xrt_kernel::xrt_name(std::uint64_t cu_mask) const {
  std::string s = info.name + ":{";
  bool first = true;
  for (std::size_t i = 0; i < cus.size(); ++i) {
    if (!(cu_mask >> i & 1)) continue;
    s += (first ? "" : ",") + cus[i].name;
    first = false;
  }
  return s + "}";
}

void xrt_kernel::check_usable(const char* what) const {
  if (program_->released)
    throw error("xrt: " + std::string(what) + " of kernel '" + info.name + "' of " +
                program_->what() + ", which was unloaded");
}

std::shared_ptr<run_slot> xrt_kernel::acquire(std::uint64_t cu_mask) {
  // Register access left exclusive contexts open; give them back before opening shared ones.
  if (program_->exclusive_open.load(std::memory_order_relaxed))
    program_->release_exclusive_contexts();
  std::lock_guard lock(mutex_);
  auto& pm = by_mask_[cu_mask];
  if (!pm.kernel.get_handle()) {
    const std::string name = xrt_name(cu_mask);
    pm.kernel = FPYGA_XRT_CALL("xrt::kernel(\"" + name + "\") of " + program_->what(),
                               xrt::kernel(program_->xdev().native, program_->uuid, name));
  }
  for (auto& s : pm.slots) {
    if (s->busy) continue;
    // A run handed back before it finished, or before it was even started, must wait.
    if (s->deferred && s->deferred->state.load() == deferred_start::phase::waiting) continue;
    if (in_flight_state(s->run.state())) continue;
    s->busy = true;
    s->in_use = true;
    s->started = false;
    return s;
  }
  auto s = std::make_shared<run_slot>();
  s->run = FPYGA_XRT_CALL("xrt::run(" + info.name + ")", xrt::run(pm.kernel));
  s->args.resize(info.args.size());
  s->sub_buffers.resize(info.args.size());
  s->busy = true;
  s->in_use = true;
  ++runs_created_;
  pm.slots.push_back(s);
  return s;
}

void xrt_kernel::give_back(const std::shared_ptr<run_slot>& slot, std::uint64_t) {
  std::lock_guard lock(mutex_);
  slot->busy = false;
  slot->in_use = false;
}

xrt::run xrt_kernel::run_of(const run_slot& slot) const {
  std::lock_guard lock(mutex_);
  return slot.run;
}

// The call path: compares each argument with what the run already holds (one word and offset per
// argument, no pointer chase: the core copied the buffer's serial into bound_arg::bits) and sets
// only what changed. Wide scalars and streams are never cached (their offset stays `unset`), so
// they never compare equal and need no test of their own here.
[[gnu::hot]] void xrt_kernel::bind(run_slot& slot, std::span<const bound_arg> args) {
  const std::size_t n = std::min(args.size(), layout_.size());
  const run_slot::cached_arg* cache = slot.args.data();
  const arg_layout* layout = layout_.data();
  for (std::size_t i = 0; i < n; ++i) {
    const bound_arg& v = args[i];
    if (cache[i].key == v.bits && cache[i].offset == v.offset) [[likely]]
      continue;
    if (layout[i].kind == arg_kind::scalar && v.wide.empty()) {
      // The usual change (a size, a count): set here. XRT copies exactly the bytes given over
      // the register image: the argument's size.
      slot.args[i].forget();
      FPYGA_XRT_CALL("xrt::run::set_arg(" + info.args[i].name + ")",
                     slot.run.set_arg(static_cast<int>(i), static_cast<const void*>(&v.bits),
                                      std::size_t{layout[i].bytes}));
      slot.args[i] = {v.bits, 0};
      continue;
    }
    set_arg(slot, i, v);
  }
}

void xrt_kernel::set_arg(run_slot& slot, std::size_t i, const bound_arg& v) {
  const arg_info& a = info.args[i];
  const int index = static_cast<int>(i);
  auto& cached = slot.args[i];
  cached.forget();  // until XRT has taken the new value
  switch (layout_[i].kind) {
    case arg_kind::stream:
      return;  // streams are wired in the bitstream, not set
    case arg_kind::global: {
      // The core checked the buffer belongs to this program, hence to this backend.
      auto* b = static_cast<xrt_buffer*>(v.buffer);
      if (!b || !b->bo())
        throw error("xrt: kernel '" + info.name + "' argument '" + a.name +
                    "': the buffer was freed");
      if (v.offset == 0) {
        slot.sub_buffers[i] = xrt::bo();
        FPYGA_XRT_CALL("xrt::run::set_arg(" + a.name + ")", slot.run.set_arg(index, b->bo()));
      } else {
        slot.sub_buffers[i] = FPYGA_XRT_CALL(
            "xrt::bo(sub-buffer at offset " + std::to_string(v.offset) + ")",
            xrt::bo(b->bo(), b->size - v.offset, v.offset));
        FPYGA_XRT_CALL("xrt::run::set_arg(" + a.name + ")",
                       slot.run.set_arg(index, slot.sub_buffers[i]));
      }
      cached = {v.bits, v.offset};
      return;
    }
    default:
      if (!v.wide.empty()) {  // wider than 64 bits: set every time, never cached
        FPYGA_XRT_CALL(
            "xrt::run::set_arg(" + a.name + ")",
            slot.run.set_arg(index, static_cast<const void*>(v.wide.data()), v.wide.size()));
        return;
      }
      // XRT copies exactly the bytes given over the register image: the argument's size.
      FPYGA_XRT_CALL("xrt::run::set_arg(" + a.name + ")",
                     slot.run.set_arg(index, static_cast<const void*>(&v.bits),
                                      std::size_t{layout_[i].bytes}));
      cached = {v.bits, 0};
  }
}

// The reserved slot serves one CU mask: (re)reserve it for this one. It stays out of the pool,
// so starts never take it. Called with the fast claim held; drops it on failure.
void xrt_kernel::reserve_fast(std::uint64_t cu_mask) {
  try {
    if (fast_slot_) give_back(fast_slot_, fast_mask_);
    fast_slot_ = acquire(cu_mask);
    // Guarded by the fast claim from here on, which drop_shared() also takes.
    std::lock_guard lock(mutex_);
    fast_slot_->in_use = false;
  } catch (...) {
    release_fast();
    throw;
  }
  fast_mask_ = cu_mask;
}

// With the fast claim held: set_args(slot) sets the arguments on the reserved run (false: they
// are not for it; nothing starts), then the run is started and waited for. The claim is released
// either way. A failure leaves the run's cached arguments or state unknown: the slot is dropped.
template <class F>
bool xrt_kernel::run_reserved(F&& set_args) {
  run_slot& slot = *fast_slot_;
  ert_cmd_state s;
  try {
    if (!set_args(slot)) {
      release_fast();
      return false;
    }
    FPYGA_XRT_CALL("xrt::run::start(" + info.name + ")", slot.run.start());
    s = FPYGA_XRT_CALL("xrt::run::wait(" + info.name + ")", slot.run.wait());
  } catch (...) {
    for (auto& c : slot.args) c.forget();
    give_back(fast_slot_, fast_mask_);
    fast_slot_.reset();
    release_fast();
    throw;
  }
  last_is_fast_.store(true, std::memory_order_relaxed);
  release_fast();
  if (s != ERT_CMD_STATE_COMPLETED) [[unlikely]]
    ended_badly(s);
  return true;
}

[[gnu::hot]] void xrt_kernel::call(std::span<const bound_arg> args, std::uint64_t cu_mask) {
  if (program_->released) [[unlikely]]
    check_usable("call");
  if (!claim_fast()) [[unlikely]]
    return call_pooled(args, cu_mask);
  if (!fast_slot_ || fast_mask_ != cu_mask || !fast_slot_->run) [[unlikely]]
    reserve_fast(cu_mask);
  run_reserved([&](run_slot& slot) {
    bind(slot, args);
    return true;
  });
}

kernel_impl::one_pass_fn xrt_kernel::one_pass_call() const {
  return &xrt_kernel::call_one_pass;
}

// call() without the core's bound_args: each argument is checked (the core's inline checks) and
// compared with what the reserved run holds in one pass. Changed integers are set at once;
// changed buffers only once the CU mask is known to be the reserved run's (XRT would otherwise
// see a buffer in a bank the run's CU does not reach). Whatever is not a usable buffer or an
// in-range integer, or another CU mask, goes back to the core's full path, with nothing started
// (integers set so far stay valid: the run's cache says what it holds).
[[gnu::hot]] bool xrt_kernel::call_one_pass(kernel_impl& k, const fpyga::kernel_state& st,
                                            std::span<const arg_value> args) {
  auto& self = static_cast<xrt_kernel&>(k);
  if (st.program->released || args.size() != self.layout_.size() || args.size() > 64) [[unlikely]]
    return false;
  if (!self.claim_fast()) [[unlikely]]
    return false;
  if (!self.fast_slot_ || !self.fast_slot_->run) [[unlikely]] {
    self.release_fast();
    return false;
  }
  return self.run_reserved([&](run_slot& slot) {
    run_slot::cached_arg* cache = slot.args.data();
    const fpyga::hot_arg* plan = st.hot.data();
    const program_impl* program = st.program.get();
    std::uint64_t mask = st.all_cus;
    std::uint64_t buffers_changed = 0;  // bit i: argument i is a buffer the run does not hold yet
    for (std::size_t i = 0; i < args.size(); ++i) {
      const fpyga::hot_arg& p = plan[i];
      const arg_value& v = args[i];
      if (p.kind == fpyga::arg_plan::how::buffer) {
        const buffer_impl* bi = nullptr;
        mask &= fpyga::buffer_fits(p, v, program, bi);
        if (!mask) [[unlikely]]
          return false;
        if (cache[i].key != bi->serial || cache[i].offset != v.buffer_offset()) [[unlikely]]
          buffers_changed |= std::uint64_t(1) << i;
        continue;
      }
      std::uint64_t bits;
      if (!fpyga::integer_bits(p, v, bits)) [[unlikely]]
        return false;
      if (cache[i].key == bits && cache[i].offset == 0) [[likely]]
        continue;
      cache[i].forget();
      FPYGA_XRT_CALL("xrt::run::set_arg(" + self.info.args[i].name + ")",
                     slot.run.set_arg(static_cast<int>(i), static_cast<const void*>(&bits),
                                      std::size_t{self.layout_[i].bytes}));
      cache[i] = {bits, 0};
    }
    if (mask != self.fast_mask_) [[unlikely]]
      return false;
    for (std::size_t i = 0; buffers_changed; ++i, buffers_changed >>= 1)
      if (buffers_changed & 1) {
        auto* bi = args[i].buffer().impl().get();  // checked in the pass above
        self.set_arg(slot, i, {bi, args[i].buffer_offset(), bi->serial, {}});
      }
    return true;
  });
}

void xrt_kernel::ended_badly(ert_cmd_state s) const {
  throw backend_error("xrt: kernel '" + info.name + "' of " + program_->what() +
                      " ended in state " + state_name(s));
}

// Another thread is in call(): use a pooled run.
void xrt_kernel::call_pooled(std::span<const bound_arg> args, std::uint64_t cu_mask) {
  auto slot = acquire(cu_mask);
  ert_cmd_state s;
  try {
    bind(*slot, args);
    FPYGA_XRT_CALL("xrt::run::start(" + info.name + ")", slot->run.start());
    s = FPYGA_XRT_CALL("xrt::run::wait(" + info.name + ")", slot->run.wait());
  } catch (...) {
    for (auto& c : slot->args) c.forget();
    give_back(slot, cu_mask);
    throw;
  }
  {
    std::lock_guard lock(mutex_);
    last_ = slot;
    last_is_fast_.store(false, std::memory_order_relaxed);
    slot->busy = false;
    slot->in_use = false;
  }
  if (s != ERT_CMD_STATE_COMPLETED) ended_badly(s);
}

std::shared_ptr<run_impl> xrt_kernel::start(std::span<const bound_arg> args,
                                            std::uint64_t cu_mask,
                                            std::span<const std::shared_ptr<run_impl>> waitfor) {
  check_usable("start");
  // XRT 2.13's native API has no run dependencies: a run that must wait for others is started by
  // the program's launcher thread once they have completed, and this returns at once.
  bool ready = true;
  for (const auto& w : waitfor)
    if (w && w->state() != run_state::completed) ready = false;
  auto slot = acquire(cu_mask);
  std::shared_ptr<deferred_start> later;
  try {
    bind(*slot, args);
    if (ready) {
      slot->deferred.reset();
      FPYGA_XRT_CALL("xrt::run::start(" + info.name + ")", slot->run.start());
    } else {
      later = std::make_shared<deferred_start>();
      slot->deferred = later;
      program_->launch_later({slot->run, {waitfor.begin(), waitfor.end()}, later});
    }
  } catch (...) {
    for (auto& c : slot->args) c.forget();
    slot->deferred.reset();
    give_back(slot, cu_mask);
    throw;
  }
  {
    std::lock_guard lock(mutex_);
    last_ = slot;
    last_is_fast_.store(false, std::memory_order_relaxed);
    // From here the run is used only through xrt_run, which copies the handle under the lock.
    slot->in_use = false;
    slot->started = true;
  }
  return std::make_shared<xrt_run>(shared_from_this(), std::move(slot), std::move(later));
}

// Over the pool, whose size is the most runs ever held at once: started runs are not listed
// apart (a list of every start grew with use and made start() slower and slower).
std::size_t xrt_kernel::in_flight() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [mask, pm] : by_mask_)
    for (const auto& s : pm.slots)
      if (s->started && s->run && in_flight_state(s->run.state())) ++n;
  return n;
}

std::size_t xrt_kernel::tracked_runs() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [mask, pm] : by_mask_) n += pm.slots.size();
  return n;
}

template <class F>
auto xrt_kernel::on_last_run(F read) const {
  auto* self = const_cast<xrt_kernel*>(this);
  while (!self->claim_fast()) std::this_thread::yield();
  decltype(read(xrt::run())) out{};
  try {
    std::lock_guard lock(mutex_);
    const auto& slot = last_is_fast_.load(std::memory_order_relaxed) ? fast_slot_ : last_;
    if (slot) out = read(slot->run);
  } catch (...) {
    self->release_fast();
    throw;
  }
  self->release_fast();
  return out;
}

std::vector<std::uint32_t> xrt_kernel::last_register_map() const {
  return on_last_run(packet_registers);
}

std::uint32_t xrt_kernel::last_cu_mask() const {
  return on_last_run(packet_cu_mask);
}

xrt::kernel xrt_kernel::exclusive_kernel(unsigned cu, const char* what) {
  check_usable(what);
  if (cu >= cus.size())
    throw value_error("xrt: " + std::string(what) + ": kernel '" + info.name + "' has " +
                      std::to_string(cus.size()) + " compute unit(s) in this handle");
  {
    std::lock_guard lock(mutex_);
    if (auto it = exclusive_.find(cu); it != exclusive_.end()) return it->second;
  }
  if (const std::size_t n = program_->runs_in_flight())
    throw error("xrt: " + std::string(what) + " on kernel '" + info.name + "': " +
                std::to_string(n) + " run(s) of " + program_->what() +
                " are in flight; wait for them first");
  // XRT grants register access only to an exclusive CU context, which conflicts with the shared
  // contexts runs use: every kernel handle of the program gives its shared contexts back (they
  // are reopened at the next call, which in turn gives the exclusive ones back).
  program_->release_shared_contexts();
  std::lock_guard lock(mutex_);
  const std::string name = info.name + ":{" + cus[cu].name + "}";
  try {
    auto k = xrt::kernel(program_->xdev().native, program_->uuid, name,
                         xrt::kernel::cu_access_mode::exclusive);
    program_->exclusive_open.fetch_add(1);
    return exclusive_.emplace(cu, std::move(k)).first->second;
  } catch (const std::exception& e) {
    throw backend_error("xrt: " + std::string(what) + " on " + name +
                        " needs exclusive access to the compute unit, which XRT refused (" +
                        e.what() + ")");
  }
}

std::uint32_t xrt_kernel::read_register(unsigned cu, std::uint32_t offset) {
  auto k = exclusive_kernel(cu, "read_register");
  try {
    return k.read_register(offset);
  } catch (const std::exception& e) {
    throw backend_error("xrt: read_register(" + hex(offset) + ") on " + info.name + ":" +
                        cus[cu].name + ": " + e.what() +
                        (noop_mode() ? " (XRT's noop shim has no registers)" : ""));
  }
}

void xrt_kernel::write_register(unsigned cu, std::uint32_t offset, std::uint32_t value) {
  auto k = exclusive_kernel(cu, "write_register");
  try {
    k.write_register(offset, value);
  } catch (const std::exception& e) {
    throw backend_error("xrt: write_register(" + hex(offset) + ", " + hex(value) + ") on " +
                        info.name + ":" + cus[cu].name + ": " + e.what() +
                        (noop_mode() ? " (XRT's noop shim has no registers)" : ""));
  }
}

// Holds the fast claim throughout: a call on the reserved run is either done or not begun, and
// none can reserve a new run between the reset and the emptying below. Runs a concurrent call or
// start is using (in_use) are left to it; their handles keep that context until it is done.
void xrt_kernel::drop_shared() {
  while (!claim_fast()) std::this_thread::yield();
  {
    std::lock_guard lock(mutex_);
    fast_slot_.reset();
    // Completed runs still held by callers keep their xrt::run, hence the context: empty them.
    for (auto& [mask, pm] : by_mask_)
      for (auto& s : pm.slots)
        if (!s->in_use) s->run = xrt::run();
    by_mask_.clear();
    last_.reset();
  }
  release_fast();
}

std::size_t xrt_kernel::drop_exclusive() {
  std::lock_guard lock(mutex_);
  const std::size_t n = exclusive_.size();
  exclusive_.clear();
  return n;
}

void xrt_kernel::drop() {
  drop_shared();
  program_->exclusive_open.fetch_sub(static_cast<int>(drop_exclusive()));
}

// ---------------------------------------------------------------------------------------------
// Programs

xrt_device& xrt_program::xdev() const { return static_cast<xrt_device&>(*device); }

std::string xrt_program::what() const { return path.empty() ? "'" + bin.source + "'" : "'" + path + "'"; }

std::shared_ptr<buffer_impl> xrt_program::allocate(host_memory host, std::size_t bytes,
                                                   unsigned memory_index) {
  if (released) throw error("xrt: cannot allocate in " + what() + ", which was unloaded");
  auto self = std::static_pointer_cast<xrt_program>(shared_from_this());
  auto b = std::make_shared<xrt_buffer>(self, std::move(host), bytes, memory_index);
  std::lock_guard lock(mutex_);
  prune(buffers_);
  buffers_.push_back(b);
  return b;
}

std::shared_ptr<kernel_impl> xrt_program::open_kernel(const kernel_info& kernel,
                                                      std::vector<compute_unit> cus) {
  if (released) throw error("xrt: cannot open kernel '" + kernel.name + "' of " + what() +
                            ", which was unloaded");
  if (cus.empty() || cus.size() > 64)
    throw value_error("xrt: kernel '" + kernel.name + "' needs 1 to 64 compute units, got " +
                      std::to_string(cus.size()));
  auto self = std::static_pointer_cast<xrt_program>(shared_from_this());
  auto k = std::make_shared<xrt_kernel>(self, kernel, std::move(cus));
  // Open the XRT kernel over every CU now, so a name XRT does not know fails here.
  const std::uint64_t all = k->cus.size() == 64 ? ~0ull : (1ull << k->cus.size()) - 1;
  try {
    FPYGA_XRT_CALL("xrt::kernel(\"" + k->xrt_name(all) + "\") of " + what(),
                   xrt::kernel(xdev().native, uuid, k->xrt_name(all)));
  } catch (const backend_error& e) {
    // A Vitis sw_emu build is software: XRT's own message ("No compute units matching ...")
    // would not say that the file is fine, only meant for another device.
    if (bin.target() != "sw_emu") throw;
    const bool has_cus = std::any_of(bin.ips.begin(), bin.ips.end(), [](const ip_info& ip) {
      return ip.type == ip_type::kernel || ip.type == ip_type::ps_kernel;
    });
    throw value_error("xrt: kernel '" + kernel.name + "' of " + what() +
                      " cannot be opened: the file is an sw_emu build (its BITSTREAM is the "
                      "kernels compiled for the host CPU" +
                      (has_cus ? "" : ", with no compute units in IP_LAYOUT") +
                      "), which runs on the emu device (device 'emu'), not on XRT's " +
                      xdev().name() + " [" + e.what() + "]");
  }
  std::lock_guard lock(mutex_);
  prune(kernels_);
  kernels_.push_back(k);
  return k;
}

std::size_t xrt_program::runs_in_flight() const {
  std::lock_guard lock(mutex_);
  std::size_t n = launcher_ ? launcher_->pending() : 0;
  for (const auto& w : kernels_)
    if (auto k = w.lock()) n += k->in_flight();
  return n;
}

std::vector<std::shared_ptr<xrt_kernel>> xrt_program::live_kernels() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<xrt_kernel>> out;
  for (const auto& w : kernels_)
    if (auto k = w.lock()) out.push_back(std::move(k));
  return out;
}

// Both run without the program's lock held while kernels are visited: a kernel busy in a call
// may itself be waiting for the program.
void xrt_program::release_shared_contexts() {
  for (auto& k : live_kernels()) k->drop_shared();
}

// Subtracts what it dropped rather than storing 0: a register access on another thread may open
// an exclusive context while the kernels are visited, and its count must survive, or the next
// call would not give that context back and XRT would refuse the shared one.
void xrt_program::release_exclusive_contexts() {
  for (auto& k : live_kernels()) exclusive_open.fetch_sub(static_cast<int>(k->drop_exclusive()));
}

void xrt_program::launch_later(launcher::job j) {
  std::shared_ptr<launcher> l;
  {
    std::lock_guard lock(mutex_);
    if (!launcher_) launcher_ = launcher::create();
    l = launcher_;
  }
  l->submit(std::move(j));
}

xrt_program::~xrt_program() {
  if (launcher_) launcher_->shutdown();
}

void xrt_program::release() {
  std::shared_ptr<launcher> l;
  {
    std::lock_guard lock(mutex_);
    l = launcher_;
  }
  if (l) l->shutdown();  // nothing is queued: the core refuses to unload with runs in flight
  std::lock_guard lock(mutex_);
  if (released) return;
  released = true;
  // Drop every XRT handle so XRT lets the next xclbin in; fpyga handles of this program then
  // raise "unloaded".
  for (auto& w : kernels_)
    if (auto k = w.lock()) k->drop();
  for (auto& w : buffers_)
    if (auto b = w.lock()) b->release_device();
  kernels_.clear();
  buffers_.clear();
}

// ---------------------------------------------------------------------------------------------
// Devices

xrt_device::xrt_device(unsigned index, xrt::device dev) : native(std::move(dev)), index_(index) {
  // Device queries need a driver; the noop shim throws for all of them.
  try {
    shell_ = native.get_info<xrt::info::device::name>();
  } catch (const std::exception&) {
  }
  try {
    bdf_ = native.get_info<xrt::info::device::bdf>();
  } catch (const std::exception&) {
  }
  name_ = !shell_.empty() ? shell_
          : noop_mode()   ? "XRT noop shim device " + std::to_string(index)
                          : "XRT device " + std::to_string(index);
}

std::shared_ptr<program_impl> xrt_device::load(const xclbin& bin, const std::string& path) {
  std::lock_guard lock(load_mutex_);
  const std::string label = path.empty() ? bin.source : path;
  if (label.size() > 3 && label.compare(label.size() - 3, 3, ".cl") == 0)
    throw value_error("xrt: '" + label +
                      "' is an OpenCL C source, which only an opencl device builds; XRT loads "
                      "xclbins and awsxclbins");
  if ((bin.mode == xclbin_mode::sw_emu || bin.mode == xclbin_mode::hw_emu) && !noop_mode())
    throw value_error("xrt: '" + label + "' is a " + bin.target() +
                      " build, which a card cannot run; load it on the emu device");
  if (current && !current->released) current->release();

  xrt::xclbin xb;
  // Old files (SDAccel 2018 awsxclbins) name compute units by their kernel only, which XRT
  // matches to no kernel: XRT gets a copy with "kernel:instance" names, as the core names them.
  const bool rename = bin.has_bare_cu_names();
  if (!path.empty() && !rename) {
    xb = FPYGA_XRT_CALL("xrt::xclbin(\"" + path + "\")", xrt::xclbin(path));
  } else {
    const auto bytes = rename ? bin.with_full_cu_names().write() : bin.write();
    std::vector<char> data(bytes.size());
    std::memcpy(data.data(), bytes.data(), bytes.size());
    xb = FPYGA_XRT_CALL("xrt::xclbin(" + label + ")", xrt::xclbin(data));
  }
  auto prog = std::make_shared<xrt_program>();
  prog->uuid = FPYGA_XRT_CALL("xrt::device::load_xclbin(\"" + label + "\")",
                              native.load_xclbin(xb));
  prog->device = shared_from_this();
  prog->bin = bin;
  prog->path = path;
  prog->memories = bin.memories;
  if (prog->memories.empty()) {
    // Old builds carry no MEM_TOPOLOGY: one default bank, XRT's memory group 0.
    prog->memories.push_back(default_bank());
  }
  current = prog;
  return prog;
}

// ---------------------------------------------------------------------------------------------
// What the device reports (device_info.hpp)

namespace {

using json = nlohmann::json;

// XRT's device information is boost property-tree JSON: every value is a string, and a sensor
// XRT could not read says "is_present": "false" (its value then reads 0, which is no reading).
std::optional<double> number_at(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return std::nullopt;
  const auto& s = j[key].get_ref<const std::string&>();
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;  // "N/A"
  return v;
}

bool present(const json& j) {
  return j.is_object() && j.contains("is_present") && j["is_present"] == "true";
}

/// The first "error_msg" XRT put in `j` (why a value is missing), or "".
std::string first_error(const json& j) {
  if (j.is_object()) {
    if (auto it = j.find("error_msg"); it != j.end() && it->is_string())
      return it->get<std::string>();
    for (const auto& [key, value] : j.items())
      if (auto e = first_error(value); !e.empty()) return e;
  } else if (j.is_array()) {
    for (const auto& value : j)
      if (auto e = first_error(value); !e.empty()) return e;
  }
  return {};
}

const json& child(const json& j, const char* key) {
  static const json none;
  return j.is_object() && j.contains(key) ? j[key] : none;
}

}  // namespace

sensor_readings sensors_from_xrt_info(const std::string& electrical, const std::string& thermal,
                                      std::string why) {
  sensor_readings r;
  try {
    const json e = electrical.empty() ? json() : json::parse(electrical);
    for (const auto& rail : child(e, "power_rails")) {
      rail_reading rr;
      rr.name = rail.value("id", "");
      rr.description = rail.value("description", "");
      if (present(child(rail, "voltage"))) rr.volts = number_at(child(rail, "voltage"), "volts");
      if (present(child(rail, "current"))) rr.amps = number_at(child(rail, "current"), "amps");
      if (rr.volts && rr.amps) rr.watts = *rr.volts * *rr.amps;
      if (rr.volts || rr.amps) r.rails.push_back(std::move(rr));
      if (why.empty()) why = first_error(rail);  // a rail XRT could not read (or half of one)
    }
    r.power_watts = number_at(e, "power_consumption_watts");
  } catch (const std::exception& ex) {
    if (why.empty()) why = std::string("electrical: ") + ex.what();
  }
  try {
    const json t = thermal.empty() ? json() : json::parse(thermal);
    for (const auto& sensor : child(t, "thermals")) {
      const auto c = present(sensor) ? number_at(sensor, "temp_C") : std::nullopt;
      if (c)
        r.temperatures.push_back(
            {sensor.value("location_id", ""), sensor.value("description", ""), *c});
      if (why.empty()) why = first_error(sensor);
    }
  } catch (const std::exception& ex) {
    if (why.empty()) why = std::string("thermal: ") + ex.what();
  }
  const bool any = r.power_watts || !r.rails.empty() || !r.temperatures.empty();
  if (any) r.source = "xrt";
  if (!any || !why.empty())
    r.note =
        std::string(any ? "XRT could not read every sensor" : "XRT reported no sensor values") +
        (why.empty() ? std::string() : ": " + why);
  return r;
}

std::optional<memory_usage> usage_from_xrt_info(const std::string& memory, const std::string& tag) {
  try {
    const json j = json::parse(memory);
    for (const auto& m : child(child(child(j, "board"), "memory"), "memories")) {
      if (!m.is_object() || m.value("tag", "") != tag) continue;
      const json& use = child(child(m, "extended_info"), "usage");
      const auto bytes = number_at(use, "allocated_bytes");
      const auto count = number_at(use, "buffer_objects_count");
      if (!bytes || !count) return std::nullopt;
      memory_usage u;
      u.used_bytes = static_cast<std::uint64_t>(*bytes);
      u.buffers = static_cast<std::uint64_t>(*count);
      u.source = "xrt";
      return u;
    }
  } catch (const std::exception&) {
    // Not JSON, or not shaped as XRT writes it: no report.
  }
  return std::nullopt;
}

sensor_readings xrt_device::read_sensors() const {
  std::string electrical, thermal, why;
  try {
    electrical = native.get_info<xrt::info::device::electrical>();
  } catch (const std::exception& ex) {
    why = ex.what();
  }
  try {
    thermal = native.get_info<xrt::info::device::thermal>();
  } catch (const std::exception& ex) {
    if (why.empty()) why = ex.what();
  }
  auto r = sensors_from_xrt_info(electrical, thermal, std::move(why));
  if (!r.note.empty() && noop_mode()) r.note += " (XRT's noop shim answers no device queries)";
  return r;
}

std::optional<unsigned long> xrt_device::max_clock_frequency_mhz() const {
  try {
    const unsigned long mhz = native.get_info<xrt::info::device::max_clock_frequency_mhz>();
    if (mhz != 0) return mhz;
  } catch (const std::exception&) {
    // No clock query on this device (the noop shim has none).
  }
  return std::nullopt;
}

memory_usage xrt_program::usage(unsigned memory_index) {
  // A card: XRT's report counts every process's buffers, as `xbutil examine` shows them. The
  // noop shim answers no device query: then fpyga's own count.
  try {
    const std::string report = xdev().native.get_info<xrt::info::device::memory>();
    if (auto u = usage_from_xrt_info(report, memories.at(memory_index).tag)) return *u;
  } catch (const std::exception&) {
  }
  std::lock_guard lock(mutex_);
  return count_own_buffers(buffers_, memory_index);
}

}  // namespace xrtb

namespace {

std::vector<std::shared_ptr<device_impl>> discover() {
  using namespace xrtb;
  if (!prepare_environment().empty()) return {};
  unsigned n = 0;
  try {
    n = xrt::system::enumerate_devices();
  } catch (const std::exception&) {
    n = 0;  // no driver, no shim: no XRT devices
  }
  if (n == 0 && noop_mode()) n = noop_device_count();
  std::vector<std::shared_ptr<device_impl>> out;
  for (unsigned i = 0; i < n; ++i) {
    try {
      out.push_back(std::make_shared<xrt_device>(static_cast<unsigned>(out.size()),
                                                 xrt::device(i)));
    } catch (const std::exception&) {
      // A card XRT lists but cannot open (driver mismatch, held by another user) is skipped.
    }
  }
  return out;
}

}  // namespace

backend_entry xrt_backend() {
  return backend_entry{"xrt", true, &devices_once<discover>};
}

}  // namespace fpyga::backend
