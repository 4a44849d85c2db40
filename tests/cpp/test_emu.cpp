// The emulated device: memory semantics, banks, compute units, concurrency, register map and
// the sync checker, on kernels compiled and packed by the test itself (tests/cpp/test_emu_util.hpp)
// and on the xclbins the kernel toolchain builds ($FPYGA_XCLBIN_DIR).
#include <alloca.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <numeric>
#include <thread>

#include "core_state.hpp"
#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"
#include "test_support.hpp"

namespace {

// Two emulated devices; read once, at the first enumeration in this process.
const int two_emu_devices = ::setenv("FPYGA_EMU_DEVICES", "2", 1);

using fpyga::test::compile_so;
using fpyga::test::pack_xclbin;
using fpyga::test::small_vadd_xclbin;
using fpyga::test::two_cu_vadd_xclbin;

void fill(const fpyga::buffer& b, unsigned base) {
  auto s = b.as<unsigned>();
  std::iota(s.begin(), s.end(), base);
}

/// vadd on `dev` with fresh buffers in `mem`; checks the result. Proves a device still works.
void check_vadd(const fpyga::kernel& k, const fpyga::device& dev, const fpyga::memory& mem = {}) {
  const unsigned n = 64;
  fpyga::buffer a(dev, n * 4, mem), b(dev, n * 4, mem), c(dev, n * 4, mem);
  fill(a, 1);
  fill(b, 1000);
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, n);
  c.sync_from_device();
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(c.as<unsigned>()[i], 1001 + 2 * i) << "element " << i;
}

// A kernel that waits at a gate: it counts itself in and returns once `want` runs have been
// inside at the same time (the peak is kept until the last one leaves, so none misses it) or the
// host raises *flag (synced to the device while it runs). It writes the peak it saw. A 30 s cap
// turns a broken emulator into a failure, not a hang.
const char* gate_source = R"(
#include <atomic>
#include <chrono>
static std::atomic<int> inside{0};
static std::atomic<int> peak{0};
extern "C" void gate(const int* flag, int* out, int want) {
  const int now = inside.fetch_add(1) + 1;
  int p = peak.load();
  while (p < now && !peak.compare_exchange_weak(p, now)) {}
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (peak.load() < want && !__atomic_load_n(flag, __ATOMIC_ACQUIRE) && std::chrono::steady_clock::now() < end) {}
  out[0] = peak.load();
  if (inside.fetch_sub(1) == 1) peak.store(0);
}
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
)";

/// gate with two CUs and vadd with one, and no MEM_TOPOLOGY/CONNECTIVITY (one default bank).
std::string gate_xclbin() {
  static const std::string path = pack_xclbin("gate", R"({"mode": "sw_emu", "platform": "test",
    "kernels": [
     {"name": "gate", "language": "c++",
      "args": [
        {"name": "flag", "type": "int const *", "kind": "global", "offset": 16, "size": 8},
        {"name": "out", "type": "int*", "kind": "global", "offset": 28, "size": 8},
        {"name": "want", "type": "int", "kind": "scalar", "offset": 40, "size": 4}],
      "instances": [{"name": "gate_1", "base_address": 0}, {"name": "gate_2", "base_address": 65536}]},
     {"name": "vadd", "language": "c++",
      "args": [
        {"name": "in1", "type": "unsigned int const *", "kind": "global", "offset": 16, "size": 8},
        {"name": "in2", "type": "unsigned int const *", "kind": "global", "offset": 28, "size": 8},
        {"name": "out_r", "type": "unsigned int *", "kind": "global", "offset": 40, "size": 8},
        {"name": "size", "type": "int", "kind": "scalar", "offset": 52, "size": 4}],
      "instances": [{"name": "vadd_1", "base_address": 131072}]}]})",
                                              compile_so("gate", gate_source));
  return path;
}

// ---------------------------------------------------------------------------------------------
// Memory

TEST(emu_memory, vadd_round_trip) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  check_vadd(ov.kernel("vadd"), dev);
}

