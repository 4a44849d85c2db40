// fpyga::to_fixed / from_fixed against Xilinx's own ap_fixed (the headers hls4ml ships): every
// raw pattern of 16-bit and narrower formats, the values between neighbouring patterns where the
// rounding modes differ, and many random doubles and floats of every magnitude, for every
// quantization and overflow mode.
#include <ap_fixed.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "fpyga/error.hpp"
#include "fpyga/fixed.hpp"
#include "fpyga/xclbin.hpp"

namespace {

using fpyga::fixed_format;

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
using xfixed = ap_fixed_base<W, I, S, Q, O, N>;

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
fixed_format format_of() {
  fixed_format f;
  f.width = W;
  f.integer = I;
  f.is_signed = S;
  f.q = static_cast<fpyga::quantization>(Q);
  f.o = static_cast<fpyga::overflow>(O);
  f.sat_bits = N;
  return f;
}

template <int W, class X>
std::uint64_t raw_of(const X& x) {
  ap_uint<W> r = x.range(W - 1, 0);
  return r.to_uint64();
}

std::uint64_t low(std::int64_t v, int w) {
  return w >= 64 ? static_cast<std::uint64_t>(v)
                 : static_cast<std::uint64_t>(v) & ((std::uint64_t{1} << w) - 1);
}

// Compares fpyga with Xilinx for one double; returns false (and records it) on a mismatch.
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
bool same_conversion(double x, const fixed_format& f, int& reported) {
  const xfixed<W, I, S, Q, O, N> ref(x);
  const std::uint64_t want = raw_of<W>(ref);
  const std::uint64_t got = low(fpyga::to_fixed(x, f), W);
  if (want != got && reported++ < 5)
    ADD_FAILURE() << f.to_string() << ": to_fixed(" << std::hexfloat << x << std::defaultfloat
                  << " = " << x << ") gave 0x" << std::hex << got << ", Xilinx 0x" << want
                  << std::dec;
  return want == got;
}

// Every raw pattern (W <= 16): value agrees with to_double, converts back to itself, and the
// points a quarter, a half and three quarters of an LSB around it convert as Xilinx does.
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
void check_every_pattern() {
  static_assert(W <= 16);
  const fixed_format f = format_of<W, I, S, Q, O, N>();
  const double lsb = std::ldexp(1.0, -(W - I));
  int reported = 0;
  long mismatches = 0;
  for (std::uint64_t p = 0; p < (std::uint64_t{1} << W); ++p) {
    xfixed<W, I, S, Q, O, N> v;
    v.range(W - 1, 0) = ap_uint<W>(p);
    const double value = v.to_double();
    const double got = fpyga::from_fixed(static_cast<std::int64_t>(p), f);
    if (got != value) {
      ++mismatches;
      if (reported++ < 5)
        ADD_FAILURE() << f.to_string() << ": from_fixed(0x" << std::hex << p << std::dec
                      << ") = " << got << ", Xilinx " << value;
    }
    for (double d : {0.0, 0.25, 0.5, 0.75, -0.25, -0.5, -0.75, 1.0 / 1024, -1.0 / 1024})
      if (!same_conversion<W, I, S, Q, O, N>(value + d * lsb, f, reported)) ++mismatches;
  }
  // Out of range on both sides, by a little and by a lot.
  const double span = std::ldexp(1.0, I);
  for (double k = -70; k <= 70; k += 0.37)
    if (!same_conversion<W, I, S, Q, O, N>(k * span, f, reported)) ++mismatches;
  EXPECT_EQ(mismatches, 0) << f.to_string();
}

// Random doubles: uniform over a few times the range, log-uniform over a wide exponent range,
// raw random bit patterns of doubles and of floats (finite ones), and the array conversion.
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
void check_random(int count, unsigned seed) {
  const fixed_format f = format_of<W, I, S, Q, O, N>();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uni(-3.0 * std::ldexp(1.0, I), 3.0 * std::ldexp(1.0, I));
  std::uniform_real_distribution<double> expo(-(W - I) - 12.0, I + 12.0);
  int reported = 0;
  long mismatches = 0;
  std::vector<float> floats;
  floats.reserve(count);
  for (int i = 0; i < count; ++i) {
    const double a = uni(rng);
    const double b = std::exp2(expo(rng)) * ((rng() & 1) ? -1.0 : 1.0);
    double c;
    do {
      const std::uint64_t bits = rng();
      std::memcpy(&c, &bits, sizeof c);
    } while (!std::isfinite(c));
    float g;
    do {
      const auto bits = static_cast<std::uint32_t>(rng());
      std::memcpy(&g, &bits, sizeof g);
    } while (!std::isfinite(g));
    const float h = static_cast<float>(b);
    floats.push_back(i % 2 ? g : h);
    for (double x : {a, b, c, static_cast<double>(g), static_cast<double>(h)})
      if (!same_conversion<W, I, S, Q, O, N>(x, f, reported)) ++mismatches;
  }
  // The array form (which has a fast path for AP_TRN/AP_WRAP) gives the same bits.
  std::vector<std::int64_t> out(floats.size());
  fpyga::to_fixed(floats.data(), floats.size(), out.data(), 8, f);
  for (std::size_t i = 0; i < floats.size(); ++i) {
    const xfixed<W, I, S, Q, O, N> ref(floats[i]);
    if (low(out[i], W) != raw_of<W>(ref)) {
      ++mismatches;
      if (reported++ < 5) ADD_FAILURE() << f.to_string() << ": array to_fixed(" << floats[i] << ")";
    }
  }
  EXPECT_EQ(mismatches, 0) << f.to_string();
}

// The kernels' types: hls4ml's default precision and its table types.
TEST(fixed_exhaustive, ap_fixed_16_6_trn_wrap) {
  check_every_pattern<16, 6, true, AP_TRN, AP_WRAP, 0>();
}
TEST(fixed_exhaustive, ap_fixed_16_6_rnd_sat) {
  check_every_pattern<16, 6, true, AP_RND, AP_SAT, 0>();
}
TEST(fixed_exhaustive, ap_fixed_16_6_rnd_conv_sat) {
  check_every_pattern<16, 6, true, AP_RND_CONV, AP_SAT, 0>();
}
TEST(fixed_exhaustive, ap_ufixed_16_6) {
  check_every_pattern<16, 6, false, AP_TRN, AP_WRAP, 0>();
}
TEST(fixed_exhaustive, ap_ufixed_16_0_rnd_sat) {
  check_every_pattern<16, 0, false, AP_RND, AP_SAT, 0>();
}
TEST(fixed_exhaustive, ap_fixed_16_16_int) {
  check_every_pattern<16, 16, true, AP_TRN, AP_WRAP, 0>();
}
TEST(fixed_exhaustive, ap_fixed_16_minus_2) {
  check_every_pattern<16, -2, true, AP_RND_ZERO, AP_SAT_SYM, 0>();
}
TEST(fixed_exhaustive, ap_fixed_12_20) {
  check_every_pattern<12, 20, true, AP_RND_INF, AP_SAT, 0>();
}
TEST(fixed_exhaustive, ap_fixed_16_6_wrap_n2) {
  check_every_pattern<16, 6, true, AP_TRN, AP_WRAP, 2>();
}
TEST(fixed_exhaustive, ap_fixed_16_6_wrap_sm) {
  check_every_pattern<16, 6, true, AP_RND, AP_WRAP_SM, 0>();
}
TEST(fixed_exhaustive, ap_fixed_16_6_wrap_sm_n3) {
  check_every_pattern<16, 6, true, AP_TRN, AP_WRAP_SM, 3>();
}

// Every quantization x overflow mode on an 8-bit format, signed and unsigned.
template <bool S, ap_q_mode Q>
void check_all_overflow_modes() {
  check_every_pattern<8, 3, S, Q, AP_SAT, 0>();
  check_every_pattern<8, 3, S, Q, AP_SAT_ZERO, 0>();
  check_every_pattern<8, 3, S, Q, AP_SAT_SYM, 0>();
  check_every_pattern<8, 3, S, Q, AP_WRAP, 0>();
  check_every_pattern<8, 3, S, Q, AP_WRAP, 1>();
  check_every_pattern<8, 3, S, Q, AP_WRAP, 3>();
  if constexpr (S) {  // Xilinx's ap_ufixed rejects AP_WRAP_SM (and so does fpyga)
    check_every_pattern<8, 3, S, Q, AP_WRAP_SM, 0>();
    check_every_pattern<8, 3, S, Q, AP_WRAP_SM, 1>();
    check_every_pattern<8, 3, S, Q, AP_WRAP_SM, 2>();
  }
}
TEST(fixed_modes, signed_rnd) {
  check_all_overflow_modes<true, AP_RND>();
}
TEST(fixed_modes, signed_rnd_zero) {
  check_all_overflow_modes<true, AP_RND_ZERO>();
}
TEST(fixed_modes, signed_rnd_min_inf) {
  check_all_overflow_modes<true, AP_RND_MIN_INF>();
}
TEST(fixed_modes, signed_rnd_inf) {
  check_all_overflow_modes<true, AP_RND_INF>();
}
TEST(fixed_modes, signed_rnd_conv) {
  check_all_overflow_modes<true, AP_RND_CONV>();
}
TEST(fixed_modes, signed_trn) {
  check_all_overflow_modes<true, AP_TRN>();
}
TEST(fixed_modes, signed_trn_zero) {
  check_all_overflow_modes<true, AP_TRN_ZERO>();
}
TEST(fixed_modes, unsigned_rnd) {
  check_all_overflow_modes<false, AP_RND>();
}
TEST(fixed_modes, unsigned_rnd_conv) {
  check_all_overflow_modes<false, AP_RND_CONV>();
}
TEST(fixed_modes, unsigned_trn) {
  check_all_overflow_modes<false, AP_TRN>();
}
TEST(fixed_modes, unsigned_trn_zero) {
  check_all_overflow_modes<false, AP_TRN_ZERO>();
}

TEST(fixed_random, ap_fixed_16_6) {
  check_random<16, 6, true, AP_TRN, AP_WRAP, 0>(200000, 1);
}
TEST(fixed_random, ap_fixed_16_6_rnd_sat) {
  check_random<16, 6, true, AP_RND, AP_SAT, 0>(100000, 2);
}
TEST(fixed_random, ap_fixed_18_8_rnd_sat) {
  check_random<18, 8, true, AP_RND, AP_SAT, 0>(100000, 3);
}
TEST(fixed_random, ap_fixed_18_8) {
  check_random<18, 8, true, AP_TRN, AP_WRAP, 0>(100000, 4);
}
TEST(fixed_random, ap_fixed_32_14_rnd_conv_sat_sym) {
  check_random<32, 14, true, AP_RND_CONV, AP_SAT_SYM, 0>(100000, 5);
}
TEST(fixed_random, ap_ufixed_24_4_rnd_inf_sat) {
  check_random<24, 4, false, AP_RND_INF, AP_SAT, 0>(100000, 6);
}
TEST(fixed_random, ap_fixed_48_20_trn_zero_wrap) {
  check_random<48, 20, true, AP_TRN_ZERO, AP_WRAP, 0>(50000, 7);
}
TEST(fixed_random, ap_fixed_64_32) {
  check_random<64, 32, true, AP_TRN, AP_WRAP, 0>(50000, 8);
}
TEST(fixed_random, ap_fixed_64_32_rnd_sat) {
  check_random<64, 32, true, AP_RND, AP_SAT, 0>(50000, 9);
}
TEST(fixed_random, ap_fixed_10_minus_4_rnd_min_inf) {
  check_random<10, -4, true, AP_RND_MIN_INF, AP_SAT_ZERO, 0>(100000, 10);
}
TEST(fixed_random, ap_fixed_20_30_wrap_sm) {
  check_random<20, 30, true, AP_RND, AP_WRAP_SM, 0>(100000, 11);
}

// NaN and infinities under nonfinite_policy::ap_fixed, against Xilinx's ap_fixed(double) and
// ap_fixed(float) constructors (what hls4ml's C simulation runs on its float inputs): signed
// infinities, the quiet NaN, x86's default NaN from 0/0 (sign bit set), NaNs with payloads, for
// one format of every overflow mode, the scalar and both array paths.
std::vector<double> nonfinite_doubles() {
  std::vector<double> v = {std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity(),
                           std::numeric_limits<double>::quiet_NaN(),
                           -std::numeric_limits<double>::quiet_NaN()};
  volatile double zero = 0.0;
  v.push_back(zero / zero);
  for (std::uint64_t bits : {0x7FF0000000000001ull, 0x7FF8000000000123ull, 0xFFFFFFFFFFFFFFFFull,
                             0x7FFFFFFFFFFFFFFFull, 0xFFF4000000000000ull}) {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    v.push_back(d);
  }
  return v;
}

std::vector<float> nonfinite_floats() {
  std::vector<float> v = {std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          -std::numeric_limits<float>::quiet_NaN()};
  volatile float zero = 0.0f;
  v.push_back(zero / zero);
  for (std::uint32_t bits : {0x7FC00123u, 0xFFFFFFFFu, 0x7F800001u}) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    v.push_back(f);
  }
  return v;
}

