// Helpers shared by the GoogleTest suites: where test inputs live, and how a missing one is
// handled (skipped with the reason on a user's machine, a failure under CI).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace fpyga::test {

inline bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

/// Directory of the real xclbin files: $FPYGA_TEST_DATA/xclbin, else ../shared/data/xclbin
/// beside the source tree.
inline std::filesystem::path shared_xclbin_dir() {
  if (const char* d = std::getenv("FPYGA_TEST_DATA")) return std::filesystem::path(d) / "xclbin";
  const char* src = std::getenv("FPYGA_SOURCE_DIR");
  std::filesystem::path root = src ? src : FPYGA_SOURCE_DIR_DEFAULT;
  return root / ".." / "shared" / "data" / "xclbin";
}

/// Directory of the xclbins this build made from kernels/ ($FPYGA_XCLBIN_DIR).
inline std::filesystem::path built_xclbin_dir() {
  const char* d = std::getenv("FPYGA_XCLBIN_DIR");
  return d ? std::filesystem::path(d) : std::filesystem::path(FPYGA_BINARY_DIR_DEFAULT) / "kernels";
}

/// The whole of a file.
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// `s` quoted for the shell (single quotes).
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Points XRT at its noop shim, before anything touches XRT (fpyga discovers devices lazily):
/// `noop_devices` noop devices (0: XRT's default of one; 2 is a multi-card host), XILINX_XRT
/// left for fpyga to set up, no FPYGA_DEVICE. For a namespace-scope initializer in each suite.
inline bool use_xrt_noop(int noop_devices = 0) {
  setenv("XCL_EMULATION_MODE", "noop", 1);
  if (noop_devices > 0) setenv("FPYGA_XRT_NOOP_DEVICES", std::to_string(noop_devices).c_str(), 1);
  unsetenv("XILINX_XRT");
  unsetenv("FPYGA_DEVICE");
  return true;
}

}  // namespace fpyga::test

/// Resolves a test input, or skips the test (fails it under CI=true) naming what is missing.
#define FPYGA_REQUIRE_FILE(var, path_expr)                                                    \
  const std::filesystem::path var = (path_expr);                                              \
  if (!std::filesystem::exists(var)) {                                                        \
    if (::fpyga::test::under_ci()) FAIL() << "test input missing under CI: " << var;          \
    GTEST_SKIP() << "test input not found: " << var                                           \
                 << " (set FPYGA_TEST_DATA to the directory holding xclbin/)";               \
  }
