// Float <-> ap_fixed raw bits. The conversion works on the exact value of the double (a 53-bit
// integer mantissa times a power of two) with integer arithmetic, so the result does not depend on
// the host's floating-point rounding; the overflow handling follows what Xilinx's ap_fixed does
// for each mode, including its saturation-bit (N) variants of AP_WRAP and AP_WRAP_SM.
#include "fpyga/fixed.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "fpyga/xclbin.hpp"

namespace fpyga {
namespace {

using i128 = __int128;
using u64 = std::uint64_t;

constexpr const char* q_names[] = {"AP_RND",      "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF",
                                   "AP_RND_CONV", "AP_TRN",      "AP_TRN_ZERO"};
constexpr const char* o_names[] = {"AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM", "AP_WRAP", "AP_WRAP_SM"};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

[[noreturn]] void bad_type(std::string_view type, const std::string& why) {
  throw value_error("fixed-point type '" + std::string(type) + "': " + why);
}

long parse_long(std::string_view text, std::string_view type) {
  text = trim(text);
  long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    bad_type(type, "expected an integer, found '" + std::string(text) + "'");
  return v;
}

template <std::size_t N>
int parse_mode(std::string_view text, const char* const (&names)[N], std::string_view type) {
  text = trim(text);
  for (std::size_t i = 0; i < N; ++i)
    if (text == names[i]) return static_cast<int>(i);
  if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
    const long v = parse_long(text, type);
    if (v >= 0 && v < static_cast<long>(N)) return static_cast<int>(v);
  }
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) expected += (i ? ", " : "") + std::string(names[i]);
  bad_type(type, "unknown mode '" + std::string(text) + "' (expected one of " + expected +
                     " or 0.." + std::to_string(N - 1) + ")");
}

// Two's-complement reduction of v into `w` bits, sign-extended when `is_signed`.
i128 wrap_bits(i128 v, int w, bool is_signed) {
  const u64 mask = w >= 64 ? ~u64{0} : ((u64{1} << w) - 1);
  u64 bits = static_cast<u64>(v) & mask;
  if (is_signed && w < 64 && (bits >> (w - 1)) & 1) bits |= ~mask;
  return is_signed ? static_cast<i128>(static_cast<std::int64_t>(bits)) : static_cast<i128>(bits);
}

u64 low_bits(u64 v, int w) {
  return w >= 64 ? v : (v & ((u64{1} << w) - 1));
}

std::int64_t extend(u64 bits, const fixed_format& f) {
  bits = low_bits(bits, f.width);
  if (f.is_signed && f.width < 64 && (bits >> (f.width - 1)) & 1)
    bits |= ~((u64{1} << f.width) - 1);
  return static_cast<std::int64_t>(bits);
}

// The quantized integer round_q(x * 2^F), as a 128-bit value with a flag for magnitudes beyond
// it (then only its sign and its low 64 bits, which are zero, matter).
struct quantized {
  i128 value = 0;
  i128 floor = 0;     ///< before rounding (Xilinx reads AP_WRAP_SM's lD bit from it)
  bool huge = false;  ///< |value| >= 2^64 * 2^53: certainly out of range, low bits zero
  bool negative = false;
};

