// The public C++ API on the emulated device: opening devices, overlays, kernel lookup and
// description, buffers, runs, and every bad-input case of the API with the device staying usable.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <numeric>

#include "backends/backend.hpp"
#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"
#include "test_support.hpp"

// Counts heap allocations made by the thread that asks for it (see call_path_does_not_allocate).
namespace {
thread_local bool counting_allocations = false;
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  if (counting_allocations) ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

// Two emulated devices for the cross-device cases; read once, at the first enumeration.
const int two_devices = ::setenv("FPYGA_EMU_DEVICES", "2", 1);

using fpyga::test::small_vadd_xclbin;
using fpyga::test::two_cu_vadd_xclbin;

template <class F>
std::string error_text(F&& f) {
  try {
    f();
  } catch (const fpyga::error& e) {
    return e.what();
  }
  return "(no error)";
}

void check_vadd(const fpyga::kernel& k, const fpyga::device& dev) {
  const unsigned n = 32;
  fpyga::buffer a(dev, n * 4), b(dev, n * 4), c(dev, n * 4);
  std::iota(a.as<unsigned>().begin(), a.as<unsigned>().end(), 1u);
  std::iota(b.as<unsigned>().begin(), b.as<unsigned>().end(), 10u);
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, n);
  c.sync_from_device();
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(c.as<unsigned>()[i], 11 + 2 * i);
}

// ---------------------------------------------------------------------------------------------
// Devices

TEST(api_device, open_by_spec) {
  ASSERT_EQ(two_devices, 0);
  auto d = fpyga::device::open("emu");
  EXPECT_EQ(d.backend(), "emu");
  EXPECT_EQ(d.index(), 0u);
  EXPECT_EQ(d.spec(), "emu:0");
  EXPECT_FALSE(d.name().empty());
  EXPECT_EQ(fpyga::device::open("emu:0"), d);  // devices live for the process
  auto d1 = fpyga::device::open("emu:1");
  EXPECT_EQ(d1.index(), 1u);
  EXPECT_FALSE(d1 == d);
  EXPECT_FALSE(fpyga::device());
}

TEST(api_device, bad_specs) {
  EXPECT_THROW(fpyga::device::open("emu:2"), fpyga::value_error);
  EXPECT_THROW(fpyga::device::open("emu:x"), fpyga::value_error);
  EXPECT_THROW(fpyga::device::open("emu:"), fpyga::value_error);
  EXPECT_THROW(fpyga::device::open("gpu:0"), fpyga::value_error);
  EXPECT_NE(error_text([] { fpyga::device::open("emu:7"); }).find("2 device(s)"), std::string::npos);
  for (const char* b : {"xrt", "opencl"}) {
    bool compiled_in = false;
    for (const auto& e : fpyga::backend::backends()) compiled_in |= e.name == b;
    if (compiled_in) continue;
    try {
      fpyga::device::open(std::string(b) + ":0");
      ADD_FAILURE() << b << " opened without being compiled in";
    } catch (const fpyga::not_supported_error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("backend '") + b + "' is not enabled in this build"),
                std::string::npos) << e.what();
    }
  }
}

TEST(api_device, default_device_and_environment) {
  ::unsetenv("FPYGA_DEVICE");
  auto all = fpyga::devices();
  ASSERT_GE(all.size(), 2u);
  auto def = fpyga::device::open();
  EXPECT_EQ(all.front(), def);  // the default first, as PYNQ's Device.devices[0]
  bool hardware = false;
  for (const auto& d : all) hardware |= d.backend() != "emu";
  if (!hardware) EXPECT_EQ(def.spec(), "emu:0");
  ::setenv("FPYGA_DEVICE", "emu:1", 1);
  EXPECT_EQ(fpyga::device::open().spec(), "emu:1");
  ::setenv("FPYGA_DEVICE", "emu:9", 1);
  EXPECT_NE(error_text([] { fpyga::device::open(); }).find("FPYGA_DEVICE"), std::string::npos);
  ::unsetenv("FPYGA_DEVICE");
}

