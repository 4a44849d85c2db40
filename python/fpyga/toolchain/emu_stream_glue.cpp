// emu's stream glue, linked into every kernel .so built in stream mode (see emu_stream_glue.h).
//
// The .so is linked with
//   --wrap=_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE  (condition_variable::wait)
//   --wrap=_ZNSt18condition_variable10notify_oneEv (condition_variable::notify_one)
//   --wrap=pthread_mutex_unlock
// so the kernel's calls to them (hls::stream's read, write and lock releases) come here first and
// go to emu while it has the .so loaded; emu's own code, outside the .so, calls the real ones.
// Until emu attaches (and in any process that is not emu) each call goes straight through.
#define FPYGA_EMU_STREAM_HOST_SIDE
#include "emu_stream_glue.h"

#include <pthread.h>

#include <atomic>
#include <cstring>

namespace {

std::atomic<const fpyga_emu_stream_host*> host{nullptr};

struct registered {
  const char* kernel;
  const fpyga_emu_stream_ops* const* ops;
  unsigned count;
};
// Filled by static initializers while the .so is being loaded (one thread), read after.
constexpr unsigned max_kernels = 256;
registered kernels[max_kernels];
unsigned kernel_count = 0;

}  // namespace

extern "C" {

// The real functions (GNU ld's --wrap names).
void __real__ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE(void* cond, void* lock);
void __real__ZNSt18condition_variable10notify_oneEv(void* cond);
int __real_pthread_mutex_unlock(pthread_mutex_t* mutex);

void __wrap__ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE(void* cond, void* lock) {
  if (const fpyga_emu_stream_host* h = host.load(std::memory_order_acquire))
    return h->wait(cond, lock);
  __real__ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE(cond, lock);
}

void __wrap__ZNSt18condition_variable10notify_oneEv(void* cond) {
  if (const fpyga_emu_stream_host* h = host.load(std::memory_order_acquire))
    return h->notify_one(cond);
  __real__ZNSt18condition_variable10notify_oneEv(cond);
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t* mutex) {
  if (const fpyga_emu_stream_host* h = host.load(std::memory_order_acquire))
    return h->unlock(mutex);
  return __real_pthread_mutex_unlock(mutex);
}

void fpyga_emu_stream_register(const char* kernel, const fpyga_emu_stream_ops* const* ops,
                               unsigned count) {
  if (kernel_count < max_kernels) kernels[kernel_count++] = {kernel, ops, count};
}

__attribute__((visibility("default"))) void fpyga_emu_stream_attach(
    const fpyga_emu_stream_host* h) {
  host.store(h && h->abi == FPYGA_EMU_STREAM_ABI ? h : nullptr, std::memory_order_release);
}

__attribute__((visibility("default"))) const fpyga_emu_stream_ops* fpyga_emu_stream_arg_ops(
    const char* kernel, unsigned arg) {
  for (unsigned i = 0; i < kernel_count; ++i)
    if (std::strcmp(kernels[i].kernel, kernel) == 0)
      return arg < kernels[i].count ? kernels[i].ops[arg] : nullptr;
  return nullptr;
}

/// The ABI version of this glue (emu checks it before anything else).
__attribute__((visibility("default"))) unsigned fpyga_emu_stream_abi() {
  return FPYGA_EMU_STREAM_ABI;
}
}
