// The sync checker (FPYGA_EMU_CHECK_SYNC=1): catches the host bug a card never reports, a
// missing sync_to_device or sync_from_device.
//
// How it works, per buffer:
// - `shadow` holds the host bytes as of the last moment host and device agreed (the last sync of
//   each byte range, in either direction; zero at allocation, where both sides are zero).
// - Before a kernel runs, an input it only reads (a pointer to const) whose host memory differs
//   from the shadow was changed on the host and not synced: warning.
// - After a kernel runs, a buffer whose device memory now differs from the shadow holds results
//   the host has not fetched. Its host pages (buffers own whole 4 KiB pages) are protected with
//   PROT_NONE; the first host access faults into a SIGSEGV handler that lifts the protection and,
//   for a read, queues a warning. A write is the host preparing new input: no warning.
//   sync_from_device, sync_to_device and free lift the protection first, silently.
//
// Limits (documented in docs/cpp.md): arguments that are not const pointers may be read by the
// kernel, but only const ones are checked before a run; after the first host write into a
// watched buffer, later reads of it are not watched; a read the kernel's own code performs on a
// host pointer is invisible (kernels receive device memory only, so this cannot happen through
// fpyga). Warnings noticed in the signal handler are delivered at the next fpyga call on the
// emulated device, at exit, or by fpyga::flush_warnings().
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "backends/emu/emu.hpp"
#include "fpyga/warning.hpp"

namespace fpyga::backend {

namespace {

constexpr int max_watches = 1024;
constexpr std::size_t message_size = 480;
constexpr unsigned ring_size = 128;

struct watch {
  std::atomic<int> taken{0};
  std::atomic<std::uintptr_t> begin{0};
  std::atomic<std::uintptr_t> end{0};
  std::atomic<int> fired{0};  ///< 0 armed, 1 host read, 2 host wrote
  char message[message_size] = {};
};
watch watches[max_watches];

struct pending_message {
  std::atomic<int> ready{0};
  char text[message_size] = {};
};
pending_message ring[ring_size];
std::atomic<unsigned> ring_head{0};
std::atomic<unsigned> ring_tail{0};
std::atomic<unsigned> ring_dropped{0};
std::mutex flush_mutex;

struct sigaction previous_action;
std::once_flag install_once;

void forward(int sig, siginfo_t* info, void* context) {
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction) previous_action.sa_sigaction(sig, info, context);
    return;
  }
  if (previous_action.sa_handler == SIG_DFL || previous_action.sa_handler == SIG_IGN) {
    // Not our fault: restore the default so the faulting instruction crashes as it would have.
    ::signal(sig, SIG_DFL);
    return;
  }
  previous_action.sa_handler(sig);
}

// Async-signal-safe: atomics, mprotect and memcpy only.
void on_segv(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (auto& w : watches) {
    const std::uintptr_t b = w.begin.load(std::memory_order_acquire);
    if (!b) continue;
    const std::uintptr_t e = w.end.load(std::memory_order_acquire);
    if (addr < b || addr >= e) continue;
    const auto* uc = static_cast<const ucontext_t*>(context);
    const bool is_write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
    ::mprotect(reinterpret_cast<void*>(b), e - b, PROT_READ | PROT_WRITE);
    int expected = 0;
    if (w.fired.compare_exchange_strong(expected, is_write ? 2 : 1) && !is_write) {
      const unsigned slot = ring_head.fetch_add(1);
      if (slot - ring_tail.load() >= ring_size) {
        ring_dropped.fetch_add(1);
      } else {
        auto& m = ring[slot % ring_size];
        std::memcpy(m.text, w.message, message_size);
        m.ready.store(1, std::memory_order_release);
      }
    }
    return;
  }
  forward(sig, info, context);
}

void install_handler() {
  std::call_once(install_once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &previous_action);
    std::atexit([] { emu_flush_pending_warnings(); });
  });
}

std::string hex(std::uint64_t v) {
  char s[24];
  std::snprintf(s, sizeof s, "0x%llx", static_cast<unsigned long long>(v));
  return s;
}

std::string describe(const emu::emu_buffer& b) {
  const auto& mems = b.prog().memories;
  return "buffer of " + std::to_string(b.size) + " bytes at device address " + hex(b.address) + " (" +
         (b.memory_index < mems.size() ? mems[b.memory_index].tag : std::string("?")) + ")";
}

bool host_differs(const emu::emu_buffer& b) {
  return std::memcmp(b.host.get(), b.shadow.data(), b.size) != 0;
}

