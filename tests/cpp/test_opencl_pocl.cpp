// The OpenCL backend through fpyga's C++ API on PoCL (any OpenCL platform that builds source):
// the OpenCL C overlays in kernels/opencl (vadd and the MLP) run and their results come back to
// the host; errors carry the OpenCL routine and error name and leave the device usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core_state.hpp"
#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;

const bool environment_ready = [] {
  unsetenv("FPYGA_DEVICE");
  return true;
}();

fs::path source_dir() {
  const char* s = std::getenv("FPYGA_SOURCE_DIR");
  return s ? fs::path(s) : fs::path(FPYGA_SOURCE_DIR_DEFAULT);
}

fs::path cl_source(const char* name) { return source_dir() / "kernels" / "opencl" / name; }

// The first OpenCL device, or a skip (a failure under CI: pocl-opencl-icd is a dependency).
#define REQUIRE_OPENCL_DEVICE(var)                                              \
  fpyga::device var;                                                            \
  for (const auto& d : fpyga::devices())                                        \
    if (d.backend() == "opencl") {                                              \
      var = d;                                                                  \
      break;                                                                    \
    }                                                                           \
  if (!var) {                                                                   \
    if (::fpyga::test::under_ci()) FAIL() << "no OpenCL device (install pocl-opencl-icd)"; \
    GTEST_SKIP() << "no OpenCL device (install pocl-opencl-icd)";               \
  }

TEST(OpenclPocl, DiscoveryAndTheDefaultDevice) {
  ASSERT_TRUE(environment_ready);
  REQUIRE_OPENCL_DEVICE(dev);
  EXPECT_EQ(dev.spec(), "opencl:0");
  EXPECT_EQ(fpyga::device::open("opencl:0"), dev);
  EXPECT_FALSE(dev.name().empty());
  // A device that builds OpenCL C only comes after every device that loads xclbins (emu among
  // them); it never becomes the default device.
  const auto all = fpyga::devices();
  EXPECT_FALSE(fpyga::loads_xclbin(dev));
  const auto emu_at = std::find(all.begin(), all.end(), fpyga::device::open("emu:0"));
  EXPECT_LT(emu_at, std::find(all.begin(), all.end(), dev));
  bool any_xrt = false;
  for (const auto& d : all) any_xrt |= d.backend() == "xrt";
  EXPECT_EQ(fpyga::device::open().backend(), any_xrt ? "xrt" : "emu");
}

TEST(OpenclPocl, VaddSourceOverlayComputes) {
  REQUIRE_OPENCL_DEVICE(dev);
  FPYGA_REQUIRE_FILE(path, cl_source("vadd.cl"));
  fpyga::overlay ol(dev, path.string());
  auto k = ol.kernel("vadd");
  ASSERT_EQ(k.args().size(), 4u);
  EXPECT_EQ(k.args()[0].name, "in1");
  EXPECT_EQ(k.args()[0].kind, fpyga::arg_kind::global);
  EXPECT_EQ(k.args()[0].type, "unsigned int const *");
  EXPECT_EQ(k.args()[2].type, "unsigned int *");
  EXPECT_EQ(k.args()[3].kind, fpyga::arg_kind::scalar);
  EXPECT_EQ(k.args()[3].type, "int");
  ASSERT_EQ(ol.memories().size(), 1u);
  EXPECT_EQ(k.compute_units(), std::vector<std::string>{"vadd_1"});

  constexpr unsigned n = 4096;
  fpyga::buffer a(k, 0, n * 4), b(k, 1, n * 4), c(k, 2, n * 4);
  auto av = a.as<std::uint32_t>(), bv = b.as<std::uint32_t>(), cv = c.as<std::uint32_t>();
  for (unsigned i = 0; i < n; ++i) {
    av[i] = i * 3 + 1;
    bv[i] = 0xFFFF0000u + i;
  }
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, static_cast<int>(n));
  c.sync_from_device();
  for (unsigned i = 0; i < n; ++i) ASSERT_EQ(cv[i], av[i] + bv[i]) << "at " << i;

  // Arguments that change between calls (size) take effect; a shorter call leaves the rest.
  for (unsigned i = 0; i < n; ++i) bv[i] = 1;
  b.sync_to_device();
  k.call(a, b, c, 10);
  c.sync_from_device();
  EXPECT_EQ(cv[0], av[0] + 1);
  EXPECT_EQ(cv[9], av[9] + 1);
  EXPECT_EQ(cv[10], av[10] + 0xFFFF0000u + 10);
}

