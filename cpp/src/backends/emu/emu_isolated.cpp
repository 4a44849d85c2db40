// emu's isolated mode: one helper process (fpyga-emu-host) per compute unit runs its kernel, so a
// kernel that crashes takes down only its helper. See emu_isolated.hpp and, for the messages,
// emu_isolated_protocol.hpp.
//
// The helper is started with posix_spawn (safe in a process with threads, unlike fork without
// exec), in a process group of its own so a terminal's Ctrl-C reaches the host only: the host
// then stops waiting as it does in-process, and the kernel runs on. The helper ends when its
// socket closes, when the host process is gone, or when emu kills it at unload.
#include "backends/emu/emu_isolated.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>

#include "backends/emu/emu.hpp"
#include "backends/emu/emu_isolated_protocol.hpp"

extern char** environ;

namespace fpyga::backend::emu {
namespace iso = isolated;

namespace {

constexpr std::uint64_t page = 4096;
constexpr int start_attempts = 3;

std::string hex(std::uint64_t v) {
  char s[24];
  std::snprintf(s, sizeof s, "0x%llx", static_cast<unsigned long long>(v));
  return s;
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

/// "SIGSEGV (invalid memory access at address 0x10, a write)" and the like.
std::string describe_signal(const iso::reply& r) {
  std::string s = signal_name(r.signal);
  switch (r.signal) {
    case SIGSEGV:
      return s + " (invalid memory access at address " + hex(r.address) +
             (r.write ? ", a write" : ", a read") + ")";
    case SIGBUS:
      return s + " (bus error at address " + hex(r.address) + ")";
    case SIGILL:
      return s + " (illegal instruction at " + hex(r.address) + ")";
    case SIGFPE:
      return s + " (arithmetic exception at " + hex(r.address) + ")";
    case SIGABRT:
      return s + " (the kernel called abort(), or a check in it failed)";
    default:
      return s;
  }
}

iso::arg_type type_code(const ffi_type* t) {
  if (t == &ffi_type_float) return iso::arg_type::f32;
  if (t == &ffi_type_double) return iso::arg_type::f64;
  if (t == &ffi_type_sint8) return iso::arg_type::s8;
  if (t == &ffi_type_uint8) return iso::arg_type::u8;
  if (t == &ffi_type_sint16) return iso::arg_type::s16;
  if (t == &ffi_type_uint16) return iso::arg_type::u16;
  if (t == &ffi_type_sint32) return iso::arg_type::s32;
  if (t == &ffi_type_uint32) return iso::arg_type::u32;
  if (t == &ffi_type_sint64) return iso::arg_type::s64;
  if (t == &ffi_type_uint64) return iso::arg_type::u64;
  return iso::arg_type::pointer;
}

/// One message, or 0 when the helper closed the socket (it ended).
ssize_t receive(int fd, iso::reply& r) {
  ssize_t n;
  do n = ::recv(fd, &r, sizeof r, 0);
  while (n < 0 && errno == EINTR);
  return n;
}

}  // namespace

bool isolation_requested() {
  const char* v = std::getenv("FPYGA_EMU_ISOLATE");
  return v && *v && std::string_view(v) != "0";
}

void check_isolatable(const xclbin& bin, const std::string& path) {
  for (const auto& k : bin.kernels)
    for (const auto& a : k.args)
      if (a.kind == arg_kind::stream)
        throw not_supported_error(
            "emu: FPYGA_EMU_ISOLATE=1 cannot run '" + path + "': argument '" + a.name +
            "' of kernel '" + k.name +
            "' is an AXI stream, and streams connect kernels inside one process; "
            "isolated mode runs memory-mapped kernels only (unset FPYGA_EMU_ISOLATE "
            "to run this design in-process)");
}

std::string helper_executable() {
  namespace fs = std::filesystem;
  if (const char* e = std::getenv("FPYGA_EMU_HOST"); e && *e) return e;
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&helper_executable), &info) && info.dli_fname) {
    std::error_code ec;
    const fs::path lib = fs::canonical(info.dli_fname, ec);
    if (!ec) {
      for (const fs::path& p :
           {lib.parent_path() / "fpyga-emu-host", lib.parent_path() / "fpyga" / "fpyga-emu-host",
            lib.parent_path().parent_path() / "libexec" / "fpyga" / "fpyga-emu-host"})
        if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return {};
}

isolated_cu::isolated_cu(emu_program& prog, kernel_entry& k, std::string cu_name)
    : prog_(prog), k_(k), cu_name_(std::move(cu_name)) {}

isolated_cu::~isolated_cu() {
  end(true);
}

std::string isolated_cu::who() const {
  return "kernel '" + k_.info->name + "' (compute unit '" + cu_name_ + "')";
}

void isolated_cu::start() {
  for (int attempt = 1;; ++attempt) {
    try {
      start_once();
      return;
    } catch (const error& e) {
      // The helper's own libraries may sit where a bank must go (address layouts differ per
      // process): another helper lays out differently.
      if (attempt >= start_attempts || !std::strstr(e.what(), "(address taken)")) throw;
    }
  }
}

void isolated_cu::start_once() {
  const std::string exe = helper_executable();
  if (exe.empty())
    throw error(
        "emu: " + who() +
        ": FPYGA_EMU_ISOLATE=1 needs the helper executable fpyga-emu-host, found "
        "neither beside libfpyga nor in <prefix>/libexec/fpyga (set FPYGA_EMU_HOST to its path)");

  // Every bank the design uses, mapped now (shared memory), so the helper maps them all.
  std::vector<int> fds;
  std::vector<iso::setup_bank> banks;
  for (const auto& b : prog_.banks) {
    if (!b->size) continue;
    b->view(b->base);
    iso::setup_bank s;
    s.address = reinterpret_cast<std::uintptr_t>(b->mapping());
    s.bytes = b->mapping_bytes();
    s.open_offset = page;
    s.open_bytes = s.bytes - 2 * page;
    banks.push_back(s);
    fds.push_back(b->shared_fd());
  }
  fds.push_back(prog_.memfd);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw error("emu: " + who() + ": socketpair failed: " + std::strerror(errno));
  int child_end = sv[1];
  if (child_end == iso::socket_fd) {
    // dup2 onto itself would keep close-on-exec set.
    child_end = ::fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
    ::close(sv[1]);
  }
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, child_end, iso::socket_fd);
  ::posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  const std::string host = std::to_string(::getpid());
  std::string name = "fpyga-emu-host";
  char* argv[] = {name.data(), const_cast<char*>(host.c_str()), cu_name_.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, argv, environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  ::close(child_end);
  if (rc != 0) {
    ::close(sv[0]);
    throw error("emu: " + who() + ": cannot start '" + exe +
                "' for isolated mode: " + std::strerror(rc));
  }
  {
    std::lock_guard lock(mutex_);
    pid_ = pid;
    fd_ = sv[0];
  }

  // The setup message, with the banks' and the .so's fds.
  std::vector<std::byte> msg(sizeof(iso::setup_header) + k_.types.size() * sizeof(iso::setup_arg) +
                             banks.size() * sizeof(iso::setup_bank));
  iso::setup_header h;
  h.args = static_cast<std::uint32_t>(k_.types.size());
  h.banks = static_cast<std::uint32_t>(banks.size());
  std::snprintf(h.kernel, sizeof h.kernel, "%s", k_.info->name.c_str());
  std::snprintf(h.compute_unit, sizeof h.compute_unit, "%s", cu_name_.c_str());
  std::memcpy(msg.data(), &h, sizeof h);
  std::byte* p = msg.data() + sizeof h;
  for (std::size_t i = 0; i < k_.types.size(); ++i) {
    iso::setup_arg a;
    a.type = type_code(k_.types[i]);
    a.by_ref = k_.passing[i] == pass::by_ref;
    a.storage = static_cast<std::uint32_t>(k_.storage[i]);
    std::memcpy(p, &a, sizeof a);
    p += sizeof a;
  }
  for (const auto& b : banks) {
    std::memcpy(p, &b, sizeof b);
    p += sizeof b;
  }
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec io{msg.data(), msg.size()};
  msghdr m{};
  m.msg_iov = &io;
  m.msg_iovlen = 1;
  m.msg_control = control.data();
  m.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  ssize_t sent;
  do sent = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);

  iso::reply r;
  const ssize_t n = sent < 0 ? -1 : receive(fd_, r);
  if (n == static_cast<ssize_t>(sizeof r) && r.what == iso::op::ready) return;
  std::string why;
  if (n == static_cast<ssize_t>(sizeof r) && r.what == iso::op::failed) {
    r.message[sizeof r.message - 1] = 0;
    why = r.message;
  } else if (n == static_cast<ssize_t>(sizeof r) && r.what == iso::op::crashed) {
    why = "loading the kernel .so crashed it: " + describe_signal(r);
  }
  const std::string how = end(true);
  if (why.empty()) why = how.empty() ? "it ended before it was ready" : "it " + how;
  throw error("emu: " + who() + ": the isolated process (" + exe + ") could not start: " + why);
}

