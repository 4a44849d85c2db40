// Memory banks of a loaded xclbin (MEM_TOPOLOGY), as buffers are placed in them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "fpyga/xclbin.hpp"

namespace fpyga {

namespace backend {
class program_impl;
}
class device;

/// A handle to one memory bank of the xclbin loaded on a device.
class memory {
 public:
  memory() = default;
  memory(std::shared_ptr<backend::program_impl> program, unsigned index)
      : program_(std::move(program)), index_(index) {}

  /// MEM_TOPOLOGY index.
  unsigned index() const { return index_; }
  const std::string& tag() const;
  memory_type type() const;
  bool used() const;
  std::uint64_t base_address() const;
  std::uint64_t size() const;
  fpyga::device device() const;

  explicit operator bool() const { return static_cast<bool>(program_); }
  bool operator==(const memory& o) const { return program_ == o.program_ && index_ == o.index_; }
  const std::shared_ptr<backend::program_impl>& program() const { return program_; }

 private:
  std::shared_ptr<backend::program_impl> program_;
  unsigned index_ = 0;
};

}  // namespace fpyga
