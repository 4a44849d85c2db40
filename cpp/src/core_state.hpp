// Shared state behind the public overlay and kernel handles (declared, not defined, in the public
// headers so users never depend on their layout).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "fpyga/device.hpp"
#include "fpyga/kernel.hpp"

namespace fpyga {

/// How the core turns one host value into a bound_arg, worked out once per kernel handle so the
/// call path does no parsing and no allocation.
struct arg_plan {
  enum class how : std::uint8_t {
    buffer,      ///< global pointer: a buffer of this program, in a connected bank
    sint,        ///< signed integer (C or ap_int) of `bits` <= 64
    uint,        ///< unsigned integer (C, bool or ap_uint) of `bits` <= 64
    f32,
    f64,
    fixed,       ///< ap_fixed / ap_ufixed of `bits` <= 64
    wide,        ///< any ap_* wider than 64 bits: raw bytes, or an integer extended to storage
    stream,      ///< hls::stream: not settable from the host
    unsupported  ///< a type the core cannot lay out (opaque)
  };
  how kind = how::unsupported;
  unsigned bits = 0;
  bool is_signed = false;
  int frac_bits = 0;          ///< W - I for fixed
  unsigned quantization = 5;  ///< ap_q_mode
  std::size_t storage = 0;    ///< bytes of the declared storage
  /// For sint/uint: the declared type's range, so the call path checks it inline.
  std::int64_t lo = 0;
  std::uint64_t hi = 0;
  /// For buffers: by memory index, the CUs (bit mask) connecting this argument to that bank.
  std::vector<std::uint64_t> cu_fits;
};

/// What the call path reads of one argument's plan, packed so bind() walks 32 bytes per argument.
struct hot_arg {
  arg_plan::how kind = arg_plan::how::unsupported;
  std::uint32_t n_fits = 0;             ///< entries in `fits`
  const std::uint64_t* fits = nullptr;  ///< arg_plan::cu_fits of the same argument
  std::int64_t lo = 0;                  ///< arg_plan::lo
  std::uint64_t hi = 0;                 ///< arg_plan::hi
};

/// The call path's inline checks, shared by the core's bind() and a backend's one-pass call
/// (backend::kernel_impl::one_pass_call): no allocation, no message. When one fails the caller
/// takes the full path, which checks again and says what is wrong.
///
/// A buffer argument: a live buffer of `program`, the offset inside it, in a bank that some CU
/// connects this argument to. Returns the CUs that fit (0: not usable) and sets `bi`.
inline std::uint64_t buffer_fits(const hot_arg& p, const arg_value& v,
                                 const backend::program_impl* program,
                                 const backend::buffer_impl*& bi) {
  bi = v.kind() == arg_value::tag::buffer ? v.buffer().impl().get() : nullptr;
  if (bi && !bi->freed && bi->program.get() == program && v.buffer_offset() <= bi->size &&
      bi->memory_index < p.n_fits)
    return p.fits[bi->memory_index];
  return 0;
}

/// An integer argument (sint/uint plan) given as a C++ integer within the declared type's range:
/// sets its storage bits and returns true.
inline bool integer_bits(const hot_arg& p, const arg_value& v, std::uint64_t& bits) {
  if (p.kind != arg_plan::how::sint && p.kind != arg_plan::how::uint) return false;
  if (v.kind() == arg_value::tag::sint) {
    const std::int64_t x = v.sint();
    if (x < p.lo || (x >= 0 && static_cast<std::uint64_t>(x) > p.hi)) return false;
    bits = static_cast<std::uint64_t>(x);
    return true;
  }
  if (v.kind() == arg_value::tag::uint && v.uint() <= p.hi) {
    bits = v.uint();
    return true;
  }
  return false;
}

/// A kernel handle: the backend kernel over a set of compute units, plus the argument plan.
struct kernel_state {
  std::shared_ptr<backend::kernel_impl> impl;
  std::shared_ptr<backend::program_impl> program;
  std::string name;
  std::string source;  ///< xclbin path, for messages
  std::vector<kernel_arg> args;
  std::vector<arg_plan> plan;
  std::vector<hot_arg> hot;  ///< built from `plan` once it is complete (points into it)
  std::vector<std::string> cu_names;
  /// For each CU (bit position) and argument: the memory indices it reaches (empty = any bank).
  std::vector<std::vector<std::vector<unsigned>>> cu_arg_memories;
  std::uint64_t all_cus = 0;
  std::size_t wide_bytes = 0;  ///< storage of all wide scalars, for the per-call scratch
  /// Arguments the host passes: every argument but the streams (which a stream connection
  /// feeds). `host_args` maps each host position to its argument index; empty when the kernel
  /// has no stream argument (positions are then the argument indices).
  std::size_t host_count = 0;
  std::vector<std::uint32_t> host_args;
  /// The backend's one-pass call, when it has one and every argument is a buffer or an integer.
  backend::kernel_impl::one_pass_fn one_pass = nullptr;
};

/// A loaded xclbin as the public overlay sees it.
struct overlay_state {
  std::shared_ptr<backend::program_impl> program;
  fpyga::device dev;
  std::string path;
  /// Every compute unit of every kernel, in IP_LAYOUT order, grouped by kernel name.
  std::map<std::string, std::vector<backend::compute_unit>, std::less<>> cus;
  std::vector<std::string> kernel_order;
  std::mutex mutex;  ///< guards `handles`
  std::map<std::string, std::shared_ptr<kernel_state>, std::less<>> handles;
};

/// Builds a kernel handle over `cus` (a subset of the kernel's CUs).
std::shared_ptr<kernel_state> make_kernel_state(const std::shared_ptr<backend::program_impl>& program,
                                                const std::string& source, const kernel_info& info,
                                                std::vector<backend::compute_unit> cus);

/// Throws error when `program` was unloaded; `what` names the object for the message.
void check_loaded(const backend::program_impl& program, const std::string& what);

}  // namespace fpyga
