// What PYNQ users on Alveo/F1 rely on at the device level (issue 13): old F1 images whose
// IP_LAYOUT names compute units by their kernel only load on XRT and emu and are named as PYNQ
// names them; the device list starts with the default device and puts devices that load xclbins
// first; sensors, clocks and memory use say what they are (nothing made up) on emu and on XRT's
// noop shim; a load that fails on XRT leaves the old overlay fully released, never half.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "backends/xrt/xrt_backend.hpp"
#include "core_state.hpp"
#include "fpyga/device_info.hpp"
#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"
#include "test_support.hpp"

namespace {

const bool environment_ready = fpyga::test::use_xrt_noop(2);

namespace fs = std::filesystem;
using fpyga::test::compile_so;
using fpyga::test::old_f1_image;
using fpyga::test::pack_xclbin;
using fpyga::test::small_vadd_xclbin;
using fpyga::test::vadd_json;
using fpyga::test::vadd_source;

/// A description with the F1 image's clocks added.
std::string with_clocks(std::string json) {
  const std::string clocks =
      R"("clocks": [{"name": "DATA_CLK", "frequency_mhz": 250, "type": "data"},
                                          {"name": "KERNEL_CLK", "frequency_mhz": 500, "type": "kernel"}],)";
  json.insert(json.find('{') + 1, clocks);
  return json;
}

/// vadd for emu as an old image: IP_LAYOUT says "vadd", the instances vadd_1 (and vadd_2).
std::string old_style_vadd(unsigned cus) {
  static std::string paths[3];
  std::string& path = paths[cus];
  if (path.empty()) {
    std::string memories =
        R"([{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 1048576})";
    std::string instances =
        R"([{"name": "vadd_1", "ip_layout_name": "vadd", "base_address": 25165824,
                                 "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}})";
    if (cus == 2) {
      memories +=
          R"(, {"tag": "bank1", "type": "ddr4", "used": true, "base_address": 17179869184, "size_bytes": 1048576})";
      instances += R"(, {"name": "vadd_2", "ip_layout_name": "vadd", "base_address": 25231360,
                        "connections": {"in1": "bank1", "in2": "bank1", "out_r": "bank1"}})";
    }
    path = pack_xclbin("old_vadd_" + std::to_string(cus),
                       with_clocks(vadd_json(memories + "]", instances + "]")),
                       compile_so("vadd", vadd_source));
  }
  return path;
}

fs::path aws_xclbin() {
  return fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin";
}

/// in1 + in2 on `k` (vadd's signature), checked.
void check_vadd(const fpyga::kernel& k, const fpyga::device& dev) {
  fpyga::buffer a(k, 0, 64 * 4), b(k, 1, 64 * 4), c(k, 2, 64 * 4);
  for (unsigned i = 0; i < 64; ++i) {
    a.as<unsigned>()[i] = i;
    b.as<unsigned>()[i] = 1000 * i;
  }
  a.sync_to_device();
  b.sync_to_device();
  k.call(a, b, c, 64);
  c.sync_from_device();
  for (unsigned i = 0; i < 64; ++i)
    ASSERT_EQ(c.as<unsigned>()[i], 1001 * i) << dev.spec() << " element " << i;
}

// ---------------------------------------------------------------------------------------------
// Old F1 images

TEST(F1Images, PackWritesTheKernelOnlyNameAndTheReaderNamesTheCuByItsInstance) {
  ASSERT_TRUE(environment_ready);
  const auto x = fpyga::xclbin::read(old_f1_image());
  ASSERT_EQ(x.ips.size(), 1u);
  EXPECT_EQ(x.ips[0].name, "vector_add");  // as SDAccel 2018 wrote it
  EXPECT_EQ(x.kernels.at(0).instances.at(0).name, "vector_add_1");
  EXPECT_TRUE(x.has_bare_cu_names());
  EXPECT_EQ(x.cu_instance(x.ips[0]), "vector_add_1");
  const auto full = x.with_full_cu_names();
  EXPECT_EQ(full.ips[0].name, "vector_add:vector_add_1");
  EXPECT_FALSE(full.has_bare_cu_names());
  EXPECT_EQ(x.agfi().value_or(""), "agfi-0123456789abcdef0");
  const std::string json = x.to_json();
  EXPECT_NE(json.find(R"("name": "vector_add_1")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("ip_layout_name": "vector_add")"), std::string::npos) << json;
}

