// Kernels and runs. Every call is validated here, at the boundary, before a backend sees it:
// argument count and kinds, scalar ranges for the declared C type, freed buffers, buffers of
// another device or of an unloaded xclbin, and bank connectivity (which picks the compute units
// a call may use). The per-kernel plan is worked out once, so the call path neither parses nor
// allocates.
#include "fpyga/kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/backend.hpp"
#include "core_state.hpp"
#include "fpyga/error.hpp"

namespace fpyga {

const char* to_string(run_state s) {
  switch (s) {
    case run_state::queued: return "queued";
    case run_state::running: return "running";
    case run_state::completed: return "completed";
    case run_state::error: return "error";
  }
  return "unknown";
}

void check_loaded(const backend::program_impl& program, const std::string& what) {
  if (program.released)
    throw error(what + " belongs to xclbin '" + program.bin.source +
                "', which is no longer loaded on its device");
}

// ---------------------------------------------------------------------------------------------
// The argument plan

namespace {

arg_plan plan_for(const arg_info& a, const c_type& t) {
  arg_plan p;
  if (a.kind == arg_kind::global) {
    p.kind = arg_plan::how::buffer;
    return p;
  }
  if (a.kind == arg_kind::stream) {
    p.kind = arg_plan::how::stream;
    return p;
  }
  if (t.pointer) return p;
  using cat = c_type::category;
  p.bits = t.bits;
  p.storage = t.storage_bytes();
  switch (t.cat) {
    case cat::floating:
      if (t.bits == 32) p.kind = arg_plan::how::f32;
      if (t.bits == 64) p.kind = arg_plan::how::f64;
      break;
    case cat::signed_integer:
    case cat::unsigned_integer:
      p.is_signed = t.cat == cat::signed_integer;
      p.kind = t.bits > 64 ? arg_plan::how::wide
                           : (p.is_signed ? arg_plan::how::sint : arg_plan::how::uint);
      if (t.bits >= 1 && t.bits <= 64) {
        const unsigned b = t.bits;
        p.lo = !p.is_signed ? 0
               : b == 64    ? std::numeric_limits<std::int64_t>::min()
                            : -(std::int64_t(1) << (b - 1));
        p.hi = p.is_signed ? (std::uint64_t(1) << (b - 1)) - 1
               : b == 64   ? ~std::uint64_t(0)
                           : (std::uint64_t(1) << b) - 1;
      }
      break;
    case cat::signed_fixed:
    case cat::unsigned_fixed:
      p.is_signed = t.cat == cat::signed_fixed;
      p.frac_bits = static_cast<int>(t.bits) - t.integer_bits;
      p.quantization = t.quantization;
      p.kind = t.bits > 64 ? arg_plan::how::wide : arg_plan::how::fixed;
      break;
    default: break;
  }
  return p;
}

std::string tag_of(const backend::program_impl& p, unsigned index) {
  return index < p.memories.size() ? p.memories[index].tag : "memory " + std::to_string(index);
}

const char* kind_name(arg_value::tag t) {
  switch (t) {
    case arg_value::tag::buffer: return "a buffer";
    case arg_value::tag::sint:
    case arg_value::tag::uint: return "an integer";
    case arg_value::tag::f32:
    case arg_value::tag::f64: return "a floating-point value";
    case arg_value::tag::bytes: return "raw bytes";
  }
  return "a value";
}

std::string device_spec(const std::shared_ptr<backend::device_impl>& d) {
  return d ? d->backend_name() + ":" + std::to_string(d->index()) : std::string("<none>");
}

/// Names an argument in messages: "argument 2 ('out_r', unsigned int *) of kernel 'vadd'".
std::string arg_label(const kernel_state& st, std::size_t i) {
  const auto& a = st.args[i];
  return "argument " + std::to_string(i) + " ('" + a.name + "', " + a.type + ") of kernel '" +
         st.name + "'";
}

std::string value_text(const arg_value& v) {
  switch (v.kind()) {
    case arg_value::tag::sint: return std::to_string(v.sint());
    case arg_value::tag::uint: return std::to_string(v.uint());
    case arg_value::tag::f32: return std::to_string(v.f32());
    case arg_value::tag::f64: return std::to_string(v.f64());
    default: return kind_name(v.kind());
  }
}

[[noreturn, gnu::cold, gnu::noinline]] void out_of_range(const kernel_state& st, std::size_t i,
                                                         const arg_value& v,
                                                         const std::string& range) {
  throw value_error(arg_label(st, i) + ": " + value_text(v) + " is out of range (" + range + ")");
}

[[noreturn, gnu::cold, gnu::noinline]] void wrong_kind(const kernel_state& st, std::size_t i,
                                                       const arg_value& v, const char* expected) {
  throw type_error(arg_label(st, i) + " expects " + expected + ", got " + kind_name(v.kind()));
}

void bind_integer(const kernel_state& st, std::size_t i, const arg_plan& p, const arg_value& v,
                  backend::bound_arg& out) {
  const unsigned b = p.bits;
  if (v.kind() == arg_value::tag::sint) {
    const std::int64_t x = v.sint();
    if (p.is_signed) {
      const std::int64_t lo = b >= 64 ? std::numeric_limits<std::int64_t>::min() : -(std::int64_t(1) << (b - 1));
      const std::int64_t hi = b >= 64 ? std::numeric_limits<std::int64_t>::max() : (std::int64_t(1) << (b - 1)) - 1;
      if (x < lo || x > hi)
        out_of_range(st, i, v, std::to_string(lo) + " .. " + std::to_string(hi));
    } else {
      const std::uint64_t hi = b >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << b) - 1;
      if (x < 0 || static_cast<std::uint64_t>(x) > hi) out_of_range(st, i, v, "0 .. " + std::to_string(hi));
    }
    out.bits = static_cast<std::uint64_t>(x);
  } else if (v.kind() == arg_value::tag::uint) {
    const std::uint64_t x = v.uint();
    const std::uint64_t hi = p.is_signed ? (b >= 64 ? std::uint64_t(std::numeric_limits<std::int64_t>::max())
                                                     : (std::uint64_t(1) << (b - 1)) - 1)
                                         : (b >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << b) - 1);
    if (x > hi) out_of_range(st, i, v, (p.is_signed ? "at most " : "0 .. ") + std::to_string(hi));
    out.bits = x;
  } else if (v.kind() == arg_value::tag::bytes) {
    if (v.bytes().size() != p.storage)
      throw value_error(arg_label(st, i) + " takes " + std::to_string(p.storage) + " bytes of storage, got " +
                        std::to_string(v.bytes().size()));
    std::uint64_t x = 0;
    std::memcpy(&x, v.bytes().data(), p.storage);
    out.bits = x;
  } else {
    wrong_kind(st, i, v, "an integer");
  }
}