std::string isolated_cu::end(bool kill) noexcept {
  // Under the lock throughout, so stop() never signals a pid that was reaped and reused.
  std::lock_guard lock(mutex_);
  if (kill && pid_ > 0) ::kill(pid_, SIGKILL);
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  std::string how;
  if (pid_ > 0) {
    int status = 0;
    pid_t got;
    do got = ::waitpid(pid_, &status, 0);
    while (got < 0 && errno == EINTR);
    if (got == pid_ && WIFSIGNALED(status))
      how = "was killed by " + signal_name(WTERMSIG(status));
    else if (got == pid_ && WIFEXITED(status))
      how = "exited with status " + std::to_string(WEXITSTATUS(status));
    pid_ = 0;
  }
  return how;
}

void isolated_cu::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    if (running_) {
      // The thread of the run inside sees the helper end, and reaps it.
      if (pid_ > 0) ::kill(pid_, SIGKILL);
      return;
    }
  }
  end(true);
}

void isolated_cu::forget_after_fork() noexcept {
  // Possibly held by a thread that does not exist here.
  new (&mutex_) std::mutex;
  running_ = false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pid_ = 0;
  forked_ = true;
}

bool isolated_cu::invoke(void** values, std::span<const bound_arg> args, kernel_fault& fault) {
  {
    std::lock_guard lock(mutex_);
    if (forked_)
      throw error(
          "emu: " + who() +
          ": this process was forked from the one that loaded the xclbin in isolated "
          "mode (FPYGA_EMU_ISOLATE=1), whose device memory it shares; load the xclbin again here");
    if (stopped_) throw error("emu: " + who() + " is stopped (its xclbin was unloaded)");
    running_ = true;
  }
  struct not_running {
    isolated_cu& c;
    ~not_running() {
      std::lock_guard lock(c.mutex_);
      c.running_ = false;
    }
  } guard{*this};
  // A helper that ended while idle (killed, or its host gone): the run goes to a new one.
  if (fd_ >= 0) {
    pollfd pf{fd_, POLLIN, 0};
    if (::poll(&pf, 1, 0) > 0) end(false);
  }

  // The message: header, one word per argument, the guard pages, the ap_* copies.
  const std::size_t n = k_.types.size();
  std::vector<std::uint64_t> guards;
  if (prog_.check_bounds)
    for (std::size_t i = 0; i < n && i < args.size(); ++i) {
      if (k_.passing[i] != pass::pointer || !args[i].buffer) continue;
      const auto* b = static_cast<const emu_buffer*>(args[i].buffer);
      if (b->guard_before) guards.push_back(reinterpret_cast<std::uintptr_t>(b->guard_before));
      if (b->guard_after) guards.push_back(reinterpret_cast<std::uintptr_t>(b->guard_after));
    }
  std::size_t by_ref = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (k_.passing[i] == pass::by_ref) by_ref += (k_.storage[i] + 7) / 8 * 8;
  const std::size_t words = sizeof(iso::run_header) / 8 + n + guards.size() + by_ref / 8;
  static_assert(sizeof(iso::run_header) % 8 == 0);
  message_.assign(words, 0);
  iso::run_header h;
  h.args = static_cast<std::uint32_t>(n);
  h.guards = static_cast<std::uint32_t>(guards.size());
  h.by_ref_bytes = static_cast<std::uint32_t>(by_ref);
  std::memcpy(message_.data(), &h, sizeof h);
  std::uint64_t* w = message_.data() + sizeof h / 8;
  auto* copies = reinterpret_cast<std::byte*>(w + n + guards.size());
  for (std::size_t i = 0; i < n; ++i) {
    switch (k_.passing[i]) {
      case pass::pointer:
        w[i] = reinterpret_cast<std::uintptr_t>(*static_cast<void**>(values[i]));
        break;
      case pass::value:
        std::memcpy(&w[i], values[i], 8);
        break;
      case pass::by_ref:
        std::memcpy(copies, *static_cast<void**>(values[i]), k_.storage[i]);
        copies += (k_.storage[i] + 7) / 8 * 8;
        break;
      default:
        break;  // streams: refused in isolated mode at load (check_isolatable)
    }
  }
  if (!guards.empty()) std::memcpy(w + n, guards.data(), guards.size() * 8);

  for (int attempt = 0;; ++attempt) {
    if (fd_ < 0) start();
    ssize_t sent;
    do sent = ::send(fd_, message_.data(), message_.size() * 8, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent >= 0) break;
    if (sent < 0 && errno == EMSGSIZE)
      throw error("emu: " + who() +
                  ": the run's arguments do not fit one message to the isolated process");
    end(false);  // it ended between the check and the send: once more, on a new helper
    if (attempt == 1) throw error("emu: " + who() + ": the isolated process does not take runs");
  }

  iso::reply r;
  const ssize_t got = receive(fd_, r);
  if (got == static_cast<ssize_t>(sizeof r) && r.what == iso::op::done) return true;

  // The helper ended in the run.
  const bool complete = got == static_cast<ssize_t>(sizeof r);
  const std::string how = end(false);
  bool stopped;
  {
    std::lock_guard lock(mutex_);
    stopped = stopped_;
  }
  if (complete && r.what == iso::op::crashed && r.signal == SIGSEGV &&
      prog_.maps(reinterpret_cast<const void*>(static_cast<std::uintptr_t>(r.address)))) {
    // A guard page of device memory, as in-process: the caller names the argument or the bank.
    fault.address = reinterpret_cast<const void*>(static_cast<std::uintptr_t>(r.address));
    fault.write = r.write != 0;
    return false;
  }
  const std::string tail = "; the run failed, and the next run starts a new process";
  if (complete && r.what == iso::op::crashed)
    throw error(who() + " crashed in its isolated process (FPYGA_EMU_ISOLATE=1): " +
                describe_signal(r) + tail);
  if (complete && r.what == iso::op::exited)
    throw error(who() + " called exit(" + std::to_string(r.signal) +
                ") in its isolated process (FPYGA_EMU_ISOLATE=1), which ended it" + tail);
  if (stopped)
    throw error(who() +
                " was stopped in its isolated process: its xclbin was unloaded while it ran");
  throw error(who() + ": its isolated process (FPYGA_EMU_ISOLATE=1) " +
              (how.empty() ? "ended" : how) + " while the kernel ran" + tail);
}

}  // namespace fpyga::backend::emu