// The quantized integer of (-1)^neg * mant * 2^k, where mant < 2^53 and k already includes F.
quantized quantize_parts(bool neg, u64 mant, long k, const fixed_format& f) {
  quantized r;
  if (k >= 0) {
    if (k >= 64) {
      r.huge = true;
      r.negative = neg;
      return r;
    }
    i128 v = static_cast<i128>(mant) << k;
    r.value = r.floor = neg ? -v : v;
    r.negative = neg;
    return r;
  }
  // Split mant * 2^k into floor and a fraction in [0, 1), compared with one half.
  const long s = -k;
  i128 floor_v;
  int frac_vs_half;  // -1 below, 0 exactly half, +1 above
  bool frac_zero;
  if (s > 62) {  // |x * 2^F| < 2^-9: floor is 0 or -1, the fraction is tiny or nearly one
    floor_v = neg ? -1 : 0;
    frac_zero = false;
    frac_vs_half = neg ? 1 : -1;
  } else {
    const u64 one = u64{1} << s;
    const u64 q = mant >> s;
    const u64 rem = mant & (one - 1);
    u64 frac_num;
    if (!neg) {
      floor_v = static_cast<i128>(q);
      frac_num = rem;
    } else if (rem == 0) {
      floor_v = -static_cast<i128>(q);
      frac_num = 0;
    } else {
      floor_v = -static_cast<i128>(q) - 1;
      frac_num = one - rem;
    }
    frac_zero = frac_num == 0;
    const u64 half = one >> 1;
    frac_vs_half = frac_num < half ? -1 : (frac_num == half ? 0 : 1);
  }
  bool up = false;
  if (!frac_zero) {
    switch (f.q) {
      case quantization::trn:
        up = false;
        break;
      case quantization::trn_zero:
        up = neg;
        break;
      case quantization::rnd:
        up = frac_vs_half >= 0;
        break;
      case quantization::rnd_zero:
        up = frac_vs_half > 0 || (frac_vs_half == 0 && neg);
        break;
      case quantization::rnd_min_inf:
        up = frac_vs_half > 0;
        break;
      case quantization::rnd_inf:
        up = frac_vs_half > 0 || (frac_vs_half == 0 && !neg);
        break;
      case quantization::rnd_conv:
        up = frac_vs_half > 0 || (frac_vs_half == 0 && (static_cast<u64>(floor_v) & 1));
        break;
    }
  }
  r.floor = floor_v;
  r.value = floor_v + (up ? 1 : 0);
  r.negative = r.value < 0;
  return r;
}

quantized quantize(double x, const fixed_format& f) {
  if (x == 0.0) return {};
  int e = 0;
  const double m = std::frexp(x, &e);  // x = m * 2^e, 0.5 <= |m| < 1
  const u64 mant = static_cast<u64>(std::ldexp(std::fabs(m), 53));  // exact: < 2^53
  return quantize_parts(m < 0, mant, static_cast<long>(e) - 53 + f.fraction(), f);
}

// NaN and infinities as Xilinx's ap_fixed(double) reads them: like any double, the biased
// exponent minus 1023 (here 1024) and the mantissa with its implicit leading one, so the value is
// (-1)^sign * (2^52 + payload) * 2^(1024 - 52).
quantized quantize_nonfinite(double x, const fixed_format& f) {
  u64 bits = 0;
  std::memcpy(&bits, &x, sizeof bits);
  const bool neg = (bits >> 63) & 1;
  const u64 mant = (u64{1} << 52) | (bits & ((u64{1} << 52) - 1));
  return quantize_parts(neg, mant, 1024L - 52 + f.fraction(), f);
}

[[noreturn]] void reject_nonfinite(double x, const fixed_format& f, const std::string& what) {
  throw value_error("to_fixed: " + what + " is " + std::to_string(x) + ", which " +
                    f.to_string() +
                    " cannot represent (nonfinite_policy::ap_fixed converts it as Xilinx's "
                    "ap_fixed constructor does)");
}

