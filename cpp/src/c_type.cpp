// Kernel argument types as the metadata spells them. The spellings come from HLS front ends
// ("unsigned int const *", "int*", "ap_fixed<32, 14, 5, 3, 0> const *", "ap_uint<512>*"), so the
// parser accepts any spacing and either placement of const, and calls anything it does not
// fully understand opaque rather than guessing a layout.
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fpyga/xclbin.hpp"

namespace fpyga {
namespace {

// Widest ap_int Xilinx's headers accept (BIT_WIDTH_UPPER_LIMIT).
constexpr long max_ap_width = 32768;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == ':';
}

struct token {
  std::string word;   ///< identifier, or "*" / "&"
  std::string targs;  ///< template argument text between the outer <>, when present
  bool has_targs = false;
};

/// Splits a spelling into words, '*', '&' and template argument blocks; nullopt when malformed.
std::optional<std::vector<token>> tokenize(std::string_view s) {
  std::vector<token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == ' ' || c == '\t') {
      ++i;
    } else if (c == '*' || c == '&') {
      out.push_back({std::string(1, c), {}, false});
      ++i;
    } else if (ident_char(c)) {
      std::size_t j = i;
      while (j < s.size() && ident_char(s[j])) ++j;
      out.push_back({std::string(s.substr(i, j - i)), {}, false});
      i = j;
    } else if (c == '<') {
      if (out.empty() || out.back().has_targs || out.back().word == "*" || out.back().word == "&")
        return std::nullopt;
      int depth = 0;
      std::size_t j = i;
      for (; j < s.size(); ++j) {
        if (s[j] == '<') ++depth;
        if (s[j] == '>' && --depth == 0) break;
      }
      if (j == s.size()) return std::nullopt;
      out.back().targs = std::string(s.substr(i + 1, j - i - 1));
      out.back().has_targs = true;
      i = j + 1;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::optional<long> parse_int(std::string_view s) {
  s = trim(s);
  long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string_view> split_args(std::string_view s) {
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' || s[i] == '(') ++depth;
    if (s[i] == '>' || s[i] == ')') --depth;
    if (s[i] == ',' && depth == 0) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(trim(s.substr(start)));
  return out;
}

// Xilinx's ap_q_mode and ap_o_mode enumerators, in enum order (ap_decl.h).
constexpr std::array<std::string_view, 7> q_modes = {
    "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV", "TRN", "TRN_ZERO"};
constexpr std::array<std::string_view, 5> o_modes = {"SAT", "SAT_ZERO", "SAT_SYM", "WRAP",
                                                     "WRAP_SM"};

template <std::size_t N>
std::optional<unsigned> parse_mode(std::string_view s,
                                   const std::array<std::string_view, N>& names) {
  s = trim(s);
  if (auto n = parse_int(s)) {
    if (*n >= 0 && static_cast<std::size_t>(*n) < N) return static_cast<unsigned>(*n);
    return std::nullopt;
  }
  if (s.starts_with("AP_") || s.starts_with("SC_"))
    s.remove_prefix(3);
  else
    return std::nullopt;
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<unsigned>(i);
  return std::nullopt;
}

/// Fills `t` from an ap_int/ap_uint/ap_fixed/ap_ufixed template; false when it is none of them.
bool parse_ap_type(const token& tok, c_type& t) {
  std::string_view name = tok.word;
  if (name.starts_with("::")) name.remove_prefix(2);
  const bool is_int = name == "ap_int" || name == "ap_uint";
  const bool is_fixed = name == "ap_fixed" || name == "ap_ufixed";
  if (!is_int && !is_fixed) return false;
  const auto args = split_args(tok.targs);
  const auto width = parse_int(args[0]);
  if (!width || *width < 1 || *width > max_ap_width) return false;
  if (is_int) {
    if (args.size() != 1) return false;
    t.cat =
        name == "ap_int" ? c_type::category::signed_integer : c_type::category::unsigned_integer;
  } else {
    if (args.size() < 2 || args.size() > 5) return false;
    const auto integer = parse_int(args[1]);
    if (!integer || *integer < -max_ap_width || *integer > max_ap_width) return false;
    t.integer_bits = static_cast<int>(*integer);
    if (args.size() > 2) {
      const auto q = parse_mode(args[2], q_modes);
      if (!q) return false;
      t.quantization = *q;
    }
    if (args.size() > 3) {
      const auto o = parse_mode(args[3], o_modes);
      if (!o) return false;
      t.overflow = *o;
    }
    if (args.size() > 4) {
      const auto n = parse_int(args[4]);
      if (!n || *n < 0) return false;
    }
    t.cat = name == "ap_fixed" ? c_type::category::signed_fixed : c_type::category::unsigned_fixed;
  }
  t.bits = static_cast<unsigned>(*width);
  t.arbitrary_precision = true;
  return true;
}

/// Fills `t` from C builtin words ("unsigned", "long", "int", ...) or a <cstdint> name.
bool parse_builtin(const std::vector<std::string>& words, c_type& t) {
  using cat = c_type::category;
  if (words.size() == 1) {
    struct fixed_name {
      std::string_view name;
      cat c;
      unsigned bits;
    };
    static constexpr fixed_name names[] = {
        {"void", cat::void_type, 0},
        {"bool", cat::unsigned_integer, 1},
        {"float", cat::floating, 32},
        {"double", cat::floating, 64},
        {"half", cat::floating, 16},
        {"int8_t", cat::signed_integer, 8},
        {"int16_t", cat::signed_integer, 16},
        {"int32_t", cat::signed_integer, 32},
        {"int64_t", cat::signed_integer, 64},
        {"uint8_t", cat::unsigned_integer, 8},
        {"uint16_t", cat::unsigned_integer, 16},
        {"uint32_t", cat::unsigned_integer, 32},
        {"uint64_t", cat::unsigned_integer, 64},
        {"size_t", cat::unsigned_integer, 64},
        {"ssize_t", cat::signed_integer, 64},
        {"ptrdiff_t", cat::signed_integer, 64},
        {"intptr_t", cat::signed_integer, 64},
        {"uintptr_t", cat::unsigned_integer, 64},
    };
    std::string_view w = words[0];
    if (w.starts_with("std::")) w.remove_prefix(5);
    for (const auto& n : names)
      if (n.name == w) {
        t.cat = n.c;
        t.bits = n.bits;
        return true;
      }
  }
  int n_unsigned = 0, n_signed = 0, n_char = 0, n_short = 0, n_int = 0, n_long = 0;
  for (const auto& w : words) {
    if (w == "unsigned")
      ++n_unsigned;
    else if (w == "signed")
      ++n_signed;
    else if (w == "char")
      ++n_char;
    else if (w == "short")
      ++n_short;
    else if (w == "int")
      ++n_int;
    else if (w == "long")
      ++n_long;
    else
      return false;
  }
  if (n_unsigned + n_signed > 1 || n_char + n_short > 1 || n_int > 1 || n_long > 2 ||
      (n_char && (n_int || n_long)) || (n_short && n_long))
    return false;
  if (n_char + n_short + n_int + n_long == 0 && n_unsigned + n_signed == 0) return false;
  t.bits = n_char ? 8 : n_short ? 16 : n_long ? 64 : 32;  // LP64, as on the hosts fpyga supports
  t.cat = n_unsigned ? cat::unsigned_integer : cat::signed_integer;
  return true;
}

}  // namespace

c_type c_type::parse(std::string_view spelling) {
  c_type t;
  t.spelling = std::string(spelling);
  const auto tokens = tokenize(trim(spelling));
  if (!tokens || tokens->empty()) return t;

  // Declarator part: '*' and '&' and the qualifiers after them ("int * const").
  std::size_t first_decl = tokens->size();
  for (std::size_t i = 0; i < tokens->size(); ++i)
    if ((*tokens)[i].word == "*" || (*tokens)[i].word == "&") {
      first_decl = i;
      break;
    }
  int stars = 0;
  bool reference = false;
  for (std::size_t i = first_decl; i < tokens->size(); ++i) {
    const auto& w = (*tokens)[i].word;
    if (w == "*")
      ++stars;
    else if (w == "&")
      reference = true;
    else if (w != "const" && w != "volatile" && w != "restrict" && w != "__restrict" &&
             w != "__restrict__")
      return t;
  }
  t.pointer = stars > 0;

  std::vector<std::string> words;
  const token* templ = nullptr;
  bool tagged = false;
  for (std::size_t i = 0; i < first_decl; ++i) {
    const auto& tok = (*tokens)[i];
    if (tok.word == "const")
      t.is_const = true;
    else if (tok.word == "volatile")
      continue;
    else if (tok.word == "struct" || tok.word == "class" || tok.word == "enum" ||
             tok.word == "union")
      tagged = true;
    else if (tok.has_targs) {
      if (templ) return t;
      templ = &tok;
    } else {
      words.push_back(tok.word);
    }
  }
  // References (hls::stream<T>&, in/out scalars) and pointers to pointers are not values the
  // host can lay out, so they stay opaque.
  if (reference || stars > 1 || tagged) return t;

  c_type parsed = t;
  bool ok = false;
  if (templ) {
    ok = words.empty() && parse_ap_type(*templ, parsed);
  } else {
    ok = parse_builtin(words, parsed);
  }
  return ok ? parsed : t;
}

std::size_t c_type::storage_bytes() const {
  switch (cat) {
    case category::void_type:
    case category::opaque:
      return 0;
    case category::floating:
      return bits / 8;
    default:
      break;
  }
  if (!arbitrary_precision) return bits <= 8 ? 1 : bits / 8;
  // Xilinx's simulation types hold up to 64 bits in the smallest of 1, 2, 4, 8 bytes that fits
  // and wider values in whole 64-bit words (ap_private's valtype and pVal).
  if (bits <= 8) return 1;
  if (bits <= 16) return 2;
  if (bits <= 32) return 4;
  if (bits <= 64) return 8;
  return (bits + 63) / 64 * 8;
}

}  // namespace fpyga