bool device_differs(const emu::emu_buffer& b) {
  return std::memcmp(b.device, b.shadow.data(), b.size) != 0;
}

void arm(emu::emu_buffer& b) {
  if (b.watch_slot >= 0) return;
  install_handler();
  for (int i = 0; i < max_watches; ++i) {
    int free = 0;
    if (!watches[i].taken.compare_exchange_strong(free, 1)) continue;
    auto& w = watches[i];
    const std::string text = "sync checker: the host read the " + describe(b) + " after " + b.written_by +
                             " wrote it, without sync_from_device: the host sees stale data";
    std::memset(w.message, 0, message_size);
    std::memcpy(w.message, text.data(), std::min(text.size(), message_size - 1));
    const auto begin = reinterpret_cast<std::uintptr_t>(b.host.get());
    w.fired.store(0);
    w.end.store(begin + (b.size + 4095) / 4096 * 4096, std::memory_order_release);
    w.begin.store(begin, std::memory_order_release);
    b.watch_slot = i;
    ::mprotect(b.host.get(), (b.size + 4095) / 4096 * 4096, PROT_NONE);
    return;
  }
  static std::once_flag full;
  std::call_once(full, [] {
    warn("sync checker: more than " + std::to_string(max_watches) +
         " buffers hold unfetched kernel results; further ones are not watched");
  });
}

}  // namespace

void emu_flush_pending_warnings() {
  std::lock_guard lock(flush_mutex);
  for (;;) {
    const unsigned tail = ring_tail.load();
    if (tail == ring_head.load()) break;
    auto& m = ring[tail % ring_size];
    if (!m.ready.load(std::memory_order_acquire)) break;  // a handler is still writing it
    const std::string text(m.text);
    m.ready.store(0);
    ring_tail.store(tail + 1);
    warn(text);
  }
  if (const unsigned n = ring_dropped.exchange(0))
    warn("sync checker: " + std::to_string(n) + " further warning(s) were dropped");
}

namespace emu::sync_check {

void disarm(emu_buffer& b) {
  if (b.watch_slot < 0) return;
  auto& w = watches[b.watch_slot];
  ::mprotect(b.host.get(), (b.size + 4095) / 4096 * 4096, PROT_READ | PROT_WRITE);
  w.begin.store(0, std::memory_order_release);
  w.end.store(0, std::memory_order_release);
  w.taken.store(0, std::memory_order_release);
  b.watch_slot = -1;
}

void before_kernel(const emu_cu& cu, std::span<const bound_arg> args) {
  emu_flush_pending_warnings();
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (cu.k.passing[i] != pass::pointer || !cu.k.reads_only[i]) continue;
    auto& b = *static_cast<emu_buffer*>(args[i].buffer);
    if (b.shadow.size() != b.size) continue;
    // Watched and untouched by the host: the device holds a kernel's newer output, which this
    // kernel is meant to read (a chain of kernels), and the host copy is simply stale.
    if (b.watch_slot >= 0 && watches[b.watch_slot].fired.load() == 0) continue;
    if (host_differs(b))
      warn("sync checker: kernel '" + cu.k.info->name + "' (" + cu.name + ") reads argument '" +
           cu.k.info->args[i].name + "', a " + describe(b) +
           " whose host memory changed since its last sync_to_device: the kernel sees the old data");
  }
}

void after_kernel(const emu_cu& cu, std::span<const bound_arg> args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (cu.k.passing[i] != pass::pointer || cu.k.reads_only[i]) continue;
    auto& b = *static_cast<emu_buffer*>(args[i].buffer);
    if (b.shadow.size() != b.size || !device_differs(b)) continue;
    b.written_by = "kernel '" + cu.k.info->name + "' (" + cu.name + ")";
    arm(b);
  }
}

namespace {
void after_sync(emu_buffer& b, std::size_t bytes, std::size_t offset) {
  if (b.shadow.size() != b.size) return;
  std::memcpy(b.shadow.data() + offset, b.host.get() + offset, bytes);
  // Parts the sync did not cover may still hold kernel results the host has not fetched.
  if (device_differs(b) && !b.written_by.empty()) arm(b);
}
}  // namespace

void on_sync_to_device(emu_buffer& b, std::size_t bytes, std::size_t offset) { after_sync(b, bytes, offset); }
void on_sync_from_device(emu_buffer& b, std::size_t bytes, std::size_t offset) { after_sync(b, bytes, offset); }

}  // namespace emu::sync_check
}  // namespace fpyga::backend
