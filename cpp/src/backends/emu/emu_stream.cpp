// Kernels joined by streams on the emulated device (see emu_stream.hpp).
#include "backends/emu/emu_stream.hpp"

#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#define FPYGA_EMU_STREAM_HOST_SIDE
#include "backends/emu/emu.hpp"
#include "emu_stream_glue.h"
#include "fpyga/error.hpp"
#include "fpyga/stream.hpp"
#include "fpyga/warning.hpp"
#include "fpyga/xclbin.hpp"

namespace fpyga::backend::emu {

/// How often a blocked kernel thread looks at its cancel flag even without a wake-up (wake-ups
/// are sent without the stream's lock, so one can be missed).
constexpr auto poll_interval = std::chrono::milliseconds(100);
/// How long an unload waits for free-running kernels to end.
constexpr auto stop_grace = std::chrono::seconds(2);

struct stream_design::fifo {
  std::string tag;     ///< "dc_0"
  std::string source;  ///< "krnl_a_1.out"
  std::string sink;    ///< "krnl_b_1.in"
  std::size_t depth = 1;
  const fpyga_emu_stream_ops* ops = nullptr;
  void* object = nullptr;  ///< the hls::stream<T> both ends are given
  std::mutex* lock = nullptr;
  std::condition_variable* cond = nullptr;
  unit* producer = nullptr;
  unit* consumer = nullptr;
  /// Elements in the FIFO as of the last operation of either end (stored under the stream's
  /// mutex), read by deadlock detection and by a waiting writer.
  std::atomic<std::size_t> size{0};
  std::atomic<std::uint64_t> moves{0};  ///< writes and reader releases, to see a stall end
  std::atomic<bool> writer_waiting{false};
  std::size_t wake_reader_at = 1;  ///< elements in the FIFO that wake a waiting reader
  std::size_t wake_writer_at = 0;  ///< elements left in the FIFO that wake a waiting writer
  std::mutex room_mutex;
  std::condition_variable room_cv;
  bool stale = false;  ///< under design mutex: a cancelled run left elements that belong to no run

  std::string name() const { return "'" + tag + "' (" + source + " -> " + sink + ")"; }
};

namespace {

struct stream_end {
  stream_design::fifo* f;
  bool output;
};

}  // namespace

struct stream_design::unit {
  stream_design* design = nullptr;
  emu_cu* cu = nullptr;
  bool free_running = false;
  std::vector<stream_end> ends;
  // Under design->mutex:
  bool running = false;
  fifo* blocked = nullptr;  ///< the FIFO it waits on
  bool writing = false;     ///< waits for room (else for data)
  std::string cancel_message;
  std::atomic<bool> cancelled{false};
  std::atomic<bool> thread_done{false};
  /// Since when it waits, with no element moving, on a FIFO whose other end is idle (no run
  /// running or queued): a host that never starts that kernel again would wait forever.
  std::chrono::steady_clock::time_point stalled_since{};
  std::uint64_t stalled_moves = 0;

