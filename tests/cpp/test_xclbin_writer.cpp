// The writer and the pack description: round trips, determinism, defaults, bad descriptions,
// and the reader's hardening on files the writer made (so it runs without the shared data).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "fpyga/error.hpp"
#include "fpyga/xclbin.hpp"
#include "test_support.hpp"

using fpyga::xclbin;
using testing::HasSubstr;

namespace {

const char* const two_kernels = R"({
  "mode": "sw_emu",
  "platform": "xilinx_aws-vu9p-f1_shell-v04261818_201920_2",
  "uuid": "01234567-89ab-cdef-0123-456789abcdef",
  "clocks": [{"name": "DATA_CLK", "frequency_mhz": 300, "type": "data"},
             {"name": "KERNEL_CLK", "frequency_mhz": 500, "type": "kernel"}],
  "memories": [{"tag": "bank0", "type": "ddr4", "used": true, "base_address": 0, "size_bytes": 17179869184},
               {"tag": "bank1", "type": "ddr4", "used": true, "base_address": 17179869184, "size_bytes": 17179869184},
               {"tag": "HOST[0]", "type": "host", "used": false, "base_address": 0, "size_bytes": 1048576}],
  "kernels": [{
    "name": "vadd", "language": "c++",
    "args": [{"name": "in1", "type": "unsigned int const *", "kind": "global", "offset": 16, "size": 8,
              "port": "M_AXI_GMEM", "host_size": 8},
             {"name": "in2", "type": "unsigned int const *", "kind": "global"},
             {"name": "out_r", "type": "unsigned int*", "kind": "global", "port": "M_AXI_GMEM1"},
             {"name": "size", "type": "int", "kind": "scalar"}],
    "instances": [{"name": "vadd_1", "base_address": 25165824, "control": "ap_ctrl_hs",
                   "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank1"}},
                  {"name": "vadd_2", "base_address": 25231360, "control": "ap_ctrl_chain",
                   "connections": {"in1": "bank1", "in2": "bank1", "out_r": "bank0"}}]
  }, {
    "name": "mlp", "language": "c++",
    "args": [{"name": "x", "type": "ap_fixed<16,6> const *"}, {"name": "y", "type": "ap_fixed<16,6>*"},
             {"name": "n", "type": "unsigned long"}, {"name": "s", "type": "hls::stream<float>&", "kind": "stream"}]
  }]
})";

std::string error_of(std::string_view desc) {
  try {
    xclbin::from_description(desc);
  } catch (const fpyga::value_error& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const std::vector<std::byte>& b) {
  try {
    xclbin::parse(b, "made.xclbin");
  } catch (const fpyga::xclbin_error& e) {
    return e.what();
  }
  return "";
}

std::vector<std::byte> elf_bytes() {
  const char elf[] =
      "\x7f"
      "ELF\x02\x01\x01\x00 pretend shared object";
  return std::vector<std::byte>(reinterpret_cast<const std::byte*>(elf),
                                reinterpret_cast<const std::byte*>(elf) + sizeof elf);
}

}  // namespace

