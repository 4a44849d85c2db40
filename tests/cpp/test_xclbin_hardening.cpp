// Inputs the reader used to accept or mishandle (issue 18): CONNECTIVITY indices past a kernel's
// arguments, banks that wrap around the address space, names that are not UTF-8, and files that
// are not files (directories, devices, FIFOs, huge sparse files). Each must be refused with an
// error naming the file and what is wrong, before any backend sees it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "backends/backend.hpp"
#include "fpyga/device.hpp"
#include "fpyga/error.hpp"
#include "fpyga/xclbin.hpp"
#include "test_support.hpp"

using fpyga::xclbin;
using fpyga::xclbin_error;
using testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

std::vector<std::byte> slurp(const fs::path& p) {
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

std::size_t section_offset(const std::vector<std::byte>& b, fpyga::section_kind kind) {
  const auto n = get<std::uint32_t>(b, 448);
  for (std::size_t i = 0; i < n; ++i)
    if (get<std::uint32_t>(b, 456 + 40 * i) == static_cast<std::uint32_t>(kind))
      return get<std::uint64_t>(b, 456 + 40 * i + 24);
  ADD_FAILURE() << "no section of kind " << to_string(kind);
  return 0;
}

std::string parse_error(const std::vector<std::byte>& b, std::string_view source = "bad.xclbin") {
  try {
    xclbin::parse(b, source);
  } catch (const xclbin_error& e) {
    return e.what();
  }
  return "";
}

/// The error fpyga::xclbin::read gives for `path` ("" when it read and parsed).
std::string read_error(const std::string& path) {
  try {
    xclbin::read(path);
  } catch (const fpyga::error& e) {
    return e.what();
  }
  return "";
}

class hardening : public testing::Test {
 protected:
  void SetUp() override {
    path = fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin";
    if (!fs::exists(path)) {
      if (fpyga::test::under_ci()) FAIL() << "test input missing under CI: " << path;
      GTEST_SKIP() << "test input not found: " << path;
    }
    bytes = slurp(path);
    dir = fs::temp_directory_path() / ("fpyga_test_hardening_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
  fs::path path, dir;
  std::vector<std::byte> bytes;
};

}  // namespace

// Item 4: XRT indexes the kernel's arguments with arg_index unchecked (a SIGSEGV inside
// xrt::kernel for 9999).
TEST_F(hardening, connectivity_arg_index_past_the_kernels_arguments) {
  ASSERT_EQ(parse_error(bytes), "");
  const auto off = section_offset(bytes, fpyga::section_kind::connectivity);
  for (std::int32_t bad : {9999, 4, 0x7fffffff}) {  // vector_add has arguments 0..3
    auto b = bytes;
    put<std::int32_t>(b, off + 4, bad);
    const auto e = parse_error(b);
    EXPECT_THAT(e, HasSubstr("bad.xclbin")) << bad;
    EXPECT_THAT(e, HasSubstr("CONNECTIVITY")) << e;
    EXPECT_THAT(e, HasSubstr("entry 0 names argument " + std::to_string(bad) + " of 'vector_add"))
        << e;
    EXPECT_THAT(e, HasSubstr("has 4 argument(s)")) << e;
  }
  auto b = bytes;
  put<std::int32_t>(b, off + 4, 3);  // n_elements exists: accepted
  EXPECT_EQ(parse_error(b), "");
}

// A kernel IP without metadata (renamed) with a huge arg_index: XRT sized per-IP tables by it
// while loading (fuzz finding: 2.4 GB for 100663298). Small indices stay accepted.
TEST_F(hardening, connectivity_of_an_ip_without_metadata_is_bounded) {
  const auto conn = section_offset(bytes, fpyga::section_kind::connectivity);
  const auto ips = section_offset(bytes, fpyga::section_kind::ip_layout);
  auto b = bytes;
  b[ips + 8 + 16] = static_cast<std::byte>('}');  // IP 0: "}ector_add:vector_add_1"
  put<std::int32_t>(b, conn + 4, 7);
  EXPECT_EQ(parse_error(b), "");
  put<std::int32_t>(b, conn + 4, 100663298);
  const auto e = parse_error(b);
  EXPECT_THAT(e, HasSubstr("CONNECTIVITY"));
  EXPECT_THAT(e, HasSubstr("entry 0 names argument 100663298 of '}ector_add"));
  EXPECT_THAT(e, HasSubstr("no kernel metadata"));
}

// Item 15: a bank at 0xfffffffffffff000 of 16 GiB wraps around.
TEST_F(hardening, banks_that_wrap_around_the_address_space) {
  const auto off = section_offset(bytes, fpyga::section_kind::mem_topology);
  auto b = bytes;
  put<std::uint64_t>(b, off + 8 + 16, 0xfffffffffffff000ull);  // entry 0 base
  put<std::uint64_t>(b, off + 8 + 8, (16ull << 30) / 1024);    // 16 GiB in KiB
  const auto e = parse_error(b);
  EXPECT_THAT(e, HasSubstr("MEM_TOPOLOGY"));
  EXPECT_THAT(e, HasSubstr("entry 0 ('bank0') at base 0xfffffffffffff000"));
  EXPECT_THAT(e, HasSubstr("runs past the end of the 64-bit address space"));
  // A bank ending exactly at the top fits.
  put<std::uint64_t>(b, off + 8 + 16, 0ull - (16ull << 30));
  EXPECT_EQ(parse_error(b), "");

  // The writer and `pack` refuse it too.
  auto x = xclbin::parse(bytes, "aws");
  x.memories[0].base_address = 0xfffffffffffff000ull;
  x.memories[0].size_bytes = 16ull << 30;
  EXPECT_THROW(x.write(), fpyga::value_error);
  const char* desc = R"({"memories": [{"tag": "top", "base_address": 18446744073709547520,
                                       "size_bytes": 17179869184}], "kernels": []})";
  try {
    xclbin::from_description(desc);
    ADD_FAILURE() << "pack accepted a bank that wraps around";
  } catch (const fpyga::value_error& err) {
    EXPECT_THAT(err.what(), HasSubstr("memories[0]"));
    EXPECT_THAT(err.what(), HasSubstr("64-bit address space"));
  }

  // And emu, handed such an xclbin without the reader (its load checks what it gets).
  auto dev = fpyga::device::open("emu");
  try {
    dev.impl()->load(x, "wrapping.xclbin");
    ADD_FAILURE() << "emu accepted a bank that wraps around";
  } catch (const xclbin_error& err) {
    EXPECT_THAT(err.what(), HasSubstr("wrapping.xclbin"));
    EXPECT_THAT(err.what(), HasSubstr("'bank0'"));
  }
}