  stream_end* end_by_mutex(const void* m) {
    for (auto& e : ends)
      if (e.f->lock == m) return &e;
    return nullptr;
  }
  fifo* by_cond(const void* c, bool output) {
    for (auto& e : ends)
      if (e.f->cond == c && e.output == output) return e.f;
    return nullptr;
  }
};

namespace {

/// The compute unit the calling thread runs, and a FIFO its last write overfilled.
thread_local stream_design::unit* current_unit = nullptr;
thread_local stream_design::fifo* pending_room = nullptr;

// --- the glue's callbacks (called from the kernel's code, on the kernel's thread) --------------

void on_wait(void* cond, void* lock) {
  auto* c = static_cast<std::condition_variable*>(cond);
  auto* ul = static_cast<std::unique_lock<std::mutex>*>(lock);
  stream_design::unit* u = current_unit;
  stream_design::fifo* f = u ? u->by_cond(c, false) : nullptr;
  if (!f) {
    c->wait(*ul);
    return;
  }
  u->design->block_read(*u, *f, ul);
}

void on_notify_one(void* cond) {
  auto* c = static_cast<std::condition_variable*>(cond);
  stream_design::unit* u = current_unit;
  stream_design::fifo* f = u ? u->by_cond(c, true) : nullptr;
  if (!f) {
    c->notify_one();
    return;
  }
  // hls::stream::write notifies while it holds the stream's mutex, after the push. A waiting
  // reader is woken once half the FIFO is filled (at once for depths 1 and 2), or when this
  // writer waits or its run ends (stream_design::idle): a thread hand-off per element would cost
  // more than the element.
  const std::size_t n = f->ops->size(f->object);
  f->size.store(n);
  f->moves.fetch_add(1, std::memory_order_relaxed);
  if (n >= f->wake_reader_at) c->notify_one();
  if (n > f->depth) pending_room = f;
}

int on_unlock(void* mutex) {
  auto* m = static_cast<pthread_mutex_t*>(mutex);
  stream_design::unit* u = current_unit;
  stream_end* e = u ? u->end_by_mutex(mutex) : nullptr;
  if (!e) return ::pthread_mutex_unlock(m);
  stream_design::fifo& f = *e->f;
  if (!e->output) {
    // The consumer releases the stream after a read (or an empty()/size() check): publish the
    // count while it still holds the lock, then let a writer waiting for room look again.
    const std::size_t n = f.ops->size(f.object);
    f.size.store(n);
    f.moves.fetch_add(1, std::memory_order_relaxed);
    const int r = ::pthread_mutex_unlock(m);
    // As for readers: a waiting writer is woken once half the FIFO is free (at once for depths 1
    // and 2), or when this reader waits or its run ends.
    if (n <= f.wake_writer_at && f.writer_waiting.load()) {
      { std::lock_guard hold(f.room_mutex); }
      f.room_cv.notify_all();
    }
    return r;
  }
  const int r = ::pthread_mutex_unlock(m);
  if (pending_room == &f) {
    pending_room = nullptr;
    u->design->wait_room(*u, f);
  }
  return r;
}

const fpyga_emu_stream_host host_table = {FPYGA_EMU_STREAM_ABI, &on_wait, &on_notify_one,
                                          &on_unlock};

std::string plural(std::size_t n, const char* one, const char* many) {
  return n == 1 ? one : many;
}

}  // namespace

// --- blocking ---------------------------------------------------------------------------------

void stream_design::throw_cancelled(unit& u) {
  std::string why;
  {
    std::lock_guard hold(mutex);
    u.blocked = nullptr;
    why = u.cancel_message;
  }
  throw error(why);
}

void stream_design::wake(const std::vector<fifo*>& fifos) {
  for (fifo* f : fifos) {
    f->cond->notify_all();
    { std::lock_guard hold(f->room_mutex); }
    f->room_cv.notify_all();
  }
}

void stream_design::idle(unit& u) {
  for (auto& e : u.ends) {
    fifo& f = *e.f;
    if (e.output) {
      if (f.size.load()) f.cond->notify_all();
    } else if (f.writer_waiting.load()) {
      { std::lock_guard hold(f.room_mutex); }
      f.room_cv.notify_all();
    }
  }
}

void stream_design::block_read(unit& u, fifo& f, void* lock) {
  auto& ul = *static_cast<std::unique_lock<std::mutex>*>(lock);
  // hls::stream::read waits only while the FIFO is empty, and this thread holds its mutex.
  f.size.store(0);
  std::vector<fifo*> woken;
  {
    std::lock_guard hold(mutex);
    u.blocked = &f;
    u.writing = false;
    if (!u.cancelled) detect(u, woken);
  }
  wake(woken);
  if (u.cancelled) throw_cancelled(u);
  idle(u);
  f.cond->wait_for(ul, poll_interval);
  {
    std::lock_guard hold(mutex);
    check_stall(u, woken);
    u.blocked = nullptr;
  }
  if (u.cancelled) throw_cancelled(u);
  // Back in hls::stream::read, which waits again (and comes back here) while still empty.
}

void stream_design::wait_room(unit& u, fifo& f) {
  if (u.cancelled) {
    if (stopping && u.free_running) {
      // A free-running kernel that only writes never reaches a read that could end it: park
      // it, holding no lock, rather than let it spin; stop() leaves it behind.
      std::unique_lock hold(park_mutex);
      park_cv.wait(hold, [] { return false; });
    }
    return;  // a cancelled run's writes do not wait: it runs on to its next read or its end
  }
  f.writer_waiting.store(true);
  std::vector<fifo*> woken;
  {
    std::lock_guard hold(mutex);
    u.blocked = &f;
    u.writing = true;
    detect(u, woken);
  }
  wake(woken);
  idle(u);
  {
    std::unique_lock hold(f.room_mutex);
    while (f.size.load() > f.depth && !u.cancelled) {
      if (f.room_cv.wait_for(hold, poll_interval) == std::cv_status::timeout) {
        hold.unlock();
        woken.clear();
        {
          std::lock_guard d(mutex);
          if (!u.cancelled) detect(u, woken);
          check_stall(u, woken);
        }
        wake(woken);
        hold.lock();
      }
    }
  }
  f.writer_waiting.store(false);
  std::lock_guard hold(mutex);
  u.blocked = nullptr;
}

void stream_design::check_stall(unit& u, std::vector<fifo*>& woken) {
  fifo* f = u.blocked;
  if (!f || u.free_running || !stall_limit.count() || u.cancelled) return;
  unit* peer = u.writing ? f->consumer : f->producer;
  const bool idle = !peer->running && !peer->free_running && peer->cu->pending.load() == 0;
  const auto now = std::chrono::steady_clock::now();
  const std::uint64_t moves = f->moves.load();
  if (!idle || u.stalled_since == std::chrono::steady_clock::time_point{} ||
      moves != u.stalled_moves) {
    u.stalled_since = idle ? now : std::chrono::steady_clock::time_point{};
    u.stalled_moves = moves;
    return;
  }
  if (now - u.stalled_since < stall_limit) return;
  u.cancel_message =
      "emu: compute unit '" + u.cu->name + "' waited " +
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(now - u.stalled_since).count()) +
      " ms to " + (u.writing ? "write " : "read ") + f->name() + ", which is " +
      (u.writing ? "full (depth " + std::to_string(f->depth) + ")" : std::string("empty")) +
      ", while '" + peer->cu->name +
      "', its other end, ran nothing: the design stalled (a card would hang). "
      "Start '" +
      peer->cu->name + "' with the run that " + (u.writing ? "reads" : "writes") +
      " the rest, or raise FPYGA_EMU_STREAM_STALL (seconds; 0 waits forever)";
  u.cancelled = true;
  woken.push_back(f);
  for (auto& e : u.ends) e.f->stale = true;
}