std::int64_t reduce(const quantized& v, const fixed_format& f) {
  const int w = f.width;
  const i128 one = 1;
  const i128 hi = f.is_signed ? (one << (w - 1)) - 1 : (one << w) - 1;
  i128 lo = f.is_signed ? -(one << (w - 1)) : 0;
  if (f.is_signed && f.o == overflow::sat_sym) lo = -hi;
  const bool over = v.huge ? !v.negative : v.value > hi;
  const bool under = v.huge ? v.negative : v.value < lo;
  const u64 wrapped = v.huge ? 0 : static_cast<u64>(wrap_bits(v.value, w, f.is_signed));
  if (!over && !under) return extend(wrapped, f);
  const bool sign = v.negative;
  const u64 sign_bit = u64{1} << (w - 1);
  switch (f.o) {
    case overflow::sat:
    case overflow::sat_sym:
      return extend(static_cast<u64>(over ? hi : lo), f);
    case overflow::sat_zero:
      return 0;
    case overflow::wrap: {
      u64 bits = wrapped;
      const int n = f.sat_bits;
      if (n == 0) return extend(bits, f);
      if (f.is_signed) {
        // The sign bit takes the source's sign, the next N-1 bits its saturation pattern.
        bits = sign ? (bits | sign_bit) : (bits & ~sign_bit);
        for (int b = w - n; b <= w - 2; ++b)
          bits = sign ? (bits & ~(u64{1} << b)) : (bits | (u64{1} << b));
      } else {
        for (int b = w - n; b <= w - 1; ++b) bits |= u64{1} << b;
      }
      return extend(bits, f);
    }
    case overflow::wrap_sm: {
      u64 bits = low_bits(wrapped, w);
      const bool ro = (bits >> (w - 1)) & 1;
      const int n = f.sat_bits;
      const u64 mask = w >= 64 ? ~u64{0} : ((u64{1} << w) - 1);
      if (n == 0) {
        // lD: the bit just above the W kept bits of the value before rounding.
        const bool ld = v.huge ? false : ((static_cast<unsigned __int128>(v.floor) >> w) & 1);
        if (ld != ro) {
          bits = ~bits & mask;
          bits = ld ? (bits | sign_bit) : (bits & ~sign_bit);
        }
      } else {
        if (n == 1 && sign != ro) {
          bits = ~bits & mask;
        } else if (n > 1) {
          const bool lno = (bits >> (w - n)) & 1;
          if (lno == sign) bits = ~bits & mask;
          for (int b = w - n; b <= w - 2; ++b)
            bits = sign ? (bits & ~(u64{1} << b)) : (bits | (u64{1} << b));
        }
        bits = sign ? (bits | sign_bit) : (bits & ~sign_bit);
      }
      return extend(bits, f);
    }
  }
  return extend(wrapped, f);
}

void check_bytes(std::size_t bytes, const fixed_format& f, const char* what) {
  if (bytes != 1 && bytes != 2 && bytes != 4 && bytes != 8)
    throw value_error(std::string(what) + ": element width " + std::to_string(bytes) +
                      " bytes for " + f.to_string() + " (expected 1, 2, 4 or 8)");
  if (bytes * 8 < static_cast<std::size_t>(f.width))
    throw value_error(std::string(what) + ": " + std::to_string(bytes) +
                      "-byte elements cannot hold " + f.to_string() + " (needs " +
                      std::to_string(f.storage_bytes()) + ")");
}

void store(void* out, std::size_t i, std::size_t bytes, std::int64_t v) {
  auto* p = static_cast<unsigned char*>(out) + i * bytes;
  switch (bytes) {
    case 1: {
      auto t = static_cast<std::int8_t>(v);
      std::memcpy(p, &t, 1);
      break;
    }
    case 2: {
      auto t = static_cast<std::int16_t>(v);
      std::memcpy(p, &t, 2);
      break;
    }
    case 4: {
      auto t = static_cast<std::int32_t>(v);
      std::memcpy(p, &t, 4);
      break;
    }
    default:
      std::memcpy(p, &v, 8);
      break;
  }
}

u64 load(const void* in, std::size_t i, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(in) + i * bytes;
  switch (bytes) {
    case 1: {
      std::uint8_t t;
      std::memcpy(&t, p, 1);
      return t;
    }
    case 2: {
      std::uint16_t t;
      std::memcpy(&t, p, 2);
      return t;
    }
    case 4: {
      std::uint32_t t;
      std::memcpy(&t, p, 4);
      return t;
    }
    default: {
      u64 t;
      std::memcpy(&t, p, 8);
      return t;
    }
  }
}

template <class F>
void to_fixed_array(const F* in, std::size_t n, void* out, std::size_t out_bytes,
                    const fixed_format& f, nonfinite_policy policy) {
  f.validate();
  check_bytes(out_bytes, f, "to_fixed");
  // The common case (ap_fixed<16,6>-like: AP_TRN, AP_WRAP, no saturation bits) in one floor and
  // one mask per value; exact because |x * 2^F| of a float or double stays below 2^63 here.
  const bool fast = f.q == quantization::trn && f.o == overflow::wrap && f.sat_bits == 0 &&
                    f.width <= 32 && f.fraction() >= -16 && f.fraction() <= 32;
  const double scale = std::ldexp(1.0, f.fraction());
  const double limit = 0x1p62;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(in[i]);
    if (!std::isfinite(x)) {
      if (policy != nonfinite_policy::ap_fixed)
        reject_nonfinite(x, f, "element " + std::to_string(i));
      store(out, i, out_bytes, reduce(quantize_nonfinite(x, f), f));
      continue;
    }
    const double scaled = x * scale;
    if (fast && std::fabs(scaled) < limit && (scaled != 0.0 || x == 0.0)) {
      const auto v = static_cast<std::int64_t>(std::floor(scaled));
      store(out, i, out_bytes, extend(static_cast<u64>(v), f));
    } else {
      store(out, i, out_bytes, reduce(quantize(x, f), f));
    }
  }
}