template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
void check_nonfinite() {
  const fixed_format f = format_of<W, I, S, Q, O, N>();
  const std::size_t bytes = f.storage_bytes();
  for (double x : nonfinite_doubles()) {
    const xfixed<W, I, S, Q, O, N> ref(x);
    const std::uint64_t want = raw_of<W>(ref);
    EXPECT_EQ(low(fpyga::to_fixed(x, f, fpyga::nonfinite_policy::ap_fixed), W), want)
        << f.to_string() << " of double " << x << " (sign " << std::signbit(x) << ")";
    std::int64_t out = 0;
    fpyga::to_fixed(&x, 1, &out, bytes, f, fpyga::nonfinite_policy::ap_fixed);
    EXPECT_EQ(low(out, W), want) << f.to_string() << " array of double " << x;
    EXPECT_THROW(fpyga::to_fixed(x, f), fpyga::value_error) << "rejected by default";
  }
  for (float x : nonfinite_floats()) {
    const xfixed<W, I, S, Q, O, N> ref(x);
    const std::uint64_t want = raw_of<W>(ref);
    std::int64_t out = 0;
    fpyga::to_fixed(&x, 1, &out, bytes, f, fpyga::nonfinite_policy::ap_fixed);
    EXPECT_EQ(low(out, W), want) << f.to_string() << " array of float " << x << " (sign "
                                 << std::signbit(x) << ")";
    EXPECT_THROW(fpyga::to_fixed(&x, 1, &out, bytes, f), fpyga::value_error);
  }
}

