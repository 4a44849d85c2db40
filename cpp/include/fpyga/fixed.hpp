// Host-side conversion between floating point and the raw bits of Xilinx ap_fixed / ap_ufixed
// values, bit-exact with Xilinx's own ap_fixed(double) constructor and to_double(), so a host
// can fill a kernel's ap_fixed buffers from floats without compiling Xilinx's headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "fpyga/error.hpp"

namespace fpyga {

struct c_type;

/// Quantization modes, numbered as Xilinx's `ap_q_mode` (AP_RND = 0 ... AP_TRN_ZERO = 6).
enum class quantization : std::uint8_t {
  rnd = 0,          ///< AP_RND: round half towards plus infinity
  rnd_zero = 1,     ///< AP_RND_ZERO: round half towards zero
  rnd_min_inf = 2,  ///< AP_RND_MIN_INF: round half towards minus infinity
  rnd_inf = 3,      ///< AP_RND_INF: round half away from zero
  rnd_conv = 4,     ///< AP_RND_CONV: round half to even
  trn = 5,          ///< AP_TRN: truncate towards minus infinity (ap_fixed's default)
  trn_zero = 6,     ///< AP_TRN_ZERO: truncate towards zero
};

/// Overflow modes, numbered as Xilinx's `ap_o_mode` (AP_SAT = 0 ... AP_WRAP_SM = 4).
enum class overflow : std::uint8_t {
  sat = 0,       ///< AP_SAT: clamp to the largest / smallest value
  sat_zero = 1,  ///< AP_SAT_ZERO: an out-of-range value becomes zero
  sat_sym = 2,   ///< AP_SAT_SYM: clamp symmetrically (signed: -max instead of min)
  wrap = 3,      ///< AP_WRAP: keep the low bits (ap_fixed's default)
  wrap_sm = 4,   ///< AP_WRAP_SM: sign-magnitude wrap
};

/// An ap_fixed<W, I, Q, O, N> (or ap_ufixed) type: what a value's raw bits mean.
///
/// Widths from 1 to 64 bits are supported. The raw bits of a value are the integer
/// round(x * 2^(W - I)) under `q`, reduced into W bits under `o` and `n` (saturation bits).
struct fixed_format {
  int width = 16;         ///< W, total bits (1..64)
  int integer = 6;        ///< I, integer bits including the sign (may be < 0 or > W)
  bool is_signed = true;  ///< ap_fixed (true) or ap_ufixed (false)
  quantization q = quantization::trn;
  overflow o = overflow::wrap;
  int sat_bits = 0;  ///< N, saturation bits of AP_WRAP / AP_WRAP_SM (0..W)

  /// Parses a C type as written in kernel code or xclbin metadata: `ap_fixed<16,6>`,
  /// `ap_ufixed<8, 3, AP_RND, AP_SAT>`, `ap_fixed<32, 14, 5, 3, 0>` (numeric modes),
  /// `ap_int<12>`, `ap_uint<8>`; a trailing `const`, `*` or `&` is ignored.
  /// @throws value_error naming the text when it is not such a type or out of the supported range.
  static fixed_format parse(std::string_view type);
  /// The format of an ap_* c_type from xclbin metadata. @throws value_error for other types.
  static fixed_format from(const c_type& t);

  /// Checks the fields. @throws value_error naming the bad field.
  void validate() const;
  /// Canonical spelling, e.g. `ap_fixed<16,6>` or `ap_ufixed<8,3,AP_RND,AP_SAT,0>`.
  std::string to_string() const;
  /// Fraction bits, W - I.
  int fraction() const { return width - integer; }
  /// Bytes of the host container for one value: 1, 2, 4 or 8 (as a 'u1'..'u8' buffer).
  std::size_t storage_bytes() const;
  /// Value of one least significant bit, 2^-(W - I).
  double lsb() const;
  /// Smallest and largest representable values.
  double min() const;
  double max() const;