template <class F>
void from_fixed_array(const void* in, std::size_t in_bytes, std::size_t n, F* out,
                      const fixed_format& f) {
  f.validate();
  check_bytes(in_bytes, f, "from_fixed");
  const double scale = std::ldexp(1.0, -f.fraction());
  const bool exact = f.width <= 53;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t v = extend(load(in, i, in_bytes), f);
    const double d = exact ? static_cast<double>(v) * scale : from_fixed(v, f);
    out[i] = static_cast<F>(d);
  }
}

}  // namespace

void fixed_format::validate() const {
  if (width < 1 || width > 64)
    throw value_error("fixed-point type " + to_string() + ": width " + std::to_string(width) +
                      " outside 1..64 (wider types are not supported by fpyga's conversion)");
  if (integer < -1024 || integer > 1024)
    throw value_error("fixed-point type " + to_string() + ": integer bits " +
                      std::to_string(integer) + " outside -1024..1024");
  if (static_cast<unsigned>(q) > 6)
    throw value_error("fixed-point type " + to_string() + ": unknown quantization mode " +
                      std::to_string(static_cast<unsigned>(q)));
  if (static_cast<unsigned>(o) > 4)
    throw value_error("fixed-point type " + to_string() + ": unknown overflow mode " +
                      std::to_string(static_cast<unsigned>(o)));
  if (!is_signed && o == overflow::wrap_sm)
    throw value_error("fixed-point type " + to_string() +
                      ": AP_WRAP_SM needs a signed type (as in Xilinx's ap_ufixed)");
  if (sat_bits < 0 || sat_bits > width)
    throw value_error("fixed-point type " + to_string() + ": saturation bits " +
                      std::to_string(sat_bits) + " outside 0..W");
}

