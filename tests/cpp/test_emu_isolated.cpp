// emu's isolated mode (FPYGA_EMU_ISOLATE=1, issue 18 item 8): kernels run in a helper process per
// compute unit; a kernel that crashes fails its run, naming the kernel and the signal, and the
// host and the device live on. Kernels compiled and packed by the test, and the built xclbins.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
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
#include <cstdint>
#include <cstdlib>
#include <unistd.h>
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
// 0: writes 42 to out[0]; 1: writes to address 0x10; 2: abort(); 3: exit(3); 4: an illegal
// instruction.
extern "C" void crash(int* out, int how) {
  volatile int* bad = reinterpret_cast<volatile int*>(std::uintptr_t(how) * 16);
  if (how == 1) *bad = 1;
  if (how == 2) std::abort();
  if (how == 3) std::exit(3);
  if (how == 4) __builtin_trap();
  out[0] = 42;
}
// Says it runs (out[0] = 7), then spins until the host raises *flag: with no time limit, a
// kernel that never ends unless the host lets it.
extern "C" void spin(const int* flag, int* out) {
  __atomic_store_n(&out[0], 7, __ATOMIC_RELEASE);
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {}
  out[0] = 8;
}
// The process it runs in, and how often this process ran it.
extern "C" void whoami(int* out) {
  static int calls = 0;
  out[0] = static_cast<int>(getpid());
  out[1] = ++calls;
}
)";

const std::vector<std::byte>& kernels_so() {
  static const std::vector<std::byte> so = compile_so("emu_isolated_kernels", kernels_source);
  return so;
}

/// vadd, crash, spin and whoami, one CU each, all on one bank of 1 MiB at address 0.
std::string kernels_xclbin() {
  const std::string global = R"("kind": "global", "size": 8, "port": "M_AXI_GMEM", "host_size": 8)";
  const std::string scalar =
      R"("kind": "scalar", "size": 4, "port": "S_AXI_CONTROL", "host_size": 4)";
  auto kernel = [&](const std::string& name, const std::string& args,
                    const std::string& connections, int index) {
    return R"({"name": ")" + name + R"(", "language": "c++", "args": [)" + args + R"(],
      "instances": [{"name": ")" +
           name + R"(_1", "base_address": )" + std::to_string(index * 65536) +
           R"(, "control": "ap_ctrl_hs", "connections": {)" + connections + "}}]}";
  };
  const std::string json =
      R"({"mode": "sw_emu", "platform": "test",
    "memories": [{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 1048576}],
    "kernels": [)" +
      kernel("vadd",
             R"({"name": "in1", "type": "unsigned int const *", "offset": 16, )" + global + R"(},
                {"name": "in2", "type": "unsigned int const *", "offset": 28, )" +
                 global + R"(},
                {"name": "out_r", "type": "unsigned int *", "offset": 40, )" +
                 global + R"(},
                {"name": "size", "type": "int", "offset": 52, )" +
                 scalar + "}",
             R"("in1": "bank0", "in2": "bank0", "out_r": "bank0")", 0) +
      "," +
      kernel("crash",
             R"({"name": "out", "type": "int *", "offset": 16, )" + global + R"(},
                {"name": "how", "type": "int", "offset": 28, )" +
                 scalar + "}",
             R"("out": "bank0")", 1) +
      "," +
      kernel("spin",
             R"({"name": "flag", "type": "int const *", "offset": 16, )" + global + R"(},
                {"name": "out", "type": "int *", "offset": 28, )" +
                 global + "}",
             R"("flag": "bank0", "out": "bank0")", 2) +
      "," +
      kernel("whoami", R"({"name": "out", "type": "int *", "offset": 16, )" + global + "}",
             R"("out": "bank0")", 3) +
      "]}";
  return pack_xclbin("emu_isolated", json, kernels_so());
}

/// Sets an environment variable for a scope (loads read FPYGA_EMU_* when they happen).
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~scoped_env() { ::unsetenv(name_); }

 private:
  const char* name_;
};

fpyga::overlay load_isolated(const fpyga::device& dev, const std::string& path) {
  scoped_env isolate("FPYGA_EMU_ISOLATE", "1");
  return fpyga::overlay(dev, path);
}

fpyga::device emu() {
  return fpyga::device::open("emu");
}

void fill(fpyga::buffer& b, unsigned base) {
  auto s = b.as<unsigned>();
  std::iota(s.begin(), s.end(), base);
  b.sync_to_device();
}

/// The pid of the process whoami runs in, and its call count there.
std::pair<int, int> whoami(const fpyga::overlay& ol, fpyga::buffer& out) {
  ol.kernel("whoami").call(out);
  out.sync_from_device();
  return {out.as<int>()[0], out.as<int>()[1]};
}

/// The message of the error `f` throws (fails the test if it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const fpyga::error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