TEST(fixed_nonfinite, every_overflow_mode_as_xilinx) {
  check_nonfinite<16, 6, true, AP_TRN, AP_WRAP, 0>();
  check_nonfinite<16, 6, true, AP_RND, AP_SAT, 0>();
  check_nonfinite<16, 6, true, AP_RND_CONV, AP_SAT_SYM, 0>();
  check_nonfinite<16, 6, true, AP_TRN, AP_SAT_ZERO, 0>();
  check_nonfinite<16, 6, true, AP_TRN, AP_WRAP, 2>();
  check_nonfinite<16, 6, true, AP_TRN, AP_WRAP_SM, 0>();
  check_nonfinite<16, 6, true, AP_RND, AP_WRAP_SM, 3>();
  check_nonfinite<16, 6, false, AP_TRN, AP_WRAP, 0>();
  check_nonfinite<16, 6, false, AP_RND, AP_SAT, 0>();
  check_nonfinite<18, 8, true, AP_RND, AP_SAT, 0>();
  check_nonfinite<8, 3, true, AP_TRN_ZERO, AP_WRAP, 1>();
  check_nonfinite<32, 12, true, AP_TRN, AP_WRAP, 0>();
  check_nonfinite<64, 32, true, AP_RND, AP_SAT, 0>();
  check_nonfinite<64, 32, true, AP_TRN, AP_WRAP, 0>();
}

