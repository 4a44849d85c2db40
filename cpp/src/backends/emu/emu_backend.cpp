// The emulated device: registry entry, devices, loading a sw_emu .so from memory, bank
// allocation and buffers.
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "backends/emu/emu.hpp"
#include "backends/emu/emu_elf.hpp"
#include "backends/emu/emu_stream.hpp"
#include "backends/emu/emu_isolated.hpp"
#include "fpyga/warning.hpp"
#include "xclbin_format.hpp"

namespace fpyga::backend {

namespace emu {
namespace {

constexpr std::uint64_t granule = 4096;

std::uint64_t round_up(std::uint64_t n) { return (n + granule - 1) / granule * granule; }

std::string hex(std::uint64_t v) {
  char s[24];
  std::snprintf(s, sizeof s, "0x%llx", static_cast<unsigned long long>(v));
  return s;
}

std::string human(std::uint64_t bytes) {
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string_view(v) != "0";
}

// ----------------------------------------------------------------------------------------------
// Devices

class emu_device : public device_impl {
 public:
  explicit emu_device(unsigned index) : index_(index) {}
  std::string name() const override { return "fpyga emulated device " + std::to_string(index_); }
  std::string backend_name() const override { return "emu"; }
  unsigned index() const override { return index_; }
  std::string shell() const override { return "fpyga_emu"; }
  bool loads_beside_current() const override { return true; }  // programs share nothing

  std::shared_ptr<program_impl> load(const xclbin& bin, const std::string& path) override {
    auto prog = std::make_shared<emu_program>();
    prog->device = shared_from_this();
    prog->bin = bin;
    prog->source = path;
    prog->memories = bin.memories;
    if (prog->memories.empty()) {
      // Vitis sw_emu builds of 2019 carry no MEM_TOPOLOGY: one default bank, like theirs.
      prog->memories.push_back(default_bank());
    }
    format::check_memory_ranges(prog->memories, path);  // banks must not wrap around
    for (const auto& m : prog->memories)
      prog->banks.push_back(std::make_unique<bank_allocator>(m.base_address, m.used ? m.size_bytes : 0, m.tag));
    prog->check_sync = env_flag("FPYGA_EMU_CHECK_SYNC");
    prog->check_bounds = env_flag("FPYGA_EMU_CHECK_BOUNDS");
    prog->isolate = isolation_requested();
    if (prog->isolate) {
      check_isolatable(bin, path);
      for (auto& b : prog->banks) b->shared = true;
    }
    install_fault_handler();
    prog->load(path);
    return prog;
  }

