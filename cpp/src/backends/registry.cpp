// The backends compiled into this build, in default-device order: hardware first, emu last.
// Each backend's CMakeLists defines FPYGA_HAVE_<NAME>_BACKEND when it adds its sources.
#include <atomic>
#include <cstring>
#include <new>
#include <string>

#include "backends/backend.hpp"

namespace fpyga::backend {

#ifdef FPYGA_HAVE_XRT_BACKEND
backend_entry xrt_backend();
#endif
#ifdef FPYGA_HAVE_OPENCL_BACKEND
backend_entry opencl_backend();
#endif
#ifdef FPYGA_HAVE_EMU_BACKEND
backend_entry emu_backend();
#endif

const std::vector<backend_entry>& backends() {
  static const std::vector<backend_entry> all = [] {
    std::vector<backend_entry> v;
#ifdef FPYGA_HAVE_XRT_BACKEND
    v.push_back(xrt_backend());
#endif
#ifdef FPYGA_HAVE_OPENCL_BACKEND
    v.push_back(opencl_backend());
#endif
#ifdef FPYGA_HAVE_EMU_BACKEND
    v.push_back(emu_backend());
#endif
    return v;
  }();
  return all;
}

void unsupported(std::string_view backend, std::string_view function) {
  throw not_supported_error(std::string(backend) + ": " + std::string(function) +
                            " is not supported by this backend");
}

std::string wait_for_runs(std::span<const std::shared_ptr<run_impl>> waitfor,
                          const std::function<bool()>& stopping) {
  std::string why;
  for (const auto& w : waitfor) {
    if (!w) continue;
    run_state s;
    while ((s = w->wait(std::chrono::milliseconds(20))) == run_state::queued ||
           s == run_state::running)
      if (stopping && stopping())
        return "its xclbin was unloaded before the runs it waited for completed";
    if (s == run_state::error && why.empty())
      why = "a run it was to wait for failed" +
            (w->error_message.empty() ? std::string() : ": " + w->error_message);
  }
  return why;
}

std::uint64_t next_buffer_serial() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

host_memory allocate_host(std::size_t bytes) {
  constexpr std::size_t page = 4096;
  const std::size_t rounded = bytes == 0 ? page : (bytes + page - 1) / page * page;
  if (rounded < bytes) throw memory_error("host allocation of " + std::to_string(bytes) + " bytes overflows");
  void* p = std::aligned_alloc(page, rounded);
  if (!p) throw memory_error("cannot allocate " + std::to_string(bytes) + " bytes of aligned host memory");
  std::memset(p, 0, rounded);
  return host_memory(static_cast<std::byte*>(p));
}

memory_info default_bank(std::uint64_t size_bytes) {
  memory_info m;
  m.index = 0;
  m.type = memory_type::ddr4;
  m.used = true;
  m.base_address = 0;
  m.size_bytes = size_bytes;
  m.tag = "bank0";
  return m;
}

std::uint32_t kernel_impl::read_register(unsigned, std::uint32_t) {
  unsupported("this backend", "read_register");
}

void kernel_impl::write_register(unsigned, std::uint32_t, std::uint32_t) {
  unsupported("this backend", "write_register");
}

}  // namespace fpyga::backend