TEST(xclbin_writer, description_round_trip) {
  const auto made = xclbin::from_description(two_kernels, elf_bytes());
  const auto x = xclbin::parse(made.write(), "made.xclbin");
  EXPECT_EQ(x.uuid_string(), "01234567-89ab-cdef-0123-456789abcdef");
  EXPECT_EQ(x.mode, fpyga::xclbin_mode::sw_emu);
  EXPECT_EQ(x.target(), "sw_emu");
  EXPECT_EQ(x.platform_vbnv, "xilinx_aws-vu9p-f1_shell-v04261818_201920_2");
  EXPECT_EQ(x.platform_name(), x.platform_vbnv);
  EXPECT_EQ(x.bitstream, elf_bytes());
  EXPECT_TRUE(x.bitstream_is_elf());
  EXPECT_FALSE(x.agfi());

  ASSERT_EQ(x.clocks.size(), 2u);
  EXPECT_EQ(x.clocks[0].name, "DATA_CLK");
  EXPECT_EQ(x.clocks[0].frequency_mhz, 300);
  EXPECT_EQ(x.clocks[1].type, fpyga::clock_type::kernel);

  ASSERT_EQ(x.memories.size(), 3u);
  EXPECT_EQ(x.memories[1].tag, "bank1");
  EXPECT_EQ(x.memories[1].base_address, 17179869184u);
  EXPECT_EQ(x.memories[1].size_bytes, 17179869184u);
  EXPECT_TRUE(x.memories[1].used);
  EXPECT_EQ(x.memories[2].type, fpyga::memory_type::host);  // PYNQ's parser fails on these
  EXPECT_FALSE(x.memories[2].used);

  ASSERT_EQ(x.kernels.size(), 2u);
  const auto& k = x.kernels[0];
  EXPECT_EQ(k.name, "vadd");
  ASSERT_EQ(k.args.size(), 4u);
  // Defaults: Vitis's register layout (12 bytes per pointer, then scalars), ports, sizes.
  EXPECT_EQ(k.args[0].offset, 0x10u);
  EXPECT_EQ(k.args[1].offset, 0x1Cu);
  EXPECT_EQ(k.args[2].offset, 0x28u);
  EXPECT_EQ(k.args[3].offset, 0x34u);
  EXPECT_EQ(k.args[1].port, "M_AXI_GMEM");
  EXPECT_EQ(k.args[2].port, "M_AXI_GMEM1");
  EXPECT_EQ(k.args[3].port, "S_AXI_CONTROL");
  EXPECT_EQ(k.args[1].size, 8u);
  EXPECT_EQ(k.args[1].host_size, 8u);
  EXPECT_EQ(k.args[3].size, 4u);
  EXPECT_EQ(k.args[3].kind, fpyga::arg_kind::scalar);
  EXPECT_EQ(k.args[3].address_qualifier, 0u);
  EXPECT_EQ(k.args[0].address_qualifier, 1u);
  EXPECT_EQ(k.args[0].type, "unsigned int const *");
  ASSERT_EQ(k.instances.size(), 2u);
  EXPECT_EQ(k.instances[1].base_address, 25231360u);

  const auto& m = x.kernels[1];
  ASSERT_EQ(m.args.size(), 4u);
  EXPECT_EQ(m.args[0].kind, fpyga::arg_kind::global);  // inferred from the pointer type
  EXPECT_EQ(m.args[2].kind, fpyga::arg_kind::scalar);
  EXPECT_EQ(m.args[2].size, 8u);
  EXPECT_EQ(m.args[2].offset, 0x28u);
  EXPECT_EQ(m.args[3].kind, fpyga::arg_kind::stream);
  EXPECT_EQ(m.args[3].address_qualifier, 4u);
  ASSERT_EQ(m.instances.size(), 1u);
  EXPECT_EQ(m.instances[0].name, "mlp_1");

  ASSERT_EQ(x.ips.size(), 3u);
  EXPECT_EQ(x.ips[0].name, "vadd:vadd_1");
  EXPECT_EQ(x.ips[0].base_address, 25165824u);
  EXPECT_EQ(x.ips[1].control, fpyga::control_protocol::ap_ctrl_chain);
  EXPECT_EQ(x.ips[2].name, "mlp:mlp_1");
  EXPECT_GE(x.ips[2].base_address, 25231360u + 0x10000);

  EXPECT_THAT(x.memories_of(0, 0), testing::ElementsAre(0u));
  EXPECT_THAT(x.memories_of(0, 2), testing::ElementsAre(1u));
  EXPECT_THAT(x.memories_of(1, 0), testing::ElementsAre(1u));
  EXPECT_THAT(x.memories_of(1, 2), testing::ElementsAre(0u));
  EXPECT_TRUE(x.memories_of(0, 3).empty());

  EXPECT_TRUE(nlohmann::json::accept(x.build_metadata));
  EXPECT_THAT(x.embedded_metadata, HasSubstr("<project"));

  const auto j = nlohmann::json::parse(x.to_json());
  EXPECT_EQ(j["kernels"][0]["args"][0]["memories"], nlohmann::json::array({"bank0", "bank1"}));
  EXPECT_EQ(j["kernels"][0]["instances"][1]["control"], "ap_ctrl_chain");
  EXPECT_EQ(j["agfi"], nullptr);
  EXPECT_EQ(j["target"], "sw_emu");
}