bool process_exists(int pid) {
  return ::kill(pid, 0) == 0;
}

TEST(emu_isolated, kernels_run_in_a_helper_process_that_shares_device_memory) {
  auto dev = emu();
  auto ol = load_isolated(dev, kernels_xclbin());
  fpyga::buffer a(dev, 4096), b(dev, 4096), c(dev, 4096), who(dev, 8);
  const auto [pid, calls] = whoami(ol, who);
  EXPECT_NE(pid, ::getpid());
  EXPECT_TRUE(process_exists(pid));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(whoami(ol, who), std::make_pair(pid, 2));  // the same helper serves the next run
  fill(a, 1);
  fill(b, 1000);
  ol.kernel("vadd").call(a, b, c, 1024);
  c.sync_from_device();
  for (unsigned i = 0; i < 1024; ++i)
    ASSERT_EQ(c.as<unsigned>()[i], 1001 + 2 * i) << "element " << i;
  // start() too, from the CU's worker thread.
  fill(a, 5);
  ol.kernel("vadd").start(a, b, c, 1024).wait();
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[1023], 5u + 1000 + 2 * 1023);
  // Unloading ends the helpers.
  ol.release();
  EXPECT_FALSE(process_exists(pid));
}

TEST(emu_isolated, in_process_mode_stays_the_default) {
  auto dev = emu();
  fpyga::overlay ol(dev, kernels_xclbin());
  fpyga::buffer who(dev, 8);
  EXPECT_EQ(whoami(ol, who).first, ::getpid());
}

struct crash_case {
  int how;
  const char* expected;
};

TEST(emu_isolated,
     a_crashing_kernel_fails_its_run_naming_the_kernel_and_the_signal_and_the_device_lives_on) {
  auto dev = emu();
  auto ol = load_isolated(dev, kernels_xclbin());
  fpyga::buffer out(dev, 4096), who(dev, 8);
  const int first = whoami(ol, who).first;
  auto crash = ol.kernel("crash");
  for (const crash_case& c :
       {crash_case{1, "SIGSEGV (invalid memory access at address 0x10, a write)"},
        crash_case{2, "SIGABRT"}, crash_case{3, "called exit(3)"}, crash_case{4, "SIGILL"}}) {
    SCOPED_TRACE(c.expected);
    const std::string m = error_of([&] { crash.call(out, c.how); });
    EXPECT_NE(m.find("kernel 'crash' (compute unit 'crash_1')"), std::string::npos) << m;
    EXPECT_NE(m.find(c.expected), std::string::npos) << m;
    // The same through start(): the run fails with the message.
    fpyga::run r = crash.start(out, c.how);
    const std::string w = fpyga::test::wait_error(r);
    EXPECT_NE(w.find(c.expected), std::string::npos) << w;
    // The CU takes the next run in a new process; the others never noticed.
    out.as<int>()[0] = 0;
    out.sync_to_device();
    crash.call(out, 0);
    out.sync_from_device();
    EXPECT_EQ(out.as<int>()[0], 42);
  }
  EXPECT_EQ(whoami(ol, who).first, first);  // whoami's helper is another process, still there
  ol.release();
}

TEST(emu_isolated, a_helper_killed_while_idle_is_replaced_at_the_next_run) {
  auto dev = emu();
  auto ol = load_isolated(dev, kernels_xclbin());
  fpyga::buffer who(dev, 8);
  const int first = whoami(ol, who).first;
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (::kill(first, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    // A zombie until emu reaps it: wait until the socket says it ended.
    int status;
    if (::waitpid(first, &status, WNOHANG) != 0) break;
    std::this_thread::sleep_for(1ms);
  }
  const auto [pid, calls] = whoami(ol, who);
  EXPECT_NE(pid, first);
  EXPECT_EQ(calls, 1);  // a fresh process: the kernel's statics start over, as after a reset
}

TEST(emu_isolated, a_kernel_that_never_ends_times_out_while_the_host_and_other_kernels_go_on) {
  auto dev = emu();
  auto ol = load_isolated(dev, kernels_xclbin());
  fpyga::buffer flag(dev, 4), out(dev, 4), a(dev, 4096), b(dev, 4096), c(dev, 4096);
  fpyga::run r = ol.kernel("spin").start(flag, out);
  // The kernel says it runs: the host's sync reads what the helper wrote (shared memory).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    out.sync_from_device();
  } while (out.as<int>()[0] != 7 && std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(out.as<int>()[0], 7);
  EXPECT_EQ(r.wait(200ms), fpyga::run_state::running);
  fill(a, 1);
  fill(b, 1000);
  ol.kernel("vadd").call(a, b, c, 1024);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[0], 1001u);
  EXPECT_EQ(r.wait(100ms), fpyga::run_state::running);
  // Unloading is refused while it runs, as in-process.
  EXPECT_NE(error_of([&] { ol.release(); }).find("still in flight"), std::string::npos);
  flag.as<int>()[0] = 1;
  flag.sync_to_device();
  EXPECT_EQ(r.wait(10s), fpyga::run_state::completed);
  out.sync_from_device();
  EXPECT_EQ(out.as<int>()[0], 8);
  ol.release();
}

