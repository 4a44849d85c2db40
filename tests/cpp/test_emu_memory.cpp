// The emulated device's memory as a card's, and the lifetime of buffers and programs under runs
// and calls (issue 18: items 1, 2, 3, 7, 9, 13, 21), on kernels compiled and packed by the test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <thread>

#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"

namespace {

using fpyga::test::compile_so;
using fpyga::test::pack_xclbin;
using namespace std::chrono_literals;

const char* kernels_source = R"(
#include <chrono>
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
// Runs until the host raises *flag (synced while it runs); 30 s cap.
extern "C" void hold(const int* flag) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && std::chrono::steady_clock::now() < end) {}
}
// Says it is running (out[n] = 7), waits for *flag, then copies in to out.
extern "C" void relay(const int* flag, const unsigned int* in, unsigned int* out, int n) {
  __atomic_store_n(&out[n], 7u, __ATOMIC_RELEASE);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && std::chrono::steady_clock::now() < end) {}
  for (int i = 0; i < n; ++i) out[i] = in[i];
}
)";

/// vadd, hold and relay, one CU each, all on one bank of `bank_bytes` at address 0.
std::string kernels_xclbin(std::uint64_t bank_bytes) {
  const std::string name = "emu_memory_" + std::to_string(bank_bytes);
  const std::string global = R"("kind": "global", "size": 8, "port": "M_AXI_GMEM", "host_size": 8)";
  const std::string scalar = R"("kind": "scalar", "size": 4, "port": "S_AXI_CONTROL", "host_size": 4)";
  const std::string json = R"({"mode": "sw_emu", "platform": "test",
    "memories": [{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": )" +
                           std::to_string(bank_bytes) + R"(}],
    "kernels": [
     {"name": "vadd", "language": "c++", "args": [
        {"name": "in1", "type": "unsigned int const *", "offset": 16, )" + global + R"(},
        {"name": "in2", "type": "unsigned int const *", "offset": 28, )" + global + R"(},
        {"name": "out_r", "type": "unsigned int *", "offset": 40, )" + global + R"(},
        {"name": "size", "type": "int", "offset": 52, )" + scalar + R"(}],
      "instances": [{"name": "vadd_1", "base_address": 0, "control": "ap_ctrl_hs",
                     "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}}]},
     {"name": "hold", "language": "c++", "args": [
        {"name": "flag", "type": "int const *", "offset": 16, )" + global + R"(}],
      "instances": [{"name": "hold_1", "base_address": 65536, "control": "ap_ctrl_hs",
                     "connections": {"flag": "bank0"}}]},
     {"name": "relay", "language": "c++", "args": [
        {"name": "flag", "type": "int const *", "offset": 16, )" + global + R"(},
        {"name": "in", "type": "unsigned int const *", "offset": 28, )" + global + R"(},
        {"name": "out", "type": "unsigned int *", "offset": 40, )" + global + R"(},
        {"name": "n", "type": "int", "offset": 52, )" + scalar + R"(}],
      "instances": [{"name": "relay_1", "base_address": 131072, "control": "ap_ctrl_hs",
                     "connections": {"flag": "bank0", "in": "bank0", "out": "bank0"}}]}]})";
  static const std::vector<std::byte> so = compile_so("emu_memory_kernels", kernels_source);
  return pack_xclbin(name, json, so);
}

fpyga::device emu() { return fpyga::device::open("emu"); }

#if defined(__SANITIZE_THREAD__)
constexpr bool under_tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool under_tsan = true;
#else
constexpr bool under_tsan = false;
#endif
#else
constexpr bool under_tsan = false;
#endif
/// ThreadSanitizer's runtime kills a process that jumps out of a SIGSEGV handler (as emu does
/// for a kernel that touches a guard page) and one that starts threads after a fork.
#define SKIP_UNDER_TSAN(why)                                   \
  if (under_tsan) GTEST_SKIP() << "not under ThreadSanitizer: " << why

void fill(fpyga::buffer& b, unsigned base) {
  auto s = b.as<unsigned>();
  std::iota(s.begin(), s.end(), base);
  b.sync_to_device();
}

/// Fills every free granule of `ol`'s bank it can get with `pattern` (then frees them), so a
/// buffer whose device memory went back to the bank too early would read it.
void scribble_over_free_memory(const fpyga::device& dev, std::size_t bytes, unsigned pattern) {
  std::vector<fpyga::buffer> junk;
  for (int i = 0; i < 8; ++i) {
    try {
      junk.emplace_back(dev, bytes);
    } catch (const fpyga::memory_error&) {
      break;
    }
    for (auto& x : junk.back().as<unsigned>()) x = pattern;
    junk.back().sync_to_device();
  }
}

/// Resident set size of this process, in bytes.
std::uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

/// MemAvailable + SwapFree, in bytes.
std::uint64_t host_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0, total = 0;
  std::string unit;
  while (in >> key >> kb) {
    if (key == "MemAvailable:" || key == "SwapFree:") total += kb * 1024;
    std::getline(in, unit);
  }
  return total;
}

/// k.start(a...) once `dep` has completed.
template <class... A>
fpyga::run start_after(const fpyga::kernel& k, const fpyga::run& dep, const A&... a) {
  const fpyga::arg_value v[] = {fpyga::arg_value(a)...};
  return k.start_args(v, {&dep, 1});
}

/// A flag buffer raised from the host while a kernel polls it.
void raise(fpyga::buffer& flag) {
  flag.as<int>()[0] = 1;
  flag.sync_to_device();
}

// ---------------------------------------------------------------------------------------------
// Item 1: buffers freed or dropped while a run uses them

TEST(emu_lifetime, run_keeps_the_buffers_the_host_dropped_before_it_ran) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  const unsigned n = 1024;
  fpyga::buffer flag(dev, 4), c(dev, n * 4);
  fpyga::run held = ol.kernel("hold").start(flag);
  fpyga::run r;
  {
    fpyga::buffer a(dev, n * 4), b(dev, n * 4);
    fill(a, 1);
    fill(b, 1000);
    r = start_after(ol.kernel("vadd"), held, a, b, c, n);
  }  // the host's handles of a and b are gone; the queued run still needs them
  scribble_over_free_memory(dev, n * 4, 0xdeadbeef);
  raise(flag);
  held.wait();
  r.wait();
  c.sync_from_device();
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(c.as<unsigned>()[i], 1001 + 2 * i) << "element " << i;
}

TEST(emu_lifetime, buffer_freed_under_a_queued_run_keeps_its_device_memory_until_the_run_ends) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  const unsigned n = 1024;
  fpyga::buffer flag(dev, 4), a(dev, n * 4), b(dev, n * 4), c(dev, n * 4);
  fill(a, 1);
  fill(b, 1000);
  fpyga::run held = ol.kernel("hold").start(flag);
  fpyga::run r = start_after(ol.kernel("vadd"), held, a, b, c, n);
  a.free();
  c.free();
  EXPECT_TRUE(a.freed());
  // Freed for the host at once: new calls refuse it.
  EXPECT_THROW(ol.kernel("vadd").call(a, b, b, n), fpyga::error);
  EXPECT_THROW(a.sync_to_device(), fpyga::error);
  scribble_over_free_memory(dev, n * 4, 0xdeadbeef);
  raise(flag);
  held.wait();
  r.wait();  // before: use-after-free of a's and c's device memory
  // Once the run ended, the device memory went back to the bank: it holds one buffer of all
  // that is free again.
  flag.free();
  b.free();
  fpyga::buffer whole(dev, 1 << 20);
  EXPECT_EQ(whole.size(), 1u << 20);
}