// ---------------------------------------------------------------------------------------------
// Overlays and kernels

TEST(api_overlay, kernels_by_name_instance_and_kernel_colon_instance) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, two_cu_vadd_xclbin());
  EXPECT_TRUE(ov.loaded());
  EXPECT_EQ(ov.device(), dev);
  EXPECT_EQ(ov.path(), two_cu_vadd_xclbin());
  EXPECT_EQ(ov.xclbin().kernels.size(), 1u);
  EXPECT_EQ(ov.kernel("vadd").compute_units(), (std::vector<std::string>{"vadd_1", "vadd_2"}));
  EXPECT_EQ(ov.kernel("vadd:vadd_2").compute_units(), std::vector<std::string>{"vadd_2"});
  EXPECT_EQ(ov.kernel("vadd_1").compute_units(), std::vector<std::string>{"vadd_1"});
  EXPECT_EQ(ov.kernel("vadd_1").name(), "vadd");
  ASSERT_EQ(ov.kernels().size(), 1u);
  const std::string m = error_text([&] { ov.kernel("vsub"); });
  EXPECT_NE(m.find("vsub"), std::string::npos) << m;
  EXPECT_NE(m.find("vadd (vadd_1, vadd_2)"), std::string::npos) << m;
  EXPECT_THROW(ov.kernel("vadd:vadd_3"), fpyga::value_error);
  EXPECT_THROW(ov.memory("DDR9"), fpyga::value_error);
  EXPECT_EQ(ov.memories().size(), 2u);
  EXPECT_EQ(dev.memories().size(), 2u);
  EXPECT_NE(error_text([&] { dev.default_memory(); }).find("bank0, bank1"), std::string::npos);
}

TEST(api_overlay, kernel_args_describe_the_signature) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, two_cu_vadd_xclbin());
  const auto& args = ov.kernel("vadd").args();
  ASSERT_EQ(args.size(), 4u);
  EXPECT_EQ(args[0].name, "in1");
  EXPECT_EQ(args[0].type, "unsigned int const *");
  EXPECT_TRUE(args[0].ctype.pointer);
  EXPECT_EQ(args[0].kind, fpyga::arg_kind::global);
  EXPECT_EQ(args[0].offset, 0x10u);
  ASSERT_EQ(args[0].memories.size(), 2u);
  EXPECT_EQ(args[0].memories[0].tag(), "bank0");
  EXPECT_EQ(args[0].memories[1].tag(), "bank1");
  EXPECT_EQ(args[3].name, "size");
  EXPECT_EQ(args[3].kind, fpyga::arg_kind::scalar);
  EXPECT_EQ(args[3].offset, 0x34u);
  EXPECT_EQ(args[3].ctype.bits, 32u);
  const auto& one = ov.kernel("vadd_2").args();
  ASSERT_EQ(one[2].memories.size(), 1u);
  EXPECT_EQ(one[2].memories[0].tag(), "bank1");
}

TEST(api_overlay, loading_replaces_and_release_unloads) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay first(dev, small_vadd_xclbin());
  fpyga::buffer old(dev, 64);
  auto old_kernel = first.kernel("vadd");
  fpyga::overlay second(dev, small_vadd_xclbin());
  EXPECT_FALSE(first.loaded());
  EXPECT_TRUE(second.loaded());
  // Objects of the replaced xclbin fail clearly.
  EXPECT_NE(error_text([&] { old_kernel.call(old, old, old, 1); }).find("no longer loaded"), std::string::npos);
  EXPECT_NE(error_text([&] { old.sync_to_device(); }).find("no longer loaded"), std::string::npos);
  const std::string m = error_text([&] { second.kernel("vadd").call(old, old, old, 1); });
  EXPECT_NE(m.find("no longer loaded"), std::string::npos) << m;
  EXPECT_NE(m.find("in1"), std::string::npos) << m;
  check_vadd(second.kernel("vadd"), dev);
  second.release();
  EXPECT_FALSE(second.loaded());
  EXPECT_THROW(second.kernel("vadd"), fpyga::error);
  EXPECT_THROW(fpyga::buffer(dev, 64), fpyga::error);  // nothing loaded: no memory
  second.release();                                   // twice is harmless
}

