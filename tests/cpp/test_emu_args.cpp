// Kernel arguments on the emulated device: every C scalar type, Xilinx's ap_int/ap_uint/ap_fixed
// of several widths (passed as g++ passes them, checked against kernels compiled here with the
// real Xilinx headers), range checks, and types emu refuses at load.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "fpyga/fpyga.hpp"
#include "test_emu_util.hpp"
#include "test_support.hpp"

namespace {

using fpyga::test::compile_so;
using fpyga::test::pack_xclbin;

std::string arg_json(const std::string& name, const std::string& type, int offset, int size,
                     const std::string& kind = "scalar") {
  return R"({"name": ")" + name + R"(", "type": ")" + type + R"(", "kind": ")" + kind +
         R"(", "offset": )" + std::to_string(offset) + R"(, "size": )" + std::to_string(size) + "}";
}

std::string one_kernel_json(const std::string& kernel, const std::vector<std::string>& args) {
  std::string a;
  for (const auto& s : args) a += (a.empty() ? "" : ", ") + s;
  return R"({"mode": "sw_emu", "platform": "test", "kernels": [{"name": ")" + kernel +
         R"(", "language": "c++", "args": [)" + a + R"(], "instances": [{"name": ")" + kernel +
         R"(_1", "base_address": 0}]}]})";
}

// ---------------------------------------------------------------------------------------------
// C scalars

const char* scalars_source = R"(
extern "C" void scalars(signed char a, unsigned short b, int c, long long d, float e, double f,
                        unsigned long g, bool h, unsigned char i, long long* out) {
  out[0] = a; out[1] = b; out[2] = c; out[3] = d;
  double* fo = reinterpret_cast<double*>(out);
  fo[4] = e; fo[5] = f;
  out[6] = static_cast<long long>(g); out[7] = h; out[8] = i;
}
)";

std::string scalars_xclbin() {
  static const std::string path = pack_xclbin(
      "scalars", one_kernel_json("scalars", {arg_json("a", "signed char", 0x10, 4), arg_json("b", "unsigned short", 0x18, 4),
                                             arg_json("c", "int", 0x20, 4), arg_json("d", "long long", 0x28, 8),
                                             arg_json("e", "float", 0x34, 4), arg_json("f", "double", 0x3c, 8),
                                             arg_json("g", "unsigned long", 0x48, 8), arg_json("h", "bool", 0x54, 4),
                                             arg_json("i", "unsigned char", 0x5c, 4),
                                             arg_json("out", "long long*", 0x64, 8, "global")}),
      compile_so("scalars", scalars_source));
  return path;
}

TEST(emu_args, c_scalars_reach_the_kernel_with_their_declared_types) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, scalars_xclbin());
  auto k = ov.kernel("scalars");
  fpyga::buffer out(dev, 9 * 8);
  k.call(-128, 65535u, -2147483647 - 1, -(1ll << 62), 1.5f, -2.25, 18446744073709551615ull, true, 200, out);
  out.sync_from_device();
  auto v = out.as<long long>();
  EXPECT_EQ(v[0], -128);
  EXPECT_EQ(v[1], 65535);
  EXPECT_EQ(v[2], -2147483647ll - 1);
  EXPECT_EQ(v[3], -(1ll << 62));
  double f[2];
  std::memcpy(f, &v[4], 16);
  EXPECT_EQ(f[0], 1.5);
  EXPECT_EQ(f[1], -2.25);
  EXPECT_EQ(static_cast<unsigned long long>(v[6]), 18446744073709551615ull);
  EXPECT_EQ(v[7], 1);
  EXPECT_EQ(v[8], 200);
  // Integers convert to floating-point arguments; a double narrows to float.
  k.call(1, 2, 3, 4, 7, 0.5f, 5u, false, 0, out);
  out.sync_from_device();
  std::memcpy(f, &v[4], 16);
  EXPECT_EQ(f[0], 7.0);
  EXPECT_EQ(f[1], 0.5);
  EXPECT_EQ(v[7], 0);
}

