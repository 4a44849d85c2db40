// The xclbin reader on the real AWS F1 awsxclbin, and on that file damaged in every way a
// lying or truncated file can be: each must end in xclbin_error naming file and section.
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
using fpyga::xclbin_error;
using testing::HasSubstr;

namespace {

const char* const aws_name = "aws_vector_addition_2018_3.awsxclbin";

std::vector<std::byte> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

template <typename T>
void put(std::vector<std::byte>& b, std::size_t off, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    b.at(off + i) = std::byte(static_cast<std::uint8_t>(static_cast<std::uint64_t>(v) >> (8 * i)));
}

template <typename T>
T get(const std::vector<std::byte>& b, std::size_t off) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v |= std::uint64_t(std::to_integer<std::uint8_t>(b.at(off + i))) << (8 * i);
  return static_cast<T>(v);
}

constexpr std::size_t table = 456;

/// Index in the section table of the first section of `kind`.
std::size_t section_index(const std::vector<std::byte>& b, fpyga::section_kind kind) {
  const auto n = get<std::uint32_t>(b, 448);
  for (std::size_t i = 0; i < n; ++i)
    if (get<std::uint32_t>(b, table + 40 * i) == static_cast<std::uint32_t>(kind)) return i;
  ADD_FAILURE() << "no section of kind " << to_string(kind);
  return 0;
}
std::size_t section_offset(const std::vector<std::byte>& b, fpyga::section_kind kind) {
  return get<std::uint64_t>(b, table + 40 * section_index(b, kind) + 24);
}
std::size_t section_size(const std::vector<std::byte>& b, fpyga::section_kind kind) {
  return get<std::uint64_t>(b, table + 40 * section_index(b, kind) + 32);
}

/// Parses `b` and returns the xclbin_error message ("" when it parsed).
std::string parse_error(const std::vector<std::byte>& b, std::string_view source = "bad.xclbin") {
  try {
    xclbin::parse(b, source);
  } catch (const xclbin_error& e) {
    return e.what();
  }
  return "";
}

class aws_xclbin : public testing::Test {
 protected:
  void SetUp() override {
    path = fpyga::test::shared_xclbin_dir() / aws_name;
    if (!std::filesystem::exists(path)) {
      if (fpyga::test::under_ci()) FAIL() << "test input missing under CI: " << path;
      GTEST_SKIP() << "test input not found: " << path
                   << " (set FPYGA_TEST_DATA to the directory holding xclbin/)";
    }
    bytes = slurp(path);
  }
  std::filesystem::path path;
  std::vector<std::byte> bytes;
};

}  // namespace

TEST_F(aws_xclbin, header) {
  const xclbin x = xclbin::read(path.string());
  EXPECT_EQ(x.source, path.string());
  EXPECT_EQ(x.uuid_string(), "c1087066-d39e-48c8-917a-719a3e2e28aa");
  EXPECT_EQ(x.mode, fpyga::xclbin_mode::pr);
  EXPECT_EQ(x.target(), "hw");
  EXPECT_EQ(x.version_major, 2);
  EXPECT_EQ(x.version_minor, 1);
  EXPECT_EQ(x.timestamp, 0x5ca7f45aU);
  EXPECT_EQ(x.platform_vbnv, "");  // 2018.3 left it empty; the XML names the platform
  EXPECT_EQ(x.platform_name(), "xilinx_aws-vu9p-f1-04261818_dynamic_5_0");
}

TEST_F(aws_xclbin, section_table) {
  using fpyga::section_kind;
  const xclbin x = xclbin::read(path.string());
  ASSERT_EQ(x.sections.size(), 6u);
  const section_kind kinds[] = {section_kind::bitstream,    section_kind::embedded_metadata,
                                section_kind::mem_topology, section_kind::connectivity,
                                section_kind::ip_layout,    section_kind::clock_freq_topology};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(x.sections[i].kind, kinds[i]) << i;
  EXPECT_EQ(x.sections[0].name, "19_04_06-003708");
  EXPECT_EQ(x.sections[0].offset, 0x2b8u);
  EXPECT_EQ(x.sections[0].size, 22u);
  EXPECT_EQ(x.sections[2].name, "runtime_data");
  EXPECT_EQ(x.sections[2].size, 8u + 4 * 40);
  EXPECT_TRUE(x.other_sections.empty());
}

