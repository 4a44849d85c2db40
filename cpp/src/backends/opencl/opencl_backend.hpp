// The OpenCL backend: fpyga's backend interface over the Khronos ICD loader and the C++
// bindings, so it runs on every OpenCL platform. On Xilinx's platform an xclbin/awsxclbin is the
// program binary (metadata from fpyga's xclbin library); on any other (PoCL, GPUs) the overlay is
// an OpenCL C source file (.cl), built at load, whose kernel and argument metadata fpyga
// synthesizes from clGetKernelArgInfo. Internal: declared here for the backend's tests.
#pragma once

#ifndef CL_HPP_TARGET_OPENCL_VERSION
#define CL_HPP_TARGET_OPENCL_VERSION 120
#endif
#ifndef CL_HPP_MINIMUM_OPENCL_VERSION
#define CL_HPP_MINIMUM_OPENCL_VERSION 120
#endif
#include <CL/opencl.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace fpyga::backend::oclb {

/// "CL_INVALID_VALUE" and so on; "CL_ERROR(<code>)" for codes it does not know.
std::string error_name(cl_int code);
/// Throws backend_error (memory_error for allocation failures) "opencl: <routine>: <name> (<code>)".
void check(cl_int code, const char* routine);

/// Every OpenCL call that returns a status goes through this.
#define FPYGA_CL_CALL(fn, ...) ::fpyga::backend::oclb::check(fn(__VA_ARGS__), #fn)
/// Every OpenCL call that returns an object and reports through its last (errcode_ret) parameter.
#define FPYGA_CL_CREATE(fn, ...)                            \
  ([&] {                                                    \
    cl_int fpyga_cl_err_ = CL_SUCCESS;                      \
    auto fpyga_cl_obj_ = fn(__VA_ARGS__, &fpyga_cl_err_);   \
    ::fpyga::backend::oclb::check(fpyga_cl_err_, #fn);      \
    return fpyga_cl_obj_;                                   \
  }())

/// True for OpenCL C source overlays (by extension: ".cl").
bool is_source(const std::string& path);

/// Global size a kernel is enqueued with: one work-item (a "task"), as FPGA kernels are written.
constexpr std::size_t global_work_size = 1;

class ocl_device;
class ocl_program;

class ocl_buffer final : public buffer_impl {
 public:
  ocl_buffer(std::shared_ptr<ocl_program> prog, host_memory mem, std::size_t bytes, unsigned bank);
  void sync_to_device(std::size_t bytes, std::size_t offset) override;
  void sync_from_device(std::size_t bytes, std::size_t offset) override;
  std::uint64_t device_address() const override;
  void release_device() override;

  cl::Buffer mem;
  /// Bytes its cl_mem holds while it holds them, else 0 (memory usage).
  std::size_t device_bytes() const { return holds_device_.load() ? bytes_ : 0; }

 private:
  void check_usable(const char* what) const;
  std::size_t bytes_ = 0;
  std::atomic<bool> holds_device_{true};
};

class ocl_run final : public run_impl {
 public:
  ocl_run(cl::Event e, const void* ctx) : event(std::move(e)), context(ctx) {}
  run_state state() const override;
  run_state wait(std::optional<std::chrono::nanoseconds> timeout) override;
  cl::Event event;
  const void* context;  ///< the cl_context it ran in: events wait only within one context
};

class ocl_kernel final : public kernel_impl {
 public:
  ocl_kernel(std::shared_ptr<ocl_program> prog, const kernel_info& k, std::vector<compute_unit> cus);
  void call(std::span<const bound_arg> args, std::uint64_t cu_mask) override;
  std::shared_ptr<run_impl> start(std::span<const bound_arg> args, std::uint64_t cu_mask,
                                  std::span<const std::shared_ptr<run_impl>> waitfor) override;
  void drop();

 private:
  cl::Event enqueue(std::span<const bound_arg> args, std::uint64_t cu_mask,
                    const std::vector<cl_event>& deps);
  cl::Kernel& kernel_for(std::uint64_t cu_mask);
  void bind(cl::Kernel& k, std::uint64_t cu_mask, std::span<const bound_arg> args);
  void check_usable(const char* what) const;

  struct cached_arg {
    bool set = false;
    std::uint64_t buffer_serial = 0;
    std::size_t offset = 0;
    std::uint64_t bits = 0;
    cl::Buffer sub;
  };
  struct per_mask {
    cl::Kernel kernel;
    std::vector<cached_arg> args;
    std::size_t work_size[3] = {global_work_size, 1, 1};  ///< global = local (one work-group)
  };
  std::shared_ptr<ocl_program> program_;
  std::mutex mutex_;  // a cl_kernel's arguments are not thread-safe
  std::vector<std::pair<std::uint64_t, per_mask>> by_mask_;
};

class ocl_program final : public program_impl {
 public:
  std::shared_ptr<buffer_impl> allocate(host_memory host, std::size_t bytes,
                                        unsigned memory_index) override;
  std::shared_ptr<kernel_impl> open_kernel(const kernel_info& kernel,
                                           std::vector<compute_unit> cus) override;
  std::size_t runs_in_flight() const override;
  void release() override;
  /// fpyga's own count of this program's buffers: OpenCL reports no use per bank.
  memory_usage usage(unsigned memory_index) override;

  ocl_device& odev() const;
  std::string what() const { return "'" + path + "'"; }
  void track(const std::shared_ptr<ocl_run>& r);

  cl::Program program;
  std::string path;
  bool from_source = false;

 private:
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<ocl_kernel>> kernels_;
  std::vector<std::weak_ptr<ocl_buffer>> buffers_;
  std::vector<std::weak_ptr<ocl_run>> runs_;
};

class ocl_device final : public device_impl {
 public:
  ocl_device(unsigned index, cl::Platform p, cl::Device d);
  std::string name() const override { return name_; }
  std::string backend_name() const override { return "opencl"; }
  unsigned index() const override { return index_; }
  std::string shell() const override { return xilinx ? device_name : std::string(); }
  std::shared_ptr<program_impl> load(const xclbin& bin, const std::string& path) override;
  /// Programs of a platform that builds source are independent; Xilinx's programs the card.
  bool loads_beside_current() const override { return !xilinx; }
  /// Only Xilinx's platform runs xclbins; the others build OpenCL C sources.
  bool loads_xclbin() const override { return xilinx; }

  cl::Platform platform;
  cl::Device device;
  cl::Context context;
  cl::CommandQueue queue;
  std::string device_name, platform_name;
  bool xilinx = false;
  cl_device_type type = 0;

 private:
  void ensure_context();
  unsigned index_;
  std::string name_;
  std::mutex mutex_;
};

/// Builds the xclbin description (kernels, one default bank, one CU per kernel, connectivity)
/// of a program built from source, from clGetKernelArgInfo.
xclbin describe_source_program(const cl::Program& program, const std::string& path,
                               const ocl_device& dev);

}  // namespace fpyga::backend::oclb