TEST(fixed_nonfinite, integer_bits_beyond_the_double_range_as_xilinx) {
  // With I > W + 908 the value 2^1024 * mantissa is no longer above every format: the low bits
  // come from the NaN payload, as in Xilinx's arithmetic.
  check_nonfinite<16, 1000, true, AP_TRN, AP_WRAP, 0>();
  check_nonfinite<16, 1024, true, AP_RND, AP_WRAP, 0>();
  check_nonfinite<20, 1010, false, AP_TRN, AP_WRAP, 0>();
}

TEST(fixed_array, int16_container_matches_xilinx_storage) {
  const fixed_format f = fpyga::ap_fixed_16_6();
  const std::vector<float> x = {0.0f, 1.5f, -0.3f, 31.999f, -32.0f, 40.0f, -1e-6f, 0.0009765625f};
  std::vector<std::int16_t> raw(x.size());
  fpyga::to_fixed(std::span<const float>(x), std::span<std::int16_t>(raw), f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const ap_fixed<16, 6> ref = x[i];
    std::int16_t bits;
    static_assert(sizeof(ref) == sizeof(bits), "ap_fixed<16,6> is stored in 16 bits");
    std::memcpy(&bits, &ref, sizeof bits);  // what a kernel reading an ap_fixed<16,6> buffer sees
    EXPECT_EQ(raw[i], bits) << x[i];
  }
  std::vector<float> back(x.size());
  fpyga::from_fixed(std::span<const std::int16_t>(raw), std::span<float>(back), f);
  EXPECT_EQ(back[1], 1.5f);
  EXPECT_EQ(back[5], 40.0f - 64.0f);  // AP_WRAP
}