TEST_F(aws_xclbin, agfi_replaces_the_bitstream) {
  const xclbin x = xclbin::read(path.string());
  ASSERT_TRUE(x.agfi().has_value());
  EXPECT_EQ(*x.agfi(), "agfi-046565baf5ce48c86");
  EXPECT_FALSE(x.bitstream_is_elf());
  EXPECT_EQ(x.bitstream.size(), 22u);
}

TEST_F(aws_xclbin, memories) {
  const xclbin x = xclbin::read(path.string());
  ASSERT_EQ(x.memories.size(), 4u);
  for (unsigned i = 0; i < 4; ++i) {
    const auto& m = x.memories[i];
    EXPECT_EQ(m.index, i);
    EXPECT_EQ(m.tag, "bank" + std::to_string(i));
    EXPECT_EQ(m.type, fpyga::memory_type::ddr4);
    EXPECT_EQ(m.used, i == 0) << m.tag;
    EXPECT_EQ(m.size_bytes, 16ULL << 30) << m.tag;
    EXPECT_EQ(m.base_address, std::uint64_t(i) << 34) << m.tag;
  }
}

TEST_F(aws_xclbin, kernel_args_and_instance) {
  const xclbin x = xclbin::read(path.string());
  ASSERT_EQ(x.kernels.size(), 1u);
  const auto* k = x.find_kernel("vector_add");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(x.find_kernel("nope"), nullptr);
  EXPECT_EQ(k->language, "clc");
  ASSERT_EQ(k->args.size(), 4u);
  const char* names[] = {"c", "a", "b", "n_elements"};
  const std::uint64_t offsets[] = {0x10, 0x1C, 0x28, 0x34};
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_EQ(k->args[i].index, i);
    EXPECT_EQ(k->args[i].name, names[i]);
    EXPECT_EQ(k->args[i].offset, offsets[i]) << names[i];
  }
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(k->args[i].kind, fpyga::arg_kind::global);
    EXPECT_EQ(k->args[i].type, "int*");
    EXPECT_EQ(k->args[i].port, "M_AXI_GMEM");
    EXPECT_EQ(k->args[i].size, 8u);
  }
  EXPECT_EQ(k->args[3].kind, fpyga::arg_kind::scalar);
  EXPECT_EQ(k->args[3].type, "int");
  EXPECT_EQ(k->args[3].size, 4u);
  EXPECT_EQ(k->args[3].host_size, 4u);
  ASSERT_EQ(k->ports.size(), 2u);
  EXPECT_EQ(k->ports[1].name, "S_AXI_CONTROL");
  EXPECT_EQ(k->ports[1].range, 0x1000u);
  EXPECT_EQ(k->ports[0].data_width, 32u);
  ASSERT_EQ(k->instances.size(), 1u);
  EXPECT_EQ(k->instances[0].name, "vector_add_1");

  ASSERT_EQ(x.ips.size(), 1u);
  EXPECT_EQ(x.ips[0].name, "vector_add:vector_add_1");
  EXPECT_EQ(x.ips[0].kernel_name(), "vector_add");
  EXPECT_EQ(x.ips[0].instance_name(), "vector_add_1");
  EXPECT_EQ(x.ips[0].type, fpyga::ip_type::kernel);
  EXPECT_EQ(x.ips[0].control, fpyga::control_protocol::ap_ctrl_hs);
}

TEST_F(aws_xclbin, connectivity_reaches_bank0) {
  const xclbin x = xclbin::read(path.string());
  ASSERT_EQ(x.connectivity.size(), 3u);
  for (unsigned arg = 0; arg < 3; ++arg)
    EXPECT_THAT(x.memories_of(0, arg), testing::ElementsAre(0u));
  EXPECT_TRUE(x.memories_of(0, 3).empty());
}

TEST_F(aws_xclbin, clocks) {
  const xclbin x = xclbin::read(path.string());
  ASSERT_EQ(x.clocks.size(), 3u);
  EXPECT_EQ(x.clocks[0].name, "clk_main_a0");
  EXPECT_EQ(x.clocks[0].type, fpyga::clock_type::system);
  EXPECT_EQ(x.clocks[1].name, "DATA_CLK");
  EXPECT_EQ(x.clocks[1].type, fpyga::clock_type::data);
  EXPECT_EQ(x.clocks[1].frequency_mhz, 250);
  EXPECT_EQ(x.clocks[2].name, "KERNEL_CLK");
  EXPECT_EQ(x.clocks[2].type, fpyga::clock_type::kernel);
  EXPECT_EQ(x.clocks[2].frequency_mhz, 500);
}