/// A number given for argument i, as a double (floating-point and fixed-point arguments).
double as_double(const kernel_state& st, std::size_t i, const arg_value& v) {
  switch (v.kind()) {
    case arg_value::tag::f32:
      return v.f32();
    case arg_value::tag::f64:
      return v.f64();
    case arg_value::tag::sint:
      return static_cast<double>(v.sint());
    case arg_value::tag::uint:
      return static_cast<double>(v.uint());
    default: wrong_kind(st, i, v, "a number");
  }
}

void bind_float(const kernel_state& st, std::size_t i, const arg_plan& p, const arg_value& v,
                backend::bound_arg& out) {
  const double x = as_double(st, i, v);
  if (p.kind == arg_plan::how::f32) {
    if (std::isfinite(x) && std::fabs(x) > std::numeric_limits<float>::max())
      out_of_range(st, i, v, "a float");
    const float f = static_cast<float>(x);
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    out.bits = u;
  } else {
    std::memcpy(&out.bits, &x, 8);
  }
}

/// Quantizes `scaled` (the value times 2^F) as Xilinx's ap_q_mode says.
double quantize(double scaled, unsigned q) {
  switch (q) {
    case 0: return std::floor(scaled + 0.5);                                   // AP_RND
    case 1: return scaled >= 0 ? std::ceil(scaled - 0.5) : std::floor(scaled + 0.5);  // AP_RND_ZERO
    case 2: return std::ceil(scaled - 0.5);                                    // AP_RND_MIN_INF
    case 3: return std::round(scaled);                                         // AP_RND_INF
    case 4: return std::nearbyint(scaled);                                     // AP_RND_CONV (ties to even)
    case 6: return std::trunc(scaled);                                         // AP_TRN_ZERO
    default: return std::floor(scaled);                                        // AP_TRN
  }
}

