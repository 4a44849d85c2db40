// Buffers: the core owns the aligned host memory and checks every range before a backend copies.
#include "fpyga/buffer.hpp"

#include <string>

#include "backends/backend.hpp"
#include "core_state.hpp"
#include "fpyga/error.hpp"
#include "fpyga/kernel.hpp"

namespace fpyga {
namespace {

backend::buffer_impl& require(const std::shared_ptr<backend::buffer_impl>& b, const char* fn) {
  if (!b) throw error(std::string("fpyga::buffer::") + fn + ": empty buffer handle");
  return *b;
}

std::string describe(const backend::buffer_impl& b) {
  std::string tag = b.program && b.memory_index < b.program->memories.size()
                        ? b.program->memories[b.memory_index].tag
                        : std::string("?");
  return "buffer of " + std::to_string(b.size) + " bytes in " + tag;
}

backend::buffer_impl& usable(const std::shared_ptr<backend::buffer_impl>& p, const char* fn) {
  auto& b = require(p, fn);
  if (b.freed) throw error(std::string("fpyga::buffer::") + fn + ": the " + describe(b) + " was freed");
  if (b.program && b.program->released)
    throw error(std::string("fpyga::buffer::") + fn + ": the " + describe(b) +
                " belongs to xclbin '" + b.program->bin.source + "', which is no longer loaded");
  return b;
}

std::size_t checked_range(const backend::buffer_impl& b, std::size_t bytes, std::size_t offset,
                          const char* fn) {
  if (offset > b.size)
    throw value_error(std::string("fpyga::buffer::") + fn + ": offset " + std::to_string(offset) +
                      " is past the end of the " + describe(b));
  if (bytes == buffer::all) return b.size - offset;
  if (bytes > b.size - offset)
    throw value_error(std::string("fpyga::buffer::") + fn + ": " + std::to_string(bytes) +
                      " bytes at offset " + std::to_string(offset) + " do not fit in the " +
                      describe(b));
  return bytes;
}

std::shared_ptr<backend::buffer_impl> allocate(const std::shared_ptr<backend::program_impl>& prog,
                                               std::size_t bytes, unsigned memory_index) {
  if (bytes == 0) throw value_error("fpyga::buffer: a buffer needs at least one byte");
  if (memory_index < prog->memories.size()) {
    const auto& m = prog->memories[memory_index];
    if (m.type == memory_type::streaming || m.type == memory_type::streaming_connection)
      throw value_error("fpyga::buffer: memory '" + m.tag + "' is a stream (" +
                        std::string(to_string(m.type)) +
                        "), not a memory bank: nothing can be allocated in it");
  }
  auto host = backend::allocate_host(bytes);
  auto impl = prog->allocate(std::move(host), bytes, memory_index);
  impl->size = bytes;
  impl->memory_index = memory_index;
  if (!impl->program) impl->program = prog;
  return impl;
}

}  // namespace

buffer::buffer(const fpyga::device& dev, std::size_t bytes, const fpyga::memory& mem) {
  if (!dev) throw value_error("fpyga::buffer: empty device handle");
  fpyga::memory m = mem ? mem : dev.default_memory();
  if (m.program()->device != dev.impl())
    throw value_error("fpyga::buffer: memory '" + m.tag() + "' belongs to device " +
                      fpyga::device(m.program()->device).spec() + ", not to " + dev.spec());
  check_loaded(*m.program(), "memory '" + m.tag() + "'");
  impl_ = allocate(m.program(), bytes, m.index());
}

buffer::buffer(const fpyga::kernel& k, unsigned arg_index, std::size_t bytes) {
  if (!k) throw value_error("fpyga::buffer: empty kernel handle");
  const auto& st = *k.state();
  check_loaded(*st.program, "kernel '" + st.name + "'");
  if (arg_index >= st.args.size())
    throw value_error("fpyga::buffer: kernel '" + st.name + "' has " + std::to_string(st.args.size()) +
                      " arguments; there is no argument " + std::to_string(arg_index));
  const auto& a = st.args[arg_index];
  if (a.kind != arg_kind::global)
    throw value_error("fpyga::buffer: argument " + std::to_string(arg_index) + " ('" + a.name +
                      "') of kernel '" + st.name + "' is a " + std::string(to_string(a.kind)) +
                      ", not a global memory pointer");
  unsigned index = 0;
  if (!a.memories.empty()) {
    index = a.memories.front().index();
  } else {
    index = fpyga::device(st.program->device).default_memory().index();
  }
  impl_ = allocate(st.program, bytes, index);
}

void* buffer::data() const { return require(impl_, "data").host.get(); }
std::size_t buffer::size() const { return require(impl_, "size").size; }

// The sync path tests everything usable() and checked_range() test, in one inlined pass; only a
// failure goes through them, for the message.
namespace {
inline backend::buffer_impl* fast_range(const std::shared_ptr<backend::buffer_impl>& p,
                                        std::size_t& bytes, std::size_t offset) {
  backend::buffer_impl* b = p.get();
  if (!b || b->freed || (b->program && b->program->released) || offset > b->size) return nullptr;
  const std::size_t room = b->size - offset;
  if (bytes == buffer::all) bytes = room;
  return bytes <= room ? b : nullptr;
}
}  // namespace

[[gnu::hot]] void buffer::sync_to_device(std::size_t bytes, std::size_t offset) {
  if (auto* b = fast_range(impl_, bytes, offset)) [[likely]] {
    if (bytes) b->sync_to_device(bytes, offset);
    return;
  }
  auto& b = usable(impl_, "sync_to_device");
  const std::size_t n = checked_range(b, bytes, offset, "sync_to_device");  // throws
  if (n) b.sync_to_device(n, offset);
}

[[gnu::hot]] void buffer::sync_from_device(std::size_t bytes, std::size_t offset) {
  if (auto* b = fast_range(impl_, bytes, offset)) [[likely]] {
    if (bytes) b->sync_from_device(bytes, offset);
    return;
  }
  auto& b = usable(impl_, "sync_from_device");
  const std::size_t n = checked_range(b, bytes, offset, "sync_from_device");  // throws
  if (n) b.sync_from_device(n, offset);
}

std::uint64_t buffer::device_address() const { return usable(impl_, "device_address").device_address(); }

fpyga::memory buffer::memory() const {
  auto& b = require(impl_, "memory");
  return fpyga::memory(b.program, b.memory_index);
}

fpyga::device buffer::device() const {
  auto& b = require(impl_, "device");
  return fpyga::device(b.program ? b.program->device : nullptr);
}

void buffer::free() {
  auto& b = require(impl_, "free");
  if (b.freed.exchange(true)) return;
  // New calls refuse it from here on; runs and calls that have it release it when they end.
  if (b.program)
    b.program->retire(impl_);
  else
    b.release_device();
}

bool buffer::freed() const { return require(impl_, "freed").freed; }

}  // namespace fpyga