TEST(fixed_array, narrow_signed_values_are_sign_extended_in_their_container) {
  const fixed_format f = fixed_format::parse("ap_fixed<12,4>");
  const double x = -1.0;
  std::int16_t raw = 0;
  fpyga::to_fixed(&x, 1, &raw, 2, f);
  EXPECT_EQ(raw, -256);
  std::uint16_t garbage_high = static_cast<std::uint16_t>(0xF000 | (raw & 0x0FFF)) ^ 0x7000;
  double back = 0;
  fpyga::from_fixed(&garbage_high, 2, 1, &back, f);
  EXPECT_EQ(back, -1.0);  // only the low W bits are read
}

TEST(fixed_format, parse_spellings) {
  EXPECT_EQ(fixed_format::parse("ap_fixed<16,6>"), fpyga::ap_fixed_16_6());
  const auto a = fixed_format::parse("ap_fixed<32, 14, 5, 3, 0> const *");
  EXPECT_EQ(a.width, 32);
  EXPECT_EQ(a.integer, 14);
  EXPECT_EQ(a.q, fpyga::quantization::trn);
  EXPECT_EQ(a.o, fpyga::overflow::wrap);
  const auto b = fixed_format::parse("const ap_ufixed<8, 3, AP_RND_CONV, AP_SAT_SYM>&");
  EXPECT_FALSE(b.is_signed);
  EXPECT_EQ(b.q, fpyga::quantization::rnd_conv);
  EXPECT_EQ(b.o, fpyga::overflow::sat_sym);
  const auto c = fixed_format::parse("ap_uint<12>");
  EXPECT_EQ(c.width, 12);
  EXPECT_EQ(c.integer, 12);
  EXPECT_FALSE(c.is_signed);
  EXPECT_EQ(fixed_format::parse(b.to_string()), b);
  EXPECT_EQ(fixed_format::parse("ap_fixed<18,8,AP_RND,AP_SAT,0>").storage_bytes(), 4u);
  EXPECT_EQ(fpyga::ap_fixed_16_6().max(), 32.0 - 1.0 / 1024);
  EXPECT_EQ(fpyga::ap_fixed_16_6().min(), -32.0);
}

TEST(fixed_format, from_c_type_of_metadata) {
  const auto f = fixed_format::from(fpyga::c_type::parse("ap_fixed<16, 6> const *"));
  EXPECT_EQ(f, fpyga::ap_fixed_16_6());
  EXPECT_THROW(fixed_format::from(fpyga::c_type::parse("unsigned int const *")),
               fpyga::value_error);
}

TEST(fixed_errors, bad_types_name_the_text) {
  for (const char* bad :
       {"float", "ap_fixed<16>", "ap_fixed<0,0>", "ap_fixed<65,1>", "ap_fixed<16,6,AP_FOO>",
        "ap_fixed<16,6,9>", "ap_fixed<16,x>", "ap_fixed<16,6", "ap_fixed<16,6,AP_TRN,AP_WRAP,17>",
        "ap_ufixed<16,6,AP_TRN,AP_WRAP_SM>"}) {
    try {
      (void)fixed_format::parse(bad);
      ADD_FAILURE() << "parsed " << bad;
    } catch (const fpyga::value_error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(fixed_errors, non_finite_values_and_bad_containers) {
  const auto f = fpyga::ap_fixed_16_6();
  EXPECT_THROW(fpyga::to_fixed(std::nan(""), f), fpyga::value_error);
  EXPECT_THROW(fpyga::to_fixed(std::numeric_limits<double>::infinity(), f), fpyga::value_error);
  const float x[3] = {1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f};
  std::int16_t out[3];
  try {
    fpyga::to_fixed(x, 3, out, 2, f);
    ADD_FAILURE() << "NaN converted";
  } catch (const fpyga::value_error& e) {
    EXPECT_NE(std::string(e.what()).find("element 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fpyga::to_fixed(x, 1, out, 1, f), fpyga::value_error);  // 1 byte cannot hold 16 bits
  EXPECT_THROW(fpyga::to_fixed(x, 1, out, 3, f), fpyga::value_error);
  std::vector<std::int16_t> small(2);
  EXPECT_THROW(fpyga::to_fixed(std::span<const float>(x, 3), std::span<std::int16_t>(small), f),
               fpyga::value_error);
}

}  // namespace