// ---------------------------------------------------------------------------------------------
// Item 2: call() is in flight exactly as start() is

TEST(emu_lifetime, unload_and_load_refuse_while_a_call_is_in_progress_on_another_thread) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  fpyga::buffer flag(dev, 4);
  auto hold = ol.kernel("hold");
  std::atomic<bool> returned{false};
  std::thread caller([&] {
    hold.call(flag);
    returned = true;
  });
  // The call is inside its kernel once the CU shows ap_start without ap_idle.
  const auto end = std::chrono::steady_clock::now() + 10s;
  while ((hold.read_register(0) & 0x5) != 0x1 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(1ms);
  ASSERT_FALSE(returned.load());
  try {
    ol.release();
    ADD_FAILURE() << "release() succeeded under a call in progress";
  } catch (const fpyga::error& e) {
    EXPECT_NE(std::string(e.what()).find("in progress"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(ol.loaded());
  EXPECT_THROW(fpyga::overlay(dev, kernels_xclbin(2 << 20)), fpyga::error);
  EXPECT_TRUE(ol.loaded());
  raise(flag);
  caller.join();
  EXPECT_TRUE(returned.load());
  ol.release();  // nothing in flight any more
  EXPECT_FALSE(ol.loaded());
  EXPECT_THROW(hold.call(flag), fpyga::error);
}

TEST(emu_lifetime, buffer_freed_during_a_call_keeps_its_device_memory_until_the_call_returns) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(64 << 20));
  // 4 MiB: large enough that the old device memory was a mapping of its own, unmapped at free.
  const unsigned n = 1 << 20;
  fpyga::buffer flag(dev, 4), in(dev, n * 4), out(dev, (n + 1) * 4);
  fill(in, 5);
  std::thread caller([&] { ol.kernel("relay").call(flag, in, out, n); });
  const auto end = std::chrono::steady_clock::now() + 10s;
  do {
    out.sync_from_device();
  } while (out.as<unsigned>()[n] != 7 && std::chrono::steady_clock::now() < end);
  ASSERT_EQ(out.as<unsigned>()[n], 7u) << "relay never started";
  in.free();  // the kernel is about to read it
  scribble_over_free_memory(dev, n * 4, 0xdeadbeef);
  raise(flag);
  caller.join();
  out.sync_from_device();
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(out.as<unsigned>()[i], 5 + i) << "element " << i;
}

TEST(emu_lifetime, calls_from_threads_racing_frees_and_reloads_never_crash) {
  auto dev = emu();
  const unsigned n = 4096;
  for (int round = 0; round < 6; ++round) {
    fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
    auto vadd = ol.kernel("vadd");
    fpyga::buffer a(dev, n * 4), b(dev, n * 4), c(dev, n * 4);
    std::atomic<bool> stop{false};
    std::thread caller([&] {
      while (!stop) {
        try {
          vadd.call(a, b, c, n);
        } catch (const fpyga::error&) {
          // freed or unloaded meanwhile: refused, as it should be
        }
      }
    });
    std::this_thread::sleep_for(1ms);
    if (round % 2) c.free();
    for (int tries = 0; tries < 200; ++tries) {
      try {
        ol.release();
        break;
      } catch (const fpyga::error&) {
        std::this_thread::yield();
      }
    }
    stop = true;
    caller.join();
    ol.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Item 3: device memory as a card's

TEST(emu_bounds, overrun_lands_in_the_bank_as_on_a_card) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  const unsigned n = 1024;
  fpyga::buffer a(dev, n * 4), b(dev, n * 4), c(dev, n * 4), d(dev, n * 4);
  ASSERT_EQ(b.device_address(), a.device_address() + n * 4);
  ASSERT_EQ(c.device_address(), b.device_address() + n * 4);
  ASSERT_EQ(d.device_address(), c.device_address() + n * 4);
  fill(a, 1);
  fill(b, 1000);
  // 2n elements of n-element buffers: in1 runs into b, in2 into c, out_r into d.
  ol.kernel("vadd").call(a, b, c, 2 * n);
  d.sync_from_device();
  // d[i] = in1[n + i] + in2[n + i] = b[i] + c[i] = b[i] + a[i] + b[i].
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(d.as<unsigned>()[i], (1 + i) + 2 * (1000 + i)) << "element " << i;
}

TEST(emu_bounds, running_off_the_end_of_a_bank_fails_the_run_and_the_host_lives_on) {
  SKIP_UNDER_TSAN("a guard-page fault");
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  fpyga::buffer a(dev, 4096), b(dev, 4096), c(dev, (1 << 20) - 8192);
  const int past = (1 << 20) / 4 + 16;
  try {
    ol.kernel("vadd").call(a, b, c, past);
    ADD_FAILURE() << "an access past the bank did not fail";
  } catch (const fpyga::error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("kernel 'vadd'"), std::string::npos) << m;
    EXPECT_NE(m.find("outside bank 'bank0'"), std::string::npos) << m;
  }
  // The same with start(): the run fails, and the CU goes on.
  fpyga::run r = ol.kernel("vadd").start(a, b, c, past);
  EXPECT_NE(fpyga::test::wait_error(r).find("outside bank 'bank0'"), std::string::npos);
  fill(a, 1);
  fill(b, 1000);
  ol.kernel("vadd").call(a, b, c, 1024);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[1023], 1u + 1000 + 2 * 1023);
}

