// An xclbin loaded onto a device: its kernels and memories.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fpyga/device.hpp"
#include "fpyga/kernel.hpp"
#include "fpyga/memory.hpp"
#include "fpyga/xclbin.hpp"

namespace fpyga {

struct overlay_state;

/// A handle to an xclbin (or awsxclbin) loaded on a device.
class overlay {
 public:
  overlay() = default;
  /// Loads `path` onto the default device. @throws xclbin_error for a bad file, error when the
  /// device cannot run it.
  explicit overlay(const std::string& path);
  /// Loads `path` onto `dev`.
  overlay(const fpyga::device& dev, const std::string& path);

  /// By kernel name, "kernel:instance", or instance name. @throws value_error naming what exists.
  fpyga::kernel kernel(std::string_view name) const;
  /// One handle per kernel (over all its compute units), leaving out free-running
  /// (ap_ctrl_none) kernels, which the host neither calls nor starts (kernel() refuses them
  /// with a type_error saying so).
  std::vector<fpyga::kernel> kernels() const;
  /// By tag. @throws value_error naming the tags that exist.
  fpyga::memory memory(std::string_view tag) const;
  std::vector<fpyga::memory> memories() const;
  fpyga::device device() const;
  const fpyga::xclbin& xclbin() const;
  const std::string& path() const;

  /// True while this overlay is the one loaded on its device.
  bool loaded() const;
  /// Unloads now. @throws error while runs are in flight (the overlay stays loaded).
  void release();

  explicit operator bool() const { return static_cast<bool>(st_); }
  const std::shared_ptr<overlay_state>& state() const { return st_; }

 private:
  std::shared_ptr<overlay_state> st_;
};

}  // namespace fpyga