void bind_fixed(const kernel_state& st, std::size_t i, const arg_plan& p, const arg_value& v,
                backend::bound_arg& out) {
  if (v.kind() == arg_value::tag::bytes) return bind_integer(st, i, p, v, out);  // raw storage
  const double x = as_double(st, i, v);
  const double q = quantize(std::ldexp(x, p.frac_bits), p.quantization);
  const double lo = p.is_signed ? -std::ldexp(1.0, static_cast<int>(p.bits) - 1) : 0.0;
  const double hi = p.is_signed ? std::ldexp(1.0, static_cast<int>(p.bits) - 1) - 1
                                : std::ldexp(1.0, static_cast<int>(p.bits)) - 1;
  if (!std::isfinite(q) || q < lo || q > hi)
    out_of_range(st, i, v,
                 std::to_string(std::ldexp(lo, -p.frac_bits)) + " .. " + std::to_string(std::ldexp(hi, -p.frac_bits)));
  out.bits = q < 0 ? static_cast<std::uint64_t>(static_cast<std::int64_t>(q))
                   : (q >= 9223372036854775808.0 ? static_cast<std::uint64_t>(q)
                                                  : static_cast<std::uint64_t>(static_cast<std::int64_t>(q)));
}

/// Wide ap_* values: raw storage bytes, or an integer sign- or zero-extended to the storage.
void bind_wide(const kernel_state& st, std::size_t i, const arg_plan& p, const arg_value& v,
               std::byte* scratch, backend::bound_arg& out) {
  if (v.kind() == arg_value::tag::bytes) {
    if (v.bytes().size() != p.storage)
      throw value_error(arg_label(st, i) + " takes " + std::to_string(p.storage) + " bytes of storage, got " +
                        std::to_string(v.bytes().size()));
    std::memcpy(scratch, v.bytes().data(), p.storage);
  } else if (v.kind() == arg_value::tag::sint || v.kind() == arg_value::tag::uint) {
    if (p.frac_bits != 0 && (st.args[i].ctype.cat == c_type::category::signed_fixed ||
                             st.args[i].ctype.cat == c_type::category::unsigned_fixed))
      wrong_kind(st, i, v, "its raw storage bytes (a fixed-point type wider than 64 bits)");
    std::uint64_t x = v.kind() == arg_value::tag::sint ? static_cast<std::uint64_t>(v.sint()) : v.uint();
    if (!p.is_signed && v.kind() == arg_value::tag::sint && v.sint() < 0) out_of_range(st, i, v, "unsigned");
    const bool negative = v.kind() == arg_value::tag::sint && v.sint() < 0;
    std::memset(scratch, negative ? 0xff : 0, p.storage);
    std::memcpy(scratch, &x, 8);
  } else {
    wrong_kind(st, i, v, "an integer or raw storage bytes");
  }
  out.wide = {scratch, p.storage};
}

/// Why buffer argument `i` cannot be passed (the call path found it unusable): throws.
[[noreturn, gnu::cold, gnu::noinline]] void buffer_arg_error(const kernel_state& st, std::size_t i,
                                                             const arg_value& v,
                                                             std::uint64_t mask) {
  if (v.kind() != arg_value::tag::buffer) wrong_kind(st, i, v, "a buffer");
  const auto& bi = v.buffer().impl();
  if (!bi) throw value_error(arg_label(st, i) + ": the buffer handle is empty");
  if (bi->freed)
    throw error(arg_label(st, i) + ": the buffer of " + std::to_string(bi->size) +
                " bytes was freed");
  if (bi->program != st.program) {
    if (!bi->program || bi->program->device != st.program->device)
      throw value_error(arg_label(st, i) + ": the buffer belongs to device " +
                        device_spec(bi->program ? bi->program->device : nullptr) +
                        ", the kernel runs on " + device_spec(st.program->device));
    throw value_error(arg_label(st, i) + ": the buffer was allocated for xclbin '" +
                      bi->program->bin.source + "'" +
                      (bi->program->released ? ", which is no longer loaded" : "") +
                      ", not for the kernel's xclbin '" + st.source + "'");
  }
  if (v.buffer_offset() > bi->size)
    throw value_error(arg_label(st, i) + ": offset " + std::to_string(v.buffer_offset()) +
                      " is past the end of the buffer of " + std::to_string(bi->size) + " bytes");
  std::string reach;
  for (std::size_t c = 0; c < st.cu_names.size(); ++c) {
    if (!(mask & (std::uint64_t(1) << c))) continue;
    std::string banks;
    for (unsigned m : st.cu_arg_memories[c][i])
      banks += (banks.empty() ? "" : "/") + tag_of(*st.program, m);
    reach += (reach.empty() ? "" : ", ") + st.cu_names[c] + ": " + banks;
  }
  throw value_error(arg_label(st, i) + ": the buffer is in " +
                    tag_of(*st.program, bi->memory_index) + ", but no compute unit" +
                    (mask == st.all_cus ? "" : " left by the other arguments") +
                    " connects this argument to it (" + reach + ")");
}

