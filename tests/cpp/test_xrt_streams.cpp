// Stream arguments on the XRT backend (XRT's noop shim): they are not host arguments, so a
// kernel whose output goes to another kernel through a stream connection starts with its host
// arguments only, as on a card (`krnl_stream_vadd_1.start(in1, in2, size)`), and the register
// map XRT receives holds exactly those.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "backends/xrt/xrt_backend.hpp"
#include "core_state.hpp"
#include "fpyga/fpyga.hpp"
#include "test_support.hpp"

namespace {

const bool environment_ready = fpyga::test::use_xrt_noop();

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr std::uint32_t noop_address = 0xdeadbeef;  // every noop bo reports this address

/// krnl_stream_vadd(in1*, in2*, out stream, size) -> krnl_sink(in stream, out*, size).
fs::path stream_vadd_xclbin() {
  const auto desc = R"({
  "memories": [{"tag": "bank0", "type": "ddr4", "size_bytes": 1073741824},
               {"tag": "dc_0", "type": "streaming_connection", "used": true, "size_bytes": 0, "base_address": 0}],
  "kernels": [
    {"name": "krnl_stream_vadd", "args": [
       {"name": "in1", "type": "int const *", "kind": "global"},
       {"name": "in2", "type": "int const *", "kind": "global"},
       {"name": "out", "type": "hls::stream<ap_axiu<32, 0, 0, 0>>&", "kind": "stream", "direction": "output"},
       {"name": "size", "type": "int", "kind": "scalar"}],
     "instances": [{"name": "krnl_stream_vadd_1", "connections": {"in1": "bank0", "in2": "bank0", "out": "dc_0"}}]},
    {"name": "krnl_sink", "args": [
       {"name": "in", "type": "hls::stream<ap_axiu<32, 0, 0, 0>>&", "kind": "stream", "direction": "input"},
       {"name": "out", "type": "int*", "kind": "global"},
       {"name": "size", "type": "int", "kind": "scalar"}],
     "instances": [{"name": "krnl_sink_1", "connections": {"in": "dc_0", "out": "bank0"}}]}],
  "streams": {"schema": "fpyga.streams/1", "connections": [
     {"tag": "dc_0", "source": "krnl_stream_vadd_1.out", "sink": "krnl_sink_1.in", "depth": 8}]}
})";
  const auto path =
      fs::temp_directory_path() / ("fpyga_stream_vadd_" + std::to_string(getpid()) + ".xclbin");
  fpyga::xclbin::from_description(desc).write(path.string());
  return path;
}

/// krnl_stream_vadd -> krnl_inc (free-running, ap_ctrl_none) -> krnl_sink.
fs::path free_running_xclbin() {
  const auto desc = R"({
  "memories": [{"tag": "bank0", "type": "ddr4", "size_bytes": 1073741824},
               {"tag": "dc_0", "type": "streaming_connection", "used": true, "size_bytes": 0, "base_address": 0},
               {"tag": "dc_1", "type": "streaming_connection", "used": true, "size_bytes": 0, "base_address": 0}],
  "kernels": [
    {"name": "krnl_stream_vadd", "args": [
       {"name": "in1", "type": "int const *", "kind": "global"},
       {"name": "in2", "type": "int const *", "kind": "global"},
       {"name": "out", "type": "hls::stream<int>&", "kind": "stream", "direction": "output"},
       {"name": "size", "type": "int", "kind": "scalar"}],
     "instances": [{"name": "krnl_stream_vadd_1", "connections": {"in1": "bank0", "in2": "bank0", "out": "dc_0"}}]},
    {"name": "krnl_inc", "args": [
       {"name": "in", "type": "hls::stream<int>&", "kind": "stream", "direction": "input"},
       {"name": "out", "type": "hls::stream<int>&", "kind": "stream", "direction": "output"}],
     "instances": [{"name": "krnl_inc_1", "control": "ap_ctrl_none", "connections": {"in": "dc_0", "out": "dc_1"}}]},
    {"name": "krnl_sink", "args": [
       {"name": "in", "type": "hls::stream<int>&", "kind": "stream", "direction": "input"},
       {"name": "out", "type": "int*", "kind": "global"},
       {"name": "size", "type": "int", "kind": "scalar"}],
     "instances": [{"name": "krnl_sink_1", "connections": {"in": "dc_1", "out": "bank0"}}]}],
  "streams": {"schema": "fpyga.streams/1", "connections": [
     {"tag": "dc_0", "source": "krnl_stream_vadd_1.out", "sink": "krnl_inc_1.in", "depth": 8},
     {"tag": "dc_1", "source": "krnl_inc_1.out", "sink": "krnl_sink_1.in", "depth": 8}]}
})";
  const auto path =
      fs::temp_directory_path() / ("fpyga_free_running_" + std::to_string(getpid()) + ".xclbin");
  fpyga::xclbin::from_description(desc).write(path.string());
  return path;
}

