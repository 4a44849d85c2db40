// Kernels that touch a guard page of emu's device memory: the run fails, the host lives on.
//
// Each bank is a mapping with an inaccessible page at each end, and with FPYGA_EMU_CHECK_BOUNDS=1
// each buffer has one on each side (emu_backend.cpp). A kernel runs through guarded_invoke(),
// which marks the thread as inside that kernel; the SIGSEGV handler checks that the faulting
// address lies in a bank of the kernel's program and, only then, jumps back out of the kernel
// with siglongjmp. Any other fault (in fpyga, in the host, in a kernel outside device memory) goes
// to the handler installed before, as if this one were not there.
//
// What is safe after the jump: the kernel ran no emu code and took no emu lock (the CU's locks
// belong to the frame that called guarded_invoke, which is where we land), and the signal mask
// is unchanged (the handler blocks nothing). The kernel's own state (its statics, heap memory it allocated,
// destructors of its locals) is left as the fault found it, as a card's kernel would be reset.
#include <signal.h>
#include <ucontext.h>

#include <csetjmp>
#include <mutex>

#include "backends/emu/emu.hpp"

namespace fpyga::backend::emu {
namespace {

struct guarded_call {
  sigjmp_buf env;
  const emu_program* prog = nullptr;
  volatile sig_atomic_t armed = 0;
  const void* volatile address = nullptr;
  volatile bool write = false;
};

/// The kernel call this thread is in. Touched by guarded_invoke before any fault can happen, so
/// the handler's access never allocates the thread's TLS block.
thread_local guarded_call* current = nullptr;

struct sigaction previous;
std::once_flag installed;

void forward(int sig, siginfo_t* info, void* context) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction) previous.sa_sigaction(sig, info, context);
    return;
  }
  if (previous.sa_handler == SIG_IGN) return;
  if (previous.sa_handler == SIG_DFL) {
    // Not emu's fault: the default action, when the faulting instruction runs again.
    ::signal(sig, SIG_DFL);
    return;
  }
  previous.sa_handler(sig);
}

void on_segv(int sig, siginfo_t* info, void* context) {
  guarded_call* c = current;
  if (c && c->armed && info && info->si_code > 0 && c->prog->maps(info->si_addr)) {
    c->armed = 0;
    c->address = info->si_addr;
#if defined(__x86_64__)
    // Bit 1 of the page-fault error code: the access was a write.
    const auto* uc = static_cast<const ucontext_t*>(context);
    c->write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#endif
    siglongjmp(c->env, 1);
  }
  forward(sig, info, context);
}

}  // namespace

void install_fault_handler() {
  std::call_once(installed, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &previous);
  });
}

bool guarded_invoke(const emu_program& prog, kernel_entry& k, void** values, kernel_fault& fault) {
  guarded_call call;
  call.prog = &prog;
  guarded_call* const outer = current;
  current = &call;
  // The signal mask is not saved (a system call per kernel call): the handler runs with
  // SA_NODEFER and an empty sa_mask, so jumping out of it leaves the mask as it was.
  if (sigsetjmp(call.env, 0) != 0) {
    current = outer;
    fault.address = call.address;
    fault.write = call.write;
    return false;
  }
  // A kernel may also leave by an exception (a stream read cancelled by emu_stream.cpp).
  struct disarm {
    guarded_call& call;
    guarded_call* outer;
    ~disarm() {
      call.armed = 0;
      current = outer;
    }
  } on_exit{call, outer};
  call.armed = 1;
  invoke(k, values);
  return true;
}

}  // namespace fpyga::backend::emu