TEST(emu_memory, device_memory_is_separate_from_host_memory) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  fill(a, 1);
  fill(b, 1);
  // Not synced: the kernel sees the device side, still zero.
  k.call(a, b, c, 16);
  c.sync_from_device();
  for (unsigned v : c.as<unsigned>()) EXPECT_EQ(v, 0u);
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, 16);
  // Not synced back: the host copy is unchanged.
  for (unsigned v : c.as<unsigned>()) EXPECT_EQ(v, 0u);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[3], 8u);
  // Partial syncs move only the requested range.
  c.as<unsigned>()[0] = 77;
  c.as<unsigned>()[1] = 78;
  c.sync_to_device(4, 4);
  c.as<unsigned>()[0] = 0;
  c.as<unsigned>()[1] = 0;
  c.sync_from_device(8, 0);
  EXPECT_EQ(c.as<unsigned>()[0], 2u);
  EXPECT_EQ(c.as<unsigned>()[1], 78u);
}

TEST(emu_memory, buffer_offsets_reach_the_kernel) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  fill(a, 0);
  fill(b, 0);
  a.sync_to_device();
  b.sync_to_device();
  k.call(fpyga::arg_value(a, 8), b, fpyga::arg_value(c, 4), 4);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[0], 0u);
  EXPECT_EQ(c.as<unsigned>()[1], 2u);  // a[2] + b[0]
  EXPECT_EQ(c.as<unsigned>()[4], 8u);  // a[5] + b[3]
  EXPECT_EQ(c.as<unsigned>()[5], 0u);
  EXPECT_THROW(k.call(fpyga::arg_value(a, 65), b, c, 1), fpyga::value_error);
}

TEST(emu_memory, banks_have_address_ranges_and_a_size) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, two_cu_vadd_xclbin());
  auto bank0 = ov.memory("bank0");
  auto bank1 = ov.memory("bank1");
  EXPECT_EQ(bank1.base_address(), 16ull << 30);
  EXPECT_EQ(bank1.size(), 1u << 20);
  fpyga::buffer x(dev, 600 * 1024, bank1);
  EXPECT_GE(x.device_address(), bank1.base_address());
  EXPECT_LE(x.device_address() + x.size(), bank1.base_address() + bank1.size());
  EXPECT_EQ(x.memory(), bank1);
  try {
    fpyga::buffer y(dev, 600 * 1024, bank1);
    FAIL() << "a second 600 KiB buffer fit in a 1 MiB bank";
  } catch (const fpyga::memory_error& e) {
    EXPECT_NE(std::string(e.what()).find("bank1"), std::string::npos) << e.what();
  }
  // bank0 is unaffected; freeing gives the range back.
  fpyga::buffer z(dev, 600 * 1024, bank0);
  EXPECT_LT(z.device_address(), bank0.base_address() + bank0.size());
  x.free();
  EXPECT_TRUE(x.freed());
  fpyga::buffer y(dev, 600 * 1024, bank1);
  EXPECT_GE(y.device_address(), bank1.base_address());
  EXPECT_THROW(fpyga::buffer(dev, 2u << 20, bank0), fpyga::memory_error);
}

TEST(emu_memory, buffer_for_a_kernel_argument_lands_in_its_bank) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, two_cu_vadd_xclbin());
  fpyga::buffer b(ov.kernel("vadd_2"), 0, 4096);
  EXPECT_EQ(b.memory().tag(), "bank1");
  fpyga::buffer a(ov.kernel("vadd:vadd_1"), 2, 4096);
  EXPECT_EQ(a.memory().tag(), "bank0");
  EXPECT_THROW(fpyga::buffer(ov.kernel("vadd"), 3, 16), fpyga::value_error);  // scalar argument
  EXPECT_THROW(fpyga::buffer(ov.kernel("vadd"), 4, 16), fpyga::value_error);  // no such argument
}