TEST(emu_args, scalars_out_of_range_or_of_the_wrong_kind_are_errors) {
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, scalars_xclbin());
  auto k = ov.kernel("scalars");
  fpyga::buffer out(dev, 9 * 8);
  auto expect_value_error = [&](auto&& fn, const char* arg) {
    try {
      fn();
      ADD_FAILURE() << "accepted a bad value for " << arg;
    } catch (const fpyga::value_error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + arg + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("scalars"), std::string::npos) << e.what();
    }
  };
  expect_value_error([&] { k.call(128, 0, 0, 0, 0.f, 0.0, 0u, false, 0, out); }, "a");
  expect_value_error([&] { k.call(-129, 0, 0, 0, 0.f, 0.0, 0u, false, 0, out); }, "a");
  expect_value_error([&] { k.call(0, 65536, 0, 0, 0.f, 0.0, 0u, false, 0, out); }, "b");
  expect_value_error([&] { k.call(0, -1, 0, 0, 0.f, 0.0, 0u, false, 0, out); }, "b");
  expect_value_error([&] { k.call(0, 0, 1ll << 31, 0, 0.f, 0.0, 0u, false, 0, out); }, "c");
  expect_value_error([&] { k.call(0, 0, 0, 1ull << 63, 0.f, 0.0, 0u, false, 0, out); }, "d");
  expect_value_error([&] { k.call(0, 0, 0, 0, 1e300, 0.0, 0u, false, 0, out); }, "e");
  expect_value_error([&] { k.call(0, 0, 0, 0, 0.f, 0.0, -1, false, 0, out); }, "g");
  expect_value_error([&] { k.call(0, 0, 0, 0, 0.f, 0.0, 0u, 2, 0, out); }, "h");
  EXPECT_THROW(k.call(0.5, 0, 0, 0, 0.f, 0.0, 0u, false, 0, out), fpyga::type_error);
  EXPECT_THROW(k.call(out, 0, 0, 0, 0.f, 0.0, 0u, false, 0, out), fpyga::type_error);
  EXPECT_THROW(k.call(0, 0, 0, 0, 0.f, 0.0, 0u, false, 0, 5), fpyga::type_error);
  EXPECT_THROW(k.call(0, 0, 0, 0, 0.f, 0.0, 0u, false, 0), fpyga::type_error);
  // The device is still usable.
  k.call(1, 1, 1, 1, 1.f, 1.0, 1u, true, 1, out);
  out.sync_from_device();
  EXPECT_EQ(out.as<long long>()[8], 1);
}

// ---------------------------------------------------------------------------------------------
// Xilinx arbitrary-precision types

const char* ap_source = R"(
#include <ap_int.h>
#include <ap_fixed.h>
extern "C" void apk(ap_int<5> a, ap_uint<65> b, ap_fixed<16, 6> c, ap_uint<512> d,
                    ap_ufixed<8, 2, AP_RND> e, ap_int<64> f, long long* out) {
  out[0] = a.to_int64();
  out[1] = b.range(63, 0).to_uint64();
  out[2] = b.range(64, 64).to_uint64();
  double* fo = reinterpret_cast<double*>(out);
  fo[3] = c.to_double();
  out[4] = d.range(63, 0).to_uint64();
  out[5] = d.range(511, 448).to_uint64();
  fo[6] = e.to_double();
  out[7] = f.to_int64();
  a = 0;  // the callee owns its parameter copies
  c = 0;
}
)";

std::string ap_xclbin() {
  static const std::string path = pack_xclbin(
      "apk", one_kernel_json("apk", {arg_json("a", "ap_int<5>", 0x10, 4), arg_json("b", "ap_uint<65>", 0x18, 12),
                                     arg_json("c", "ap_fixed<16, 6>", 0x28, 4), arg_json("d", "ap_uint<512>", 0x30, 64),
                                     arg_json("e", "ap_ufixed<8, 2, 0, 3, 0>", 0x74, 4),
                                     arg_json("f", "ap_int<64>", 0x7c, 8),
                                     arg_json("out", "long long*", 0x88, 8, "global")}),
      compile_so("apk", ap_source, true));
  return path;
}