TEST_F(aws_xclbin, info_json_schema) {
  const auto j = nlohmann::json::parse(xclbin::read(path.string()).to_json());
  EXPECT_EQ(j["uuid"], "c1087066-d39e-48c8-917a-719a3e2e28aa");
  EXPECT_EQ(j["target"], "hw");
  EXPECT_EQ(j["agfi"], "agfi-046565baf5ce48c86");
  EXPECT_EQ(j["platform"], "xilinx_aws-vu9p-f1-04261818_dynamic_5_0");
  ASSERT_EQ(j["clocks"].size(), 3u);
  EXPECT_EQ(j["clocks"][1]["name"], "DATA_CLK");
  EXPECT_EQ(j["clocks"][1]["frequency_mhz"], 250);
  EXPECT_EQ(j["clocks"][1]["type"], "data");
  ASSERT_EQ(j["memories"].size(), 4u);
  EXPECT_EQ(j["memories"][0]["tag"], "bank0");
  EXPECT_EQ(j["memories"][0]["type"], "ddr4");
  EXPECT_EQ(j["memories"][0]["used"], true);
  EXPECT_EQ(j["memories"][1]["used"], false);
  EXPECT_EQ(j["memories"][1]["index"], 1);
  EXPECT_EQ(j["memories"][1]["base_address"], 1ULL << 34);
  EXPECT_EQ(j["memories"][1]["size_bytes"], 16ULL << 30);
  ASSERT_EQ(j["kernels"].size(), 1u);
  const auto& k = j["kernels"][0];
  EXPECT_EQ(k["name"], "vector_add");
  ASSERT_EQ(k["args"].size(), 4u);
  EXPECT_EQ(k["args"][1]["name"], "a");
  EXPECT_EQ(k["args"][1]["index"], 1);
  EXPECT_EQ(k["args"][1]["type"], "int*");
  EXPECT_EQ(k["args"][1]["kind"], "global");
  EXPECT_EQ(k["args"][1]["offset"], 0x1C);
  EXPECT_EQ(k["args"][1]["size"], 8);
  EXPECT_EQ(k["args"][1]["memories"], nlohmann::json::array({"bank0"}));
  EXPECT_EQ(k["args"][3]["kind"], "scalar");
  EXPECT_EQ(k["args"][3]["memories"], nlohmann::json::array());
  ASSERT_EQ(k["instances"].size(), 1u);
  EXPECT_EQ(k["instances"][0]["name"], "vector_add_1");
  EXPECT_EQ(k["instances"][0]["control"], "ap_ctrl_hs");
  EXPECT_TRUE(k["instances"][0]["base_address"].is_number_unsigned());
}

// --- damaged copies of the real file -------------------------------------------------------

TEST_F(aws_xclbin, every_truncation_is_an_error) {
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::vector<std::byte> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    const auto msg = parse_error(cut, "cut.xclbin");
    ASSERT_THAT(msg, HasSubstr("cut.xclbin")) << "truncated at " << n;
  }
  EXPECT_THAT(parse_error({}), HasSubstr("shorter than the 456-byte xclbin header"));
  std::vector<std::byte> cut(bytes.begin(), bytes.begin() + 1000);
  EXPECT_THAT(parse_error(cut), HasSubstr("truncated"));
}

TEST_F(aws_xclbin, wrong_magic) {
  auto b = bytes;
  b[6] = std::byte('0');
  EXPECT_THAT(parse_error(b), HasSubstr("bad magic"));
}

TEST_F(aws_xclbin, read_names_the_file) {
  const auto tmp = std::filesystem::temp_directory_path() / "fpyga_test_bad_magic.xclbin";
  auto b = bytes;
  b[0] = std::byte('X');
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  try {
    xclbin::read(tmp.string());
    FAIL() << "no error";
  } catch (const xclbin_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(tmp.string()));
  }
  std::filesystem::remove(tmp);
  EXPECT_THROW(xclbin::read("/nonexistent/dir/x.xclbin"), fpyga::error);
}