TEST(emu_isolated, freed_device_memory_reads_as_zero_when_handed_out_again) {
  auto dev = emu();
  auto ol = load_isolated(dev, kernels_xclbin());
  std::uint64_t address;
  {
    fpyga::buffer a(dev, 4096), b(dev, 4096), c(dev, 4096);
    fill(a, 1);
    fill(b, 1);
    ol.kernel("vadd").call(a, b, c, 1024);
    address = c.device_address();
  }
  fpyga::buffer x(dev, 4096), y(dev, 4096), z(dev, 4096);
  ASSERT_EQ(z.device_address(), address);
  z.sync_from_device();
  for (unsigned i = 0; i < 1024; ++i) ASSERT_EQ(z.as<unsigned>()[i], 0u) << "element " << i;
}

TEST(emu_isolated, running_off_a_bank_or_out_of_a_checked_buffer_fails_as_in_process) {
  auto dev = emu();
  {
    auto ol = load_isolated(dev, kernels_xclbin());
    fpyga::buffer a(dev, 4096), b(dev, 4096), c(dev, (1 << 20) - 8192);
    const std::string m = error_of([&] { ol.kernel("vadd").call(a, b, c, (1 << 20) / 4 + 16); });
    EXPECT_NE(m.find("kernel 'vadd'"), std::string::npos) << m;
    EXPECT_NE(m.find("outside bank 'bank0'"), std::string::npos) << m;
  }
  scoped_env check("FPYGA_EMU_CHECK_BOUNDS", "1");
  auto ol = load_isolated(dev, kernels_xclbin());
  fpyga::buffer a(dev, 4096), b(dev, 4096), c(dev, 400);
  fill(a, 1);
  fill(b, 1000);
  const std::string m = error_of([&] { ol.kernel("vadd").call(a, b, c, 116); });
  EXPECT_NE(m.find("argument 2 ('out_r'"), std::string::npos) << m;
  EXPECT_NE(m.find("write"), std::string::npos) << m;
  EXPECT_NE(m.find("byte offset 448"), std::string::npos) << m;
  // In bounds, the guard pages are back where the helper left them: the next run works.
  ol.kernel("vadd").call(a, b, c, 100);
  c.sync_from_device();
  EXPECT_EQ(c.as<unsigned>()[99], 1u + 1000 + 2 * 99);
}

/// The same run in-process and isolated: the outputs are byte for byte the same.
template <class Run>
void expect_same_in_both_modes(const std::filesystem::path& path, Run run) {
  auto dev = emu();
  std::vector<std::byte> in_process, isolated;
  {
    fpyga::overlay ol(dev, path.string());
    in_process = run(dev, ol);
  }
  {
    auto ol = load_isolated(dev, path.string());
    isolated = run(dev, ol);
  }
  ASSERT_FALSE(in_process.empty());
  EXPECT_EQ(in_process, isolated);
}

std::vector<std::byte> bytes_of(const fpyga::buffer& b) {
  auto s = b.as<std::byte>();
  return {s.begin(), s.end()};
}

TEST(emu_isolated, built_vadd_gives_the_results_of_in_process_mode) {
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "vadd.xclbin");
  expect_same_in_both_modes(path, [](const fpyga::device& dev, const fpyga::overlay& ol) {
    fpyga::buffer a(dev, 1 << 16), b(dev, 1 << 16), c(dev, 1 << 16);
    auto x = a.as<unsigned>(), y = b.as<unsigned>();
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = static_cast<unsigned>(i * 2654435761u);
      y[i] = static_cast<unsigned>(~i * 40503u);
    }
    a.sync_to_device();
    b.sync_to_device();
    ol.kernel("vadd").call(a, b, c, static_cast<int>(x.size()));
    c.sync_from_device();
    return bytes_of(c);
  });
}