void stream_design::detect(unit& u, std::vector<fifo*>& woken) {
  // Whom a unit waits for, if it truly waits: its FIFO is still empty (reader) or still over
  // its depth (writer), as the other end last left it.
  auto waits_for = [](unit* x) -> unit* {
    if (!x->running || !x->blocked || x->cancelled) return nullptr;
    const fifo& f = *x->blocked;
    if (x->writing ? f.size.load() <= f.depth : f.size.load() != 0) return nullptr;
    return x->writing ? f.consumer : f.producer;
  };
  std::vector<unit*> path;
  std::vector<unit*> cycle;
  for (unit* x = &u; x; x = waits_for(x)) {
    if (auto it = std::find(path.begin(), path.end(), x); it != path.end()) {
      cycle.assign(it, path.end());
      break;
    }
    path.push_back(x);
  }
  if (cycle.empty()) return;

  std::string msg =
      "emu: kernels joined by streams deadlocked (each waits for the next; a card would hang): ";
  for (std::size_t i = 0; i < cycle.size(); ++i) {
    const unit& x = *cycle[i];
    if (i) msg += "; ";
    msg += "'" + x.cu->name + "' waits to " + (x.writing ? "write " : "read ") + x.blocked->name() +
           (x.writing ? ", which is full (depth " + std::to_string(x.blocked->depth) + ")"
                      : ", which is empty");
  }
  // Units waiting on the cycle go down with it.
  std::vector<unit*> victims = cycle;
  for (auto& y : units) {
    if (std::find(victims.begin(), victims.end(), y.get()) != victims.end()) continue;
    unit* x = y.get();
    for (std::size_t steps = 0; x && steps <= units.size(); ++steps) {
      x = waits_for(x);
      if (x && std::find(cycle.begin(), cycle.end(), x) != cycle.end()) {
        victims.push_back(y.get());
        break;
      }
    }
  }
  msg += ". The runs of compute unit" + plural(victims.size(), " ", "s ");
  for (std::size_t i = 0; i < victims.size(); ++i)
    msg += (i ? ", '" : "'") + victims[i]->cu->name + "'";
  msg += " failed; their streams are emptied once both ends are idle";
  for (unit* v : victims) {
    v->cancel_message = msg;
    v->cancelled = true;
    if (v->blocked) woken.push_back(v->blocked);
    for (auto& e : v->ends) e.f->stale = true;
  }
}