TEST_F(aws_xclbin, m_length_lies) {
  auto b = bytes;
  put<std::uint64_t>(b, 304, bytes.size() + 1);
  EXPECT_THAT(parse_error(b), HasSubstr("m_length"));
  put<std::uint64_t>(b, 304, ~0ULL);
  EXPECT_THAT(parse_error(b), HasSubstr("m_length"));
  // Shorter than it is: the last section then lies past m_length.
  put<std::uint64_t>(b, 304, bytes.size() - 8);
  EXPECT_THAT(parse_error(b), HasSubstr("CLOCK_FREQ_TOPOLOGY"));
  put<std::uint64_t>(b, 304, 100);
  EXPECT_THAT(parse_error(b), HasSubstr("shorter than the header"));
  // Trailing padding past a truthful m_length is tolerated.
  auto padded = bytes;
  padded.resize(bytes.size() + 64);
  EXPECT_EQ(parse_error(padded), "");
}

TEST_F(aws_xclbin, section_count_too_large) {
  auto b = bytes;
  put<std::uint32_t>(b, 448, 7);  // a 7th header would overlap the first payload
  EXPECT_NE(parse_error(b), "");
  put<std::uint32_t>(b, 448, 0xFFFFFFFFu);
  EXPECT_THAT(parse_error(b), HasSubstr("m_numSections"));
}

TEST_F(aws_xclbin, section_offset_past_end) {
  auto b = bytes;
  const auto i = section_index(b, fpyga::section_kind::mem_topology);
  put<std::uint64_t>(b, table + 40 * i + 24, bytes.size());
  auto msg = parse_error(b);
  EXPECT_THAT(msg, HasSubstr("MEM_TOPOLOGY"));
  EXPECT_THAT(msg, HasSubstr("past the end"));
  put<std::uint64_t>(b, table + 40 * i + 24, ~0ULL - 4);
  EXPECT_THAT(parse_error(b), HasSubstr("past the end"));
}

TEST_F(aws_xclbin, huge_section_size) {
  auto b = bytes;
  const auto i = section_index(b, fpyga::section_kind::embedded_metadata);
  put<std::uint64_t>(b, table + 40 * i + 32, ~0ULL);  // offset + size wraps around
  EXPECT_THAT(parse_error(b), HasSubstr("EMBEDDED_METADATA"));
}

TEST_F(aws_xclbin, overlapping_sections) {
  auto b = bytes;
  const auto mem = section_index(b, fpyga::section_kind::mem_topology);
  put<std::uint64_t>(b, table + 40 * mem + 32,
                     section_size(b, fpyga::section_kind::mem_topology) + 16);
  EXPECT_THAT(parse_error(b), HasSubstr("overlaps"));
  auto c = bytes;
  put<std::uint64_t>(c, table + 40 * mem + 24, 300);  // inside the header
  EXPECT_THAT(parse_error(c), HasSubstr("overlaps the header"));
}

TEST_F(aws_xclbin, entry_counts_too_large) {
  using fpyga::section_kind;
  for (auto kind :
       {section_kind::mem_topology, section_kind::ip_layout, section_kind::connectivity}) {
    auto b = bytes;
    const auto off = section_offset(b, kind);
    put<std::int32_t>(b, off, get<std::int32_t>(b, off) + 1);
    auto msg = parse_error(b);
    EXPECT_THAT(msg, HasSubstr(std::string(to_string(kind)))) << msg;
    EXPECT_THAT(msg, HasSubstr("entry count")) << msg;
    put<std::int32_t>(b, off, 0x7FFFFFFF);
    EXPECT_THAT(parse_error(b), HasSubstr("entry count"));
    put<std::int32_t>(b, off, -1);
    EXPECT_THAT(parse_error(b), HasSubstr("negative"));
  }
  auto b = bytes;
  put<std::int16_t>(b, section_offset(b, section_kind::clock_freq_topology), 4);
  EXPECT_THAT(parse_error(b), HasSubstr("CLOCK_FREQ_TOPOLOGY"));
}