TEST(emu_memory, xclbin_without_memory_topology_gets_one_default_bank) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, gate_xclbin());
  ASSERT_EQ(ov.memories().size(), 1u);
  EXPECT_EQ(ov.memories()[0].tag(), "bank0");
  EXPECT_TRUE(ov.memories()[0].used());
  check_vadd(ov.kernel("vadd"), dev);
}

// ---------------------------------------------------------------------------------------------
// Compute units and concurrency

TEST(emu_cu, bank_connectivity_selects_the_compute_unit) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, two_cu_vadd_xclbin());
  auto k = ov.kernel("vadd");
  EXPECT_EQ(k.compute_units(), (std::vector<std::string>{"vadd_1", "vadd_2"}));
  check_vadd(k, dev, ov.memory("bank0"));
  check_vadd(k, dev, ov.memory("bank1"));
  // The bank1 call ran on vadd_2: its registers hold the bank1 addresses.
  fpyga::buffer a(dev, 64, ov.memory("bank1")), b(dev, 64, ov.memory("bank1")), c(dev, 64, ov.memory("bank1"));
  k.call(a, b, c, 16);
  auto cu2 = ov.kernel("vadd_2");
  const std::uint64_t lo = cu2.read_register(0x10), hi = cu2.read_register(0x14);
  EXPECT_EQ(lo | hi << 32, a.device_address());
  EXPECT_EQ(cu2.read_register(0x34), 16u);
}

TEST(emu_cu, wrong_bank_is_an_error_naming_kernel_argument_and_banks) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, two_cu_vadd_xclbin());
  fpyga::buffer a(dev, 64, ov.memory("bank0")), b(dev, 64, ov.memory("bank1")), c(dev, 64, ov.memory("bank0"));
  try {
    ov.kernel("vadd").call(a, b, c, 16);
    FAIL() << "mixed banks accepted";
  } catch (const fpyga::value_error& e) {
    const std::string m = e.what();
    for (const char* word : {"vadd", "in2", "bank1", "bank0"}) EXPECT_NE(m.find(word), std::string::npos) << m;
  }
  try {
    ov.kernel("vadd_1").call(b, b, b, 16);
    FAIL() << "bank1 buffer accepted by vadd_1";
  } catch (const fpyga::value_error& e) {
    const std::string m = e.what();
    for (const char* word : {"vadd", "in1", "bank1", "vadd_1: bank0"}) EXPECT_NE(m.find(word), std::string::npos) << m;
  }
  check_vadd(ov.kernel("vadd"), dev, ov.memory("bank0"));
}

TEST(emu_cu, compute_units_run_concurrently) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, gate_xclbin());
  auto k = ov.kernel("gate");
  fpyga::buffer flag(dev, 4), out1(dev, 4), out2(dev, 4);
  // start() queues on an idle CU each time: both runs are inside the kernel at once.
  auto r1 = k.start(flag, out1, 2);
  auto r2 = k.start(flag, out2, 2);
  r1.wait();
  r2.wait();
  out1.sync_from_device();
  out2.sync_from_device();
  EXPECT_EQ(out1.as<int>()[0], 2);
  EXPECT_EQ(out2.as<int>()[0], 2);
  // call() from two threads: each runs on its own CU, on its own thread.
  fpyga::buffer out3(dev, 4), out4(dev, 4);
  std::thread t([&] { k.call(flag, out3, 2); });
  k.call(flag, out4, 2);
  t.join();
  out3.sync_from_device();
  out4.sync_from_device();
  EXPECT_EQ(out3.as<int>()[0], 2);
  EXPECT_EQ(out4.as<int>()[0], 2);
}

