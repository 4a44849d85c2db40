// fpyga::nn_model through the XRT backend on XRT's noop shim (Debian's libxrt_noop): the xclbin
// loads on each device, the network description is read, the batch kernel's compute units are
// driven with their buffers (one and two CUs, two devices, the one-sample kernel). The noop shim
// computes nothing, so these tests check that the interface is driven without error, not results.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"
#include "test_support.hpp"

namespace {

// Before anything touches XRT: the noop shim, two devices, XILINX_XRT left for fpyga to set up.
const bool environment_ready = fpyga::test::use_xrt_noop(2);

TEST(XrtNoopNnModel, DrivesTheBatchKernelOnEveryComputeUnit) {
  ASSERT_TRUE(environment_ready);
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "mlp_2cu.xclbin");
  const auto dev = fpyga::device::open("xrt:0");
  fpyga::nn_model m(path.string(), {dev});
  EXPECT_EQ(m.compute_units(), 2u);
  EXPECT_EQ(m.n_inputs(), 27u);
  EXPECT_EQ(m.devices()[0].backend(), "xrt");
  m.set_chunk_samples(16);
  const std::size_t n = 100;
  std::vector<float> x(n * 27, 0.5f), y(n, -1.0f);
  std::size_t last = 0;
  m.predict(x.data(), n, y.data(), [&](std::size_t done) { last = done; });
  EXPECT_EQ(last, n);
  std::vector<std::int16_t> raw(n * 27), raw_out(n);
  m.predict_raw(raw.data(), n, raw_out.data());
  // One sample goes through the one-sample kernel.
  m.predict(x.data(), 1, y.data());
}

TEST(XrtNoopNnModel, TwoDevices) {
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "mlp.xclbin");
  fpyga::nn_model m(path.string(), {fpyga::device::open("xrt:0"), fpyga::device::open("xrt:1")});
  EXPECT_EQ(m.compute_units(), 2u);
  std::vector<double> x(64 * 27, -1.25);
  std::vector<double> y(64);
  m.predict(x.data(), 64, y.data());
}

TEST(XrtNoopNnModel, DrivesTheAxiInterface) {
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "mlp_axi.xclbin");
  fpyga::nn_model m(path.string(), {fpyga::device::open("xrt:0")});
  EXPECT_EQ(m.info().interface, fpyga::network_interface::hls4ml_axi);
  std::vector<float> x(40 * 27, 0.25f), y(40);
  m.set_chunk_samples(16);
  m.predict(x.data(), 40, y.data());
  m.predict(x.data(), 1, y.data());
}

}  // namespace