TEST(xclbin_writer, deterministic_and_content_uuid) {
  auto desc = nlohmann::json::parse(two_kernels);
  desc.erase("uuid");
  const auto a = xclbin::from_description(desc.dump()).write();
  const auto b = xclbin::from_description(desc.dump(2)).write();
  EXPECT_EQ(a, b);
  const auto x = xclbin::parse(a);
  EXPECT_NE(x.uuid_string(), "00000000-0000-0000-0000-000000000000");
  desc["kernels"][0]["instances"][0]["base_address"] = 25165824 + 0x20000;
  const auto c = xclbin::parse(xclbin::from_description(desc.dump()).write());
  EXPECT_NE(c.uuid_string(), x.uuid_string());
  // Re-writing a parsed file keeps its bytes.
  EXPECT_EQ(xclbin::parse(a).write(), a);
}

TEST(xclbin_writer, mode_defaults_follow_the_bitstream) {
  const char* desc = R"({"kernels": [{"name": "k", "args": [{"name": "p", "type": "float*"}]}]})";
  EXPECT_EQ(xclbin::from_description(desc, elf_bytes()).mode, fpyga::xclbin_mode::sw_emu);
  EXPECT_EQ(xclbin::from_description(desc).mode, fpyga::xclbin_mode::flat);
  EXPECT_EQ(xclbin::from_description(desc).target(), "hw");
}

TEST(xclbin_writer, memory_used_follows_connections_unless_given) {
  const char* desc = R"({"memories": [{"tag": "a"}, {"tag": "b"}, {"tag": "c", "used": false}],
    "kernels": [{"name": "k", "args": [{"name": "p", "type": "float*"}, {"name": "q", "type": "float*"}],
                 "instances": [{"name": "k_1", "connections": {"p": "b", "q": "c"}}]}]})";
  const auto x = xclbin::parse(xclbin::from_description(desc).write());
  EXPECT_FALSE(x.memories[0].used);
  EXPECT_TRUE(x.memories[1].used);
  EXPECT_FALSE(x.memories[2].used);
  EXPECT_EQ(x.memories[1].base_address, 16ull << 30);
}

