// fpyga-emu-host: runs the kernel of one emu compute unit in a process of its own, for emu's
// isolated mode (FPYGA_EMU_ISOLATE=1), as Vitis sw_emu runs its device model beside the host.
//
// emu starts it with a SOCK_SEQPACKET socket as fd 3 (see emu_isolated_protocol.hpp). It maps
// the program's banks, shared memory, at the addresses they have in the host process, so device
// addresses and the pointers emu passes to kernels mean the same here; loads the kernel .so from
// its memfd; then runs one kernel call per request. A signal that ends the kernel (SIGSEGV,
// SIGILL, abort, ...) or an exit() is reported on the socket before the process ends, so the host
// can say what happened; emu then starts a new one for the next run. It ends when the socket
// closes or the host process is gone. It links nothing of fpyga: only libc, libdl and libffi.
#include <dlfcn.h>
#include <fcntl.h>
#include <ffi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/emu/emu_isolated_protocol.hpp"

namespace iso = fpyga::backend::emu::isolated;

namespace {

constexpr std::size_t max_message = 1 << 20;
constexpr std::size_t max_fds = 253;  // SCM_MAX_FD

pid_t host_pid = 0;

/// memcpy for counts that may be 0 (an empty vector's data() may be null, which memcpy must not get).
void copy(void* to, const void* from, std::size_t bytes) {
  if (bytes) std::memcpy(to, from, bytes);
}

void send_reply(const iso::reply& r) {
  (void)::send(iso::socket_fd, &r, sizeof r, MSG_NOSIGNAL);
}

[[noreturn]] void fail(const std::string& why) {
  iso::reply r;
  r.what = iso::op::failed;
  std::snprintf(r.message, sizeof r.message, "%s", why.c_str());
  send_reply(r);
  ::_exit(2);
}

/// A signal that ends the kernel: said on the socket (async-signal-safe: a stack struct and
/// send), then the process ends.
void on_fatal_signal(int sig, siginfo_t* info, void* context) {
  iso::reply r;
  r.what = iso::op::crashed;
  r.signal = sig;
  if (info) {
    r.code = info->si_code;
    r.address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  }
#if defined(__x86_64__)
  if (sig == SIGSEGV && context)
    r.write = (static_cast<const ucontext_t*>(context)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#endif
  send_reply(r);
  ::_exit(128 + sig);
}

/// A kernel that calls exit(): said on the socket (the host sees only the status otherwise).
void on_exit_call(int status, void*) {
  iso::reply r;
  r.what = iso::op::exited;
  r.signal = status;
  send_reply(r);
  ::_exit(status);
}

void install_signal_handlers() {
  static std::vector<char> alt(1 << 16);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  ::sigaltstack(&ss, nullptr);  // a kernel that overflows its stack is reported too
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) {
    struct sigaction sa {};
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  ::signal(SIGPIPE, SIG_IGN);
}

/// Ends this process when the host process is gone (a kernel that never returns included).
void* watch_host(void*) {
  for (;;) {
    if (::getppid() != host_pid) ::_exit(0);
    ::usleep(200 * 1000);
  }
}

ffi_type* ffi_of(iso::arg_type t) {
  switch (t) {
    case iso::arg_type::pointer:
      return &ffi_type_pointer;
    case iso::arg_type::f32:
      return &ffi_type_float;
    case iso::arg_type::f64:
      return &ffi_type_double;
    case iso::arg_type::s8:
      return &ffi_type_sint8;
    case iso::arg_type::u8:
      return &ffi_type_uint8;
    case iso::arg_type::s16:
      return &ffi_type_sint16;
    case iso::arg_type::u16:
      return &ffi_type_uint16;
    case iso::arg_type::s32:
      return &ffi_type_sint32;
    case iso::arg_type::u32:
      return &ffi_type_uint32;
    case iso::arg_type::s64:
      return &ffi_type_sint64;
    case iso::arg_type::u64:
      return &ffi_type_uint64;
  }
  return nullptr;
}

struct kernel {
  void (*fn)() = nullptr;
  ffi_cif cif{};
  std::vector<ffi_type*> types;
  std::vector<iso::setup_arg> args;
};

/// Receives the setup message and its fds, maps the banks, loads the .so and prepares the call.
kernel set_up(std::vector<std::byte>& buffer) {
  std::vector<char> control(CMSG_SPACE(sizeof(int) * max_fds));
  iovec io{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &io;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do n = ::recvmsg(iso::socket_fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n <= 0) ::_exit(0);
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* p = reinterpret_cast<const int*>(CMSG_DATA(c));
    fds.insert(fds.end(), p, p + count);
  }
  iso::setup_header h;
  if (static_cast<std::size_t>(n) < sizeof h) fail("short setup message");
  std::memcpy(&h, buffer.data(), sizeof h);
  const std::size_t need =
      sizeof h + h.args * sizeof(iso::setup_arg) + h.banks * sizeof(iso::setup_bank);
  if (h.what != iso::op::setup || static_cast<std::size_t>(n) != need || fds.size() != h.banks + 1u)
    fail("malformed setup message");
  kernel k;
  k.args.resize(h.args);
  copy(k.args.data(), buffer.data() + sizeof h, h.args * sizeof(iso::setup_arg));
  const std::byte* banks = buffer.data() + sizeof h + h.args * sizeof(iso::setup_arg);
  for (std::uint32_t i = 0; i < h.banks; ++i) {
    iso::setup_bank b;
    std::memcpy(&b, banks + i * sizeof b, sizeof b);
    void* want = reinterpret_cast<void*>(b.address);
    void* got = ::mmap(want, b.bytes, PROT_NONE, MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE,
                       fds[i], 0);
    if (got != want) {
      const int e = got == MAP_FAILED ? errno : EEXIST;
      if (got != MAP_FAILED) ::munmap(got, b.bytes);
      fail("cannot map bank " + std::to_string(i) + " at " + std::to_string(b.address) + ": " +
           std::strerror(e) + (e == EEXIST ? " (address taken)" : ""));
    }
    if (b.open_bytes && ::mprotect(static_cast<std::byte*>(got) + b.open_offset, b.open_bytes,
                                   PROT_READ | PROT_WRITE) != 0)
      fail("cannot open bank " + std::to_string(i) + ": " + std::strerror(errno));
    ::close(fds[i]);
  }
  const std::string so = "/proc/self/fd/" + std::to_string(fds.back());
  void* library = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char* e = ::dlerror();
    fail(std::string("dlopen of the kernel .so failed: ") + (e ? e : "unknown error"));
  }
  h.kernel[sizeof h.kernel - 1] = 0;
  void* sym = ::dlsym(library, h.kernel);
  if (!sym) fail(std::string("the kernel .so has no function '") + h.kernel + "'");
  k.fn = reinterpret_cast<void (*)()>(sym);
  for (const auto& a : k.args) {
    ffi_type* t = ffi_of(a.by_ref ? iso::arg_type::pointer : a.type);
    if (!t) fail("unknown argument type in setup");
    k.types.push_back(t);
  }
  if (ffi_prep_cif(&k.cif, FFI_DEFAULT_ABI, static_cast<unsigned>(k.types.size()), &ffi_type_void,
                   k.types.data()) != FFI_OK)
    fail("ffi_prep_cif failed");
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "fpyga-emu-host is started by fpyga's emu backend (FPYGA_EMU_ISOLATE=1)\n");
    return 2;
  }
  host_pid = static_cast<pid_t>(std::atol(argv[1]));
  // Programs a kernel may start (system()) must not hold the socket: its end is this one's.
  ::fcntl(iso::socket_fd, F_SETFD, FD_CLOEXEC);
  install_signal_handlers();
  pthread_t watcher;
  if (::pthread_create(&watcher, nullptr, watch_host, nullptr) != 0)
    fail("cannot start the host watcher");
  ::pthread_detach(watcher);

  std::vector<std::byte> buffer(max_message);
  kernel k = set_up(buffer);
  ::on_exit(on_exit_call, nullptr);
  {
    iso::reply ready;
    ready.what = iso::op::ready;
    send_reply(ready);
  }

  const std::size_t n = k.args.size();
  std::vector<void*> values(n), pointers(n);
  std::vector<std::uint64_t> words(n);
  std::vector<std::uint64_t> scratch;
  for (;;) {
    ssize_t got;
    do got = ::recv(iso::socket_fd, buffer.data(), buffer.size(), 0);
    while (got < 0 && errno == EINTR);
    if (got <= 0) ::_exit(0);  // the host closed the socket: the program was unloaded
    iso::run_header h;
    if (static_cast<std::size_t>(got) < sizeof h) fail("short run message");
    std::memcpy(&h, buffer.data(), sizeof h);
    const std::size_t need = sizeof h + (h.args + std::size_t{h.guards}) * 8 + h.by_ref_bytes;
    if (h.what != iso::op::run || h.args != n || static_cast<std::size_t>(got) != need)
      fail("malformed run message");
    const std::byte* p = buffer.data() + sizeof h;
    copy(words.data(), p, n * 8);
    p += n * 8;
    std::vector<std::uint64_t> guards(h.guards);
    copy(guards.data(), p, h.guards * 8);
    p += h.guards * 8;
    scratch.assign(h.by_ref_bytes / 8 + 1, 0);
    copy(scratch.data(), p, h.by_ref_bytes);
    std::size_t used = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (k.args[i].by_ref) {
        pointers[i] = reinterpret_cast<std::byte*>(scratch.data()) + used;
        used += (k.args[i].storage + 7) / 8 * 8;
        values[i] = &pointers[i];
      } else {
        values[i] = &words[i];  // a pointer's address or a scalar's bits, little-endian
      }
    }
    // FPYGA_EMU_CHECK_BOUNDS: the guard pages around this run's buffers, as in the host process.
    for (std::uint64_t g : guards) ::mprotect(reinterpret_cast<void*>(g), 4096, PROT_NONE);
    ffi_arg ret = 0;
    ffi_call(&k.cif, k.fn, &ret, values.data());
    for (std::uint64_t g : guards)
      ::mprotect(reinterpret_cast<void*>(g), 4096, PROT_READ | PROT_WRITE);
    iso::reply done;
    done.what = iso::op::done;
    send_reply(done);
  }
}