TEST_F(aws_xclbin, unterminated_strings) {
  using fpyga::section_kind;
  {
    auto b = bytes;  // bank0's 16-byte tag without its NUL
    const auto e = section_offset(b, section_kind::mem_topology) + 8 + 24;
    for (int i = 0; i < 16; ++i) b[e + i] = std::byte('x');
    const auto msg = parse_error(b);
    EXPECT_THAT(msg, HasSubstr("MEM_TOPOLOGY"));
    EXPECT_THAT(msg, HasSubstr("entry 0 tag is not NUL-terminated"));
  }
  {
    auto b = bytes;
    const auto e = section_offset(b, section_kind::ip_layout) + 8 + 16;
    for (int i = 0; i < 64; ++i) b[e + i] = std::byte('k');
    EXPECT_THAT(parse_error(b), HasSubstr("name is not NUL-terminated"));
  }
  {
    auto b = bytes;
    const auto e = section_offset(b, section_kind::clock_freq_topology) + 2 + 136 + 8;
    for (int i = 0; i < 128; ++i) b[e + i] = std::byte('c');
    EXPECT_THAT(parse_error(b), HasSubstr("entry 1 name is not NUL-terminated"));
  }
  {
    auto b = bytes;
    for (int i = 0; i < 64; ++i) b[352 + i] = std::byte('p');
    EXPECT_THAT(parse_error(b), HasSubstr("m_platformVBNV is not NUL-terminated"));
  }
  {
    auto b = bytes;
    for (int i = 0; i < 16; ++i) b[table + 4 + i] = std::byte('s');
    EXPECT_THAT(parse_error(b), HasSubstr("section header 0 name"));
  }
}

TEST_F(aws_xclbin, bad_enum_values) {
  using fpyga::section_kind;
  auto b = bytes;
  b[section_offset(b, section_kind::mem_topology) + 8 + 40] = std::byte(200);
  EXPECT_THAT(parse_error(b), HasSubstr("entry 1 has unknown memory type 200"));
  b = bytes;
  put<std::uint32_t>(b, section_offset(b, section_kind::ip_layout) + 8 + 4, 0x0900);
  EXPECT_THAT(parse_error(b), HasSubstr("unknown control protocol 9"));
  b = bytes;
  put<std::uint16_t>(b, 332, 77);
  EXPECT_THAT(parse_error(b), HasSubstr("unknown m_mode 77"));
}

TEST_F(aws_xclbin, connectivity_indices_checked) {
  auto b = bytes;
  const auto off = section_offset(b, fpyga::section_kind::connectivity);
  put<std::int32_t>(b, off + 4 + 12 + 8, 4);  // entry 1 memory index: 4 banks exist
  EXPECT_THAT(parse_error(b), HasSubstr("entry 1 names memory 4, MEM_TOPOLOGY has 4"));
  b = bytes;
  put<std::int32_t>(b, off + 4 + 4, 1);
  EXPECT_THAT(parse_error(b), HasSubstr("names IP 1"));
  b = bytes;
  put<std::int32_t>(b, off + 4, -3);
  EXPECT_THAT(parse_error(b), HasSubstr("negative arg index"));
}

TEST_F(aws_xclbin, malformed_xml) {
  const auto off = section_offset(bytes, fpyga::section_kind::embedded_metadata);
  const auto size = section_size(bytes, fpyga::section_kind::embedded_metadata);
  std::string xml(reinterpret_cast<const char*>(bytes.data()) + off, size);
  auto with = [&](const std::string& from, const std::string& to) {
    auto s = xml;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    EXPECT_LE(s.size(), size);
    s.resize(size, ' ');  // keep the section size
    auto b = bytes;
    std::memcpy(b.data() + off, s.data(), size);
    return parse_error(b);
  };
  EXPECT_THAT(with("</project>", "</projekt>"), HasSubstr("XML is malformed"));
  EXPECT_THAT(with("</project>", "<"), HasSubstr("EMBEDDED_METADATA"));
  EXPECT_THAT(with("offset=\"0x1C\"", "offset=\"zzzz\""),
              HasSubstr("arg 'a' attribute offset=\"zzzz\" is not a number"));
  EXPECT_THAT(with("id=\"1\"", "id=\"0\""), HasSubstr("repeats argument id 0"));
  EXPECT_THAT(with("addressQualifier=\"1\" id=\"2\"", "addressQualifier=\"9\" id=\"2\""),
              HasSubstr("unknown addressQualifier 9"));
  EXPECT_THAT(with("<project ", "<thing "), HasSubstr("malformed"));
  // 76 bits do not fit (same length as the text replaced, so the section size still holds).
  EXPECT_THAT(with("offset=\"0x10\" hostOffset=\"0x0\"", "offset=\"0x9999999999999999999\""),
              HasSubstr("offset=\"0x9999999999999999999\" is not a number"));
}

TEST_F(aws_xclbin, duplicate_typed_section) {
  auto b = bytes;
  // Make the CONNECTIVITY header claim to be a second MEM_TOPOLOGY.
  put<std::uint32_t>(b, table + 40 * section_index(b, fpyga::section_kind::connectivity), 6);
  EXPECT_THAT(parse_error(b), HasSubstr("more than once"));
}