/// Loads with FPYGA_EMU_CHECK_BOUNDS=1 (read at load).
fpyga::overlay load_checked(const fpyga::device& dev, std::uint64_t bank_bytes) {
  ::setenv("FPYGA_EMU_CHECK_BOUNDS", "1", 1);
  try {
    fpyga::overlay ol(dev, kernels_xclbin(bank_bytes));
    ::unsetenv("FPYGA_EMU_CHECK_BOUNDS");
    return ol;
  } catch (...) {
    ::unsetenv("FPYGA_EMU_CHECK_BOUNDS");
    throw;
  }
}

TEST(emu_bounds, check_mode_fails_an_overrun_naming_the_kernel_argument_and_offset) {
  SKIP_UNDER_TSAN("a guard-page fault");
  auto dev = emu();
  auto ol = load_checked(dev, 1 << 20);
  const unsigned n = 1024;
  fpyga::buffer a(dev, n * 4), b(dev, n * 4), c(dev, n * 4);
  fill(a, 1);
  fill(b, 1000);
  auto vadd = ol.kernel("vadd");
  try {
    vadd.call(a, b, c, 2 * n);
    ADD_FAILURE() << "the overrun was not caught";
  } catch (const fpyga::error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("kernel 'vadd'"), std::string::npos) << m;
    // The compiler orders the two loads as it likes: the first is out of bounds.
    EXPECT_TRUE(m.find("argument 0 ('in1'") != std::string::npos ||
                m.find("argument 1 ('in2'") != std::string::npos)
        << m;
    EXPECT_NE(m.find("byte offset 4096"), std::string::npos) << m;
    EXPECT_NE(m.find("read"), std::string::npos) << m;
  }
  // The same through start(): the run fails with the message.
  fpyga::run r = vadd.start(a, b, c, 2 * n);
  EXPECT_NE(fpyga::test::wait_error(r).find("byte offset 4096"), std::string::npos);
  // The host and the CU live on.
  vadd.call(a, b, c, n);
  c.sync_from_device();
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(c.as<unsigned>()[i], 1001 + 2 * i) << "element " << i;
}