 private:
  unsigned index_;
};

unsigned emu_device_count() {
  const char* env = std::getenv("FPYGA_EMU_DEVICES");
  if (!env || !*env) return 1;
  unsigned n = 0;
  const std::string_view s(env);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n > 64) {
    warn("FPYGA_EMU_DEVICES='" + std::string(s) + "' is not a count from 0 to 64; using 1 emulated device");
    return 1;
  }
  return n;
}

/// Emulated devices live for the whole process, as cards do (see devices_once).
std::vector<std::shared_ptr<device_impl>> discover() {
  std::vector<std::shared_ptr<device_impl>> v;
  for (unsigned i = 0, n = emu_device_count(); i < n; ++i)
    v.push_back(std::make_shared<emu_device>(i));
  return v;
}

/// Maps a scalar's metadata type to the way the SysV ABI passes it; nullopt when it cannot.
bool scalar_passing(const c_type& t, ffi_type*& type, pass& how, std::size_t& storage) {
  using cat = c_type::category;
  if (t.pointer) return false;
  if (t.arbitrary_precision) {
    // Xilinx's ap_* classes define their copy constructors, so they are not trivially copyable
    // and g++ passes them by invisible reference (checked against compiled kernels in the tests).
    type = &ffi_type_pointer;
    how = pass::by_ref;
    storage = t.storage_bytes();
    return storage > 0;
  }
  how = pass::value;
  switch (t.cat) {
    case cat::floating:
      if (t.bits == 32) type = &ffi_type_float;
      else if (t.bits == 64) type = &ffi_type_double;
      else return false;
      return true;
    case cat::signed_integer:
    case cat::unsigned_integer: {
      const bool s = t.cat == cat::signed_integer;
      switch (t.bits) {
        case 1:
        case 8: type = s ? &ffi_type_sint8 : &ffi_type_uint8; return true;
        case 16: type = s ? &ffi_type_sint16 : &ffi_type_uint16; return true;
        case 32: type = s ? &ffi_type_sint32 : &ffi_type_uint32; return true;
        case 64: type = s ? &ffi_type_sint64 : &ffi_type_uint64; return true;
        default: return false;
      }
    }
    default: return false;
  }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Bank allocator

bank_allocator::bank_allocator(std::uint64_t b, std::uint64_t n, std::string t)
    : base(b), size(n), tag(std::move(t)) {
  if (size) free_.emplace(base, size);
}

bank_allocator::~bank_allocator() {
  if (std::byte* m = map_.load()) ::munmap(m, map_bytes_.load());
  if (fd_ >= 0) ::close(fd_);
}

/// Device memory given back to the bank: its pages return to the host and read as zero again,
/// so the next buffer there starts zero-filled without a memset. Shared memory keeps its pages
/// through MADV_DONTNEED: it needs MADV_REMOVE.
void bank_allocator::decommit(std::byte* p, std::uint64_t bytes) const noexcept {
  if (bytes) ::madvise(p, bytes, shared ? MADV_REMOVE : MADV_DONTNEED);
}

std::byte* bank_allocator::view(std::uint64_t address) {
  std::byte* m = map_.load(std::memory_order_acquire);
  if (!m) {
    std::lock_guard lock(map_mutex_);
    m = map_.load();
    if (!m) {
      const std::uint64_t total = round_up(size) + 2 * granule;
      void* p = MAP_FAILED;
      if (total < size) {
        errno = ENOMEM;
      } else if (!shared) {
        p = ::mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      } else {
        // Isolated mode: a memfd (its pages cost memory when touched, as anonymous ones do) that
        // the helper processes map at this same address.
        fd_ = ::memfd_create(("fpyga-emu-bank-" + tag).c_str(), MFD_CLOEXEC);
        if (fd_ >= 0 && ::ftruncate(fd_, static_cast<off_t>(total)) == 0)
          p = ::mmap(nullptr, total, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd_, 0);
        if (p == MAP_FAILED && fd_ >= 0) {
          const int e = errno;
          ::close(fd_);
          fd_ = -1;
          errno = e;
        }
      }
      if (p == MAP_FAILED ||
          ::mprotect(static_cast<std::byte*>(p) + granule, round_up(size), PROT_READ | PROT_WRITE) != 0) {
        const int e = errno;
        if (p != MAP_FAILED) ::munmap(p, total);
        throw memory_error("emu: cannot reserve the " + human(size) + " of bank '" + tag +
                           "' in this process's address space: " + std::strerror(e));
      }
      m = static_cast<std::byte*>(p);
      map_bytes_.store(total);
      map_.store(m, std::memory_order_release);
    }
  }
  return m + granule + (address - base);
}

bool bank_allocator::maps(const void* p) const noexcept {
  const std::byte* m = map_.load(std::memory_order_acquire);
  const auto* q = static_cast<const std::byte*>(p);
  return m && q >= m && q < m + map_bytes_.load(std::memory_order_relaxed);
}

std::uint64_t bank_allocator::address_of(const void* p) const noexcept {
  return base + static_cast<std::uint64_t>(static_cast<const std::byte*>(p) - (map_.load() + granule));
}

std::optional<std::uint64_t> bank_allocator::allocate(std::uint64_t bytes) {
  const std::uint64_t need = round_up(bytes);
  if (need < bytes) return std::nullopt;
  std::lock_guard lock(mutex_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const std::uint64_t addr = it->first;
    const std::uint64_t rest = it->second - need;
    free_.erase(it);
    if (rest) free_.emplace(addr + need, rest);
    return addr;
  }
  return std::nullopt;
}

void bank_allocator::release(std::uint64_t address, std::uint64_t bytes) {
  std::uint64_t len = round_up(bytes);
  std::lock_guard lock(mutex_);
  auto next = free_.lower_bound(address);
  if (next != free_.end() && address + len == next->first) {
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == address) {
      prev->second += len;
      return;
    }
  }
  free_.emplace(address, len);
}

std::uint64_t bank_allocator::free_bytes() const {
  std::lock_guard lock(mutex_);
  std::uint64_t n = 0;
  for (const auto& [a, l] : free_) n += l;
  return n;
}

std::uint64_t bank_allocator::largest_free() const {
  std::lock_guard lock(mutex_);
  std::uint64_t n = 0;
  for (const auto& [a, l] : free_) n = std::max(n, l);
  return n;
}

// ----------------------------------------------------------------------------------------------
// Program

void emu_program::load(const std::string& path) {
  const std::string file = std::filesystem::path(path).filename().string();
  if (!bin.bitstream_is_elf()) {
    std::string what = "its BITSTREAM is not an ELF shared object";
    if (auto id = bin.agfi()) what = "it is an awsxclbin for AWS image " + *id + ", which runs only on an F1 card";
    else if (bin.target() == "hw") what = "it is a hardware bitstream";
    throw not_supported_error("emu cannot run '" + path + "': " + what +
                              " (emu runs sw_emu xclbins whose BITSTREAM is the kernels compiled to an ELF .so)");
  }
  check_kernel_elf(bin.bitstream, "'" + path + "'");  // before the loader maps it
  memfd = ::memfd_create(("fpyga-emu-" + file).c_str(), MFD_CLOEXEC);
  if (memfd < 0) throw backend_error("memfd_create failed for '" + path + "': " + std::strerror(errno));
  const std::byte* p = bin.bitstream.data();
  std::size_t left = bin.bitstream.size();
  while (left) {
    const ssize_t n = ::write(memfd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw backend_error("writing the kernel .so of '" + path + "' to a memfd failed: " + std::strerror(errno));
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  const std::string so = "/proc/self/fd/" + std::to_string(memfd);
  // Isolated mode: only the helpers load the .so, so neither its constructors nor a loader fault
  // on a damaged file can reach this process (a helper that fails fails the load, below).
  if (!isolate) {
    ::dlerror();
    library = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char* e = ::dlerror();
      throw backend_error("dlopen of the kernel .so in '" + path + "' failed: " + (e ? e : "unknown error"));
    }
  }

  for (const auto& k : bin.kernels) {
    kernel_entry e;
    e.info = &k;
    ::dlerror();
    void* sym = library ? ::dlsym(library, k.name.c_str()) : nullptr;
    if (!sym && library)
      throw xclbin_error("'" + path + "': kernel '" + k.name +
                         "' is described in EMBEDDED_METADATA but its function is missing from the "
                         "BITSTREAM shared object (an extern \"C\" symbol named '" + k.name + "' was expected)");
    e.fn = reinterpret_cast<void (*)()>(sym);
    std::uint64_t regs = 0x10;
    for (const auto& a : k.args) {
      ffi_type* t = &ffi_type_pointer;
      pass how = pass::pointer;
      std::size_t storage = 0;
      const c_type ct = c_type::parse(a.type);
      if (a.kind == arg_kind::stream) how = pass::stream;  // its FIFO: emu_stream.cpp
      if (a.kind == arg_kind::scalar && !scalar_passing(ct, t, how, storage))
        throw not_supported_error("'" + path + "': argument '" + a.name + "' of kernel '" + k.name +
                                  "' has type '" + a.type + "', which emu cannot pass to a kernel function");
      e.types.push_back(t);
      e.passing.push_back(how);
      e.storage.push_back(storage);
      e.reads_only.push_back(a.kind == arg_kind::global && ct.is_const);
      if (how == pass::by_ref) e.by_ref_bytes += (storage + 7) / 8 * 8;
      regs = std::max<std::uint64_t>(regs, a.offset + std::max<std::uint64_t>(a.size, 4));
    }
    if (regs > (1u << 20))
      throw xclbin_error("'" + path + "': kernel '" + k.name + "' places an argument at register offset " +
                         hex(regs) + ", beyond any AXI-lite control interface");
    e.register_bytes = static_cast<std::uint32_t>((regs + 3) / 4 * 4);
    const ffi_status st = ffi_prep_cif(&e.cif, FFI_DEFAULT_ABI, static_cast<unsigned>(e.types.size()),
                                       &ffi_type_void, e.types.data());
    if (st != FFI_OK)
      throw backend_error("ffi_prep_cif failed for kernel '" + k.name + "' in '" + path + "' (status " +
                          std::to_string(static_cast<int>(st)) + ")");
    auto [it, inserted] = entries.emplace(k.name, std::move(e));
    // The cif points into `types`; moving the vector keeps its buffer, but re-point to be safe.
    it->second.cif.arg_types = it->second.types.data();
  }

  // Compute units, named as the core names them (IP_LAYOUT, else metadata instances, else the kernel).
  for (auto& [name, e] : entries) {
    bool any = false;
    for (const auto& ip : bin.ips) {
      if ((ip.type != ip_type::kernel && ip.type != ip_type::ps_kernel) || ip.kernel_name() != name) continue;
      cus.push_back(std::make_unique<emu_cu>(*this, e, bin.cu_instance(ip), ip.base_address));
      any = true;
    }
    if (!any) {
      for (const auto& inst : e.info->instances) {
        cus.push_back(std::make_unique<emu_cu>(*this, e, inst.name, inst.base_address));
        any = true;
      }
    }
    if (!any) cus.push_back(std::make_unique<emu_cu>(*this, e, name, 0));
  }
  // Isolated mode: every CU's helper now, so a .so that cannot load or lacks a kernel fails the
  // load, as in-process, and the first run pays no start.
  for (auto& cu : cus)
    if (cu->isolated) cu->isolated->start();
  streams = stream_design::create(*this, bin);
  if (streams) streams->start();
}

void emu_program::release() {
  // Streams first: blocked kernels are released so their CUs' workers can be joined.
  const bool kernels_ended = !streams || streams->stop();
  // Every CU first, so none waits on a dependency while another is being joined.
  for (auto& cu : cus) cu->request_stop();
  // Isolated mode: helpers end now, a kernel that never returns included (its run fails).
  for (auto& cu : cus)
    if (cu->isolated) cu->isolated->stop();
  for (auto& cu : cus) cu->stop_worker();
  if (streams && kernels_ended) streams->destroy_fifos();
  if (!kernels_ended) {
    // A free-running kernel still runs in the library, on its FIFOs and compute unit: all of
    // them stay (stream_design::stop warned).
    stream_design::abandon(std::move(streams), cus);
    library = nullptr;
  }
  streams.reset();
  if (library) {
    ::dlclose(library);
    library = nullptr;
  }
  if (memfd >= 0) {
    // glibc finds loaded objects by name first: if the .so stayed loaded (C++ unique symbols make
    // dlclose a no-op), the memfd's number must stay taken so no later load reuses its path.
    const std::string so = "/proc/self/fd/" + std::to_string(memfd);
    if (void* still = ::dlopen(so.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
      ::dlclose(still);
    } else {
      ::close(memfd);
    }
    memfd = -1;
  }
  if (check_sync) emu_flush_pending_warnings();
}

emu_program::~emu_program() { release(); }

memory_usage emu_program::usage(unsigned memory_index) {
  memory_usage u;
  u.source = "emu";
  if (memory_index >= banks.size() || !banks[memory_index]) return u;
  const auto& bank = *banks[memory_index];
  u.used_bytes = bank.size - bank.free_bytes();
  std::shared_lock lock(buffers_mutex);
  for (const auto& [address, b] : buffers)
    if (b->memory_index == memory_index) ++u.buffers;
  return u;
}

std::shared_ptr<buffer_impl> emu_program::allocate(host_memory host, std::size_t bytes, unsigned memory_index) {
  if (memory_index >= banks.size())
    throw value_error("emu: memory index " + std::to_string(memory_index) + " is not a bank of '" + source + "'");
  const auto& m = memories[memory_index];
  if (!m.used)
    throw value_error("emu: memory '" + m.tag + "' of '" + source + "' is not used by the design");
  auto& bank = *banks[memory_index];
  // Guard pages take bank space, as they would take address space on a card with an MMU.
  const std::uint64_t range = check_bounds ? round_up(bytes) + 2 * granule : round_up(bytes);
  if (range < bytes) throw memory_error("emu: a buffer of " + std::to_string(bytes) + " bytes overflows any bank");
  if (range >= (std::uint64_t(64) << 20)) {
    // The device copy costs host memory once touched, beside the host copy the core holds: a
    // buffer the host cannot back is refused now rather than by the OOM killer later.
    std::uint64_t available = 0;
    if (!host_can_back(range + round_up(bytes), &available))
      throw memory_error("emu: a buffer of " + std::to_string(bytes) + " bytes in bank '" + m.tag +
                         "' needs " + std::to_string(range + round_up(bytes)) +
                         " bytes of host memory (its host copy and its emulated device memory); the host has " +
                         std::to_string(available) + " bytes available (RAM and swap)");
  }
  auto addr = bank.allocate(range);
  if (!addr)
    throw memory_error("bank '" + m.tag + "' (" + human(m.size_bytes) + " at " + hex(m.base_address) +
                       ") cannot hold a buffer of " + std::to_string(bytes) + " bytes: " +
                       std::to_string(bank.largest_free()) + " bytes free in one piece" +
                       (check_bounds ? " (FPYGA_EMU_CHECK_BOUNDS adds a guard page on each side)" : ""));
  std::shared_ptr<emu_buffer> b;
  try {
    b = std::make_shared<emu_buffer>(std::static_pointer_cast<emu_program>(shared_from_this()), *addr, range, bytes,
                                     memory_index);
  } catch (...) {
    bank.release(*addr, range);
    throw;
  }
  b->host = std::move(host);
  if (check_sync) b->shadow.assign(bytes, std::byte{0});
  return b;
}

std::shared_ptr<kernel_impl> emu_program::open_kernel(const kernel_info& kernel, std::vector<compute_unit> wanted) {
  auto it = entries.find(kernel.name);
  if (it == entries.end()) throw value_error("emu: kernel '" + kernel.name + "' is not in '" + source + "'");
  std::vector<emu_cu*> selected;
  for (const auto& w : wanted) {
    emu_cu* found = nullptr;
    for (auto& cu : cus)
      if (&cu->k == &it->second && cu->name == w.name) found = cu.get();
    if (!found) throw value_error("emu: kernel '" + kernel.name + "' has no compute unit '" + w.name + "'");
    selected.push_back(found);
  }
  auto k = std::make_shared<emu_kernel>(std::static_pointer_cast<emu_program>(shared_from_this()), it->second,
                                        std::move(selected));
  k->info = kernel;
  k->cus = std::move(wanted);
  return k;
}

bool emu_program::maps(const void* p) const noexcept {
  for (const auto& b : banks)
    if (b->maps(p)) return true;
  return false;
}

emu_buffer* emu_program::find_buffer(std::uint64_t address, std::size_t* offset) {
  std::shared_lock lock(buffers_mutex);
  auto it = buffers.upper_bound(address);
  if (it == buffers.begin()) return nullptr;
  --it;
  if (address - it->first >= it->second->size) return nullptr;
  *offset = address - it->first;
  return it->second;
}

// ----------------------------------------------------------------------------------------------
// Buffers

emu_buffer::emu_buffer(std::shared_ptr<emu_program> prog, std::uint64_t range_addr, std::uint64_t range_len,
                       std::size_t bytes, unsigned bank)
    : range_address(range_addr), range_bytes(range_len) {
  size = bytes;
  memory_index = bank;
  auto& b = *prog->banks[bank];
  std::byte* start = b.view(range_address);  // throws memory_error before anything is taken
  if (prog->check_bounds) {
    // [guard][padding][bytes][guard]: the bytes end 64 bytes (a cache line, the widest AXI
    // beat) from the guard after them, so an overrun faults at once and the kernel keeps the
    // alignment it may rely on.
    const std::uint64_t inner = range_bytes - 2 * granule;
    const std::uint64_t lead = inner - (bytes + 63) / 64 * 64;
    guard_before = start;
    guard_after = start + granule + inner;
    if (::mprotect(guard_before, granule, PROT_NONE) != 0 || ::mprotect(guard_after, granule, PROT_NONE) != 0) {
      const int e = errno;
      ::mprotect(start, range_bytes, PROT_READ | PROT_WRITE);
      errno = e;
      throw memory_error("emu: cannot protect the guard pages of a buffer of " + std::to_string(bytes) +
                         " bytes: " + std::strerror(errno));
    }
    device = start + granule + lead;
    address = range_address + granule + lead;
  } else {
    device = start;
    address = range_address;
  }
  program = prog;
  std::unique_lock lock(prog->buffers_mutex);
  prog->buffers.emplace(address, this);
}

emu_buffer::~emu_buffer() {
  if (device) release_device();
}

emu_program& emu_buffer::prog() const { return static_cast<emu_program&>(*program); }

void emu_buffer::sync_to_device(std::size_t bytes, std::size_t offset) {
  const bool check = prog().check_sync;
  if (check) sync_check::disarm(*this);
  std::memcpy(device + offset, host.get() + offset, bytes);
  if (check) sync_check::on_sync_to_device(*this, bytes, offset);
}

void emu_buffer::sync_from_device(std::size_t bytes, std::size_t offset) {
  const bool check = prog().check_sync;
  if (check) sync_check::disarm(*this);
  std::memcpy(host.get() + offset, device + offset, bytes);
  if (check) sync_check::on_sync_from_device(*this, bytes, offset);
}

void emu_buffer::release_device() {
  if (!device) return;  // a free deferred under a run may come after the program released it
  auto& p = prog();
  if (p.check_sync) {
    sync_check::disarm(*this);
    emu_flush_pending_warnings();
  }
  {
    std::unique_lock lock(p.buffers_mutex);
    p.buffers.erase(address);
  }
  auto& bank = *p.banks[memory_index];
  std::byte* start = bank.view(range_address);
  if (guard_before) {
    ::mprotect(guard_before, granule, PROT_READ | PROT_WRITE);
    ::mprotect(guard_after, granule, PROT_READ | PROT_WRITE);
    guard_before = guard_after = nullptr;
  }
  bank.decommit(start, range_bytes);
  bank.release(range_address, range_bytes);
  device = nullptr;
}

}  // namespace emu

backend_entry emu_backend() {
  backend_entry e;
  e.name = "emu";
  e.hardware = false;
  e.enumerate = &devices_once<emu::discover>;
  return e;
}

}  // namespace fpyga::backend