TEST(api_overlay, release_is_refused_while_runs_are_in_flight) {
  auto dev = fpyga::device::open("emu");
  const auto path = fpyga::test::hold_xclbin();
  fpyga::overlay ov(dev, path);
  fpyga::buffer flag(dev, 4);
  auto r = ov.kernel("hold").start(flag);
  EXPECT_FALSE(r.done());
  const std::string m = error_text([&] { ov.release(); });
  EXPECT_NE(m.find("in flight"), std::string::npos) << m;
  EXPECT_TRUE(ov.loaded());
  EXPECT_THROW(fpyga::overlay(dev, small_vadd_xclbin()), fpyga::error);  // nor replaced
  EXPECT_TRUE(ov.loaded());
  flag.as<int>()[0] = 1;
  flag.sync_to_device();
  r.wait();
  EXPECT_EQ(r.state(), fpyga::run_state::completed);
  ov.release();
  EXPECT_FALSE(ov.loaded());
  fpyga::overlay again(dev, small_vadd_xclbin());
  check_vadd(again.kernel("vadd"), dev);
}

// ---------------------------------------------------------------------------------------------
// Buffers

TEST(api_buffer, host_memory_is_page_aligned_and_typed) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  fpyga::buffer b(dev, 100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 4096, 0u);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(b.as<std::uint32_t>().size(), 25u);
  EXPECT_EQ(b.as<std::uint16_t>().size(), 50u);
  EXPECT_EQ(b.memory().tag(), "bank0");
  EXPECT_EQ(b.device(), dev);
  for (auto v : b.as<std::uint8_t>()) ASSERT_EQ(v, 0);
  EXPECT_EQ(b.device_address() % 4096, 0u);
  fpyga::buffer copy = b;
  EXPECT_EQ(copy, b);
  EXPECT_EQ(copy.data(), b.data());
}

TEST(api_buffer, bad_ranges_and_freed_buffers) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  fpyga::buffer b(dev, 64);
  EXPECT_THROW(b.sync_to_device(65), fpyga::value_error);
  EXPECT_THROW(b.sync_to_device(8, 60), fpyga::value_error);
  EXPECT_THROW(b.sync_from_device(1, 65), fpyga::value_error);
  b.sync_to_device(0, 64);  // empty range at the end: fine
  b.sync_from_device(4, 60);
  EXPECT_THROW(fpyga::buffer(dev, 0), fpyga::value_error);
  EXPECT_THROW(fpyga::buffer(fpyga::device(), 16), fpyga::value_error);
  b.free();
  EXPECT_TRUE(b.freed());
  const std::string m = error_text([&] { b.sync_to_device(); });
  EXPECT_NE(m.find("freed"), std::string::npos) << m;
  EXPECT_THROW(b.device_address(), fpyga::error);
  EXPECT_NE(b.data(), nullptr);  // host memory lives on while handles refer to it
  const std::string k = error_text([&] { ov.kernel("vadd").call(b, b, b, 1); });
  EXPECT_NE(k.find("freed"), std::string::npos) << k;
  EXPECT_NE(k.find("in1"), std::string::npos) << k;
  check_vadd(ov.kernel("vadd"), dev);
}