/// Scalars other than in-range integers, and arguments the host cannot pass.
[[gnu::noinline]] void bind_scalar(const kernel_state& st, std::size_t i, const arg_value& v,
                                   std::byte* scratch, std::size_t& scratch_used,
                                   backend::bound_arg& o) {
  const auto& p = st.plan[i];
  const bool settable = p.kind != arg_plan::how::buffer && p.kind != arg_plan::how::stream &&
                        p.kind != arg_plan::how::unsupported;
  if (settable && v.kind() == arg_value::tag::buffer) wrong_kind(st, i, v, "a scalar");
  switch (p.kind) {
    case arg_plan::how::buffer:
      break;  // handled by bind()
    case arg_plan::how::sint:
    case arg_plan::how::uint:
      bind_integer(st, i, p, v, o);
      break;
    case arg_plan::how::f32:
    case arg_plan::how::f64:
      bind_float(st, i, p, v, o);
      break;
    case arg_plan::how::fixed:
      bind_fixed(st, i, p, v, o);
      break;
    case arg_plan::how::wide:
      bind_wide(st, i, p, v, scratch + scratch_used, o);
      scratch_used += p.storage;
      break;
    case arg_plan::how::stream:
      throw type_error(arg_label(st, i) + " is a stream between kernels; the host cannot pass it");
    case arg_plan::how::unsupported:
      throw type_error(arg_label(st, i) + ": fpyga cannot pass a scalar of type '" +
                       st.args[i].type + "'");
  }
}

/// A wrong number of host arguments. Stream arguments are fed by their stream connection, so a
/// host passing one (all arguments given) is told which and why.
[[noreturn, gnu::cold, gnu::noinline]] void argument_count_error(const kernel_state& st,
                                                                 std::size_t given) {
  std::string sig;
  for (const auto& a : st.args)
    if (a.kind != arg_kind::stream) sig += (sig.empty() ? "" : ", ") + a.type + " " + a.name;
  std::string streams;
  const kernel_arg* first_stream = nullptr;
  for (const auto& a : st.args)
    if (a.kind == arg_kind::stream) {
      if (!first_stream) first_stream = &a;
      streams += (streams.empty() ? "'" : ", '") + a.name + "'";
    }
  if (first_stream && given == st.args.size()) {
    std::string where;
    for (const auto& m : first_stream->memories) where += (where.empty() ? "" : ", ") + m.tag();
    throw type_error("kernel '" + st.name + "': argument '" + first_stream->name +
                     "' is connected to a stream" + (where.empty() ? "" : " (" + where + ")") +
                     ", not passed by the host; pass the " + std::to_string(st.host_count) +
                     " host argument(s) only (" + sig + ")");
  }
  throw type_error("kernel '" + st.name + "' takes " + std::to_string(st.host_count) +
                   " arguments (" + sig + "), got " + std::to_string(given) +
                   (streams.empty() ? ""
                                    : "; stream argument(s) " + streams +
                                          " are connected to streams, not passed by the host"));
}