TEST_F(aws_xclbin, unknown_sections_are_kept) {
  auto b = bytes;
  put<std::uint32_t>(b, table + 40 * section_index(b, fpyga::section_kind::clock_freq_topology),
                     99);
  const auto x = xclbin::parse(b);
  EXPECT_TRUE(x.clocks.empty());
  ASSERT_EQ(x.other_sections.size(), 1u);
  EXPECT_EQ(static_cast<std::uint32_t>(x.other_sections[0].kind), 99u);
  EXPECT_EQ(x.other_sections[0].payload.size(),
            section_size(bytes, fpyga::section_kind::clock_freq_topology));
}

TEST_F(aws_xclbin, single_byte_corruption_never_crashes) {
  // Every byte of the header, table and typed payloads set to a few hostile values: the reader
  // either parses or throws xclbin_error (anything else fails the test or crashes it).
  for (std::size_t i = 0; i < bytes.size(); ++i)
    for (std::uint8_t v : {0x00, 0x7F, 0x80, 0xFF}) {
      auto b = bytes;
      b[i] = std::byte(v);
      try {
        xclbin::parse(b);
      } catch (const xclbin_error&) {
      }
    }
}

// --- in-memory descriptions ---------------------------------------------------------------

TEST(xclbin_accessors, target_and_agfi) {
  xclbin x;
  EXPECT_EQ(x.target(), "hw");
  EXPECT_FALSE(x.agfi());
  x.mode = fpyga::xclbin_mode::hw_emu;
  EXPECT_EQ(x.target(), "hw_emu");
  x.mode = fpyga::xclbin_mode::sw_emu;
  EXPECT_EQ(x.target(), "sw_emu");
  x.mode = fpyga::xclbin_mode::flat;
  const char elf[] =
      "\x7f"
      "ELF\x02\x01\x01";
  x.bitstream.assign(reinterpret_cast<const std::byte*>(elf),
                     reinterpret_cast<const std::byte*>(elf) + 7);
  EXPECT_TRUE(x.bitstream_is_elf());
  EXPECT_EQ(x.target(), "sw_emu");  // an ELF bitstream is a software kernel whatever the mode
  const std::string afi = "afi-0123456789abcdef0";
  x.bitstream.assign(reinterpret_cast<const std::byte*>(afi.data()),
                     reinterpret_cast<const std::byte*>(afi.data() + afi.size()));
  EXPECT_EQ(x.agfi().value_or(""), afi);
  const std::string not_id = "agfi-not hex";
  x.bitstream.assign(reinterpret_cast<const std::byte*>(not_id.data()),
                     reinterpret_cast<const std::byte*>(not_id.data() + not_id.size()));
  EXPECT_FALSE(x.agfi());
  EXPECT_EQ(x.uuid_string(), "00000000-0000-0000-0000-000000000000");
}

TEST(xclbin_accessors, old_ip_names_without_instance) {
  fpyga::ip_info ip;
  ip.name = "vadd";
  EXPECT_EQ(ip.kernel_name(), "vadd");
  EXPECT_EQ(ip.instance_name(), "vadd");
  ip.name = "vadd:vadd_2";
  EXPECT_EQ(ip.kernel_name(), "vadd");
  EXPECT_EQ(ip.instance_name(), "vadd_2");
}

TEST(xclbin_names, round_trip) {
  EXPECT_EQ(to_string(fpyga::section_kind::clock_freq_topology), "CLOCK_FREQ_TOPOLOGY");
  EXPECT_EQ(to_string(fpyga::memory_type::host), "host");
  EXPECT_EQ(fpyga::memory_type_from_string("preallocated_glob"),
            fpyga::memory_type::preallocated_glob);
  EXPECT_EQ(fpyga::memory_type_from_string("DDR4"), std::nullopt);
  EXPECT_EQ(fpyga::control_protocol_from_string("ap_ctrl_chain"),
            fpyga::control_protocol::ap_ctrl_chain);
  EXPECT_EQ(fpyga::clock_type_from_string("kernel"), fpyga::clock_type::kernel);
  EXPECT_EQ(fpyga::arg_kind_from_string("stream"), fpyga::arg_kind::stream);
  EXPECT_EQ(fpyga::xclbin_mode_from_string("sw_emu"), fpyga::xclbin_mode::sw_emu);
}
