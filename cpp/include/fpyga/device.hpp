// Devices: cards seen by a vendor runtime, or the emulated device "emu".
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fpyga {

namespace backend {
class device_impl;
}
class memory;

/// A handle to one device. Copies share the device; an empty handle tests false.
class device {
 public:
  device() = default;
  explicit device(std::shared_ptr<backend::device_impl> impl) : impl_(std::move(impl)) {}

  /// Opens a device by spec: "" (the default: FPYGA_DEVICE if set, else the first hardware
  /// device, else emu), "emu", "emu:N", "xrt:N", "opencl:N".
  /// @throws value_error for a malformed spec or an index out of range,
  ///         not_supported_error for a backend not enabled in this build.
  static device open(std::string_view spec = "");

  std::string name() const;
  /// "emu", "xrt" or "opencl".
  std::string backend() const;
  /// Index among the devices of its backend.
  unsigned index() const;
  /// "backend:index", the spec that opens this device again.
  std::string spec() const;
  /// PCIe address and shell, where the runtime gives them ("" otherwise).
  std::string bdf() const;
  std::string shell() const;

  /// Memories of the xclbin loaded on the device (empty before any load).
  std::vector<memory> memories() const;
  /// The single used memory of the loaded xclbin.
  /// @throws error when nothing is loaded or when several memories are in use (naming them).
  memory default_memory() const;

  explicit operator bool() const { return static_cast<bool>(impl_); }
  bool operator==(const device& other) const { return impl_ == other.impl_; }
  const std::shared_ptr<backend::device_impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<backend::device_impl> impl_;
};

/// Every device of every available backend: the default device first (device::open()), then
/// the other devices that load xclbins (cards, emu), then OpenCL devices that build OpenCL C only
/// (see loads_xclbin in device_info.hpp), as PYNQ's Device.devices[0] is its default device.
std::vector<device> devices();

/// A backend of this build and whether it can be used in this process.
struct backend_info {
  std::string name;       ///< "xrt", "opencl", "emu"
  bool hardware = false;  ///< its devices come before emu's in the default order
  /// False when its plugin could not be loaded: no plugin file, or its vendor library
  /// (libxrt_coreutil, the OpenCL ICD loader) is missing; `reason` says which.
  bool available = false;
  std::string reason;
  /// The plugin file (libfpyga_backend_<name>.so) it was loaded or looked for; "" for emu,
  /// which is part of libfpyga.
  std::string plugin;
};

/// The backends of this build, hardware first, emu last (always available). The first call
/// loads the backend plugins (see docs/cpp.md, "Backends as plugins").
std::vector<backend_info> backends();

}  // namespace fpyga