fpyga::backend::xrtb::xrt_kernel& xkernel(const fpyga::kernel& k) {
  auto* x = dynamic_cast<fpyga::backend::xrtb::xrt_kernel*>(k.state()->impl.get());
  EXPECT_NE(x, nullptr) << "kernel is not an XRT kernel";
  return *x;
}

std::uint32_t word(const std::vector<std::uint32_t>& map, std::uint64_t off) {
  EXPECT_LT(off / 4, map.size());
  return off / 4 < map.size() ? map[off / 4] : 0xFFFFFFFFu;
}

TEST(XrtStreams, StartTakesOnlyTheHostArguments) {
  ASSERT_TRUE(environment_ready);
  const auto path = stream_vadd_xclbin();
  auto dev = fpyga::device::open("xrt:0");
  fpyga::overlay ol(dev, path.string());
  auto k = ol.kernel("krnl_stream_vadd");
  // args() lists every argument and marks the stream.
  ASSERT_EQ(k.args().size(), 4u);
  EXPECT_EQ(k.args()[2].name, "out");
  EXPECT_EQ(k.args()[2].kind, fpyga::arg_kind::stream);
  ASSERT_EQ(k.args()[2].memories.size(), 1u);
  EXPECT_EQ(k.args()[2].memories[0].tag(), "dc_0");
  fpyga::buffer in1(k, 0, 4096), in2(k, 1, 4096);
  auto run = k.start(in1, in2, 1024);
  run.wait();
  auto map = xkernel(k).last_register_map();
  EXPECT_EQ(word(map, k.args()[0].offset), noop_address);
  EXPECT_EQ(word(map, k.args()[1].offset), noop_address);
  EXPECT_EQ(word(map, k.args()[3].offset), 1024u);
  k.call(in1, in2, 7);
  map = xkernel(k).last_register_map();
  EXPECT_EQ(word(map, k.args()[3].offset), 7u);
  fs::remove(path);
}

TEST(XrtStreams, PassingAStreamArgumentIsATypeErrorNamingIt) {
  const auto path = stream_vadd_xclbin();
  auto dev = fpyga::device::open("xrt:0");
  fpyga::overlay ol(dev, path.string());
  auto k = ol.kernel("krnl_stream_vadd");
  fpyga::buffer in1(k, 0, 4096), in2(k, 1, 4096), other(k, 0, 4096);
  try {
    k.call(in1, in2, other, 1024);
    ADD_FAILURE() << "the host passed a stream argument";
  } catch (const fpyga::type_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("argument 'out' is connected to a stream (dc_0)"));
    EXPECT_THAT(e.what(), HasSubstr("int size"));
  }
  try {
    k.call(in1, 1024);
    ADD_FAILURE() << "too few arguments accepted";
  } catch (const fpyga::type_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("takes 3 arguments"));
    EXPECT_THAT(e.what(), HasSubstr("'out' are connected to streams"));
  }
  // The kernel stays usable.
  k.call(in1, in2, 3);
  // A stream is no memory: nothing is allocated in it, and the default bank is the one DDR bank.
  try {
    fpyga::buffer in_stream(dev, 64, ol.memory("dc_0"));
    ADD_FAILURE() << "allocated in a stream";
  } catch (const fpyga::value_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("memory 'dc_0' is a stream (streaming_connection)"));
  }
  EXPECT_EQ(dev.default_memory().tag(), "bank0");
  fs::remove(path);
}

TEST(XrtStreams, AFreeRunningKernelLoadsAndHasNoHandle) {
  // XRT takes the IP_LAYOUT of an ap_ctrl_none CU (base address all ones) and opens no
  // xrt::kernel for it; fpyga lists no handle for it and says why when asked for one.
  const auto path = free_running_xclbin();
  auto dev = fpyga::device::open("xrt:0");
  fpyga::overlay ol(dev, path.string());
  std::vector<std::string> names;
  for (const auto& k : ol.kernels()) names.push_back(k.name());
  EXPECT_EQ(names, (std::vector<std::string>{"krnl_stream_vadd", "krnl_sink"}));
  try {
    (void)ol.kernel("krnl_inc");
    ADD_FAILURE() << "opened a free-running kernel";
  } catch (const fpyga::type_error& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("'krnl_inc' (compute unit 'krnl_inc_1') is free-running (ap_ctrl_none)"));
  }
  auto k = ol.kernel("krnl_stream_vadd");
  fpyga::buffer in1(k, 0, 4096), in2(k, 1, 4096);
  k.start(in1, in2, 16).wait();
  auto sink = ol.kernel("krnl_sink");
  fpyga::buffer out(sink, 1, 4096);
  sink.call(out, 16);
  fs::remove(path);
}

}  // namespace