TEST(api_buffer, buffers_of_another_device_are_refused) {
  auto dev0 = fpyga::device::open("emu:0");
  auto dev1 = fpyga::device::open("emu:1");
  fpyga::overlay ov0(dev0, small_vadd_xclbin());
  fpyga::overlay ov1(dev1, small_vadd_xclbin());
  fpyga::buffer a(dev0, 64), other(dev1, 64);
  const std::string m = error_text([&] { ov0.kernel("vadd").call(a, other, a, 1); });
  EXPECT_NE(m.find("emu:1"), std::string::npos) << m;
  EXPECT_NE(m.find("in2"), std::string::npos) << m;
  EXPECT_THROW(fpyga::buffer(dev0, 64, ov1.memory("bank0")), fpyga::value_error);
  check_vadd(ov0.kernel("vadd"), dev0);
  check_vadd(ov1.kernel("vadd"), dev1);
}

// ---------------------------------------------------------------------------------------------
// Calls and runs

TEST(api_kernel, argument_count_and_kind) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64);
  const std::string m = error_text([&] { k.call(a, a, a); });
  EXPECT_NE(m.find("takes 4 arguments"), std::string::npos) << m;
  EXPECT_THROW(k.call(a, a, a, 1, 2), fpyga::type_error);
  EXPECT_THROW(k.call(), fpyga::type_error);
  const std::string s = error_text([&] { k.call(a, 3, a, 1); });
  EXPECT_NE(s.find("'in2'"), std::string::npos) << s;
  EXPECT_NE(s.find("expects a buffer"), std::string::npos) << s;
  EXPECT_THROW(k.call(a, a, a, a), fpyga::type_error);
  EXPECT_THROW(k.call(a, a, a, 1.5), fpyga::type_error);
  EXPECT_THROW(k.call(a, fpyga::buffer(), a, 1), fpyga::value_error);
  EXPECT_THROW(k.start(a, a), fpyga::type_error);
  check_vadd(k, dev);
}

TEST(api_kernel, runs_report_state_and_are_waited_on_once) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 64), b(dev, 64), c(dev, 64);
  auto r = k.start(a, b, c, 16);
  EXPECT_TRUE(r);
  EXPECT_EQ(r.wait(std::chrono::milliseconds(10000)), fpyga::run_state::completed);
  r.wait();
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.state(), fpyga::run_state::completed);
  const std::string m = error_text([&] { r.wait(); });
  EXPECT_NE(m.find("already waited"), std::string::npos) << m;
  auto copy = k.start(a, b, c, 16);
  auto same = copy;
  copy.wait();
  EXPECT_THROW(same.wait(), fpyga::error);  // copies share the run
  EXPECT_THROW(fpyga::run().wait(), fpyga::error);
  EXPECT_STREQ(fpyga::to_string(fpyga::run_state::queued), "queued");
  EXPECT_STREQ(fpyga::to_string(fpyga::run_state::running), "running");
  EXPECT_STREQ(fpyga::to_string(fpyga::run_state::completed), "completed");
  EXPECT_STREQ(fpyga::to_string(fpyga::run_state::error), "error");
  check_vadd(k, dev);
}

TEST(api_kernel, call_path_does_not_allocate) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, small_vadd_xclbin());
  auto k = ov.kernel("vadd");
  fpyga::buffer a(dev, 256), b(dev, 256), c(dev, 256);
  k.call(a, b, c, 64);  // warm-up
  allocations = 0;
  counting_allocations = true;
  for (int i = 0; i < 100; ++i) {
    a.sync_to_device();
    k.call(a, b, c, 64);
    c.sync_from_device();
  }
  counting_allocations = false;
  EXPECT_EQ(allocations.load(), 0);
  // The check works: a start() allocates its run.
  counting_allocations = true;
  auto r = k.start(a, b, c, 64);
  counting_allocations = false;
  r.wait();
  EXPECT_GT(allocations.load(), 0);
}

TEST(api_kernel, empty_handles_throw) {
  EXPECT_THROW(fpyga::kernel().name(), fpyga::error);
  EXPECT_THROW(fpyga::buffer().size(), fpyga::error);
  EXPECT_THROW(fpyga::overlay().kernel("x"), fpyga::error);
  EXPECT_THROW(fpyga::memory().tag(), fpyga::error);
  EXPECT_THROW(fpyga::device().name(), fpyga::error);
}

}  // namespace