TEST(OpenclPocl, StartWaitForAndOffsets) {
  REQUIRE_OPENCL_DEVICE(dev);
  FPYGA_REQUIRE_FILE(path, cl_source("vadd.cl"));
  fpyga::overlay ol(dev, path.string());
  auto k = ol.kernel("vadd");
  constexpr unsigned n = 1024;
  fpyga::buffer a(k, 0, n * 4), b(k, 1, n * 4), c(k, 2, n * 4), d(k, 2, n * 8);
  for (unsigned i = 0; i < n; ++i) {
    a.as<std::uint32_t>()[i] = i;
    b.as<std::uint32_t>()[i] = 100;
  }
  a.sync_to_device();
  b.sync_to_device();
  // d = (a + b) + b, the second run waiting for the first; its output at a 4 KiB offset.
  auto r1 = k.start(a, b, c, static_cast<int>(n));
  auto r2 = k.start_args(std::vector<fpyga::arg_value>{c, b, fpyga::arg_value(d, 4096), int(n)},
                         std::vector{r1});
  EXPECT_EQ(r2.wait(std::chrono::milliseconds(10000)), fpyga::run_state::completed);
  r1.wait();
  EXPECT_EQ(r1.state(), fpyga::run_state::completed);
  d.sync_from_device();
  auto dv = d.as<std::uint32_t>();
  for (unsigned i = 0; i < n; ++i) {
    ASSERT_EQ(dv[i], 0u) << "before the offset, at " << i;
    ASSERT_EQ(dv[1024 + i], i + 200) << "at " << i;
  }
  EXPECT_EQ(ol.state() ? 1 : 0, 1);
}

TEST(OpenclPocl, StartWaitingForAFailedRunOfAnotherDeviceEndsInErrorWithoutRunning) {
  REQUIRE_OPENCL_DEVICE(dev);
  FPYGA_REQUIRE_FILE(path, cl_source("vadd.cl"));
  auto emu = fpyga::device::open("emu");
  fpyga::overlay eo(emu, fpyga::test::fail_xclbin());
  fpyga::buffer yes(emu, 4);
  yes.as<int>()[0] = 1;
  yes.sync_to_device();
  auto failed = eo.kernel("fail").start(yes);

  fpyga::overlay ol(dev, path.string());
  auto k = ol.kernel("vadd");
  constexpr unsigned n = 64;
  fpyga::buffer a(k, 0, n * 4), b(k, 1, n * 4), c(k, 2, n * 4);
  for (unsigned i = 0; i < n; ++i) {
    a.as<std::uint32_t>()[i] = i;
    b.as<std::uint32_t>()[i] = 1;
    c.as<std::uint32_t>()[i] = 0xABABABABu;
  }
  a.sync_to_device();
  b.sync_to_device();
  c.sync_to_device();
  auto r = k.start_args(std::vector<fpyga::arg_value>{a, b, c, int(n)}, std::vector{failed});
  ASSERT_EQ(r.wait(std::chrono::milliseconds(10000)), fpyga::run_state::error);
  const std::string why = fpyga::test::wait_error(r);
  EXPECT_NE(why.find("a run it was to wait for failed: the kernel gave up"), std::string::npos)
      << why;
  c.sync_from_device();
  EXPECT_EQ(c.as<std::uint32_t>()[0], 0xABABABABu) << "the kernel ran after its dependency failed";
  EXPECT_EQ(ol.state()->program->runs_in_flight(), 0u);
  k.call(a, b, c, int(n));  // the kernel and the queue are still usable
  c.sync_from_device();
  EXPECT_EQ(c.as<std::uint32_t>()[7], 8u);
}

// The MLP's expected output, computed here the way hls4ml's dense layers compute ap_fixed<16,6>
// with accum_t ap_fixed<32,12> (exact 32-bit sums, floor to 10 fractional bits, 16-bit wrap).
std::vector<std::int16_t> mlp_reference(const nlohmann::json& layers,
                                        const std::vector<std::int16_t>& x) {
  std::vector<std::int16_t> a = x;
  for (const auto& layer : layers) {
    const int n_in = layer["n_in"], n_out = layer["n_out"];
    const auto w = layer["weights_raw"].get<std::vector<int>>();
    const auto b = layer["biases_raw"].get<std::vector<int>>();
    std::vector<std::int16_t> y(n_out);
    for (int j = 0; j < n_out; ++j) {
      std::uint32_t acc = static_cast<std::uint32_t>(b[j]) << 10;
      for (int i = 0; i < n_in; ++i)
        acc += static_cast<std::uint32_t>(static_cast<std::int32_t>(a[i]) * w[i * n_out + j]);
      const auto floored = static_cast<std::int32_t>(acc) >> 10;
      auto v = static_cast<std::int16_t>(static_cast<std::uint16_t>(floored & 0xFFFF));
      if (layer["activation"] == "relu" && v < 0) v = 0;
      y[j] = v;
    }
    a = std::move(y);
  }
  return a;
}