TEST(F1Images, TwoKernelOnlyNamesAreTheInstancesAtTheirBaseAddresses) {
  const auto x = fpyga::xclbin::read(old_style_vadd(2));
  ASSERT_EQ(x.ips.size(), 2u);
  EXPECT_EQ(x.ips[0].name, "vadd");
  EXPECT_EQ(x.ips[1].name, "vadd");
  EXPECT_EQ(x.cu_instance(x.ips[0]), "vadd_1");
  EXPECT_EQ(x.cu_instance(x.ips[1]), "vadd_2");
}

TEST(F1Images, TheRealAwsxclbinAlreadyNamesKernelAndInstance) {
  FPYGA_REQUIRE_FILE(path, aws_xclbin());
  const auto x = fpyga::xclbin::read(path.string());
  ASSERT_EQ(x.ips.size(), 1u);
  EXPECT_EQ(x.ips[0].name, "vector_add:vector_add_1");
  EXPECT_FALSE(x.has_bare_cu_names());
}

TEST(F1Images, OldImageLoadsOnXrtAndNamesItsCuAsPynqDoes) {
  auto dev = fpyga::device::open("xrt:0");
  fpyga::overlay ol(dev, old_f1_image());
  ASSERT_TRUE(ol.loaded());
  auto k = ol.kernel("vector_add");
  EXPECT_EQ(k.compute_units(), std::vector<std::string>{"vector_add_1"});
  // By instance and by kernel:instance, as PYNQ's ip_dict key and cu_name say.
  auto by_instance = ol.kernel("vector_add_1");
  auto by_full = ol.kernel("vector_add:vector_add_1");
  EXPECT_EQ(by_full.compute_units(), std::vector<std::string>{"vector_add_1"});
  // The whole flow reaches XRT: buffers in the connected bank, a call and a start that complete.
  fpyga::buffer c(by_instance, 0, 4096), a(by_instance, 1, 4096), b(by_instance, 2, 4096);
  EXPECT_EQ(c.memory().tag(), "bank0");
  a.sync_to_device();
  b.sync_to_device();
  by_instance.call(c, a, b, 1024);
  auto r = k.start(c, a, b, 1024);
  r.wait();
  EXPECT_EQ(r.state(), fpyga::run_state::completed);
  c.sync_from_device();
}

TEST(F1Images, OldStyleImageComputesOnEmu) {
  auto dev = fpyga::device::open("emu:0");
  fpyga::overlay one(dev, old_style_vadd(1));
  EXPECT_EQ(one.kernel("vadd").compute_units(), std::vector<std::string>{"vadd_1"});
  check_vadd(one.kernel("vadd_1"), dev);
  fpyga::overlay two(dev, old_style_vadd(2));
  EXPECT_EQ(two.kernel("vadd").compute_units(), (std::vector<std::string>{"vadd_1", "vadd_2"}));
  check_vadd(two.kernel("vadd_1"), dev);
  check_vadd(two.kernel("vadd:vadd_2"), dev);
}

TEST(F1Images, OldStyleImageWithTwoCusLoadsOnXrt) {
  auto dev = fpyga::device::open("xrt:1");
  fpyga::overlay ol(dev, old_style_vadd(2));
  auto k = ol.kernel("vadd_2");
  fpyga::buffer a(k, 0, 4096), b(k, 1, 4096), c(k, 2, 4096);
  EXPECT_EQ(a.memory().tag(), "bank1");
  k.call(a, b, c, 16);
}

// ---------------------------------------------------------------------------------------------
// A failed load on XRT (issue 18 item 13): the card holds one image, so the old overlay is
// released before the new one is programmed; a failure leaves it fully released, never an
// overlay that says "not loaded" while its kernels, buffers or the device still hold it.