TEST(emu_cu, many_threads_start_runs_on_several_compute_units) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, two_cu_vadd_xclbin());
  auto k = ov.kernel("vadd");
  constexpr int threads = 4, runs = 25, n = 256;
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto mem = ov.memory(t % 2 ? "bank1" : "bank0");
      for (int r = 0; r < runs; ++r) {
        fpyga::buffer a(dev, n * 4, mem), b(dev, n * 4, mem), c(dev, n * 4, mem);
        fill(a, t * 1000 + r);
        fill(b, 7);
        a.sync_to_device();
        b.sync_to_device();
        auto run = k.start(a, b, c, n);
        run.wait();
        c.sync_from_device();
        for (int i = 0; i < n; ++i)
          if (c.as<unsigned>()[i] != unsigned(t * 1000 + r + i + 7 + i)) ++wrong;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(wrong.load(), 0);
  ov.release();  // refused while runs are in flight
  EXPECT_FALSE(ov.loaded());
}

TEST(emu_cu, waitfor_orders_runs) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, gate_xclbin());
  fpyga::buffer flag(dev, 4), out(dev, 4);
  auto held = ov.kernel("gate").start(flag, out, 99);  // waits for the flag
  const unsigned n = 16;
  fpyga::buffer a(dev, n * 4), b(dev, n * 4), c(dev, n * 4);
  fill(a, 1);
  fill(b, 1);
  a.sync_to_device();
  b.sync_to_device();
  const fpyga::arg_value args[] = {a, b, c, n};
  const fpyga::run deps[] = {held};
  auto after = ov.kernel("vadd").start_args(args, deps);
  EXPECT_EQ(after.wait(std::chrono::milliseconds(20)), fpyga::run_state::queued);
  EXPECT_FALSE(after.done());
  EXPECT_FALSE(held.done());
  flag.as<int>()[0] = 1;
  flag.sync_to_device();
  after.wait();
  EXPECT_TRUE(held.done());
  EXPECT_EQ(held.state(), fpyga::run_state::completed);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[5], 12u);
}

TEST(emu_cu, a_run_waiting_for_a_failed_run_fails_with_its_reason) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, fpyga::test::fail_xclbin());
  auto k = ov.kernel("fail");
  fpyga::buffer yes(dev, 4), no(dev, 4);
  yes.as<int>()[0] = 1;
  no.as<int>()[0] = 0;
  yes.sync_to_device();
  no.sync_to_device();
  auto failed = k.start(yes);
  const fpyga::arg_value args[] = {no};
  const fpyga::run deps[] = {failed};
  auto after = k.start_args(args, deps);
  ASSERT_EQ(after.wait(std::chrono::seconds(10)), fpyga::run_state::error);
  const std::string why = fpyga::test::wait_error(after);
  EXPECT_NE(why.find("a run it was to wait for failed: the kernel gave up"), std::string::npos)
      << why;
  EXPECT_NE(fpyga::test::wait_error(failed).find("the kernel gave up"), std::string::npos);
  k.call(no);  // the CU still runs
}

