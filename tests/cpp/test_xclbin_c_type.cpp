// c_type::parse on the spellings HLS front ends write into kernel metadata.
#include <gtest/gtest.h>

#include "fpyga/xclbin.hpp"

using fpyga::c_type;
using cat = fpyga::c_type::category;

TEST(c_type, plain_scalars) {
  struct row {
    const char* s;
    cat c;
    unsigned bits;
    std::size_t bytes;
  };
  const row rows[] = {
      {"int", cat::signed_integer, 32, 4},
      {"unsigned int", cat::unsigned_integer, 32, 4},
      {"unsigned", cat::unsigned_integer, 32, 4},
      {"char", cat::signed_integer, 8, 1},
      {"unsigned char", cat::unsigned_integer, 8, 1},
      {"signed char", cat::signed_integer, 8, 1},
      {"short", cat::signed_integer, 16, 2},
      {"unsigned short int", cat::unsigned_integer, 16, 2},
      {"long", cat::signed_integer, 64, 8},
      {"long long", cat::signed_integer, 64, 8},
      {"unsigned long long int", cat::unsigned_integer, 64, 8},
      {"float", cat::floating, 32, 4},
      {"double", cat::floating, 64, 8},
      {"bool", cat::unsigned_integer, 1, 1},
      {"uint8_t", cat::unsigned_integer, 8, 1},
      {"int64_t", cat::signed_integer, 64, 8},
      {"std::uint16_t", cat::unsigned_integer, 16, 2},
  };
  for (const auto& r : rows) {
    const auto t = c_type::parse(r.s);
    EXPECT_EQ(t.cat, r.c) << r.s;
    EXPECT_EQ(t.bits, r.bits) << r.s;
    EXPECT_EQ(t.storage_bytes(), r.bytes) << r.s;
    EXPECT_FALSE(t.pointer) << r.s;
    EXPECT_FALSE(t.arbitrary_precision) << r.s;
    EXPECT_EQ(t.spelling, r.s);
  }
}

TEST(c_type, pointers_and_const) {
  auto t = c_type::parse("unsigned int const *");
  EXPECT_TRUE(t.pointer);
  EXPECT_TRUE(t.is_const);
  EXPECT_EQ(t.cat, cat::unsigned_integer);
  EXPECT_EQ(t.storage_bytes(), 4u);

  t = c_type::parse("int*");
  EXPECT_TRUE(t.pointer);
  EXPECT_FALSE(t.is_const);
  EXPECT_EQ(t.cat, cat::signed_integer);

  t = c_type::parse("const float *");
  EXPECT_TRUE(t.pointer && t.is_const);
  EXPECT_EQ(t.cat, cat::floating);

  t = c_type::parse("  double*const ");  // a const pointer to mutable doubles
  EXPECT_TRUE(t.pointer);
  EXPECT_FALSE(t.is_const);
  EXPECT_EQ(t.storage_bytes(), 8u);

  t = c_type::parse("void*");
  EXPECT_TRUE(t.pointer);
  EXPECT_EQ(t.cat, cat::void_type);
  EXPECT_EQ(t.storage_bytes(), 0u);

  t = c_type::parse("const int");
  EXPECT_FALSE(t.pointer);
  EXPECT_TRUE(t.is_const);
}

TEST(c_type, arbitrary_precision_integers) {
  auto t = c_type::parse("ap_uint<512>*");
  EXPECT_TRUE(t.pointer);
  EXPECT_TRUE(t.arbitrary_precision);
  EXPECT_EQ(t.cat, cat::unsigned_integer);
  EXPECT_EQ(t.bits, 512u);
  EXPECT_EQ(t.storage_bytes(), 64u);

  t = c_type::parse("ap_int<17>");
  EXPECT_EQ(t.cat, cat::signed_integer);
  EXPECT_EQ(t.bits, 17u);
  EXPECT_EQ(t.storage_bytes(), 4u);  // Xilinx's simulation type keeps 17 bits in an int
  EXPECT_EQ(c_type::parse("ap_uint<8>").storage_bytes(), 1u);
  EXPECT_EQ(c_type::parse("ap_uint<33>").storage_bytes(), 8u);
  EXPECT_EQ(c_type::parse("ap_uint<65>").storage_bytes(), 16u);
  EXPECT_EQ(c_type::parse("ap_int< 1 >").bits, 1u);
}

TEST(c_type, fixed_point) {
  auto t = c_type::parse("ap_fixed<32, 14, 5, 3, 0> const *");
  EXPECT_TRUE(t.pointer);
  EXPECT_TRUE(t.is_const);
  EXPECT_EQ(t.cat, cat::signed_fixed);
  EXPECT_EQ(t.bits, 32u);
  EXPECT_EQ(t.integer_bits, 14);
  EXPECT_EQ(t.quantization, 5u);
  EXPECT_EQ(t.overflow, 3u);
  EXPECT_EQ(t.storage_bytes(), 4u);

  t = c_type::parse("ap_fixed<16,6>");
  EXPECT_EQ(t.cat, cat::signed_fixed);
  EXPECT_EQ(t.bits, 16u);
  EXPECT_EQ(t.integer_bits, 6);
  EXPECT_EQ(t.quantization, 5u);  // AP_TRN
  EXPECT_EQ(t.overflow, 3u);      // AP_WRAP
  EXPECT_EQ(t.storage_bytes(), 2u);

  t = c_type::parse("ap_ufixed<8, 2, AP_RND_CONV, AP_SAT>");
  EXPECT_EQ(t.cat, cat::unsigned_fixed);
  EXPECT_EQ(t.quantization, 4u);
  EXPECT_EQ(t.overflow, 0u);
  EXPECT_EQ(t.storage_bytes(), 1u);

  t = c_type::parse("ap_fixed<18,8,AP_TRN,AP_WRAP>*");
  EXPECT_EQ(t.quantization, 5u);
  EXPECT_EQ(t.overflow, 3u);
  EXPECT_EQ(t.storage_bytes(), 4u);
  EXPECT_EQ(c_type::parse("ap_fixed<16,6,AP_RND,AP_SAT_SYM>").overflow, 2u);
}

TEST(c_type, opaque_things) {
  for (const char* s : {"hls::stream<ap_axiu<32, 0, 0, 0> >&",
                        "hls::stream<float>",
                        "struct foo*",
                        "int**",
                        "int&",
                        "ap_fixed<16>",
                        "ap_fixed<16,6,AP_BOGUS>",
                        "ap_int<0>",
                        "ap_int<99999>",
                        "ap_uint<x>",
                        "long double",
                        "unsigned float",
                        "short long",
                        "foo",
                        "",
                        "   ",
                        "int<",
                        "int>",
                        "int[4]",
                        "ap_fixed<16,6,9>",
                        "ap_fixed<16,6,5,7>",
                        "char int",
                        "ap_int<8><9>",
                        "* int"}) {
    const auto t = c_type::parse(s);
    EXPECT_EQ(t.cat, cat::opaque) << '"' << s << '"';
    EXPECT_EQ(t.storage_bytes(), 0u) << s;
    EXPECT_EQ(t.spelling, s);
  }
  EXPECT_TRUE(c_type::parse("hls::stream<int>*").pointer);
}