  bool operator==(const fixed_format&) const = default;
};

/// The format hls4ml uses by default for inputs, outputs, weights and accumulators.
inline fixed_format ap_fixed_16_6() {
  return fixed_format{};
}

/// What to_fixed does with NaN and infinities.
enum class nonfinite_policy : std::uint8_t {
  /// Throw value_error naming the value: a NaN in a host's input is usually a bug upstream.
  reject,
  /// Convert exactly as Xilinx's `ap_fixed(double)` / `ap_fixed(float)` constructors do, and so
  /// as hls4ml's C simulation does. They do not special-case them: the exponent field (all ones)
  /// is read as 2^1024 and the mantissa (implicit one plus the NaN payload) as for any number,
  /// so +inf behaves like a huge positive value (0 under AP_WRAP, the maximum under AP_SAT)
  /// and a NaN like a huge value of its sign bit (x86's default NaN from 0/0 is negative).
  ap_fixed,
};

/// Converts one double to the raw bits of `f`, exactly as Xilinx's `ap_fixed(double)` does,
/// returned in the low W bits of the result, sign-extended to 64 bits for signed formats and
/// zero-extended for unsigned ones. Every finite double (and so every float) is accepted; NaN
/// and infinities as `policy` says.
/// @throws value_error for NaN or infinity under nonfinite_policy::reject, naming the value and
///         the format.
std::int64_t to_fixed(double x, const fixed_format& f,
                      nonfinite_policy policy = nonfinite_policy::reject);

/// The value of the raw bits `raw` of `f` (only the low W bits are read), as Xilinx's
/// `ap_fixed::to_double()` gives it (exact for W <= 53, else rounded to nearest even).
double from_fixed(std::int64_t raw, const fixed_format& f);

/// Converts `n` floats (or doubles) to raw bits of `f` stored in `out` as `out_bytes`-wide
/// little-endian integers (1, 2, 4 or 8, at least `f.storage_bytes()`): sign-extended for signed
/// formats, zero-extended for unsigned ones, so an int16 view of ap_fixed<16,6> data reads the
/// integers. NaN and infinities convert as `policy` says.
/// @throws value_error for a bad width, or a non-finite input under nonfinite_policy::reject
///         (naming its index).
void to_fixed(const float* in, std::size_t n, void* out, std::size_t out_bytes,
              const fixed_format& f, nonfinite_policy policy = nonfinite_policy::reject);
void to_fixed(const double* in, std::size_t n, void* out, std::size_t out_bytes,
              const fixed_format& f, nonfinite_policy policy = nonfinite_policy::reject);
/// Converts `n` raw values (each `in_bytes` wide; only the low W bits are read) to floats or
/// doubles.
void from_fixed(const void* in, std::size_t in_bytes, std::size_t n, float* out,
                const fixed_format& f);
void from_fixed(const void* in, std::size_t in_bytes, std::size_t n, double* out,
                const fixed_format& f);

/// Span conveniences: `to_fixed(std::span<const float>(x), buf.as<std::int16_t>(), fmt)`.
/// @throws value_error when the spans differ in length.
template <class F, class T>
requires(std::is_floating_point_v<F>&& std::is_integral_v<T>) void to_fixed(std::span<const F> in,
                                                                            std::span<T> out,
                                                                            const fixed_format& f) {
  if (in.size() != out.size())
    throw value_error("to_fixed: " + std::to_string(in.size()) + " input values for " +
                      std::to_string(out.size()) + " output elements of " + f.to_string());
  to_fixed(in.data(), in.size(), out.data(), sizeof(T), f);
}

template <class T, class F>
requires(std::is_integral_v<T>&& std::is_floating_point_v<F>) void from_fixed(
    std::span<const T> in, std::span<F> out, const fixed_format& f) {
  if (in.size() != out.size())
    throw value_error("from_fixed: " + std::to_string(in.size()) + " raw values of " +
                      f.to_string() + " for " + std::to_string(out.size()) + " output elements");
  from_fixed(in.data(), sizeof(T), in.size(), out.data(), f);
}

}  // namespace fpyga