TEST(emu_isolated, built_mlp_gives_the_results_of_in_process_mode) {
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "mlp.xclbin");
  expect_same_in_both_modes(path, [](const fpyga::device& dev, const fpyga::overlay& ol) {
    constexpr int samples = 64, n_in = 27;
    fpyga::buffer in(dev, samples * n_in * 2), out(dev, samples * 2), one(dev, 2);
    auto x = in.as<std::int16_t>();
    for (int i = 0; i < samples * n_in; ++i)
      x[i] = static_cast<std::int16_t>((i * 7919) % 6000 - 3000);
    in.sync_to_device();
    ol.kernel("mlp_batch").call(in, out, samples);
    out.sync_from_device();
    auto result = bytes_of(out);
    for (int s = 0; s < 4; ++s) {  // the one-sample kernel, at an offset into the input
      ol.kernel("mlp").call(fpyga::arg_value(in, s * n_in * 2), one);
      one.sync_from_device();
      auto b = bytes_of(one);
      result.insert(result.end(), b.begin(), b.end());
    }
    int nonzero = 0;
    for (int s = 0; s < samples; ++s) nonzero += out.as<std::int16_t>()[s] != 0;
    EXPECT_GT(nonzero, 0);  // the comparison is not between zeros
    return result;
  });
}

TEST(emu_isolated, a_forked_child_is_refused_runs_with_a_clear_error) {
  auto dev = emu();
  auto ol = load_isolated(dev, kernels_xclbin());
  fpyga::buffer who(dev, 8);
  whoami(ol, who);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 1;
    try {
      ol.kernel("whoami").call(who);
    } catch (const fpyga::error& e) {
      code = std::string(e.what()).find("forked") != std::string::npos ? 0 : 2;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: the child's run was not refused; 2: not with the fork named";
  // The parent's helper is untouched.
  EXPECT_EQ(whoami(ol, who).second, 2);
}

TEST(emu_isolated, a_kernel_library_that_crashes_as_it_loads_fails_the_load_and_the_host_lives_on) {
  const char* source = R"(
static int* volatile target = reinterpret_cast<int*>(16);
__attribute__((constructor)) static void boom() { *target = 1; }
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
)";
  const std::string path = pack_xclbin(
      "emu_isolated_boom",
      fpyga::test::vadd_json(
          R"([{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 1048576}])",
          R"([{"name": "vadd_1", "base_address": 0, "control": "ap_ctrl_hs",
                                  "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}}])"),
      compile_so("emu_isolated_boom", source));
  auto dev = emu();
  const std::string m = error_of([&] { load_isolated(dev, path); });
  EXPECT_NE(m.find("kernel 'vadd' (compute unit 'vadd_1')"), std::string::npos) << m;
  EXPECT_NE(m.find("could not start: loading the kernel .so crashed it: SIGSEGV"),
            std::string::npos)
      << m;
  // The device loads and runs the next xclbin.
  auto ol = load_isolated(dev, kernels_xclbin());
  fpyga::buffer out(dev, 4096);
  ol.kernel("crash").call(out, 0);
  out.sync_from_device();
  EXPECT_EQ(out.as<int>()[0], 42);
}

TEST(emu_isolated, a_kernel_missing_from_the_library_fails_the_load_naming_it) {
  const std::string path = pack_xclbin(
      "emu_isolated_missing",
      fpyga::test::vadd_json(
          R"([{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 1048576}])",
          R"([{"name": "vmissing_1", "base_address": 0, "control": "ap_ctrl_hs",
                                  "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}}])",
          "vmissing"),
      kernels_so());
  auto dev = emu();
  const std::string m = error_of([&] { load_isolated(dev, path); });
  EXPECT_NE(m.find("the kernel .so has no function 'vmissing'"), std::string::npos) << m;
}

TEST(emu_isolated, stream_designs_are_refused_naming_the_kernel_and_argument) {
  // producer -> consumer over the kernel-to-kernel stream dc_0.
  const std::string stream = R"("type": "hls::stream<ap_axiu<32, 0, 0, 0>>&", "kind": "stream")";
  const std::string json = R"({"mode": "sw_emu",
    "memories": [{"tag": "bank0", "type": "ddr4", "size_bytes": 1048576},
                 {"tag": "dc_0", "type": "streaming_connection", "used": true, "size_bytes": 0, "base_address": 0}],
    "kernels": [
      {"name": "producer", "args": [{"name": "in", "type": "int const *", "kind": "global"},
                                    {"name": "out", )" +
                           stream + R"(, "direction": "output"}],
       "instances": [{"name": "producer_1", "connections": {"in": "bank0", "out": "dc_0"}}]},
      {"name": "consumer", "args": [{"name": "in", )" +
                           stream + R"(, "direction": "input"},
                                    {"name": "out", "type": "int *", "kind": "global"}],
       "instances": [{"name": "consumer_1", "connections": {"in": "dc_0", "out": "bank0"}}]}]})";
  const std::string path = pack_xclbin("emu_isolated_streams", json, kernels_so());
  auto dev = emu();
  try {
    load_isolated(dev, path);
    ADD_FAILURE() << "a stream design loaded in isolated mode";
  } catch (const fpyga::not_supported_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("FPYGA_EMU_ISOLATE=1 cannot run"), std::string::npos) << m;
    EXPECT_NE(m.find("of kernel 'producer' is an AXI stream"), std::string::npos) << m;
  }
}

}  // namespace