TEST(XrtFailedLoad, LeavesTheOldOverlayFullyReleasedAndTheDeviceUsable) {
  auto dev = fpyga::device::open("xrt:0");
  fpyga::overlay old(dev, old_f1_image());
  auto k = old.kernel("vector_add_1");
  fpyga::buffer c(k, 0, 4096), a(k, 1, 4096), b(k, 2, 4096);
  k.call(c, a, b, 16);
  // An OpenCL C source is refused by XRT's backend, after the core released the old image.
  const auto cl = fs::path(FPYGA_SOURCE_DIR_DEFAULT) / "kernels" / "opencl" / "vadd.cl";
  FPYGA_REQUIRE_FILE(source, cl);
  EXPECT_THROW(fpyga::overlay(dev, source.string()), fpyga::value_error);
  EXPECT_FALSE(old.loaded());
  EXPECT_EQ(dev.impl()->current, nullptr);
  EXPECT_TRUE(dev.memories().empty());
  EXPECT_THROW(k.call(c, a, b, 16), fpyga::error);
  EXPECT_THROW(c.sync_to_device(), fpyga::error);
  EXPECT_THROW(fpyga::usage(old.memory("bank0")), fpyga::error);
  // XRT let the old image go: its CU contexts are closed, so the same image loads again.
  auto* program = dynamic_cast<fpyga::backend::xrtb::xrt_program*>(old.state()->program.get());
  ASSERT_NE(program, nullptr);
  EXPECT_TRUE(program->released);
  EXPECT_TRUE(program->live_kernels().empty());
  fpyga::overlay again(dev, old_f1_image());
  auto k2 = again.kernel("vector_add_1");
  fpyga::buffer c2(k2, 0, 4096), a2(k2, 1, 4096), b2(k2, 2, 4096);
  k2.call(c2, a2, b2, 16);
}

// ---------------------------------------------------------------------------------------------
// Device order

TEST(DeviceOrder, DefaultFirstThenDevicesThatLoadXclbins) {
  const auto all = fpyga::devices();
  ASSERT_GE(all.size(), 3u);
  EXPECT_EQ(all.front(), fpyga::device::open());
  EXPECT_EQ(all.front().spec(), "xrt:0");
  EXPECT_EQ(all[1].spec(), "xrt:1");
  bool seen_source_only = false;
  bool seen_emu = false;
  for (const auto& d : all) {
    if (!fpyga::loads_xclbin(d)) {
      seen_source_only = true;
      EXPECT_EQ(d.backend(), "opencl") << d.spec();
    } else {
      EXPECT_FALSE(seen_source_only)
          << d.spec() << " loads xclbins but comes after a device that does not";
    }
    seen_emu |= d.backend() == "emu";
    if (d.backend() == "emu") EXPECT_TRUE(fpyga::loads_xclbin(d));
  }
  EXPECT_TRUE(seen_emu);
}

TEST(DeviceOrder, TheDeviceFpygaDeviceNamesComesFirst) {
  setenv("FPYGA_DEVICE", "emu:0", 1);
  const auto all = fpyga::devices();
  unsetenv("FPYGA_DEVICE");
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().spec(), "emu:0");
  EXPECT_EQ(std::count(all.begin(), all.end(), all.front()), 1);
  EXPECT_EQ(all.size(), fpyga::devices().size());
}

// ---------------------------------------------------------------------------------------------
// Sensors, clocks, memory use

TEST(DeviceInfo, XrtNoopMeasuresNothingAndSaysWhy) {
  auto dev = fpyga::device::open("xrt:0");
  const auto s = fpyga::read_sensors(dev);
  EXPECT_EQ(s.source, "");
  EXPECT_FALSE(s.power_watts.has_value());
  EXPECT_TRUE(s.rails.empty());
  EXPECT_TRUE(s.temperatures.empty());
  EXPECT_NE(s.note.find("XRT"), std::string::npos) << s.note;
  EXPECT_NE(s.note.find("noop"), std::string::npos) << s.note;
  EXPECT_FALSE(fpyga::max_clock_frequency_mhz(dev).has_value());
}