TEST(xclbin_writer, bad_descriptions_name_the_field) {
  EXPECT_THAT(error_of("{"), HasSubstr("not valid JSON"));
  // Found by the fuzzer: a number too large for a double escaped as nlohmann's out_of_range.
  EXPECT_THAT(error_of("-1999999999999999999999e99999999999999999999"), HasSubstr("not valid JSON"));
  EXPECT_THAT(error_of(R"({"timestamp": 1e999999})"), HasSubstr("not valid JSON"));
  EXPECT_THAT(error_of("[]"), HasSubstr("expected an object"));
  EXPECT_THAT(error_of(R"({"modes": "flat"})"), HasSubstr("unknown field 'modes'"));
  EXPECT_THAT(error_of(R"({"mode": "fast"})"), HasSubstr("unknown mode 'fast'"));
  EXPECT_THAT(error_of(R"({"uuid": "1234"})"), HasSubstr("not 32 hex digits"));
  EXPECT_THAT(error_of(R"({"timestamp": -1})"), HasSubstr("timestamp"));
  EXPECT_THAT(error_of(R"({"timestamp": 1.5})"), HasSubstr("non-negative integer"));
  EXPECT_THAT(error_of(R"({"clocks": [{"name": "c", "frequency_mhz": 70000}]})"),
              HasSubstr("clocks[0].frequency_mhz"));
  EXPECT_THAT(error_of(R"({"clocks": [{"name": "c", "type": "fast"}]})"),
              HasSubstr("unknown clock type"));
  EXPECT_THAT(error_of(R"({"memories": [{"tag": "a"}, {"tag": "a"}]})"), HasSubstr("used twice"));
  EXPECT_THAT(error_of(R"({"memories": [{"tag": "a", "type": "DDR4"}]})"),
              HasSubstr("unknown memory type 'DDR4'"));
  EXPECT_THAT(error_of(R"({"memories": [{"tag": "a", "size_bytes": 1000}]})"),
              HasSubstr("multiple of 1024"));
  EXPECT_THAT(error_of(R"({"memories": [{"tag": "a_tag_longer_than_15"}]})"),
              HasSubstr("memory tag"));
  EXPECT_THAT(error_of(R"({"kernels": [{"args": []}]})"), HasSubstr("kernels[0]: needs a name"));
  EXPECT_THAT(error_of(R"({"kernels": [{"name": "k", "args": [{"name": "a"}]}]})"),
              HasSubstr("needs a type"));
  EXPECT_THAT(
      error_of(
          R"({"kernels": [{"name": "k", "args": [{"name": "a", "type": "int", "kind": "blob"}]}]})"),
      HasSubstr("kernels[0].args[0].kind"));
  EXPECT_THAT(
      error_of(R"({"kernels": [{"name": "k", "args": [{"name": "a", "type": "struct s"}]}]})"),
      HasSubstr("needs an explicit size"));
  EXPECT_THAT(error_of(R"({"kernels": [{"name": "k", "args": [{"name": "a", "type": "int*"}],
                        "instances": [{"name": "k_1", "connections": {"b": "bank0"}}]}]})"),
              HasSubstr("has no argument 'b'"));
  EXPECT_THAT(error_of(R"({"kernels": [{"name": "k", "args": [{"name": "a", "type": "int*"}],
                        "instances": [{"name": "k_1", "connections": {"a": "bank9"}}]}]})"),
              HasSubstr("no memory with tag 'bank9'"));
  EXPECT_THAT(
      error_of(
          R"({"kernels": [{"name": "k", "instances": [{"name": "i", "control": "ap_ctrl_xx"}]}]})"),
      HasSubstr("unknown control protocol"));
  EXPECT_THAT(error_of(R"({"kernels": [{"name": "k"}, {"name": "k"}]})"),
              HasSubstr("described twice"));
}

