// Helpers for the API and emu suites: small kernels compiled with g++ inside the test and packed
// into sw_emu xclbins with fpyga's own writer, and a warning collector.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"
#include "test_support.hpp"

namespace fpyga::test {

/// Xilinx's HLS headers as the kernel toolchain finds them: $XILINX_HLS/include, the hls4ml
/// package in the project's .venv, or $FPYGA_HLS_INCLUDE. Empty when none exists.
inline std::filesystem::path hls_include_dir() {
  namespace fs = std::filesystem;
  if (const char* x = std::getenv("XILINX_HLS"); x && fs::exists(fs::path(x) / "include" / "ap_int.h"))
    return fs::path(x) / "include";
  const char* src = std::getenv("FPYGA_SOURCE_DIR");
  const fs::path root = src ? src : FPYGA_SOURCE_DIR_DEFAULT;
  const fs::path venv = root / ".venv" / "lib";
  if (fs::exists(venv))
    for (const auto& e : fs::directory_iterator(venv)) {
      const fs::path p = e.path() / "site-packages" / "hls4ml" / "templates" / "vivado" / "ap_types";
      if (fs::exists(p / "ap_int.h")) return p;
    }
  if (const char* f = std::getenv("FPYGA_HLS_INCLUDE"); f && fs::exists(fs::path(f) / "ap_int.h")) return f;
  return {};
}

/// A scratch directory for this test process, removed at exit.
inline std::filesystem::path scratch_dir() {
  struct scratch {
    std::filesystem::path dir;
    scratch() : dir(std::filesystem::temp_directory_path() / ("fpyga_test_" + std::to_string(::getpid()))) {
      std::filesystem::create_directories(dir);
    }
    ~scratch() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  };
  static const scratch s;
  return s.dir;
}

/// Compiles `source` into a shared object; returns its bytes. Fails the test on a compile error.
inline std::vector<std::byte> compile_so(const std::string& name, const std::string& source,
                                         bool needs_hls = false) {
  namespace fs = std::filesystem;
  const fs::path dir = scratch_dir();
  const fs::path cpp = dir / (name + ".cpp");
  const fs::path so = dir / (name + ".so");
  std::ofstream(cpp) << source;
  std::string cmd = "g++ -std=c++17 -O2 -shared -fPIC -o '" + so.string() + "' '" + cpp.string() + "'";
  if (needs_hls) cmd += " -I'" + hls_include_dir().string() + "' -Wno-unknown-pragmas";
  cmd += " 2> '" + (dir / (name + ".log")).string() + "'";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(dir / (name + ".log"));
    ADD_FAILURE() << "compiling test kernel " << name << " failed:\n"
                  << std::string(std::istreambuf_iterator<char>(log), {});
    return {};
  }
  std::ifstream in(so, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::byte> out(bytes.size());
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

/// Packs `bitstream` with the JSON description (the `fpyga xclbin pack` format) into
/// <scratch>/<name>.xclbin and returns the path.
inline std::string pack_xclbin(const std::string& name, const std::string& json, std::vector<std::byte> bitstream) {
  const auto path = scratch_dir() / (name + ".xclbin");
  fpyga::xclbin::from_description(json, std::move(bitstream)).write(path.string());
  return path.string();
}

/// Collects fpyga warnings while alive (restores the previous handler after).
class warning_capture {
 public:
  warning_capture() {
    previous_ = fpyga::set_warning_handler([this](std::string_view m) {
      std::lock_guard lock(mutex_);
      messages_.emplace_back(m);
    });
  }
  ~warning_capture() { fpyga::set_warning_handler(previous_); }
  std::vector<std::string> messages() {
    fpyga::flush_warnings();
    std::lock_guard lock(mutex_);
    return messages_;
  }
  void clear() {
    fpyga::flush_warnings();
    std::lock_guard lock(mutex_);
    messages_.clear();
  }

 private:
  fpyga::warning_handler previous_;
  std::mutex mutex_;
  std::vector<std::string> messages_;
};

/// The vadd description (Vitis hello world register layout), with `memories`/`instances` JSON.
inline std::string vadd_json(const std::string& memories, const std::string& instances,
                             const std::string& kernel = "vadd") {
  return R"({"mode": "sw_emu", "platform": "xilinx_aws-vu9p-f1_shell-v04261818_201920_2",
    "memories": )" + memories + R"(,
    "kernels": [{"name": ")" + kernel + R"(", "language": "c++",
      "args": [
        {"name": "in1", "type": "unsigned int const *", "kind": "global", "offset": 16, "size": 8, "port": "M_AXI_GMEM", "host_size": 8},
        {"name": "in2", "type": "unsigned int const *", "kind": "global", "offset": 28, "size": 8, "port": "M_AXI_GMEM", "host_size": 8},
        {"name": "out_r", "type": "unsigned int *", "kind": "global", "offset": 40, "size": 8, "port": "M_AXI_GMEM", "host_size": 8},
        {"name": "size", "type": "int", "kind": "scalar", "offset": 52, "size": 4, "port": "S_AXI_CONTROL", "host_size": 4}],
      "instances": )" + instances + R"(}]})";
}

inline const char* vadd_source = R"(
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
)";

/// vadd with one CU on one 1 MiB bank, built once per process.
inline std::string small_vadd_xclbin() {
  static const std::string path = pack_xclbin(
      "vadd_small",
      vadd_json(R"([{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 1048576}])",
                R"([{"name": "vadd_1", "base_address": 25165824, "control": "ap_ctrl_hs",
                    "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}}])"),
      compile_so("vadd", vadd_source));
  return path;
}

