// Memory banks: thin accessors over the loaded program's MEM_TOPOLOGY (or its default bank).
#include "fpyga/memory.hpp"

#include "backends/backend.hpp"
#include "fpyga/device.hpp"
#include "fpyga/error.hpp"

namespace fpyga {
namespace {

const memory_info& info(const std::shared_ptr<backend::program_impl>& p, unsigned index) {
  if (!p) throw error("fpyga::memory: empty memory handle");
  if (index >= p->memories.size())
    throw value_error("fpyga::memory: index " + std::to_string(index) + " is not a memory of " +
                      p->bin.source);
  return p->memories[index];
}

}  // namespace

const std::string& memory::tag() const { return info(program_, index_).tag; }
memory_type memory::type() const { return info(program_, index_).type; }
bool memory::used() const { return info(program_, index_).used; }
std::uint64_t memory::base_address() const { return info(program_, index_).base_address; }
std::uint64_t memory::size() const { return info(program_, index_).size_bytes; }
fpyga::device memory::device() const {
  info(program_, index_);
  return fpyga::device(program_->device);
}

}  // namespace fpyga