TEST(emu_cu, unloading_fails_a_run_still_waiting_for_its_dependencies) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, fpyga::test::hold_xclbin(2));
  fpyga::buffer flag(dev, 4);
  flag.as<int>()[0] = 0;
  flag.sync_to_device();
  auto held = ov.kernel("hold_1").start(flag);
  const fpyga::arg_value args[] = {flag};
  const fpyga::run deps[] = {held};
  auto waiting = ov.kernel("hold_2").start_args(args, deps);
  // The core refuses to unload with runs in flight; the backend's release may still meet one (a
  // start racing an unload). It waits for the run hold_1 is executing (a kernel cannot be
  // interrupted), but fails the one on hold_2 that only waits for it, without waiting for `held`.
  auto released = std::async(std::launch::async, [&] { ov.state()->program->release(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (waiting.state() != fpyga::run_state::error && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(waiting.state(), fpyga::run_state::error);
  EXPECT_EQ(held.state(), fpyga::run_state::running);

  flag.as<int>()[0] = 1;  // let everything end, whatever happened above
  flag.sync_to_device();
  released.get();
  EXPECT_EQ(held.state(), fpyga::run_state::completed);
  if (waiting.state() == fpyga::run_state::error) {
    const std::string why = fpyga::test::wait_error(waiting);
    EXPECT_NE(why.find("its xclbin was unloaded before the runs it waited for completed"),
              std::string::npos)
        << why;
  }
}

// ---------------------------------------------------------------------------------------------
// Register map

TEST(emu_registers, args_by_register_and_ap_start_run_the_kernel) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd_1");
  const unsigned n = 32;
  fpyga::buffer a(dev, n * 4), b(dev, n * 4), c(dev, n * 4);
  fill(a, 3);
  fill(b, 4);
  a.sync_to_device();
  b.sync_to_device();
  EXPECT_EQ(k.read_register(0x0) & 0x4u, 0x4u);  // ap_idle
  auto put = [&](std::uint32_t off, std::uint64_t addr) {
    k.write_register(off, static_cast<std::uint32_t>(addr));
    k.write_register(off + 4, static_cast<std::uint32_t>(addr >> 32));
  };
  put(0x10, a.device_address());
  put(0x1c, b.device_address());
  put(0x28, c.device_address());
  k.write_register(0x34, n);
  EXPECT_EQ(k.read_register(0x34), n);
  k.write_register(0x0, 0x1);  // ap_start
  std::uint32_t ctrl = 0;
  for (int i = 0; i < 1000 && !(ctrl & 0x2u); ++i) ctrl = k.read_register(0x0);
  EXPECT_EQ(ctrl & 0xfu, 0xeu);                 // ap_done | ap_idle | ap_ready, not ap_start
  EXPECT_EQ(k.read_register(0x0) & 0x2u, 0u);  // ap_done is clear-on-read
  c.sync_from_device();
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(c.as<unsigned>()[i], 7 + 2 * i);
  // Pointer registers may point inside a buffer.
  put(0x28, c.device_address() + 8);
  k.write_register(0x34, 1);
  k.write_register(0x0, 0x1);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[2], 7u);
}

TEST(emu_registers, auto_restart_reruns_the_kernel_until_the_host_clears_it) {
  const auto path = pack_xclbin("tick", R"({"mode": "sw_emu", "platform": "test",
    "kernels": [{"name": "tick", "language": "c++",
      "args": [{"name": "count", "type": "unsigned int*", "kind": "global", "offset": 16, "size": 8}],
      "instances": [{"name": "tick_1", "base_address": 0}]}]})",
                                compile_so("tick", R"(
extern "C" void tick(unsigned int* count) { count[0] += 1; }
)"));
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path);
  auto k = ov.kernel("tick_1");
  fpyga::buffer c(dev, 64);
  c.sync_to_device();
  const std::uint64_t addr = c.device_address();
  k.write_register(0x10, static_cast<std::uint32_t>(addr));
  k.write_register(0x14, static_cast<std::uint32_t>(addr >> 32));
  k.write_register(0x0, 0x81);  // ap_start | auto_restart
  // ap_done is sticky until read: each time the host sees it, at least one more pass ended.
  int seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (seen < 3 && std::chrono::steady_clock::now() < deadline) {
    const std::uint32_t ctrl = k.read_register(0x0);
    EXPECT_EQ(ctrl & 0x5u, 0x1u) << "while restarting: ap_start high, ap_idle low";
    if (ctrl & 0x2u) ++seen;
  }
  ASSERT_EQ(seen, 3) << "the kernel did not restart by itself";
  // The xclbin cannot be replaced under a running kernel.
  EXPECT_THROW(fpyga::overlay(dev, small_vadd_xclbin()), fpyga::error);
  k.write_register(0x0, 0x0);  // clear auto_restart: the current pass is the last
  std::uint32_t ctrl = 0;
  while (!(ctrl & 0x4u) && std::chrono::steady_clock::now() < deadline) ctrl = k.read_register(0x0);
  ASSERT_TRUE(ctrl & 0x4u) << "the kernel did not stop after auto_restart was cleared";
  EXPECT_EQ(ctrl & 0x81u, 0u);
  c.sync_from_device();
  const unsigned passes = c.as<unsigned>()[0];
  EXPECT_GE(passes, 3u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[0], passes) << "the kernel ran after it went idle";
  // A plain ap_start runs it exactly once more.
  k.write_register(0x0, 0x1);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[0], passes + 1);
}

