// The OpenCL backend on Xilinx's OpenCL platform (XRT's libxilinxopencl) over XRT's noop shim:
// the xclbin is the program binary, buffers go to their bank through Xilinx's clCreateBuffer
// extension and sync by migration. Debian's XRT does not register its OpenCL library as an ICD,
// so the test registers it for this process (OCL_ICD_VENDORS) before fpyga's first enumeration.
// The noop shim computes nothing: the test checks the flow and the errors, not results.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;

const fs::path xilinx_opencl = "/usr/lib/x86_64-linux-gnu/libxilinxopencl.so.2";

const fs::path icd_dir = [] {
  const fs::path dir = fs::temp_directory_path() / ("fpyga_icd_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "xilinx.icd") << xilinx_opencl.string() << "\n";
  setenv("OCL_ICD_VENDORS", dir.c_str(), 1);
  setenv("XCL_EMULATION_MODE", "noop", 1);
  unsetenv("FPYGA_DEVICE");
  return dir;
}();

struct cleanup {
  ~cleanup() {
    std::error_code ec;
    fs::remove_all(icd_dir, ec);
  }
} remove_icd_dir;

fpyga::device xilinx_device() {
  for (const auto& d : fpyga::devices())
    if (d.backend() == "opencl" && d.name().find("Xilinx") != std::string::npos) return d;
  return {};
}

TEST(OpenclXilinxNoop, XclbinIsTheProgramBinary) {
  FPYGA_REQUIRE_FILE(lib, xilinx_opencl);
  FPYGA_REQUIRE_FILE(path, fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin");
  auto dev = xilinx_device();
  ASSERT_TRUE(dev) << "Xilinx's OpenCL platform was not found through " << icd_dir;
  EXPECT_EQ(dev.spec(), "opencl:0");  // OCL_ICD_VENDORS names only Xilinx's ICD

  fpyga::overlay ol(dev, path.string());
  auto k = ol.kernel("vector_add");
  ASSERT_EQ(k.args().size(), 4u);
  EXPECT_EQ(ol.memories().size(), 4u);  // the xclbin's MEM_TOPOLOGY, not a synthesized bank
  fpyga::buffer c(k, 0, 4096), a(k, 1, 4096), b(k, 2, 4096);
  EXPECT_EQ(a.memory().tag(), "bank0");
  a.sync_to_device();             // whole buffer: clEnqueueMigrateMemObjects
  b.sync_to_device(1024, 1024);   // a range: clEnqueueWriteBuffer
  k.call(c, a, b, 1024);
  auto r = k.start(c, a, b, 16);
  EXPECT_EQ(r.wait(std::chrono::milliseconds(5000)), fpyga::run_state::completed);
  c.sync_from_device();
  c.sync_from_device(64, 128);
  EXPECT_THROW(k.read_register(0x10), fpyga::not_supported_error);

  // Every bank of the xclbin takes buffers.
  for (const auto& m : ol.memories()) {
    fpyga::buffer x(dev, 4096, m);
    x.sync_to_device();
    x.sync_from_device();
  }
}

TEST(OpenclXilinxNoop, ProjectXclbinAndErrors) {
  FPYGA_REQUIRE_FILE(lib, xilinx_opencl);
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "vadd_2cu.xclbin");
  auto dev = xilinx_device();
  ASSERT_TRUE(dev);
  fpyga::overlay ol(dev, path.string());
  auto k2 = ol.kernel("vadd:vadd_2");  // one CU: clCreateKernel("vadd:{vadd_2}")
  auto bank1 = ol.memory("bank1");
  fpyga::buffer a(dev, 4096, bank1), b(dev, 4096, bank1), o(dev, 4096, bank1);
  k2.call(a, b, o, 8);
  auto k = ol.kernel("vadd");
  k.call(a, b, o, 8);
  // A file that is not an xclbin never reaches OpenCL.
  const fs::path junk = icd_dir / "junk.xclbin";
  std::ofstream(junk) << "not an xclbin";
  EXPECT_THROW(fpyga::overlay(dev, junk.string()), fpyga::xclbin_error);
}

// An old F1 image (IP_LAYOUT "vector_add", instance vector_add_1): XRT's OpenCL gets a copy named
// "vector_add:vector_add_1", and the CU is named as PYNQ names it.
TEST(OpenclXilinxNoop, OldF1ImageLoadsWithPynqNames) {
  FPYGA_REQUIRE_FILE(lib, xilinx_opencl);
  auto dev = xilinx_device();
  ASSERT_TRUE(dev);
  fpyga::overlay ol(dev, fpyga::test::old_f1_image());
  auto k = ol.kernel("vector_add_1");
  EXPECT_EQ(ol.kernel("vector_add").compute_units(), std::vector<std::string>{"vector_add_1"});
  fpyga::buffer c(k, 0, 4096), a(k, 1, 4096), b(k, 2, 4096);
  EXPECT_EQ(c.memory().tag(), "bank0");
  k.call(c, a, b, 1024);
  EXPECT_TRUE(fpyga::loads_xclbin(dev));
  EXPECT_EQ(fpyga::usage(c.memory()).source, "fpyga");
  EXPECT_EQ(fpyga::usage(c.memory()).buffers, 3u);
}

}  // namespace