// What a card's XRT 2.13 writes (sensor.cpp, info_memory.cpp: boost property-tree JSON, every
// value a string), with this test's own values: read as given, absent sensors left out.
TEST(DeviceInfo, XrtCardReportsAreReadAsGiven) {
  namespace xrtb = fpyga::backend::xrtb;
  const std::string electrical =
      R"({"power_rails": [)"
      R"({"id": "12v_pex", "description": "12 Volts PCI Express",)"
      R"( "voltage": {"volts": "12.112", "is_present": "true"},)"
      R"( "current": {"amps": "1.500", "is_present": "true"}},)"
      R"({"id": "vccint", "description": "Internal FPGA Vcc",)"
      R"( "voltage": {"volts": "0.850", "is_present": "true"},)"
      R"j( "current": {"error_msg": "No such query request (92)", "amps": "0.000",)j"
      R"(             "is_present": "false"}},)"
      R"({"id": "12v_aux", "description": "12 Volts Auxillary",)"
      R"( "voltage": {"volts": "0.000", "is_present": "false"},)"
      R"( "current": {"amps": "0.000", "is_present": "false"}}],)"
      R"( "power_consumption_max_watts": "225", "power_consumption_watts": "23.456789",)"
      R"( "power_consumption_warning": "false"})";
  const std::string thermal =
      R"({"thermals": [)"
      R"({"location_id": "fpga0", "description": "FPGA", "temp_C": "51", "is_present": "true"},)"
      R"({"location_id": "pcb_top_front", "description": "PCB Top Front", "temp_C": "0",)"
      R"( "is_present": "false"}]})";
  const auto s = xrtb::sensors_from_xrt_info(electrical, thermal);
  EXPECT_EQ(s.source, "xrt");
  ASSERT_TRUE(s.power_watts.has_value());
  EXPECT_DOUBLE_EQ(*s.power_watts, 23.456789);
  ASSERT_EQ(s.rails.size(), 2u);  // 12v_aux measured nothing
  EXPECT_EQ(s.rails[0].name, "12v_pex");
  EXPECT_EQ(s.rails[0].description, "12 Volts PCI Express");
  EXPECT_DOUBLE_EQ(s.rails[0].volts.value_or(-1), 12.112);
  EXPECT_DOUBLE_EQ(s.rails[0].amps.value_or(-1), 1.5);
  EXPECT_DOUBLE_EQ(s.rails[0].watts.value_or(-1), 12.112 * 1.5);
  EXPECT_EQ(s.rails[1].name, "vccint");
  EXPECT_DOUBLE_EQ(s.rails[1].volts.value_or(-1), 0.85);
  EXPECT_FALSE(s.rails[1].amps.has_value());
  EXPECT_FALSE(s.rails[1].watts.has_value());
  ASSERT_EQ(s.temperatures.size(), 1u);
  EXPECT_EQ(s.temperatures[0].name, "fpga0");
  EXPECT_DOUBLE_EQ(s.temperatures[0].celsius, 51);
  EXPECT_NE(s.note.find("No such query request (92)"), std::string::npos) << s.note;

  // "N/A" power, nothing present, or not JSON: nothing made up.
  const auto none = xrtb::sensors_from_xrt_info(
      R"({"power_rails": [], "power_consumption_watts": "N\/A"})", "not json");
  EXPECT_EQ(none.source, "");
  EXPECT_FALSE(none.power_watts.has_value());
  EXPECT_TRUE(none.rails.empty() && none.temperatures.empty());
  EXPECT_NE(none.note.find("thermal"), std::string::npos) << none.note;

  const std::string memory =
      R"({"board": {"memory": {"memories": [)"
      R"({"type": "DDR4", "tag": "bank0", "enabled": "true", "base_address": "0x0",)"
      R"( "range_bytes": "0x400000000",)"
      R"( "extended_info": {"usage": {"allocated_bytes": "12288", "buffer_objects_count": "3"}}},)"
      R"({"type": "DDR4", "tag": "bank1", "enabled": "false", "base_address": "0x400000000",)"
      R"( "range_bytes": "0x400000000"}]}}})";
  const auto bank0 = xrtb::usage_from_xrt_info(memory, "bank0");
  ASSERT_TRUE(bank0.has_value());
  EXPECT_EQ(bank0->used_bytes, 12288u);
  EXPECT_EQ(bank0->buffers, 3u);
  EXPECT_EQ(bank0->source, "xrt");
  EXPECT_FALSE(xrtb::usage_from_xrt_info(memory, "bank1").has_value());
  EXPECT_FALSE(xrtb::usage_from_xrt_info(memory, "bank7").has_value());
  const std::string noop_report = "{\"error_msg\": \"No such query request (24)\"}";
  EXPECT_FALSE(xrtb::usage_from_xrt_info(noop_report, "bank0"));
}

TEST(DeviceInfo, EmuHasNoSensors) {
  auto dev = fpyga::device::open("emu:0");
  const auto s = fpyga::read_sensors(dev);
  EXPECT_EQ(s.source, "");
  EXPECT_FALSE(s.power_watts.has_value());
  EXPECT_TRUE(s.rails.empty());
  EXPECT_TRUE(s.temperatures.empty());
  EXPECT_NE(s.note.find("emu"), std::string::npos) << s.note;
  EXPECT_FALSE(fpyga::max_clock_frequency_mhz(dev).has_value());
}