TEST(emu_args, ap_types_are_passed_as_gxx_passes_them) {
  if (fpyga::test::hls_include_dir().empty()) {
    if (fpyga::test::under_ci()) FAIL() << "Xilinx HLS headers (hls4ml's ap_types) not found under CI";
    GTEST_SKIP() << "Xilinx HLS headers not found (install requirements.txt into .venv)";
  }
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, ap_xclbin());
  auto k = ov.kernel("apk");
  fpyga::buffer out(dev, 8 * 8);
  std::byte d[64] = {};
  const std::uint64_t lo = 0x0123456789abcdefull, hi = 0xfedcba9876543210ull;
  std::memcpy(d, &lo, 8);
  std::memcpy(d + 56, &hi, 8);
  std::byte b[16] = {};
  const std::uint64_t blo = 42, bhi = 1;
  std::memcpy(b, &blo, 8);
  std::memcpy(b + 8, &bhi, 8);
  k.call(-3, std::span<const std::byte>(b), -1.5, std::span<const std::byte>(d), 0.3, -(1ll << 60), out);
  out.sync_from_device();
  auto v = out.as<long long>();
  double f[8];
  std::memcpy(f, v.data(), 64);
  EXPECT_EQ(v[0], -3);
  EXPECT_EQ(v[1], 42);
  EXPECT_EQ(v[2], 1);
  EXPECT_EQ(f[3], -1.5);
  EXPECT_EQ(static_cast<std::uint64_t>(v[4]), lo);
  EXPECT_EQ(static_cast<std::uint64_t>(v[5]), hi);
  EXPECT_EQ(f[6], 19.0 / 64);  // 0.3 * 64 = 19.2, rounded (AP_RND) to 19
  EXPECT_EQ(v[7], -(1ll << 60));

  // ap_fixed<16,6> quantizes toward minus infinity (AP_TRN): -0.0001 becomes -1/1024.
  k.call(15, 7u, -0.0001, 0u, 0.0, 0, out);
  out.sync_from_device();
  std::memcpy(f, v.data(), 64);
  EXPECT_EQ(v[0], 15);
  EXPECT_EQ(v[1], 7);
  EXPECT_EQ(v[2], 0);
  EXPECT_EQ(f[3], -1.0 / 1024);

  // Ranges come from the declared widths.
  EXPECT_THROW(k.call(16, 0u, 0.0, 0u, 0.0, 0, out), fpyga::value_error);   // ap_int<5>: -16..15
  EXPECT_THROW(k.call(-17, 0u, 0.0, 0u, 0.0, 0, out), fpyga::value_error);
  EXPECT_THROW(k.call(0, 0u, 32.0, 0u, 0.0, 0, out), fpyga::value_error);   // ap_fixed<16,6>: -32..<32
  EXPECT_THROW(k.call(0, 0u, 0.0, 0u, 4.0, 0, out), fpyga::value_error);    // ap_ufixed<8,2>: 0..<4
  EXPECT_THROW(k.call(0, 0u, 0.0, 0u, -0.5, 0, out), fpyga::value_error);
  EXPECT_THROW(k.call(0, -1, 0.0, 0u, 0.0, 0, out), fpyga::value_error);    // unsigned
  EXPECT_THROW(k.call(0, std::span<const std::byte>(b, 8), 0.0, 0u, 0.0, 0, out), fpyga::value_error);
  EXPECT_THROW(k.call(0, 1.5, 0.0, 0u, 0.0, 0, out), fpyga::type_error);    // float for ap_uint<65>

  // Through start() (arguments copied for a worker thread) too.
  auto r = k.start(-16, 3u, 31.5, std::span<const std::byte>(d), 3.984375, 5, out);
  r.wait();
  out.sync_from_device();
  std::memcpy(f, v.data(), 64);
  EXPECT_EQ(v[0], -16);
  EXPECT_EQ(v[1], 3);
  EXPECT_EQ(f[3], 31.5);
  EXPECT_EQ(static_cast<std::uint64_t>(v[5]), hi);
  EXPECT_EQ(f[6], 3.984375);
}