/// vadd with two CUs: vadd_1 on bank0, vadd_2 on bank1 (1 MiB each, distinct address ranges).
inline std::string two_cu_vadd_xclbin() {
  static const std::string path = pack_xclbin(
      "vadd_two_cu",
      vadd_json(R"([{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 1048576},
                   {"tag": "bank1", "type": "ddr4", "used": true, "base_address": 17179869184, "size_bytes": 1048576}])",
                R"([{"name": "vadd_1", "base_address": 25165824, "control": "ap_ctrl_hs",
                    "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}},
                   {"name": "vadd_2", "base_address": 25231360, "control": "ap_ctrl_hs",
                    "connections": {"in1": "bank1", "in2": "bank1", "out_r": "bank1"}}])"),
      compile_so("vadd", vadd_source));
  return path;
}

// An F1 image as SDAccel 2018 wrote them (FACTS.md): IP_LAYOUT's entry reads "vector_add" while
// the metadata's instance is "vector_add_1"; the BITSTREAM is the AWS image id.
inline const char* old_f1_description = R"({
  "mode": "pr", "platform": "xilinx_aws-vu9p-f1-04261818_dynamic_5_0",
  "clocks": [{"name": "clk_main_a0", "frequency_mhz": 250, "type": "system"},
             {"name": "DATA_CLK", "frequency_mhz": 250, "type": "data"},
             {"name": "KERNEL_CLK", "frequency_mhz": 500, "type": "kernel"}],
  "memories": [{"tag": "bank0", "used": true, "base_address": 0},
               {"tag": "bank1", "used": false}, {"tag": "bank2", "used": false},
               {"tag": "bank3", "used": false}],
  "kernels": [{"name": "vector_add", "language": "clc",
    "args": [{"name": "c", "type": "int*"}, {"name": "a", "type": "int*"},
             {"name": "b", "type": "int*"}, {"name": "n_elements", "type": "int"}],
    "instances": [{"name": "vector_add_1", "ip_layout_name": "vector_add", "base_address": 0,
                   "connections": {"c": "bank0", "a": "bank0", "b": "bank0"}}]}]})";

inline std::vector<std::byte> agfi_bitstream() {
  const std::string id = "agfi-0123456789abcdef0";
  std::vector<std::byte> v(id.size());
  std::transform(id.begin(), id.end(), v.begin(), [](char c) { return std::byte(c); });
  return v;
}

/// <scratch>/old_f1.xclbin, packed once per process.
inline std::string old_f1_image() {
  static const std::string path = pack_xclbin("old_f1", old_f1_description, agfi_bitstream());
  return path;
}

/// `hold(flag)`: an emu kernel that runs until the host raises *flag (synced while it runs), so a
/// test can keep a run in flight on purpose. A 30 s cap turns a broken emulator into a failure.
/// `cus` compute units (hold_1, hold_2, ...), one xclbin per count, built once per process.
inline std::string hold_xclbin(unsigned cus = 1) {
  static std::mutex mutex;
  static std::vector<std::string> paths;
  std::lock_guard lock(mutex);
  if (paths.size() < cus) paths.resize(cus);
  std::string& path = paths[cus - 1];
  if (path.empty()) {
    std::string instances;
    for (unsigned c = 1; c <= cus; ++c)
      instances += (c > 1 ? ", " : "") + std::string(R"({"name": "hold_)") + std::to_string(c) +
                   R"(", "base_address": )" + std::to_string((c - 1) * 65536) + "}";
    path = pack_xclbin(
        cus == 1 ? "hold" : "hold_" + std::to_string(cus),
        R"({"mode": "sw_emu", "platform": "test", "kernels": [{"name": "hold", "language": "c++",
        "args": [{"name": "flag", "type": "int const *", "kind": "global", "offset": 16, "size": 8}],
        "instances": [)" +
            instances + "]}]}",
        compile_so("hold", R"(
#include <chrono>
extern "C" void hold(const int* flag) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE) && std::chrono::steady_clock::now() < end) {}
}
)"));
  }
  return path;
}

/// A run of `hold` on emu kept in flight until release() (or the end of the scope): a
/// dependency that has not ended, for tests of runs that wait for others.
class held_run {
 public:
  held_run() : dev_(fpyga::device::open("emu")), ol_(dev_, hold_xclbin()), flag_(dev_, 4) {
    flag_.as<int>()[0] = 0;
    flag_.sync_to_device();
    run_ = ol_.kernel("hold").start(flag_);
  }
  held_run(const held_run&) = delete;
  held_run& operator=(const held_run&) = delete;
  ~held_run() { release(); }
  const fpyga::run& run() const { return run_; }
  /// Lets the run end and waits for it.
  void release() {
    flag_.as<int>()[0] = 1;
    flag_.sync_to_device();
    run_.wait(std::chrono::seconds(30));
  }

 private:
  fpyga::device dev_;
  fpyga::overlay ol_;
  fpyga::buffer flag_;
  fpyga::run run_;
};

/// What run::wait() throws for `r` ("" when it does not throw).
inline std::string wait_error(fpyga::run& r) {
  try {
    r.wait();
  } catch (const fpyga::error& e) {
    return e.what();
  }
  return {};
}

/// An emulated kernel that fails: `fail(flag)` throws (its run ends in error) when *flag != 0.
inline std::string fail_xclbin() {
  static const std::string path = pack_xclbin(
      "fail",
      R"({"mode": "sw_emu", "platform": "test", "kernels": [{"name": "fail", "language": "c++",
      "args": [{"name": "flag", "type": "int const *", "kind": "global", "offset": 16, "size": 8}],
      "instances": [{"name": "fail_1", "base_address": 0}]}]})",
      compile_so("fail", R"(
#include <stdexcept>
extern "C" void fail(const int* flag) {
  if (*flag) throw std::runtime_error("the kernel gave up");
}
)"));
  return path;
}

}  // namespace fpyga::test