/// Binds host value `v` to argument `i` of plan `p`: buffers and in-range integers inline,
/// everything else (and every failure) out of line. Shared by bind() and bind_with_streams(),
/// inlined into each.
[[gnu::always_inline]] inline void bind_one(const kernel_state& st, std::size_t i, const hot_arg& p,
                                            const arg_value& v,
                                            const backend::program_impl* program,
                                            backend::bound_arg* out, std::byte* scratch,
                                            std::size_t& scratch_used, std::uint64_t& mask) {
  if (p.kind == arg_plan::how::buffer) {
    const backend::buffer_impl* bi = nullptr;
    const std::uint64_t fits = buffer_fits(p, v, program, bi) & mask;
    if (!fits) [[unlikely]]
      buffer_arg_error(st, i, v, mask);
    mask = fits;
    std::construct_at(
        out + i, backend::bound_arg{
                     const_cast<backend::buffer_impl*>(bi), v.buffer_offset(), bi->serial, {}});
    return;
  }
  std::uint64_t bits;
  if (integer_bits(p, v, bits)) [[likely]] {
    std::construct_at(out + i, backend::bound_arg{nullptr, 0, bits, {}});
    return;
  }
  bind_scalar(st, i, v, scratch, scratch_used, *std::construct_at(out + i));
}

/// bind() for a kernel with stream arguments: the host's values go to the other positions; each
/// stream position gets an empty bound_arg (the backend feeds it from its stream connection).
[[gnu::noinline]] std::uint64_t bind_with_streams(const kernel_state& st,
                                                  std::span<const arg_value> args,
                                                  backend::bound_arg* out, std::byte* scratch) {
  std::uint64_t mask = st.all_cus;
  std::size_t scratch_used = 0;
  std::size_t next = 0;
  for (std::size_t i = 0; i < st.plan.size(); ++i) {
    if (st.plan[i].kind == arg_plan::how::stream) {
      std::construct_at(out + i, backend::bound_arg{});
      continue;
    }
    bind_one(st, i, st.hot[i], args[next++], st.program.get(), out, scratch, scratch_used, mask);
  }
  return mask;
}

/// Validates and converts `args`; returns the mask of CUs whose connectivity fits. Buffers and
/// in-range integers (nearly every argument of an HLS kernel) are handled inline with direct
/// branches; everything else, and every failure, goes to out-of-line code. [[gnu::hot]] here and on
/// the other call and sync paths (buffer.cpp, the xrt backend) puts them side by side in .text.hot,
/// so one round trip runs through a few adjacent cache lines of fpyga's code.
[[gnu::hot]] std::uint64_t bind(const kernel_state& st, std::span<const arg_value> args,
                                backend::bound_arg* out, std::byte* scratch) {
  if (st.program->released) [[unlikely]]
    check_loaded(*st.program, "kernel '" + st.name + "'");
  if (args.size() != st.host_count) [[unlikely]]
    argument_count_error(st, args.size());
  if (!st.host_args.empty()) [[unlikely]]
    return bind_with_streams(st, args, out, scratch);
  std::uint64_t mask = st.all_cus;
  std::size_t scratch_used = 0;
  const hot_arg* plan = st.hot.data();
  const backend::program_impl* program = st.program.get();
  const std::size_t n = args.size();
  for (std::size_t i = 0; i < n; ++i)
    bind_one(st, i, plan[i], args[i], program, out, scratch, scratch_used, mask);
  return mask;
}

const kernel_state& require(const std::shared_ptr<kernel_state>& st) {
  if (!st) throw error("fpyga::kernel: empty kernel handle");
  return *st;
}

constexpr std::size_t stack_args = 16;
static_assert(std::is_trivially_destructible_v<backend::bound_arg>);
constexpr std::size_t stack_scratch = 256;

}  // namespace