TEST(emu_args, the_toolchains_scale_kernel_takes_an_ap_fixed_by_value) {
  FPYGA_REQUIRE_FILE(path, fpyga::test::built_xclbin_dir() / "scale.xclbin");
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path.string());
  auto k = ov.kernel("scale");
  const int n = 8;
  fpyga::buffer in(dev, n * 4), out(dev, n * 4);
  for (int i = 0; i < n; ++i) in.as<int>()[i] = i - 4;
  in.sync_to_device();
  k.call(in, out, n, 2.5);
  out.sync_from_device();
  for (int i = 0; i < n; ++i) {
    const double x = (i - 4) * 2.5;
    EXPECT_EQ(out.as<int>()[i], static_cast<int>(std::floor(x))) << i;
  }
}

// ---------------------------------------------------------------------------------------------
// What emu refuses at load

TEST(emu_args, a_kernel_missing_from_the_so_is_an_error_naming_it_and_the_file) {
  const auto path = pack_xclbin("missing", one_kernel_json("not_there", {arg_json("x", "int", 0x10, 4)}),
                                compile_so("missing", "extern \"C\" void something_else(int) {}\n"));
  auto dev = fpyga::device::open("emu");
  try {
    fpyga::overlay ov(dev, path);
    FAIL() << "loaded an xclbin whose kernel is missing";
  } catch (const fpyga::xclbin_error& e) {
    EXPECT_NE(std::string(e.what()).find("not_there"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing.xclbin"), std::string::npos) << e.what();
  }
  fpyga::overlay ok(dev, fpyga::test::small_vadd_xclbin());
  EXPECT_TRUE(ok.loaded());
}

TEST(emu_args, types_emu_cannot_pass_are_refused_at_load) {
  const auto so = compile_so("opaque", "struct foo { int x; };\nextern \"C\" void opaque(foo) {}\n");
  auto dev = fpyga::device::open("emu");
  for (const char* type : {"struct foo", "half", "hls::stream<int> &", "int**"}) {
    const auto path = pack_xclbin("opaque", one_kernel_json("opaque", {arg_json("v", type, 0x10, 4)}), so);
    try {
      fpyga::overlay ov(dev, path);
      ADD_FAILURE() << "loaded a kernel taking " << type;
    } catch (const fpyga::not_supported_error& e) {
      EXPECT_NE(std::string(e.what()).find("'v'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(type), std::string::npos) << e.what();
    }
  }
  const auto stream = pack_xclbin("stream", one_kernel_json("opaque", {arg_json("v", "int", 0x10, 4, "stream")}), so);
  EXPECT_THROW(fpyga::overlay(dev, stream), fpyga::xclbin_error);  // an unconnected stream
  fpyga::overlay ok(dev, fpyga::test::small_vadd_xclbin());
  EXPECT_TRUE(ok.loaded());
}

TEST(emu_args, an_awsxclbin_is_refused_with_its_image_id) {
  FPYGA_REQUIRE_FILE(path, fpyga::test::shared_xclbin_dir() / "aws_vector_addition_2018_3.awsxclbin");
  auto dev = fpyga::device::open("emu");
  try {
    fpyga::overlay ov(dev, path.string());
    FAIL() << "emu loaded an awsxclbin";
  } catch (const fpyga::not_supported_error& e) {
    EXPECT_NE(std::string(e.what()).find("agfi-"), std::string::npos) << e.what();
  }
  fpyga::overlay ok(dev, fpyga::test::small_vadd_xclbin());
  EXPECT_TRUE(ok.loaded());
}

}  // namespace
