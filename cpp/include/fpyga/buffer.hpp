// Buffers: 4 KiB-aligned host memory paired with device memory in one bank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>

#include "fpyga/device.hpp"
#include "fpyga/memory.hpp"

namespace fpyga {

namespace backend {
class buffer_impl;
}
class kernel;

/// A handle to a device buffer. Host memory is aligned to 4096 bytes; the device sees only what
/// was synced to it, and the host sees kernel results only after sync_from_device, as on a card.
class buffer {
 public:
  static constexpr std::size_t all = std::numeric_limits<std::size_t>::max();

  buffer() = default;
  /// Allocates `bytes` in `mem` (default: the device's default memory).
  /// @throws memory_error when the bank is full, value_error for a memory of another device.
  buffer(const fpyga::device& dev, std::size_t bytes, const fpyga::memory& mem = {});
  /// Allocates `bytes` in the bank argument `arg_index` of `k` is connected to.
  buffer(const fpyga::kernel& k, unsigned arg_index, std::size_t bytes);
  explicit buffer(std::shared_ptr<backend::buffer_impl> impl) : impl_(std::move(impl)) {}

  void* data() const;
  template <class T>
  std::span<T> as() const {
    return {static_cast<T*>(data()), size() / sizeof(T)};
  }
  std::size_t size() const;

  /// Copies host memory to the device (blocks until done). @throws error when freed or out of range.
  void sync_to_device(std::size_t bytes = all, std::size_t offset = 0);
  /// Copies device memory to the host (blocks until done).
  void sync_from_device(std::size_t bytes = all, std::size_t offset = 0);

  std::uint64_t device_address() const;
  fpyga::memory memory() const;
  fpyga::device device() const;

  /// Releases the device memory now; later use raises error. Host memory lives on while
  /// handles (or NumPy views) refer to it.
  void free();
  bool freed() const;

  explicit operator bool() const { return static_cast<bool>(impl_); }
  bool operator==(const buffer& o) const { return impl_ == o.impl_; }
  const std::shared_ptr<backend::buffer_impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<backend::buffer_impl> impl_;
};

}  // namespace fpyga