TEST(xclbin_writer, old_style_files_read_back) {
  // What older tools wrote: IP names without ":instance", a null uuid, a HOST memory.
  xclbin x;
  x.memories.push_back({0, fpyga::memory_type::host, true, 0, 1 << 20, "HOST[0]"});
  x.memories.push_back({1, fpyga::memory_type::ddr4, true, 0, 1 << 30, "DDR[0]"});
  fpyga::ip_info ip;
  ip.name = "vadd";
  ip.base_address = 0x1800000;
  x.ips.push_back(ip);
  x.connectivity.push_back({0, 0, 1});
  fpyga::kernel_info k;
  k.name = "vadd";
  k.args.push_back({0, "a", "int*", fpyga::arg_kind::global, 1, "M_AXI_GMEM", 0x10, 8, 0, 8});
  x.kernels.push_back(k);
  const auto r = xclbin::parse(x.write());
  EXPECT_EQ(r.uuid_string(), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(r.memories[0].type, fpyga::memory_type::host);
  EXPECT_EQ(r.ips[0].instance_name(), "vadd");
  const auto j = nlohmann::json::parse(r.to_json());
  EXPECT_EQ(j["kernels"][0]["instances"][0]["name"], "vadd");
  EXPECT_EQ(j["kernels"][0]["args"][0]["memories"], nlohmann::json::array({"DDR[0]"}));
  EXPECT_EQ(j["memories"][0]["type"], "host");
}

TEST(xclbin_writer, fields_that_do_not_fit) {
  xclbin x;
  x.platform_vbnv = std::string(64, 'p');
  EXPECT_THROW(x.write(), fpyga::value_error);
  x.platform_vbnv.clear();
  x.ips.push_back({});
  x.ips[0].name = std::string(64, 'n');
  EXPECT_THROW(x.write(), fpyga::value_error);
  x.ips[0].name = "k:k_1";
  x.connectivity.push_back({0, 0, 3});
  EXPECT_THROW(x.write(), fpyga::value_error);
  x.connectivity.clear();
  x.other_sections.push_back({fpyga::section_kind::ip_layout, "", {}});
  EXPECT_THROW(x.write(), fpyga::value_error);
}

TEST(xclbin_writer, unknown_sections_survive) {
  xclbin x;
  x.other_sections.push_back(
      {fpyga::section_kind::keyvalue_metadata, "kv", {std::byte{1}, std::byte{2}, std::byte{3}}});
  x.other_sections.push_back({static_cast<fpyga::section_kind>(1234), "future", {std::byte{9}}});
  const auto r = xclbin::parse(x.write());
  ASSERT_EQ(r.other_sections.size(), 2u);
  EXPECT_EQ(r.other_sections[0].name, "kv");
  EXPECT_EQ(r.other_sections[0].payload.size(), 3u);
  EXPECT_EQ(static_cast<std::uint32_t>(r.other_sections[1].kind), 1234u);
}

TEST(xclbin_writer, real_awsxclbin_survives_a_rewrite) {
  FPYGA_REQUIRE_FILE(path,
                     fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin");
  const auto a = xclbin::read(path.string());
  const auto b = xclbin::parse(a.write());
  EXPECT_EQ(b.to_json(), a.to_json());
  EXPECT_EQ(b.embedded_metadata, a.embedded_metadata);
  EXPECT_EQ(b.bitstream, a.bitstream);
  EXPECT_EQ(b.timestamp, a.timestamp);
  EXPECT_EQ(b.unique_id, a.unique_id);
}

// --- the reader's hardening, on what the writer made ---------------------------------------

TEST(xclbin_hardening, every_truncation_of_a_written_file) {
  const auto bytes = xclbin::from_description(two_kernels, elf_bytes()).write();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::vector<std::byte> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    ASSERT_THAT(parse_error(cut), HasSubstr("made.xclbin")) << "truncated at " << n;
  }
}

TEST(xclbin_hardening, every_byte_flipped) {
  const auto bytes = xclbin::from_description(two_kernels, elf_bytes()).write();
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto b = bytes;
    b[i] = ~b[i];
    try {
      xclbin::parse(b);
    } catch (const fpyga::xclbin_error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0u);
}

TEST(xclbin_hardening, malformed_metadata_text) {
  xclbin x = xclbin::from_description(two_kernels);
  x.embedded_metadata = "<project><platform></project>";
  EXPECT_THAT(parse_error(x.write()), HasSubstr("EMBEDDED_METADATA"));
  x.embedded_metadata = std::string("<project/>\0garbage", 18);
  EXPECT_THAT(parse_error(x.write()), HasSubstr("XML is malformed"));
  x.embedded_metadata =
      "<project><platform><device><core><kernel name=\"k\"><arg name=\"a\" id=\"0\"/></kernel>"
      "</core></device></platform></project>";
  EXPECT_THAT(parse_error(x.write()),
              HasSubstr("kernel 'k' arg 'a' has no 'addressQualifier' attribute"));
  x.embedded_metadata.clear();
  x.build_metadata = "{\"unterminated\": ";
  EXPECT_THAT(parse_error(x.write()), HasSubstr("BUILD_METADATA"));
}

TEST(xclbin_hardening, names_that_are_not_utf8) {
  // Found by the fuzzer: JSON output (info --json, generated BUILD_METADATA) threw on such bytes.
  // Since issue 18 such names are refused (the reader's side: test_xclbin_hardening.cpp): the
  // writer never makes a file the reader would refuse.
  xclbin x;
  x.memories.push_back({0, fpyga::memory_type::ddr4, true, 0, 1024, "bank\xfe"});
  try {
    x.write();
    ADD_FAILURE() << "a memory tag that is not UTF-8 was written";
  } catch (const fpyga::value_error& e) {
    EXPECT_NE(std::string(e.what()).find("memory tag is not valid UTF-8"), std::string::npos)
        << e.what();
  }
  x.memories[0].tag = "bank0";
  x.platform_vbnv = "plat\xff";
  EXPECT_THROW(x.write(), fpyga::value_error);
  // An xclbin value built in memory still prints as valid JSON (bad bytes become U+FFFD).
  x.memories[0].tag = "bank\xfe";
  const auto j = nlohmann::json::parse(x.to_json());
  EXPECT_EQ(j["memories"][0]["tag"], "bank\xef\xbf\xbd");
}