// --- scope ------------------------------------------------------------------------------------

stream_scope::stream_scope(stream_design* design, emu_cu& cu) : design_(design) {
  if (!design_) return;
  unit_ = design_->unit_of(cu);
  if (!unit_) {
    design_ = nullptr;
    return;
  }
  {
    std::lock_guard hold(design_->mutex);
    if (design_->stopping)
      throw error("emu: compute unit '" + cu.name + "' cannot run: its xclbin is being unloaded");
    unit_->running = true;
    unit_->blocked = nullptr;
    unit_->cancelled = false;
    unit_->cancel_message.clear();
    unit_->stalled_since = {};
  }
  saved_ = current_unit;
  current_unit = unit_;
  pending_room = nullptr;
}

stream_scope::~stream_scope() {
  if (!design_) return;
  current_unit = saved_;
  pending_room = nullptr;
  std::vector<stream_design::fifo*> emptied;
  {
    std::lock_guard hold(design_->mutex);
    unit_->running = false;
    unit_->blocked = nullptr;
    for (auto& e : unit_->ends) {
      auto* f = e.f;
      if (f->stale && !f->producer->running && !f->consumer->running &&
          std::find(emptied.begin(), emptied.end(), f) == emptied.end()) {
        f->stale = false;
        emptied.push_back(f);
      }
    }
  }
  for (auto* f : emptied) {
    f->ops->clear(f->object);
    f->size.store(0);
  }
  design_->idle(*unit_);
}

void stream_scope::finish() {
  if (design_ && unit_->cancelled) design_->throw_cancelled(*unit_);
}

// --- the design -------------------------------------------------------------------------------

stream_design::unit* stream_design::unit_of(const emu_cu& cu) const {
  for (const auto& u : units)
    if (u->cu == &cu) return u.get();
  return nullptr;
}