TEST(emu_bounds, check_mode_catches_an_overrun_of_a_buffer_that_is_not_a_whole_page) {
  SKIP_UNDER_TSAN("a guard-page fault");
  auto dev = emu();
  auto ol = load_checked(dev, 1 << 20);
  const unsigned n = 100;  // 400 bytes: the guard starts at byte 448 (64-byte alignment)
  fpyga::buffer a(dev, 4096), b(dev, 4096), c(dev, n * 4);
  EXPECT_EQ(c.device_address() % 64, 0u);
  try {
    ol.kernel("vadd").call(a, b, c, n + 16);
    ADD_FAILURE() << "the overrun was not caught";
  } catch (const fpyga::error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("argument 2 ('out_r'"), std::string::npos) << m;
    EXPECT_NE(m.find("write"), std::string::npos) << m;
    EXPECT_NE(m.find("byte offset 448"), std::string::npos) << m;
  }
}

// ---------------------------------------------------------------------------------------------
// Item 7: device memory costs host memory only once touched; what the host cannot back is refused

TEST(emu_device_memory, a_large_buffer_costs_no_host_memory_until_touched) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(std::uint64_t(1) << 30));
  const std::uint64_t before = rss_bytes();
  fpyga::buffer big(dev, 256 << 20);
  const std::uint64_t after = rss_bytes();
  // Before: the host copy and the device copy were both zero-filled (512 MiB).
  EXPECT_LT(after - std::min(after, before), std::uint64_t(32) << 20)
      << "allocating 256 MiB grew the resident set by " << (after - before) << " bytes";
  // Touched, then freed: the memory goes back to the host.
  for (std::size_t i = 0; i < big.size(); i += 4096) static_cast<char*>(big.data())[i] = 1;
  big.sync_to_device();
  const std::uint64_t touched = rss_bytes();
  EXPECT_GT(touched, before + (std::uint64_t(400) << 20));
  big.free();
  big = fpyga::buffer();
  EXPECT_LT(rss_bytes(), touched - (std::uint64_t(400) << 20));
}

TEST(emu_device_memory, a_buffer_the_host_cannot_back_is_a_memory_error) {
  auto dev = emu();
  // Its host copy fits in what the host has; with its device copy it does not.
  const std::uint64_t bytes = host_available() / 4 * 3;
  // A bank that holds it with a little to spare, and no larger: ThreadSanitizer's runtime refuses
  // mappings outside its application ranges (1.5 TiB windows), so a 1 TiB bank could not even
  // be reserved under it.
  const std::uint64_t mib = std::uint64_t(1) << 20;
  fpyga::overlay ol(dev, kernels_xclbin((bytes + 16 * mib + mib - 1) / mib * mib));
  try {
    fpyga::buffer too_big(dev, bytes);
    ADD_FAILURE() << "a buffer of " << bytes << " bytes was allocated";
  } catch (const fpyga::memory_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(bytes)), std::string::npos) << e.what();
  }
  // The device is still usable.
  fpyga::buffer small(dev, 4096);
  EXPECT_EQ(small.size(), 4096u);
}