std::shared_ptr<kernel_state> make_kernel_state(const std::shared_ptr<backend::program_impl>& program,
                                                const std::string& source, const kernel_info& info,
                                                std::vector<backend::compute_unit> cus) {
  if (cus.empty()) throw error("kernel '" + info.name + "' has no compute unit in " + source);
  for (const auto& cu : cus)
    if (cu.control == control_protocol::ap_ctrl_none)
      // As on a card (XRT opens no xrt::kernel for them either): no control registers to start
      // it through; it runs from load to unload, fed by its streams.
      throw type_error("kernel '" + info.name + "' (compute unit '" + cu.name +
                       "') is free-running (ap_ctrl_none): it runs from load to unload and the "
                       "host does not call or start it");
  if (cus.size() > 64)
    throw not_supported_error("kernel '" + info.name + "' has " + std::to_string(cus.size()) +
                              " compute units; fpyga handles at most 64 per kernel handle");
  auto st = std::make_shared<kernel_state>();
  st->program = program;
  st->name = info.name;
  st->source = source;
  for (const auto& cu : cus) {
    st->cu_names.push_back(cu.name);
    std::vector<std::vector<unsigned>> per_arg = cu.arg_memories;
    per_arg.resize(info.args.size());
    st->cu_arg_memories.push_back(std::move(per_arg));
  }
  st->all_cus = cus.size() == 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << cus.size()) - 1;
  for (std::size_t i = 0; i < info.args.size(); ++i) {
    const auto& a = info.args[i];
    kernel_arg k;
    k.index = static_cast<unsigned>(i);
    k.name = a.name;
    k.type = a.type;
    k.ctype = c_type::parse(a.type);
    k.kind = a.kind;
    k.offset = a.offset;
    k.size = a.size;
    std::vector<unsigned> mems;
    for (const auto& per_arg : st->cu_arg_memories)
      for (unsigned m : per_arg[i])
        if (std::find(mems.begin(), mems.end(), m) == mems.end()) mems.push_back(m);
    for (unsigned m : mems) k.memories.emplace_back(program, m);
    st->plan.push_back(plan_for(a, k.ctype));
    auto& fits = st->plan.back().cu_fits;
    fits.assign(program->memories.size(), 0);
    for (std::size_t m = 0; m < fits.size(); ++m)
      for (std::size_t c = 0; c < st->cu_arg_memories.size(); ++c) {
        const auto& reach = st->cu_arg_memories[c][i];
        if (reach.empty() || std::find(reach.begin(), reach.end(), m) != reach.end())
          fits[m] |= std::uint64_t(1) << c;
      }
    if (st->plan.back().kind == arg_plan::how::wide) st->wide_bytes += st->plan.back().storage;
    st->args.push_back(std::move(k));
  }
  for (std::size_t i = 0; i < st->plan.size(); ++i)
    if (st->plan[i].kind != arg_plan::how::stream) st->host_args.push_back(static_cast<std::uint32_t>(i));
  st->host_count = st->host_args.size();
  if (st->host_count == st->plan.size()) st->host_args.clear();
  for (const auto& p : st->plan)
    st->hot.push_back(
        {p.kind, static_cast<std::uint32_t>(p.cu_fits.size()), p.cu_fits.data(), p.lo, p.hi});
  st->impl = program->open_kernel(info, std::move(cus));
  // The one pass takes buffers and integers; a kernel with any other argument always binds.
  if (std::all_of(st->plan.begin(), st->plan.end(), [](const arg_plan& p) {
        return p.kind == arg_plan::how::buffer || p.kind == arg_plan::how::sint ||
               p.kind == arg_plan::how::uint;
      }))
    st->one_pass = st->impl->one_pass_call();
  return st;
}

const std::string& kernel::name() const { return require(st_).name; }
std::vector<std::string> kernel::compute_units() const { return require(st_).cu_names; }
const std::vector<kernel_arg>& kernel::args() const { return require(st_).args; }

namespace {
/// call() for kernels whose arguments do not fit the stack arrays: heap storage.
[[gnu::noinline]] void call_on_heap(const kernel_state& st, std::span<const arg_value> args) {
  std::vector<backend::bound_arg> out(std::max(args.size(), st.plan.size()));
  std::vector<std::byte> scratch(st.wide_bytes);
  const std::uint64_t mask = bind(st, args, out.data(), scratch.data());
  st.impl->call({out.data(), st.plan.size()}, mask);
}
}  // namespace