std::unique_ptr<stream_design> stream_design::create(emu_program& p, const xclbin& bin) {
  const stream_layout layout = stream_layout::of(bin);
  auto ip_of = [&](const std::string& instance) -> const ip_info* {
    for (const auto& ip : bin.ips)
      if ((ip.type == ip_type::kernel || ip.type == ip_type::ps_kernel) &&
          ip.instance_name() == instance)
        return &ip;
    return nullptr;
  };
  bool any_free = false;
  for (const auto& cu : p.cus)
    if (const ip_info* ip = ip_of(cu->name); ip && ip->control == control_protocol::ap_ctrl_none)
      any_free = true;
  if (layout.empty() && !any_free) return nullptr;

  const std::string where = "'" + p.source + "'";
  auto abi = reinterpret_cast<unsigned (*)()>(::dlsym(p.library, "fpyga_emu_stream_abi"));
  auto arg_ops =
      reinterpret_cast<fpyga_emu_stream_ops_fn>(::dlsym(p.library, "fpyga_emu_stream_arg_ops"));
  auto attach =
      reinterpret_cast<fpyga_emu_stream_attach_fn>(::dlsym(p.library, "fpyga_emu_stream_attach"));
  if (!layout.empty() && (!abi || !arg_ops || !attach)) {
    const auto& port = layout.ports.front();
    throw not_supported_error("emu cannot run " + where + ": kernel '" + port.kernel +
                              "' takes AXI stream arguments (" + port.name() +
                              "), and its shared object was not built by fpyga's kernel toolchain, "
                              "whose stream glue emu needs (a "
                              "Vitis-made sw_emu xclbin keeps its own hls::stream); rebuild the "
                              "kernels with fpyga_add_xclbin or "
                              "fpyga.toolchain.build_xclbin");
  }
  if (abi && abi() != FPYGA_EMU_STREAM_ABI)
    throw not_supported_error("emu cannot run " + where + ": its kernels' stream glue is version " +
                              std::to_string(abi()) + ", this fpyga's is " +
                              std::to_string(FPYGA_EMU_STREAM_ABI) +
                              "; rebuild the xclbin with this fpyga");

  std::unique_ptr<stream_design> d(new stream_design);
  d->prog = &p;
  if (const char* v = std::getenv("FPYGA_EMU_STREAM_STALL"); v && *v) {
    char* end = nullptr;
    const double seconds = std::strtod(v, &end);
    if (end && !*end && seconds >= 0 && seconds < 1e6)
      d->stall_limit = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
    else
      warn("FPYGA_EMU_STREAM_STALL='" + std::string(v) + "' is not a number of seconds; using " +
           std::to_string(d->stall_limit.count() / 1000) + " s");
  }
  for (auto& cu : p.cus) {
    const ip_info* ip = ip_of(cu->name);
    const bool free_running = ip && ip->control == control_protocol::ap_ctrl_none;
    auto u = std::make_unique<unit>();
    u->design = d.get();
    u->cu = cu.get();
    u->free_running = free_running;
    cu->stream_args.assign(cu->k.types.size(), nullptr);
    if (free_running) {
      cu->free_running = true;
      for (std::size_t i = 0; i < cu->k.passing.size(); ++i)
        if (cu->k.passing[i] == pass::pointer)
          throw not_supported_error("emu cannot run " + where + ": free-running compute unit '" +
                                    cu->name + "' (ap_ctrl_none) has memory-mapped argument '" +
                                    cu->k.info->args[i].name +
                                    "', which no host call could ever set");
    }
    d->units.push_back(std::move(u));
  }
  auto unit_named = [&](const std::string& instance) -> unit* {
    for (auto& u : d->units)
      if (u->cu->name == instance) return u.get();
    return nullptr;
  };
  auto arg_position = [](const emu_cu& cu, const std::string& arg) -> std::size_t {
    for (std::size_t i = 0; i < cu.k.info->args.size(); ++i)
      if (cu.k.info->args[i].name == arg) return i;
    return cu.k.info->args.size();
  };

  for (const auto& port : layout.ports)
    if (!port.connection)
      throw not_supported_error(
          "emu cannot run " + where + ": stream " + port.name() +
          " is connected to a host stream memory; emu runs kernel-to-kernel streams only");
  for (const auto& c : layout.connections) {
    const stream_port& src = layout.ports.at(c.source);
    const stream_port& snk = layout.ports.at(c.sink);
    auto f = std::make_unique<fifo>();
    f->tag = c.tag;
    f->source = src.name();
    f->sink = snk.name();
    f->depth = std::max<std::size_t>(c.depth, 1);
    f->wake_reader_at = std::max<std::size_t>(f->depth / 2, 1);
    f->wake_writer_at = f->depth / 2;
    f->producer = unit_named(src.instance);
    f->consumer = unit_named(snk.instance);
    if (!f->producer || !f->consumer)
      throw xclbin_error(where + ": stream " + f->name() +
                         " joins a compute unit emu did not create");
    const std::size_t src_arg = arg_position(*f->producer->cu, src.arg);
    const std::size_t snk_arg = arg_position(*f->consumer->cu, snk.arg);
    const fpyga_emu_stream_ops* out_ops =
        arg_ops(src.kernel.c_str(), static_cast<unsigned>(src_arg));
    const fpyga_emu_stream_ops* in_ops =
        arg_ops(snk.kernel.c_str(), static_cast<unsigned>(snk_arg));
    for (auto [ops, port_name] : {std::pair{out_ops, &f->source}, std::pair{in_ops, &f->sink}})
      if (!ops || ops->abi != FPYGA_EMU_STREAM_ABI)
        throw not_supported_error(
            "emu cannot run " + where + ": " + *port_name +
            " is described as a stream, but the kernel's compiled function takes no "
            "hls::stream<T>& at that position");
    if (out_ops->element_size != in_ops->element_size)
      throw xclbin_error(where + ": stream " + f->name() + ": " + f->source + " writes " +
                         std::to_string(out_ops->element_size) + "-byte elements, " + f->sink +
                         " reads " + std::to_string(in_ops->element_size) + "-byte ones");
    f->ops = in_ops;
    f->object = in_ops->create(c.tag.c_str());
    f->lock = static_cast<std::mutex*>(in_ops->mutex(f->object));
    f->cond = static_cast<std::condition_variable*>(in_ops->cond(f->object));
    f->producer->ends.push_back({f.get(), true});
    f->consumer->ends.push_back({f.get(), false});
    f->producer->cu->stream_args.at(src_arg) = f->object;
    f->consumer->cu->stream_args.at(snk_arg) = f->object;
    d->fifos.push_back(std::move(f));
  }
  // Every stream argument must have its FIFO before any kernel runs.
  for (auto& u : d->units)
    for (std::size_t i = 0; i < u->cu->k.passing.size(); ++i)
      if (u->cu->k.passing[i] == pass::stream && !u->cu->stream_args[i])
        throw xclbin_error(where + ": stream argument '" + u->cu->k.info->args[i].name +
                           "' of compute unit '" + u->cu->name +
                           "' is connected to no other kernel");
  if (attach) attach(&host_table);
  return d;
}

