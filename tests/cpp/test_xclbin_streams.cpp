// The stream layout of an xclbin (fpyga/stream.hpp): stream ports and kernel-to-kernel
// connections as the toolchain writes them (port modes read_only/write_only, STREAMING_CONNECTION
// memories dc_N, CONNECTIVITY entries for both ends, ap_ctrl_none CUs without control registers,
// fpyga_streams depths), and the designs it refuses, with the names of the ports involved.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "fpyga/error.hpp"
#include "fpyga/stream.hpp"
#include "fpyga/xclbin.hpp"

namespace {

using fpyga::stream_direction;
using fpyga::stream_layout;
using fpyga::xclbin;
using ::testing::HasSubstr;

/// load(in*, out stream, n) -> inc(in stream, out stream), free-running -> store(in stream, out*,
/// n), with the `{...}` placeholders of `patch` replaced.
std::string chain(const std::string& inc_in_type = "hls::stream<ap_axiu<32, 0, 0, 0>>&",
                  const std::string& extra_conn = "", const std::string& depth0 = "4",
                  const std::string& store_in_mode = "input") {
  return R"({
  "mode": "sw_emu",
  "memories": [{"tag": "bank0", "type": "ddr4", "size_bytes": 1073741824},
               {"tag": "dc_0", "type": "streaming_connection", "used": true, "size_bytes": 0, "base_address": 0},
               {"tag": "dc_1", "type": "streaming_connection", "used": true, "size_bytes": 0, "base_address": 0}],
  "kernels": [
    {"name": "krnl_load", "args": [
       {"name": "in", "type": "int const *", "kind": "global"},
       {"name": "out", "type": "hls::stream<ap_axiu<32, 0, 0, 0>>&", "kind": "stream", "direction": "output"},
       {"name": "n", "type": "int", "kind": "scalar"}],
     "instances": [{"name": "krnl_load_1", "connections": {"in": "bank0", "out": "dc_0"}}]},
    {"name": "krnl_inc", "args": [
       {"name": "in", "type": ")" +
         inc_in_type + R"(", "kind": "stream", "direction": "input"},
       {"name": "out", "type": "hls::stream<ap_axiu<32, 0, 0, 0>>&", "kind": "stream", "direction": "output"}],
     "instances": [{"name": "krnl_inc_1", "control": "ap_ctrl_none",
                    "connections": {"in": "dc_0", "out": "dc_1"}}]},
    {"name": "krnl_store", "args": [
       {"name": "in", "type": "hls::stream<ap_axiu<32, 0, 0, 0>>&", "kind": "stream", "direction": ")" +
         store_in_mode + R"("},
       {"name": "out", "type": "int*", "kind": "global"},
       {"name": "n", "type": "int", "kind": "scalar"}],
     "instances": [{"name": "krnl_store_1", "connections": {"in": "dc_1", "out": "bank0")" +
         extra_conn +
         R"(}}]}],
  "streams": {"schema": "fpyga.streams/1", "connections": [
     {"tag": "dc_0", "source": "krnl_load_1.out", "sink": "krnl_inc_1.in", "depth": )" +
         depth0 + R"(},
     {"tag": "dc_1", "source": "krnl_inc_1.out", "sink": "krnl_store_1.in", "depth": 16}]}
})";
}

xclbin round_trip(const std::string& desc) {
  const auto x = xclbin::from_description(desc);
  return xclbin::parse(x.write(), "chain.xclbin");
}

std::string error_of(const std::string& desc) {
  try {
    xclbin::from_description(desc);
  } catch (const fpyga::value_error& e) {
    return e.what();
  }
  return "";
}

TEST(xclbin_streams, a_chain_is_described_as_vitis_describes_it) {
  const auto x = round_trip(chain());
  // MEM_TOPOLOGY: STREAMING_CONNECTION entries tagged dc_0, dc_1.
  ASSERT_EQ(x.memories.size(), 3u);
  EXPECT_EQ(x.memories[1].type, fpyga::memory_type::streaming_connection);
  EXPECT_EQ(x.memories[1].tag, "dc_0");
  EXPECT_TRUE(x.memories[1].used);
  // CONNECTIVITY maps the producer's and the consumer's argument to the same entry.
  EXPECT_EQ(x.memories_of(0, 1), std::vector<unsigned>{1});  // krnl_load_1.out
  EXPECT_EQ(x.memories_of(1, 0), std::vector<unsigned>{1});  // krnl_inc_1.in
  EXPECT_EQ(x.memories_of(1, 1), std::vector<unsigned>{2});  // krnl_inc_1.out
  EXPECT_EQ(x.memories_of(2, 0), std::vector<unsigned>{2});  // krnl_store_1.in
  // EMBEDDED_METADATA: addressQualifier 4, ports read_only / write_only, no control port on the
  // free-running kernel, which carries its protocol as PYNQ reads it.
  const auto* inc = x.find_kernel("krnl_inc");
  ASSERT_NE(inc, nullptr);
  EXPECT_EQ(inc->args[0].address_qualifier, 4u);
  EXPECT_EQ(inc->args[0].kind, fpyga::arg_kind::stream);
  ASSERT_EQ(inc->ports.size(), 2u);
  EXPECT_EQ(inc->ports[0].name, "in");
  EXPECT_EQ(inc->ports[0].mode, "read_only");
  EXPECT_EQ(inc->ports[1].mode, "write_only");
  EXPECT_THAT(x.embedded_metadata, HasSubstr("hwControlProtocol=\"ap_ctrl_none\""));
  EXPECT_THAT(x.embedded_metadata, HasSubstr("portType=\"stream\""));
  const auto* load = x.find_kernel("krnl_load");
  ASSERT_NE(load, nullptr);
  EXPECT_TRUE(std::any_of(load->ports.begin(), load->ports.end(),
                          [](const fpyga::port_info& p) { return p.mode == "slave"; }));
  // IP_LAYOUT: ap_ctrl_none, no interrupt, base address all ones (no control registers).
  ASSERT_EQ(x.ips.size(), 3u);
  EXPECT_EQ(x.ips[1].control, fpyga::control_protocol::ap_ctrl_none);
  EXPECT_FALSE(x.ips[1].interrupt_enabled);
  EXPECT_EQ(x.ips[1].base_address, ~std::uint64_t{0});
  EXPECT_EQ(x.ips[0].control, fpyga::control_protocol::ap_ctrl_hs);
}

TEST(xclbin_streams, the_layout_names_ports_connections_and_depths) {
  const auto layout = stream_layout::of(round_trip(chain()));
  ASSERT_EQ(layout.ports.size(), 4u);
  ASSERT_EQ(layout.connections.size(), 2u);
  const auto* out = layout.find("krnl_load_1", "out");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->direction, stream_direction::output);
  EXPECT_EQ(out->kernel, "krnl_load");
  EXPECT_EQ(out->arg_index, 1u);
  EXPECT_EQ(out->element.data_bits, 32u);
  EXPECT_TRUE(out->element.axis);
  EXPECT_EQ(out->element.bytes(), 4u);
  EXPECT_EQ(out->name(), "krnl_load_1.out");
  const auto& c0 = layout.connections[0];
  EXPECT_EQ(c0.tag, "dc_0");
  EXPECT_EQ(c0.depth, 4u);
  EXPECT_EQ(layout.ports[c0.source].name(), "krnl_load_1.out");
  EXPECT_EQ(layout.ports[c0.sink].name(), "krnl_inc_1.in");
  EXPECT_EQ(layout.connections[1].depth, 16u);
  EXPECT_EQ(out->connection, std::optional<std::size_t>(0));
  EXPECT_EQ(layout.ports_of(1).size(), 2u);
  EXPECT_EQ(layout.find("krnl_load_1", "in"), nullptr);  // a buffer argument is no stream
}

TEST(xclbin_streams, without_fpyga_streams_depths_default) {
  auto x = round_trip(chain());
  std::erase_if(x.other_sections,
                [](const fpyga::raw_section& s) { return s.name == "fpyga_streams"; });
  const auto layout = stream_layout::of(x);
  ASSERT_EQ(layout.connections.size(), 2u);
  EXPECT_EQ(layout.connections[0].depth, stream_layout::default_depth);
  // The element then comes from the argument's type, as Vitis spells it too.
  EXPECT_EQ(layout.ports[0].element.data_bits, 32u);
}

TEST(xclbin_streams, element_types_parse) {
  using fpyga::stream_element;
  auto e = stream_element::parse("stream<ap_axiu<64, 2, 3, 4>, 0>&");
  EXPECT_EQ(e.data_bits, 64u);
  EXPECT_TRUE(e.axis);
  EXPECT_EQ(e.user_bits, 2u);
  EXPECT_EQ(e.id_bits, 3u);
  EXPECT_EQ(e.dest_bits, 4u);
  EXPECT_TRUE(stream_element::parse("hls::stream<ap_axis<32,0,0,0> >&").is_signed);
  e = stream_element::parse("stream<ap_axiu<512,0,0,4>>&");  // spelled without spaces
  EXPECT_EQ(e.data_bits, 512u);
  EXPECT_EQ(e.dest_bits, 4u);
  EXPECT_EQ(e.bytes(), 64u);
  EXPECT_EQ(stream_element::parse("stream<qdma_axis<128, 0, 0, 0>>&").data_bits, 128u);
  e = stream_element::parse("hls::stream<ap_uint<24>>&");
  EXPECT_EQ(e.data_bits, 24u);
  EXPECT_FALSE(e.axis);
  EXPECT_EQ(e.bytes(), 3u);
  EXPECT_EQ(stream_element::parse("hls::stream<float>&").data_bits, 32u);
  EXPECT_EQ(stream_element::parse("hls::stream<struct foo>&").data_bits, 0u);
}

TEST(xclbin_streams, mismatched_widths_are_refused_naming_both_ends) {
  const auto e = error_of(chain("hls::stream<ap_axiu<64, 0, 0, 0>>&"));
  EXPECT_THAT(e, HasSubstr("stream 'dc_0'"));
  EXPECT_THAT(e, HasSubstr("krnl_load_1.out"));
  EXPECT_THAT(e, HasSubstr("krnl_inc_1.in"));
  EXPECT_THAT(e, HasSubstr("64 data bits"));
}

TEST(xclbin_streams, a_depth_of_zero_is_refused) {
  const auto e = error_of(chain("hls::stream<ap_axiu<32, 0, 0, 0>>&", "", "0"));
  EXPECT_THAT(e, HasSubstr("depth 0"));
  EXPECT_THAT(e, HasSubstr("krnl_load_1.out -> krnl_inc_1.in"));
}

TEST(xclbin_streams, two_outputs_on_one_stream_are_refused) {
  // krnl_store's input declared an output: dc_1 then has two producers.
  const auto e = error_of(chain("hls::stream<ap_axiu<32, 0, 0, 0>>&", "", "4", "output"));
  EXPECT_THAT(e, HasSubstr("stream 'dc_1'"));
  EXPECT_THAT(e, HasSubstr("connects two outputs"));
  EXPECT_THAT(e, HasSubstr("krnl_inc_1.out"));
  EXPECT_THAT(e, HasSubstr("krnl_store_1.in"));
}

TEST(xclbin_streams, an_unconnected_stream_is_refused_naming_the_port) {
  auto desc = chain();
  // Drop the consumer's connection to dc_1.
  const std::string conn = R"("connections": {"in": "dc_1", "out": "bank0"})";
  desc.replace(desc.find(conn), conn.size(), R"("connections": {"out": "bank0"})");
  const auto e = error_of(desc);
  EXPECT_THAT(e, HasSubstr("stream argument 'in' of compute unit 'krnl_store_1'"));
  EXPECT_THAT(e, HasSubstr("not connected"));
}

TEST(xclbin_streams, a_stream_port_without_a_direction_is_refused_at_load) {
  // Written without "direction": the port's mode is neither read_only nor write_only.
  auto desc = chain();
  const std::string dir = R"(, "direction": "output"},
       {"name": "n")";
  desc.replace(desc.find(dir), dir.size(), R"(},
       {"name": "n")");
  const auto x = round_trip(desc.substr(0, desc.find(R"(,
  "streams")")) + "\n}");
  try {
    (void)stream_layout::of(x);
    ADD_FAILURE() << "accepted a stream port without a direction";
  } catch (const fpyga::xclbin_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("stream argument 'out' of compute unit 'krnl_load_1'"));
    EXPECT_THAT(e.what(), HasSubstr("read_only (input) or write_only (output)"));
  }
}

TEST(xclbin_streams, fpyga_streams_must_agree_with_connectivity) {
  auto desc = chain();
  const std::string s = R"("source": "krnl_load_1.out")";
  desc.replace(desc.find(s), s.size(), R"("source": "krnl_store_1.in")");
  EXPECT_THAT(error_of(desc), HasSubstr("says stream 'dc_0' joins krnl_store_1.in"));
}

TEST(xclbin_streams, an_xclbin_without_streams_has_an_empty_layout) {
  const auto x = xclbin::from_description(R"({"memories": [{"tag": "bank0"}], "kernels": [
    {"name": "vadd", "args": [{"name": "a", "type": "int*"}, {"name": "n", "type": "int"}]}]})");
  EXPECT_TRUE(stream_layout::of(x).empty());
}

}  // namespace