fixed_format fixed_format::parse(std::string_view type) {
  std::string_view s = trim(type);
  // Drop qualifiers around the type: "const ap_fixed<...> *", "ap_fixed<...> const*".
  for (bool again = true; again;) {
    again = false;
    for (std::string_view suffix : {"*", "&", "const"}) {
      if (s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix) {
        s = trim(s.substr(0, s.size() - suffix.size()));
        again = true;
      }
    }
    if (s.substr(0, 6) == "const ") {
      s = trim(s.substr(6));
      again = true;
    }
  }
  const auto lt = s.find('<');
  if (lt == std::string_view::npos || s.back() != '>')
    bad_type(type, "expected ap_fixed<W, I, ...>, ap_ufixed<...>, ap_int<W> or ap_uint<W>");
  const std::string_view name = trim(s.substr(0, lt));
  std::vector<std::string_view> args;
  std::string_view body = s.substr(lt + 1, s.size() - lt - 2);
  while (true) {
    const auto comma = body.find(',');
    args.push_back(trim(body.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    body = body.substr(comma + 1);
  }
  fixed_format f;
  if (name == "ap_int" || name == "ap_uint") {
    if (args.size() != 1) bad_type(type, "expected one template argument");
    f.width = f.integer = static_cast<int>(parse_long(args[0], type));
    f.is_signed = name == "ap_int";
  } else if (name == "ap_fixed" || name == "ap_ufixed") {
    if (args.size() < 2 || args.size() > 5) bad_type(type, "expected 2 to 5 template arguments");
    f.width = static_cast<int>(parse_long(args[0], type));
    f.integer = static_cast<int>(parse_long(args[1], type));
    f.is_signed = name == "ap_fixed";
    if (args.size() > 2) f.q = static_cast<quantization>(parse_mode(args[2], q_names, type));
    if (args.size() > 3) f.o = static_cast<overflow>(parse_mode(args[3], o_names, type));
    if (args.size() > 4) f.sat_bits = static_cast<int>(parse_long(args[4], type));
  } else {
    bad_type(type,
             "expected ap_fixed, ap_ufixed, ap_int or ap_uint, found '" + std::string(name) + "'");
  }
  try {
    f.validate();
  } catch (const value_error& e) {
    bad_type(type, e.what());
  }
  return f;
}

fixed_format fixed_format::from(const c_type& t) {
  fixed_format f;
  switch (t.cat) {
    case c_type::category::signed_fixed:
    case c_type::category::unsigned_fixed:
      f.width = static_cast<int>(t.bits);
      f.integer = t.integer_bits;
      f.is_signed = t.cat == c_type::category::signed_fixed;
      f.q = static_cast<quantization>(t.quantization);
      f.o = static_cast<overflow>(t.overflow);
      break;
    case c_type::category::signed_integer:
    case c_type::category::unsigned_integer:
      if (t.arbitrary_precision) {
        f.width = f.integer = static_cast<int>(t.bits);
        f.is_signed = t.cat == c_type::category::signed_integer;
        break;
      }
      [[fallthrough]];
    default:
      throw value_error("type '" + t.spelling +
                        "' is not an ap_fixed, ap_ufixed, ap_int or ap_uint type");
  }
  f.validate();
  return f;
}

std::string fixed_format::to_string() const {
  std::string s = std::string(is_signed ? "ap_fixed<" : "ap_ufixed<") + std::to_string(width) +
                  "," + std::to_string(integer);
  if (q != quantization::trn || o != overflow::wrap || sat_bits != 0) {
    const auto qi = static_cast<unsigned>(q), oi = static_cast<unsigned>(o);
    s += std::string(",") + (qi < 7 ? q_names[qi] : std::to_string(qi)) + "," +
         (oi < 5 ? o_names[oi] : std::to_string(oi)) + "," + std::to_string(sat_bits);
  }
  return s + ">";
}

std::size_t fixed_format::storage_bytes() const {
  return width <= 8 ? 1 : width <= 16 ? 2 : width <= 32 ? 4 : 8;
}

double fixed_format::lsb() const {
  return std::ldexp(1.0, -fraction());
}

double fixed_format::min() const {
  if (!is_signed) return 0.0;
  const double m = -std::ldexp(1.0, width - 1);
  return std::ldexp(o == overflow::sat_sym ? m + 1 : m, -fraction());
}

double fixed_format::max() const {
  return std::ldexp(std::ldexp(1.0, is_signed ? width - 1 : width) - 1, -fraction());
}

std::int64_t to_fixed(double x, const fixed_format& f, nonfinite_policy policy) {
  f.validate();
  if (!std::isfinite(x)) {
    if (policy != nonfinite_policy::ap_fixed) reject_nonfinite(x, f, "the value");
    return reduce(quantize_nonfinite(x, f), f);
  }
  return reduce(quantize(x, f), f);
}

double from_fixed(std::int64_t raw, const fixed_format& f) {
  f.validate();
  const std::int64_t v = extend(static_cast<u64>(raw), f);
  if (f.is_signed) return std::ldexp(static_cast<double>(v), -f.fraction());
  return std::ldexp(static_cast<double>(static_cast<u64>(v)), -f.fraction());
}

void to_fixed(const float* in, std::size_t n, void* out, std::size_t out_bytes,
              const fixed_format& f, nonfinite_policy policy) {
  to_fixed_array(in, n, out, out_bytes, f, policy);
}
void to_fixed(const double* in, std::size_t n, void* out, std::size_t out_bytes,
              const fixed_format& f, nonfinite_policy policy) {
  to_fixed_array(in, n, out, out_bytes, f, policy);
}
void from_fixed(const void* in, std::size_t in_bytes, std::size_t n, float* out,
                const fixed_format& f) {
  from_fixed_array(in, in_bytes, n, out, f);
}
void from_fixed(const void* in, std::size_t in_bytes, std::size_t n, double* out,
                const fixed_format& f) {
  from_fixed_array(in, in_bytes, n, out, f);
}

}  // namespace fpyga