stream_design::~stream_design() = default;

void stream_design::start() {
  for (auto& u : units)
    if (u->free_running) threads_.emplace_back([this, x = u.get()] { free_running_loop(*x); });
}

void stream_design::free_running_loop(unit& u) {
  std::vector<bound_arg> args(u.cu->k.types.size());
  while (!stopping) {
    try {
      u.cu->execute(args);
    } catch (const std::exception& e) {
      if (!stopping)
        warn("emu: free-running compute unit '" + u.cu->name + "' of kernel '" +
             u.cu->k.info->name + "' stopped: " + e.what() + "; it starts again");
    }
    // A kernel that returned without waiting on a stream: let the others have the core.
    std::this_thread::yield();
  }
  u.thread_done = true;
}

bool stream_design::stop() {
  std::vector<fifo*> all;
  {
    std::lock_guard hold(mutex);
    stopping = true;
    for (auto& u : units) {
      u->cancel_message = "emu: compute unit '" + u->cu->name + "' of kernel '" +
                          u->cu->k.info->name +
                          "' was stopped: its xclbin was unloaded while it ran";
      u->cancelled = true;
    }
  }
  for (auto& f : fifos) all.push_back(f.get());
  wake(all);
  const auto deadline = std::chrono::steady_clock::now() + stop_grace;
  bool all_done = true;
  std::size_t i = 0;
  for (auto& u : units) {
    if (!u->free_running) continue;
    std::thread& t = threads_.at(i++);
    while (!u->thread_done && std::chrono::steady_clock::now() < deadline) {
      wake(all);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (u->thread_done) {
      t.join();
    } else {
      all_done = false;
      t.detach();
      warn("emu: free-running compute unit '" + u->cu->name + "' of kernel '" +
           u->cu->k.info->name +
           "' did not stop at unload (it neither returned nor waited on a stream read); its thread "
           "and "
           "library stay in this process");
    }
  }
  return all_done;
}

void stream_design::abandon(std::unique_ptr<stream_design> design,
                            std::vector<std::unique_ptr<emu_cu>>& cus) {
  struct graveyard {
    std::mutex mutex;
    std::vector<std::unique_ptr<stream_design>> designs;
    std::vector<std::unique_ptr<emu_cu>> cus;
  };
  static auto* g = new graveyard;  // never destroyed: its threads outlive every destructor
  std::lock_guard hold(g->mutex);
  for (auto& cu : cus)
    if (cu && cu->free_running) g->cus.push_back(std::move(cu));
  std::erase_if(cus, [](const auto& cu) { return !cu; });
  g->designs.push_back(std::move(design));
}

void stream_design::destroy_fifos() {
  for (auto& f : fifos) {
    if (f->object) f->ops->destroy(f->object);
    f->object = nullptr;
  }
}

}  // namespace fpyga::backend::emu