TEST(OpenclPocl, MlpSourceOverlayMatchesTheReference) {
  REQUIRE_OPENCL_DEVICE(dev);
  FPYGA_REQUIRE_FILE(path, cl_source("mlp.cl"));
  FPYGA_REQUIRE_FILE(weights, fpyga::test::built_xclbin_dir() / "mlp_weights.json");
  const auto desc = nlohmann::json::parse(std::ifstream(weights));
  const auto& layers = desc["layers"];
  std::vector<std::int16_t> params;
  for (const auto& layer : layers) {
    for (int v : layer["weights_raw"]) params.push_back(static_cast<std::int16_t>(v));
    for (int v : layer["biases_raw"]) params.push_back(static_cast<std::int16_t>(v));
  }

  fpyga::overlay ol(dev, path.string());
  auto k = ol.kernel("mlp_batch");
  ASSERT_EQ(k.args().size(), 4u);
  EXPECT_EQ(k.args()[0].type, "short const *");
  constexpr int samples = 64;
  fpyga::buffer in(k, 0, samples * 27 * 2), out(k, 1, samples * 2), p(k, 2, params.size() * 2);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> dist(-4 << 10, 4 << 10);  // inputs within +-4
  auto iv = in.as<std::int16_t>();
  for (auto& v : iv) v = static_cast<std::int16_t>(dist(rng));
  std::copy(params.begin(), params.end(), p.as<std::int16_t>().begin());
  in.sync_to_device();
  p.sync_to_device();
  k.call(in, out, p, samples);
  out.sync_from_device();
  int nonzero = 0;
  for (int s = 0; s < samples; ++s) {
    std::vector<std::int16_t> x(iv.begin() + s * 27, iv.begin() + (s + 1) * 27);
    const auto expect = mlp_reference(layers, x);
    ASSERT_EQ(out.as<std::int16_t>()[s], expect[0]) << "sample " << s;
    nonzero += expect[0] != 0;
  }
  EXPECT_GT(nonzero, 0) << "a network that outputs only zeros checks nothing";

  // The single-sample kernel agrees with the batch one.
  auto k1 = ol.kernel("mlp");
  fpyga::buffer one_out(k1, 1, 2);
  k1.call(in, one_out, p);
  one_out.sync_from_device();
  EXPECT_EQ(one_out.as<std::int16_t>()[0], out.as<std::int16_t>()[0]);

  // And with the HLS C++ mlp kernel (Xilinx's ap_fixed, hls4ml's nnet_utils) on emu.
  FPYGA_REQUIRE_FILE(xclbin, fpyga::test::built_xclbin_dir() / "mlp.xclbin");
  fpyga::overlay emu(fpyga::device::open("emu"), xclbin.string());
  auto ke = emu.kernel("mlp_batch");
  fpyga::buffer ein(ke, 0, samples * 27 * 2), eout(ke, 1, samples * 2);
  std::copy(iv.begin(), iv.end(), ein.as<std::int16_t>().begin());
  ein.sync_to_device();
  ke.call(ein, eout, samples);
  eout.sync_from_device();
  for (int s = 0; s < samples; ++s)
    ASSERT_EQ(out.as<std::int16_t>()[s], eout.as<std::int16_t>()[s]) << "sample " << s;
}

TEST(OpenclPocl, ErrorsNameTheRoutineAndLeaveTheDeviceUsable) {
  REQUIRE_OPENCL_DEVICE(dev);
  FPYGA_REQUIRE_FILE(vadd, cl_source("vadd.cl"));
  fpyga::overlay ol(dev, vadd.string());
  const fs::path bad = fs::temp_directory_path() / ("fpyga_bad_" + std::to_string(getpid()) + ".cl");
  std::ofstream(bad) << "__kernel void broken(__global int* x) { x[0] = undeclared_thing; }\n";
  try {
    fpyga::overlay ol(dev, bad.string());
    FAIL() << "a source that does not compile was loaded";
  } catch (const fpyga::backend_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("clBuildProgram"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CL_BUILD_PROGRAM_FAILURE"), std::string::npos) << msg;
    EXPECT_NE(msg.find("undeclared_thing"), std::string::npos) << "build log missing: " << msg;
  }
  fs::remove(bad);

  // An xclbin on a platform that builds source is refused (the real F1 file, where it is here;
  // under CI it must be).
  const fs::path aws = fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin";
  if (fs::exists(aws))
    EXPECT_THROW(fpyga::overlay(dev, aws.string()), fpyga::value_error);
  else if (fpyga::test::under_ci())
    ADD_FAILURE() << "test input missing under CI: " << aws;

  // Neither failed load unloaded the overlay loaded before.
  EXPECT_TRUE(ol.loaded());
  auto k = ol.kernel("vadd");
  fpyga::buffer a(k, 0, 64), b(k, 1, 64), c(k, 2, 64);
  EXPECT_THROW(k.read_register(0x10), fpyga::not_supported_error);
  EXPECT_THROW(a.device_address(), fpyga::not_supported_error);
  EXPECT_THROW(k.call(a, b, c), fpyga::type_error);
  EXPECT_THROW(ol.kernel("vmult"), fpyga::value_error);
  a.as<std::uint32_t>()[0] = 40;
  b.as<std::uint32_t>()[0] = 2;
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, 1);
  c.sync_from_device();
  EXPECT_EQ(c.as<std::uint32_t>()[0], 42u);

  // Unloading: handles of the old overlay raise, the new one works.
  fpyga::overlay again(dev, vadd.string());
  EXPECT_FALSE(ol.loaded());
  EXPECT_THROW(k.call(a, b, c, 1), fpyga::error);
  EXPECT_THROW(a.sync_to_device(), fpyga::error);
}

}  // namespace