TEST(emu_registers, call_arguments_show_in_the_register_map) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  k.call(a, b, c, 9);
  EXPECT_EQ(k.read_register(0x10) | std::uint64_t(k.read_register(0x14)) << 32, a.device_address());
  EXPECT_EQ(k.read_register(0x1c) | std::uint64_t(k.read_register(0x20)) << 32, b.device_address());
  EXPECT_EQ(k.read_register(0x28) | std::uint64_t(k.read_register(0x2c)) << 32, c.device_address());
  EXPECT_EQ(k.read_register(0x34), 9u);
  k.write_register(0x0, 0x80);  // auto_restart is kept, and starts nothing by itself
  EXPECT_EQ(k.read_register(0x0) & 0x80u, 0x80u);
}

TEST(emu_registers, bad_offsets_and_addresses_are_errors) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  EXPECT_THROW(k.read_register(0x2), fpyga::value_error);
  EXPECT_THROW(k.read_register(0x1000), fpyga::value_error);
  EXPECT_THROW(k.write_register(0x1000, 1), fpyga::value_error);
  k.write_register(0x10, 0xdead0000u);
  k.write_register(0x14, 0x7);
  try {
    k.write_register(0x0, 1);
    FAIL() << "a bogus pointer register started the kernel";
  } catch (const fpyga::value_error& e) {
    EXPECT_NE(std::string(e.what()).find("in1"), std::string::npos) << e.what();
  }
  check_vadd(k, dev);
}

// ---------------------------------------------------------------------------------------------
// Sync checker

class emu_sync_check : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("FPYGA_EMU_CHECK_SYNC", "1", 1); }
  void TearDown() override { ::unsetenv("FPYGA_EMU_CHECK_SYNC"); }

  static std::size_t count(const std::vector<std::string>& v, const char* word) {
    std::size_t n = 0;
    for (const auto& m : v) n += m.find(word) != std::string::npos;
    return n;
  }
};

TEST_F(emu_sync_check, correct_host_code_gets_no_warning) {
  fpyga::test::warning_capture w;
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  check_vadd(ov.kernel("vadd"), dev);
  EXPECT_TRUE(w.messages().empty()) << w.messages().front();
}

TEST_F(emu_sync_check, input_changed_on_the_host_without_sync_to_device) {
  fpyga::test::warning_capture w;
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  fill(a, 1);
  a.sync_to_device();
  b.sync_to_device();
  a.as<unsigned>()[3] = 99;  // forgotten sync
  k.call(a, b, c, 16);
  auto m = w.messages();
  ASSERT_EQ(m.size(), 1u);
  EXPECT_NE(m[0].find("in1"), std::string::npos) << m[0];
  EXPECT_NE(m[0].find("sync_to_device"), std::string::npos) << m[0];
  c.sync_from_device();
  a.sync_to_device();
  k.call(a, b, c, 16);
  EXPECT_EQ(w.messages().size(), 1u);
}

TEST_F(emu_sync_check, result_read_on_the_host_without_sync_from_device) {
  fpyga::test::warning_capture w;
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  fill(a, 1);
  fill(b, 1);
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, 16);
  volatile unsigned* host = c.as<unsigned>().data();
  const unsigned stale = host[5];  // forgotten sync_from_device
  EXPECT_EQ(stale, 0u);
  auto m = w.messages();
  ASSERT_EQ(count(m, "sync_from_device"), 1u) << (m.empty() ? "" : m[0]);
  EXPECT_NE(m[0].find("vadd"), std::string::npos) << m[0];
  // After a sync, reads are fine.
  w.clear();
  k.call(a, b, c, 16);
  c.sync_from_device();
  EXPECT_EQ(host[5], 12u);
  EXPECT_TRUE(w.messages().empty());
}