// ---------------------------------------------------------------------------------------------
// Item 9: fork() after a start

/// Runs `child` in a forked process; returns its exit status (124 when it had to be killed).
int in_child(const std::function<int()>& child) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = child();
    } catch (...) {
      code = 2;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  const auto end = std::chrono::steady_clock::now() + 30s;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return 124;
    }
    std::this_thread::sleep_for(5ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(emu_fork, a_child_starts_runs_after_the_parent_did) {
  SKIP_UNDER_TSAN("threads started after fork");
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  auto vadd = ol.kernel("vadd");
  const unsigned n = 256;
  fpyga::buffer a(dev, n * 4), b(dev, n * 4), c(dev, n * 4);
  fill(a, 1);
  fill(b, 1000);
  vadd.start(a, b, c, n).wait();  // the CU's worker thread exists now
  const int code = in_child([&] {
    fpyga::run r = vadd.start(a, b, c, n);
    if (r.wait(5000ms) != fpyga::run_state::completed) return 3;  // before: queued forever
    c.sync_from_device();
    return c.as<unsigned>()[n - 1] == 1001 + 2 * (n - 1) ? 0 : 4;
  });
  EXPECT_EQ(code, 0);
  vadd.start(a, b, c, n).wait();  // and the parent's worker goes on
}

TEST(emu_fork, a_run_in_flight_at_the_fork_fails_in_the_child_and_completes_in_the_parent) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  fpyga::buffer flag(dev, 4);
  fpyga::run held = ol.kernel("hold").start(flag);
  const int code = in_child([&] {
    if (held.wait(5000ms) != fpyga::run_state::error) return 3;
    if (fpyga::test::wait_error(held).find("forked") == std::string::npos) return 4;
    // The child's device is usable: its overlay has nothing in flight.
    ol.release();
    return 0;
  });
  EXPECT_EQ(code, 0);
  raise(flag);
  held.wait();
}

// ---------------------------------------------------------------------------------------------
// Item 13: a failed load leaves the old overlay fully loaded

TEST(emu_lifetime, a_failed_load_leaves_the_old_overlay_loaded_and_usable) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  // Describes a kernel its .so does not define: the load fails after the file was read.
  const std::string broken = pack_xclbin(
      "emu_memory_broken",
      R"({"mode": "sw_emu", "platform": "test", "kernels": [{"name": "missing", "language": "c++",
        "args": [{"name": "p", "type": "int *", "kind": "global", "offset": 16, "size": 8}]}]})",
      compile_so("emu_memory_kernels", kernels_source));
  EXPECT_THROW(fpyga::overlay(dev, broken), fpyga::error);
  EXPECT_TRUE(ol.loaded());
  EXPECT_EQ(dev.memories().size(), 1u);
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  fill(a, 1);
  fill(b, 2);
  ol.kernel("vadd").call(a, b, c, 16);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[15], 1u + 15 + 2 + 15);
}

// ---------------------------------------------------------------------------------------------
// Item 21: the auto-restart loop's thread is not left unjoined (TSan: "thread leak")

TEST(emu_lifetime, auto_restart_loop_ends_and_a_new_one_starts) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin(1 << 20));
  auto vadd = ol.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  vadd.write_register(0x10, static_cast<std::uint32_t>(a.device_address()));
  vadd.write_register(0x14, static_cast<std::uint32_t>(a.device_address() >> 32));
  vadd.write_register(0x1c, static_cast<std::uint32_t>(b.device_address()));
  vadd.write_register(0x20, static_cast<std::uint32_t>(b.device_address() >> 32));
  vadd.write_register(0x28, static_cast<std::uint32_t>(c.device_address()));
  vadd.write_register(0x2c, static_cast<std::uint32_t>(c.device_address() >> 32));
  vadd.write_register(0x34, 16);
  for (int loop = 0; loop < 3; ++loop) {
    vadd.write_register(0, 0x81);  // ap_start | auto_restart
    std::this_thread::sleep_for(2ms);
    vadd.write_register(0, 0);  // clear auto_restart: the loop ends after its pass
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (!(vadd.read_register(0) & 0x4) && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(vadd.read_register(0) & 0x4) << "the CU never went idle";
  }
  ol.release();  // waits for the loop's thread, which has ended
}

}  // namespace