// Item 17: non-UTF-8 names are refused in every section that holds names, naming the file,
// section and field (the policy the CLI and Python follow, since they read through here).
TEST_F(hardening, names_that_are_not_utf8) {
  {
    auto b = bytes;
    const auto off = section_offset(b, fpyga::section_kind::mem_topology);
    b[off + 8 + 24] = std::byte{0xff};  // entry 0 tag "bank0" -> "\xffank0"
    const auto e = parse_error(b, "tags.xclbin");
    EXPECT_THAT(e, HasSubstr("tags.xclbin"));
    EXPECT_THAT(e, HasSubstr("MEM_TOPOLOGY"));
    EXPECT_THAT(e, HasSubstr("entry 0 tag is not valid UTF-8 (byte 0xff at position 0)"));
  }
  {
    auto b = bytes;
    const auto off = section_offset(b, fpyga::section_kind::ip_layout);
    b[off + 8 + 16 + 1] = std::byte{0xc0};  // an overlong-form lead byte in the IP name
    EXPECT_THAT(parse_error(b), HasSubstr("IP_LAYOUT"));
    EXPECT_THAT(parse_error(b), HasSubstr("name is not valid UTF-8"));
  }
  {
    auto b = bytes;
    b[352] = std::byte{0xfe};  // m_platformVBNV
    EXPECT_THAT(parse_error(b), HasSubstr("m_platformVBNV is not valid UTF-8"));
  }
  {
    auto b = bytes;
    const auto off = section_offset(b, fpyga::section_kind::embedded_metadata);
    std::string_view xml(reinterpret_cast<const char*>(b.data() + off), b.size() - off);
    const auto at = xml.find("name=\"vector_add\"");
    ASSERT_NE(at, std::string_view::npos);
    b[off + at + 6] = std::byte{0x80};  // a continuation byte with no lead
    const auto e = parse_error(b);
    EXPECT_THAT(e, HasSubstr("EMBEDDED_METADATA"));
    EXPECT_THAT(e, HasSubstr("XML is not valid UTF-8 (byte 0x80"));
  }
  {
    // Well-formed UTF-8 stays accepted.
    auto b = bytes;
    const auto off = section_offset(b, fpyga::section_kind::mem_topology);
    b[off + 8 + 24 + 1] = std::byte{0xc3};  // "bank0" -> "b\u00e4nk0" needs one byte more: "bä0"
    b[off + 8 + 24 + 2] = std::byte{0xa4};
    b[off + 8 + 24 + 3] = std::byte{'0'};
    b[off + 8 + 24 + 4] = std::byte{0};
    const auto x = xclbin::parse(b, "ok");
    EXPECT_EQ(x.memories[0].tag,
              "b\xc3\xa4"
              "0");
  }
  // The writer never produces such a file.
  auto x = xclbin::parse(bytes, "aws");
  x.memories[0].tag = "b\xff";
  EXPECT_THROW(x.write(), fpyga::value_error);
}

// Item 19: xclbin::read checks what the path is before reading it.
TEST_F(hardening, read_refuses_what_is_not_a_regular_file) {
  auto e = read_error(dir.string());
  EXPECT_THAT(e, HasSubstr("'" + dir.string() + "'"));
  EXPECT_THAT(e, HasSubstr("a directory, not a regular file"));
  for (const char* dev : {"/dev/zero", "/dev/urandom"}) {
    e = read_error(dev);
    EXPECT_THAT(e, HasSubstr(dev));
    EXPECT_THAT(e, HasSubstr("a character device"));
  }
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(read_error(fifo.string()), HasSubstr("a FIFO"));  // without waiting for a writer
  EXPECT_THROW(xclbin::read(dir.string()), fpyga::value_error);

  // A 50 GB sparse file is refused by its size, before a byte is read.
  const auto huge = dir / "huge.xclbin";
  std::ofstream(huge).put('x');
  std::error_code ec;
  fs::resize_file(huge, 50'000'000'000ull, ec);
  if (ec) GTEST_SKIP() << "this file system has no sparse files: " << ec.message();
  e = read_error(huge.string());
  EXPECT_THAT(e, HasSubstr("huge.xclbin"));
  EXPECT_THAT(e, HasSubstr("50000000000 bytes, more than the"));
}