TEST_F(emu_sync_check, host_overwriting_results_and_kernel_chains_are_not_warned) {
  fpyga::test::warning_capture w;
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64), d(dev, 64);
  fill(a, 1);
  fill(b, 1);
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, 16);
  k.call(c, b, d, 16);  // c stays on the device: a chain of kernels
  d.sync_from_device();
  EXPECT_EQ(d.as<unsigned>()[2], 9u);
  fill(c, 5);  // the host writes new input into c without reading the old result
  c.sync_to_device();
  k.call(c, b, d, 16);
  d.sync_from_device();
  EXPECT_EQ(d.as<unsigned>()[0], 6u);
  EXPECT_TRUE(w.messages().empty()) << w.messages().front();
}

// ---------------------------------------------------------------------------------------------
// Loading

/// An xclbin describing vadd (one bank, one CU) whose BITSTREAM is `source` compiled: what the
/// .so really exports is up to the test.
std::string vadd_metadata_xclbin(const std::string& name, const char* source) {
  return pack_xclbin(
      name,
      fpyga::test::vadd_json(
          R"([{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 1048576}])",
          R"([{"name": "vadd_1", "base_address": 0}])"),
      compile_so(name, source));
}

TEST(emu_load, reloading_different_libraries_never_reuses_a_stale_one) {
  // Two .so files exporting the same symbol with different behaviour, loaded in turn: each load
  // must run its own code (the .so is opened through /proc/self/fd/N, and N gets reused).
  const auto sub = vadd_metadata_xclbin("vsub_as_vadd", R"(
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] - in2[i];
}
)");
  auto dev = fpyga::device::open("emu");
  for (int round = 0; round < 6; ++round) {
    const bool add = round % 2 == 0;
    fpyga::overlay ov(dev, add ? small_vadd_xclbin() : sub);
    fpyga::buffer a(dev, 16), b(dev, 16), c(dev, 16);
    a.as<unsigned>()[0] = 10;
    b.as<unsigned>()[0] = 3;
    a.sync_to_device();
    b.sync_to_device();
    ov.kernel("vadd").call(a, b, c, 1);
    c.sync_from_device();
    EXPECT_EQ(c.as<unsigned>()[0], add ? 13u : 7u) << "round " << round;
  }
}