[[gnu::hot]] void kernel::call_args(std::span<const arg_value> args) const {
  const auto& st = require(st_);
  // In flight for the whole call, as a started run is: unloading waits for it or refuses, and a
  // buffer freed meanwhile keeps its device memory until the call ends.
  const backend::program_call in(*st.program);
  if (!in) [[unlikely]]
    check_loaded(*st.program, "kernel '" + st.name + "'");
  if (st.one_pass && st.one_pass(*st.impl, st, args)) return;
  if (st.hot.size() > stack_args || st.wide_bytes > stack_scratch) [[unlikely]]
    return call_on_heap(st, args);
  // Raw stack storage: bind() constructs each bound_arg it fills, so the call path does not
  // clear 16 of them first (that memset was a tenth of a noop-shim call).
  alignas(backend::bound_arg) std::byte storage[stack_args * sizeof(backend::bound_arg)];
  std::byte scratch[stack_scratch];
  auto* out = reinterpret_cast<backend::bound_arg*>(storage);
  const std::uint64_t mask = bind(st, args, out, scratch);
  st.impl->call({out, st.plan.size()}, mask);
}

fpyga::run kernel::start_args(std::span<const arg_value> args, std::span<const fpyga::run> waitfor) const {
  const auto& st = require(st_);
  const backend::program_call in(*st.program);
  if (!in) check_loaded(*st.program, "kernel '" + st.name + "'");
  std::vector<backend::bound_arg> out(std::max<std::size_t>(args.size(), st.args.size()));
  std::vector<std::byte> scratch(st.wide_bytes);
  const std::uint64_t mask = bind(st, args, out.data(), scratch.data());
  std::vector<std::shared_ptr<backend::run_impl>> deps;
  deps.reserve(waitfor.size());
  for (const auto& r : waitfor) {
    if (!r) throw value_error("kernel '" + st.name + "': waitfor holds an empty run handle");
    deps.push_back(r.impl());
  }
  // The run keeps its buffers (and their device memory) until it ends, whatever the host frees.
  std::vector<std::shared_ptr<backend::buffer_impl>> held;
  for (std::size_t j = 0; j < args.size(); ++j) {
    const std::size_t i = st.host_args.empty() ? j : st.host_args[j];
    if (out[i].buffer) {
      held.push_back(args[j].buffer().impl());
      out[i].buffer->uses.fetch_add(1);
    }
  }
  std::shared_ptr<backend::run_impl> r;
  try {
    r = st.impl->start({out.data(), st.plan.size()}, mask, deps);
  } catch (...) {
    for (auto& b : held) b->uses.fetch_sub(1);
    throw;
  }
  r->hold(std::move(held));
  return fpyga::run(std::move(r));
}

// Register access is in flight too: on emu, writing ap_start runs the kernel on this thread.
std::uint32_t kernel::read_register(std::uint32_t offset) const {
  const auto& st = require(st_);
  const backend::program_call in(*st.program);
  if (!in) check_loaded(*st.program, "kernel '" + st.name + "'");
  return st.impl->read_register(0, offset);
}

void kernel::write_register(std::uint32_t offset, std::uint32_t value) const {
  const auto& st = require(st_);
  const backend::program_call in(*st.program);
  if (!in) check_loaded(*st.program, "kernel '" + st.name + "'");
  st.impl->write_register(0, offset, value);
}

// ---------------------------------------------------------------------------------------------
// Runs

namespace {
backend::run_impl& require_run(const std::shared_ptr<backend::run_impl>& r) {
  if (!r) throw error("fpyga::run: empty run handle");
  return *r;
}
}  // namespace

void run::wait() {
  auto& r = require_run(impl_);
  if (r.waited.exchange(true))
    throw error("fpyga::run::wait: this run was already waited on (wait() once per run; use state() to poll)");
  const run_state s = r.wait(std::nullopt);
  r.release_holds();
  if (s == run_state::error)
    throw error("fpyga::run::wait: the run failed" + (r.error_message.empty() ? std::string() : ": " + r.error_message));
}

namespace {
/// A run seen ended gives its buffers back (backends that see the end themselves already did).
run_state seen(backend::run_impl& r, run_state s) {
  if (s == run_state::completed || s == run_state::error) r.release_holds();
  return s;
}
}  // namespace

run_state run::wait(std::chrono::milliseconds timeout) {
  auto& r = require_run(impl_);
  return seen(r, r.wait(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout)));
}

run_state run::state() const {
  auto& r = require_run(impl_);
  return seen(r, r.state());
}

bool run::done() const {
  const run_state s = state();
  return s == run_state::completed || s == run_state::error;
}

}  // namespace fpyga