TEST(DeviceInfo, ClocksAreTheLoadedXclbinsTopology) {
  for (const auto& [spec, path] : {std::pair<std::string, std::string>{"xrt:0", old_f1_image()},
                                   {"emu:0", old_style_vadd(1)}}) {
    auto dev = fpyga::device::open(spec);
    const auto x = fpyga::xclbin::read(path);
    fpyga::overlay ol(dev, path);
    const auto c = fpyga::clocks(dev);
    ASSERT_EQ(c.size(), x.clocks.size()) << spec;
    ASSERT_GE(c.size(), 2u);
    for (std::size_t i = 0; i < c.size(); ++i) {
      EXPECT_EQ(c[i].name, x.clocks[i].name);
      EXPECT_EQ(c[i].frequency_mhz, x.clocks[i].frequency_mhz);
      EXPECT_EQ(c[i].type, x.clocks[i].type);
      EXPECT_EQ(c[i].source, "xclbin");
    }
    EXPECT_EQ(c.back().name, "KERNEL_CLK");
    EXPECT_EQ(c.back().frequency_mhz, 500u);
    ol.release();
    EXPECT_TRUE(fpyga::clocks(dev).empty()) << spec << ": nothing loaded, no clocks";
  }
  // An xclbin without CLOCK_FREQ_TOPOLOGY (this one from fpyga's writer without clocks).
  auto emu = fpyga::device::open("emu:0");
  fpyga::overlay plain(emu, small_vadd_xclbin());
  EXPECT_TRUE(fpyga::clocks(emu).empty());
}

TEST(DeviceInfo, EmuMemoryUsageIsTheBankAllocators) {
  if (std::getenv("FPYGA_EMU_CHECK_BOUNDS")) GTEST_SKIP() << "guard pages change the bytes held";
  auto dev = fpyga::device::open("emu:0");
  fpyga::overlay ol(dev, small_vadd_xclbin());
  auto bank = ol.memory("bank0");
  auto u = fpyga::usage(bank);
  EXPECT_EQ(u.source, "emu");
  EXPECT_EQ(u.tag, "bank0");
  EXPECT_EQ(u.used_bytes, 0u);
  EXPECT_EQ(u.buffers, 0u);
  {
    fpyga::buffer a(dev, 5000, bank), b(dev, 4096, bank);
    u = fpyga::usage(bank);
    EXPECT_EQ(u.used_bytes, 8192u + 4096u);  // 4 KiB granules
    EXPECT_EQ(u.buffers, 2u);
    a.free();
    u = fpyga::usage(bank);
    EXPECT_EQ(u.used_bytes, 4096u);
    EXPECT_EQ(u.buffers, 1u);
    const auto all = fpyga::memory_usage_of(dev);
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].buffers, 1u);
  }
  EXPECT_EQ(fpyga::usage(bank).buffers, 0u);
  EXPECT_EQ(fpyga::usage(bank).used_bytes, 0u);
}

TEST(DeviceInfo, XrtNoopMemoryUsageIsFpygasOwnCount) {
  auto dev = fpyga::device::open("xrt:0");
  fpyga::overlay ol(dev, old_f1_image());
  auto bank1 = ol.memory("bank1");
  EXPECT_EQ(fpyga::usage(bank1).source, "fpyga");
  EXPECT_EQ(fpyga::usage(bank1).buffers, 0u);
  {
    fpyga::buffer a(dev, 5000, bank1), b(dev, 100, ol.memory("bank0"));
    const auto u = fpyga::usage(bank1);
    EXPECT_EQ(u.used_bytes, 8192u);  // the bo covers whole pages
    EXPECT_EQ(u.buffers, 1u);
    const auto all = fpyga::memory_usage_of(dev);
    ASSERT_EQ(all.size(), 4u);
    EXPECT_EQ(all[0].buffers, 1u);
    EXPECT_EQ(all[0].used_bytes, 4096u);
    EXPECT_EQ(all[2].buffers, 0u);
    a.free();
    EXPECT_EQ(fpyga::usage(bank1).buffers, 0u);
  }
  EXPECT_EQ(fpyga::usage(ol.memory("bank0")).buffers, 0u);
}

}  // namespace