TEST(emu_load, a_failed_load_keeps_the_loaded_xclbin) {
  // The metadata names vadd, the .so exports only vsub: the load fails at symbol lookup.
  const auto broken = vadd_metadata_xclbin("vadd_missing", R"(
extern "C" void vsub(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] - in2[i];
}
)");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer kept(dev, 64);
  fill(kept, 7);
  kept.sync_to_device();
  try {
    fpyga::overlay bad(dev, broken);
    FAIL() << "loading an xclbin whose kernel function is missing must fail";
  } catch (const fpyga::xclbin_error& e) {
    EXPECT_NE(std::string(e.what()).find("'vadd'"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(ov.loaded());
  check_vadd(k, dev);
  // A buffer allocated before the failed load kept its device contents.
  fpyga::buffer zero(dev, 64), out(dev, 64);
  zero.sync_to_device();
  k.call(kept, zero, out, 16);
  out.sync_from_device();
  EXPECT_EQ(out.as<unsigned>()[3], 10u);
}

TEST(emu_load, an_f1_image_is_refused_without_unloading) {
  FPYGA_REQUIRE_FILE(aws,
                     fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  EXPECT_THROW(fpyga::overlay(dev, aws.string()), fpyga::not_supported_error);
  EXPECT_TRUE(ov.loaded());
  check_vadd(k, dev);
}

TEST(emu_load, two_devices_run_different_xclbins_at_once) {
  ASSERT_EQ(two_emu_devices, 0);
  auto devs = fpyga::devices();
  std::vector<fpyga::device> emus;
  for (const auto& d : devs)
    if (d.backend() == "emu") emus.push_back(d);
  ASSERT_EQ(emus.size(), 2u);
  fpyga::overlay ov0(emus[0], small_vadd_xclbin());
  fpyga::overlay ov1(emus[1], two_cu_vadd_xclbin());
  std::thread t([&] {
    for (int i = 0; i < 20; ++i) check_vadd(ov1.kernel("vadd"), emus[1], ov1.memory(i % 2 ? "bank1" : "bank0"));
  });
  for (int i = 0; i < 20; ++i) check_vadd(ov0.kernel("vadd"), emus[0]);
  t.join();
  EXPECT_TRUE(ov0.loaded());
  EXPECT_TRUE(ov1.loaded());
}

// ---------------------------------------------------------------------------------------------
// The toolchain's xclbins

TEST(emu_built, vadd_vmult_and_two_cu_xclbins_run) {
  FPYGA_REQUIRE_FILE(vadd, fpyga::test::built_xclbin_dir() / "vadd.xclbin");
  FPYGA_REQUIRE_FILE(vmult, fpyga::test::built_xclbin_dir() / "vmult.xclbin");
  FPYGA_REQUIRE_FILE(two, fpyga::test::built_xclbin_dir() / "vadd_2cu.xclbin");
  auto dev = fpyga::device::open("emu");
  {
    fpyga::overlay ov(dev, vadd.string());
    check_vadd(ov.kernel("vadd"), dev);
  }
  {
    fpyga::overlay ov(dev, vmult.string());
    fpyga::buffer a(dev, 16), b(dev, 16), c(dev, 16);
    fill(a, 2);
    fill(b, 3);
    a.sync_to_device();
    b.sync_to_device();
    ov.kernel("vmult").call(a, b, c, 4);
    c.sync_from_device();
    EXPECT_EQ(c.as<unsigned>()[3], 5u * 6u);
  }
  {
    fpyga::overlay ov(dev, two.string());
    EXPECT_EQ(ov.kernel("vadd").compute_units().size(), 2u);
    check_vadd(ov.kernel("vadd"), dev, ov.memory("bank0"));
    check_vadd(ov.kernel("vadd"), dev, ov.memory("bank1"));
  }
}

TEST(emu_built, mlp_matches_a_direct_call_of_its_kernel_function) {
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "mlp.xclbin");
  // The reference: the same .so, written to a file, dlopened and called directly.
  const auto bin = fpyga::xclbin::read(path.string());
  const auto so = fpyga::test::scratch_dir() / "mlp_direct.so";
  std::ofstream(so, std::ios::binary)
      .write(reinterpret_cast<const char*>(bin.bitstream.data()), static_cast<std::streamsize>(bin.bitstream.size()));
  void* lib = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << ::dlerror();
  auto direct = reinterpret_cast<void (*)(const void*, void*)>(::dlsym(lib, "mlp"));
  ASSERT_NE(direct, nullptr);

  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto mlp = ov.kernel("mlp");
  auto batch = ov.kernel("mlp_batch");
  constexpr int samples = 16, n_in = 27;
  fpyga::buffer in(dev, samples * n_in * 2), out(dev, samples * 2), one_out(dev, 2);
  auto x = in.as<std::int16_t>();
  for (int i = 0; i < samples * n_in; ++i) x[i] = static_cast<std::int16_t>((i * 7919) % 6000 - 3000);
  in.sync_to_device();
  batch.call(in, out, samples);
  out.sync_from_device();
  int nonzero = 0;
  for (int s = 0; s < samples; ++s) {
    std::int16_t expected = 0;
    direct(x.data() + s * n_in, &expected);
    mlp.call(fpyga::arg_value(in, s * n_in * 2), one_out);
    one_out.sync_from_device();
    EXPECT_EQ(one_out.as<std::int16_t>()[0], expected) << "sample " << s;
    EXPECT_EQ(out.as<std::int16_t>()[s], expected) << "sample " << s << " (batch)";
    nonzero += expected != 0;
  }
  EXPECT_GT(nonzero, 0);  // the comparison is not between zeros
  ::dlclose(lib);
}

}  // namespace
