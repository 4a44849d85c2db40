// Kernels of a loaded xclbin, their compute units, and runs.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fpyga/buffer.hpp"
#include "fpyga/memory.hpp"
#include "fpyga/xclbin.hpp"

namespace fpyga {

namespace backend {
class run_impl;
}
struct kernel_state;

/// State of a run (XRT's ert_cmd_state, reduced to what a host can act on).
enum class run_state : std::uint8_t { queued, running, completed, error };

const char* to_string(run_state s);

/// A handle to one started kernel execution.
class run {
 public:
  run() = default;
  explicit run(std::shared_ptr<backend::run_impl> impl) : impl_(std::move(impl)) {}

  /// Blocks until the run ends. @throws error if the run failed or was already waited on.
  void wait();
  /// Blocks at most `timeout`; returns the state then (completed, error, or still running).
  run_state wait(std::chrono::milliseconds timeout);
  run_state state() const;
  bool done() const;

  explicit operator bool() const { return static_cast<bool>(impl_); }
  const std::shared_ptr<backend::run_impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<backend::run_impl> impl_;
};

/// One argument of a call: a buffer (optionally at a byte offset) or a scalar. Scalars are
/// converted to the argument's declared C type, with a range check, by the core.
class arg_value {
 public:
  enum class tag : std::uint8_t { buffer, sint, uint, f32, f64, bytes };

  arg_value(const fpyga::buffer& b, std::size_t offset = 0) : tag_(tag::buffer), buf_(&b), n_(offset) {}
  template <std::signed_integral T>
  arg_value(T v) : tag_(tag::sint), i_(v) {}
  template <std::unsigned_integral T>
  arg_value(T v) : tag_(tag::uint), u_(v) {}
  arg_value(bool v) : tag_(tag::uint), u_(v ? 1 : 0) {}
  arg_value(float v) : tag_(tag::f32), f_(v) {}
  arg_value(double v) : tag_(tag::f64), d_(v) {}
  /// Raw little-endian storage of a scalar (ap_uint<512> and other wide types).
  arg_value(std::span<const std::byte> raw) : tag_(tag::bytes), raw_(raw.data()), n_(raw.size()) {}

  tag kind() const { return tag_; }
  const fpyga::buffer& buffer() const { return *buf_; }
  std::size_t buffer_offset() const { return n_; }
  std::int64_t sint() const { return i_; }
  std::uint64_t uint() const { return u_; }
  float f32() const { return f_; }
  double f64() const { return d_; }
  std::span<const std::byte> bytes() const { return {raw_, n_}; }

 private:
  tag tag_;
  union {
    const fpyga::buffer* buf_;
    std::int64_t i_;
    std::uint64_t u_;
    float f_;
    double d_;
    const std::byte* raw_;
  };
  std::size_t n_ = 0;
};

/// One argument as the host sees it.
struct kernel_arg {
  unsigned index = 0;
  std::string name;
  std::string type;  ///< C type string from the metadata
  c_type ctype;
  arg_kind kind = arg_kind::scalar;
  std::uint64_t offset = 0;  ///< register offset
  std::uint64_t size = 0;
  std::vector<memory> memories;  ///< banks this argument is connected to (any CU of the kernel)
};

/// A handle to a kernel and the compute units it may run on ("vadd" = every CU of vadd,
/// "vadd:vadd_1" or "vadd_1" = that CU).
class kernel {
 public:
  kernel() = default;
  explicit kernel(std::shared_ptr<kernel_state> st) : st_(std::move(st)) {}

  const std::string& name() const;
  /// Instance names of the compute units this handle may use.
  std::vector<std::string> compute_units() const;
  const std::vector<kernel_arg>& args() const;

  /// Runs the kernel with these arguments and waits for it (on the calling thread where the
  /// backend can). @throws type_error for a wrong count or kind of argument, value_error for a
  /// scalar out of range or a buffer in a bank the argument is not connected to.
  template <class... A>
  void call(A&&... a) const {
    if constexpr (sizeof...(A) == 0) {
      call_args({});
    } else {
      const arg_value v[] = {arg_value(a)...};
      call_args(v);
    }
  }
  /// Starts the kernel on an idle compute unit and returns at once.
  template <class... A>
  fpyga::run start(A&&... a) const {
    if constexpr (sizeof...(A) == 0) {
      return start_args({});
    } else {
      const arg_value v[] = {arg_value(a)...};
      return start_args(v);
    }
  }

  void call_args(std::span<const arg_value> args) const;
  /// Starts after every run in `waitfor` has completed.
  fpyga::run start_args(std::span<const arg_value> args,
                        std::span<const fpyga::run> waitfor = {}) const;

  /// AXI-lite register access on the first compute unit of this handle.
  std::uint32_t read_register(std::uint32_t offset) const;
  void write_register(std::uint32_t offset, std::uint32_t value) const;

  explicit operator bool() const { return static_cast<bool>(st_); }
  const std::shared_ptr<kernel_state>& state() const { return st_; }

 private:
  std::shared_ptr<kernel_state> st_;
};

}  // namespace fpyga
