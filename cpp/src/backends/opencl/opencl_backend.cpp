// The OpenCL backend over the ICD loader. See opencl_backend.hpp for what an overlay is here.
//
// Choices:
// - Kernels are enqueued as tasks (global = local = one work-item, clEnqueueTask's definition),
//   the way FPGA kernels are written: an OpenCL C overlay for other platforms is written as a
//   single work-item loop too (kernels/opencl/*.cl). A kernel compiled with
//   reqd_work_group_size runs as one work-group of that size.
// - Buffers are CL_MEM_USE_HOST_PTR over fpyga's 4 KiB-aligned host memory. Syncs migrate the
//   whole buffer with clEnqueueMigrateMemObjects on Xilinx's platform and otherwise (and for
//   partial ranges) read or write the range between the buffer and its own host memory, which
//   the OpenCL specification defines for USE_HOST_PTR buffers and which every platform honours.
// - OpenCL devices are not "hardware" for the default-device rule: they are listed after XRT's
//   devices and opened by spec (FPYGA_DEVICE=opencl:N), so a machine with only a CPU OpenCL
//   (PoCL) keeps emu as its default and fpyga does not initialise every ICD on each default open.
//   A Xilinx card is the default through the xrt backend.
#include "backends/opencl/opencl_backend.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace fpyga::backend {
namespace oclb {
namespace {

// Xilinx's clCreateBuffer extension to place a buffer in a MEM_TOPOLOGY bank (cl_ext_xilinx.h).
struct xilinx_mem_ext_ptr {
  unsigned int flags;  // bank index | mem_topology_flag
  void* obj;           // the host pointer
  void* param;         // unused: nullptr
};
constexpr cl_mem_flags mem_ext_ptr_xilinx = cl_mem_flags(1u) << 31;
constexpr unsigned int mem_topology_flag = 1u << 31;

template <class T>
void prune(std::vector<std::weak_ptr<T>>& v) {
  std::erase_if(v, [](const std::weak_ptr<T>& w) { return w.expired(); });
}

std::string device_string(cl_device_id d, cl_device_info what) {
  std::size_t n = 0;
  FPYGA_CL_CALL(clGetDeviceInfo, d, what, 0, nullptr, &n);
  std::string s(n, '\0');
  FPYGA_CL_CALL(clGetDeviceInfo, d, what, n, s.data(), nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

std::string platform_string(cl_platform_id p, cl_platform_info what) {
  std::size_t n = 0;
  FPYGA_CL_CALL(clGetPlatformInfo, p, what, 0, nullptr, &n);
  std::string s(n, '\0');
  FPYGA_CL_CALL(clGetPlatformInfo, p, what, n, s.data(), nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw error("opencl: cannot open '" + path + "'");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string build_log(cl_program p, cl_device_id d) {
  try {
    std::size_t n = 0;
    FPYGA_CL_CALL(clGetProgramBuildInfo, p, d, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
    std::string s(n, '\0');
    FPYGA_CL_CALL(clGetProgramBuildInfo, p, d, CL_PROGRAM_BUILD_LOG, n, s.data(), nullptr);
    while (!s.empty() && (s.back() == '\0' || s.back() == '\n')) s.pop_back();
    return s;
  } catch (const error&) {
    return "(no build log)";
  }
}

// OpenCL C type names (as clGetKernelArgInfo spells them) to the C spellings fpyga's c_type
// parser reads. OpenCL's long is 64 bits.
std::string c_spelling(std::string t) {
  static const std::pair<const char*, const char*> names[] = {
      {"uchar", "unsigned char"}, {"ushort", "unsigned short"}, {"uint", "unsigned int"},
      {"ulong", "unsigned long long"}, {"long", "long long"}, {"size_t", "unsigned long long"}};
  for (const auto& [cl, c] : names)
    if (t == cl) return c;
  return t;
}

}  // namespace

std::string error_name(cl_int code) {
  switch (code) {
#define FPYGA_CL_ERR(x) \
  case x: return #x;
    FPYGA_CL_ERR(CL_SUCCESS)
    FPYGA_CL_ERR(CL_DEVICE_NOT_FOUND)
    FPYGA_CL_ERR(CL_DEVICE_NOT_AVAILABLE)
    FPYGA_CL_ERR(CL_COMPILER_NOT_AVAILABLE)
    FPYGA_CL_ERR(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    FPYGA_CL_ERR(CL_OUT_OF_RESOURCES)
    FPYGA_CL_ERR(CL_OUT_OF_HOST_MEMORY)
    FPYGA_CL_ERR(CL_PROFILING_INFO_NOT_AVAILABLE)
    FPYGA_CL_ERR(CL_MEM_COPY_OVERLAP)
    FPYGA_CL_ERR(CL_IMAGE_FORMAT_MISMATCH)
    FPYGA_CL_ERR(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    FPYGA_CL_ERR(CL_BUILD_PROGRAM_FAILURE)
    FPYGA_CL_ERR(CL_MAP_FAILURE)
    FPYGA_CL_ERR(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    FPYGA_CL_ERR(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    FPYGA_CL_ERR(CL_COMPILE_PROGRAM_FAILURE)
    FPYGA_CL_ERR(CL_LINKER_NOT_AVAILABLE)
    FPYGA_CL_ERR(CL_LINK_PROGRAM_FAILURE)
    FPYGA_CL_ERR(CL_DEVICE_PARTITION_FAILED)
    FPYGA_CL_ERR(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    FPYGA_CL_ERR(CL_INVALID_VALUE)
    FPYGA_CL_ERR(CL_INVALID_DEVICE_TYPE)
    FPYGA_CL_ERR(CL_INVALID_PLATFORM)
    FPYGA_CL_ERR(CL_INVALID_DEVICE)
    FPYGA_CL_ERR(CL_INVALID_CONTEXT)
    FPYGA_CL_ERR(CL_INVALID_QUEUE_PROPERTIES)
    FPYGA_CL_ERR(CL_INVALID_COMMAND_QUEUE)
    FPYGA_CL_ERR(CL_INVALID_HOST_PTR)
    FPYGA_CL_ERR(CL_INVALID_MEM_OBJECT)
    FPYGA_CL_ERR(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    FPYGA_CL_ERR(CL_INVALID_IMAGE_SIZE)
    FPYGA_CL_ERR(CL_INVALID_SAMPLER)
    FPYGA_CL_ERR(CL_INVALID_BINARY)
    FPYGA_CL_ERR(CL_INVALID_BUILD_OPTIONS)
    FPYGA_CL_ERR(CL_INVALID_PROGRAM)
    FPYGA_CL_ERR(CL_INVALID_PROGRAM_EXECUTABLE)
    FPYGA_CL_ERR(CL_INVALID_KERNEL_NAME)
    FPYGA_CL_ERR(CL_INVALID_KERNEL_DEFINITION)
    FPYGA_CL_ERR(CL_INVALID_KERNEL)
    FPYGA_CL_ERR(CL_INVALID_ARG_INDEX)
    FPYGA_CL_ERR(CL_INVALID_ARG_VALUE)
    FPYGA_CL_ERR(CL_INVALID_ARG_SIZE)
    FPYGA_CL_ERR(CL_INVALID_KERNEL_ARGS)
    FPYGA_CL_ERR(CL_INVALID_WORK_DIMENSION)
    FPYGA_CL_ERR(CL_INVALID_WORK_GROUP_SIZE)
    FPYGA_CL_ERR(CL_INVALID_WORK_ITEM_SIZE)
    FPYGA_CL_ERR(CL_INVALID_GLOBAL_OFFSET)
    FPYGA_CL_ERR(CL_INVALID_EVENT_WAIT_LIST)
    FPYGA_CL_ERR(CL_INVALID_EVENT)
    FPYGA_CL_ERR(CL_INVALID_OPERATION)
    FPYGA_CL_ERR(CL_INVALID_GL_OBJECT)
    FPYGA_CL_ERR(CL_INVALID_BUFFER_SIZE)
    FPYGA_CL_ERR(CL_INVALID_MIP_LEVEL)
    FPYGA_CL_ERR(CL_INVALID_GLOBAL_WORK_SIZE)
    FPYGA_CL_ERR(CL_INVALID_PROPERTY)
    FPYGA_CL_ERR(CL_INVALID_IMAGE_DESCRIPTOR)
    FPYGA_CL_ERR(CL_INVALID_COMPILER_OPTIONS)
    FPYGA_CL_ERR(CL_INVALID_LINKER_OPTIONS)
    FPYGA_CL_ERR(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef FPYGA_CL_ERR
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL_ERROR(" + std::to_string(code) + ")";
  }
}

void check(cl_int code, const char* routine) {
  if (code == CL_SUCCESS) return;
  const std::string msg = std::string("opencl: ") + routine + " failed: " + error_name(code) +
                          " (" + std::to_string(code) + ")";
  if (code == CL_OUT_OF_HOST_MEMORY || code == CL_MEM_OBJECT_ALLOCATION_FAILURE)
    throw memory_error(msg);
  throw backend_error(msg);
}

bool is_source(const std::string& path) {
  return path.size() > 3 && path.compare(path.size() - 3, 3, ".cl") == 0;
}

// ---------------------------------------------------------------------------------------------
// Buffers

ocl_buffer::ocl_buffer(std::shared_ptr<ocl_program> prog, host_memory hmem, std::size_t bytes,
                       unsigned bank) {
  host = std::move(hmem);
  size = bytes;
  memory_index = bank;
  program = prog;
  auto& dev = prog->odev();
  const std::size_t n = bytes == 0 ? 4096 : bytes;  // OpenCL refuses empty buffers
  bytes_ = n;
  cl_mem m;
  if (dev.xilinx && !prog->from_source) {
    xilinx_mem_ext_ptr ext{bank | mem_topology_flag, host.get(), nullptr};
    m = FPYGA_CL_CREATE(clCreateBuffer, dev.context(),
                        CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR | mem_ext_ptr_xilinx, n, &ext);
  } else {
    m = FPYGA_CL_CREATE(clCreateBuffer, dev.context(), CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, n,
                        host.get());
  }
  mem = cl::Buffer(m, false);
}

void ocl_buffer::check_usable(const char* what) const {
  if (program && program->released)
    throw error(std::string("opencl: ") + what + " on a buffer of " +
                static_cast<const ocl_program&>(*program).what() + ", which was unloaded");
  if (freed || !mem()) throw error(std::string("opencl: ") + what + " on a freed buffer");
}

void ocl_buffer::sync_to_device(std::size_t bytes, std::size_t offset) {
  check_usable("sync_to_device");
  auto& prog = static_cast<ocl_program&>(*program);
  auto& dev = prog.odev();
  if (bytes == 0) return;
  if (dev.xilinx && offset == 0 && bytes == size) {
    cl_mem m = mem();
    FPYGA_CL_CALL(clEnqueueMigrateMemObjects, dev.queue(), 1, &m, 0, 0, nullptr, nullptr);
    FPYGA_CL_CALL(clFinish, dev.queue());
    return;
  }
  FPYGA_CL_CALL(clEnqueueWriteBuffer, dev.queue(), mem(), CL_TRUE, offset, bytes,
                host.get() + offset, 0, nullptr, nullptr);
}

void ocl_buffer::sync_from_device(std::size_t bytes, std::size_t offset) {
  check_usable("sync_from_device");
  auto& prog = static_cast<ocl_program&>(*program);
  auto& dev = prog.odev();
  if (bytes == 0) return;
  if (dev.xilinx && offset == 0 && bytes == size) {
    cl_mem m = mem();
    FPYGA_CL_CALL(clEnqueueMigrateMemObjects, dev.queue(), 1, &m, CL_MIGRATE_MEM_OBJECT_HOST, 0,
                  nullptr, nullptr);
    FPYGA_CL_CALL(clFinish, dev.queue());
    return;
  }
  FPYGA_CL_CALL(clEnqueueReadBuffer, dev.queue(), mem(), CL_TRUE, offset, bytes,
                host.get() + offset, 0, nullptr, nullptr);
}

std::uint64_t ocl_buffer::device_address() const {
  unsupported("opencl", "device_address (OpenCL does not expose device addresses)");
}

void ocl_buffer::release_device() {
  holds_device_.store(false);
  mem = cl::Buffer();
}

// ---------------------------------------------------------------------------------------------
// Runs

run_state ocl_run::state() const {
  cl_int status = CL_COMPLETE;
  FPYGA_CL_CALL(clGetEventInfo, event(), CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status,
                nullptr);
  if (status < 0) return run_state::error;
  switch (status) {
    case CL_COMPLETE: return run_state::completed;
    case CL_RUNNING: return run_state::running;
    default: return run_state::queued;
  }
}

run_state ocl_run::wait(std::optional<std::chrono::nanoseconds> timeout) {
  if (!timeout) {
    cl_event e = event();
    const cl_int err = clWaitForEvents(1, &e);
    // A failed command reports through its status; anything else is a real failure.
    if (err != CL_SUCCESS && err != CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
      check(err, "clWaitForEvents");
    return state();
  }
  // OpenCL has no timed wait: poll.
  const auto deadline = std::chrono::steady_clock::now() + *timeout;
  for (;;) {
    const run_state s = state();
    if (s == run_state::completed || s == run_state::error) return s;
    if (std::chrono::steady_clock::now() >= deadline) return s;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// ---------------------------------------------------------------------------------------------
// Kernels

ocl_kernel::ocl_kernel(std::shared_ptr<ocl_program> prog, const kernel_info& k,
                       std::vector<compute_unit> units)
    : program_(std::move(prog)) {
  info = k;
  cus = std::move(units);
  kernel_for((cus.size() >= 64 ? ~0ull : (1ull << cus.size()) - 1));  // fail early on a bad name
}

void ocl_kernel::check_usable(const char* what) const {
  if (program_->released)
    throw error("opencl: " + std::string(what) + " of kernel '" + info.name + "' of " +
                program_->what() + ", which was unloaded");
}

cl::Kernel& ocl_kernel::kernel_for(std::uint64_t cu_mask) {
  for (auto& [m, pm] : by_mask_)
    if (m == cu_mask) return pm.kernel;
  // Xilinx's runtime selects compute units by name ("vadd:{vadd_1,vadd_2}"); other platforms
  // have one (synthesized) compute unit per kernel.
  std::string name = info.name;
  const std::uint64_t all = cus.size() >= 64 ? ~0ull : (1ull << cus.size()) - 1;
  if (program_->odev().xilinx && !program_->from_source && cu_mask != all) {
    name += ":{";
    bool first = true;
    for (std::size_t i = 0; i < cus.size(); ++i)
      if (cu_mask >> i & 1) {
        name += (first ? "" : ",") + cus[i].name;
        first = false;
      }
    name += "}";
  }
  cl_kernel k = FPYGA_CL_CREATE(clCreateKernel, program_->program(), name.c_str());
  per_mask pm;
  pm.kernel = cl::Kernel(k, false);
  // A task is global = local = 1; a kernel compiled with reqd_work_group_size runs as one work-
  // group of that size (Xilinx's runtime refuses any other shape for such kernels).
  std::size_t compiled[3] = {0, 0, 0};
  if (clGetKernelWorkGroupInfo(k, program_->odev().device(), CL_KERNEL_COMPILE_WORK_GROUP_SIZE,
                               sizeof compiled, compiled, nullptr) == CL_SUCCESS &&
      compiled[0] != 0) {
    for (int d = 0; d < 3; ++d) pm.work_size[d] = compiled[d] ? compiled[d] : 1;
  }
  pm.args.resize(info.args.size());
  by_mask_.emplace_back(cu_mask, std::move(pm));
  return by_mask_.back().second.kernel;
}

void ocl_kernel::bind(cl::Kernel& k, std::uint64_t cu_mask, std::span<const bound_arg> args) {
  per_mask* pm = nullptr;
  for (auto& [m, p] : by_mask_)
    if (m == cu_mask) pm = &p;
  const std::size_t n = std::min(args.size(), info.args.size());
  for (std::size_t i = 0; i < n; ++i) {
    const arg_info& a = info.args[i];
    const bound_arg& v = args[i];
    auto& cached = pm->args[i];
    const auto index = static_cast<cl_uint>(i);
    if (a.kind == arg_kind::stream) continue;
    if (a.kind == arg_kind::global) {
      auto* b = static_cast<ocl_buffer*>(v.buffer);
      if (!b || !b->mem())
        throw error("opencl: kernel '" + info.name + "' argument '" + a.name +
                    "': the buffer was freed");
      if (cached.set && cached.buffer_serial == v.bits && cached.offset == v.offset) continue;
      cl_mem m = b->mem();
      if (v.offset != 0) {
        cl_buffer_region region{v.offset, b->size - v.offset};
        cl_mem sub = FPYGA_CL_CREATE(clCreateSubBuffer, m, CL_MEM_READ_WRITE,
                                     CL_BUFFER_CREATE_TYPE_REGION, &region);
        cached.sub = cl::Buffer(sub, false);
        m = sub;
      } else {
        cached.sub = cl::Buffer();
      }
      FPYGA_CL_CALL(clSetKernelArg, k(), index, sizeof(cl_mem), &m);
      cached.set = true;
      cached.buffer_serial = v.bits;
      cached.offset = v.offset;
      continue;
    }
    if (!v.wide.empty()) {
      FPYGA_CL_CALL(clSetKernelArg, k(), index, v.wide.size(), v.wide.data());
      cached.set = false;
      continue;
    }
    if (cached.set && cached.bits == v.bits) continue;
    std::size_t bytes = a.size ? static_cast<std::size_t>(a.size) : 4;
    bytes = std::min<std::size_t>(bytes, sizeof v.bits);
    FPYGA_CL_CALL(clSetKernelArg, k(), index, bytes, &v.bits);
    cached.set = true;
    cached.bits = v.bits;
  }
}

cl::Event ocl_kernel::enqueue(std::span<const bound_arg> args, std::uint64_t cu_mask,
                              const std::vector<cl_event>& deps) {
  std::lock_guard lock(mutex_);
  auto& k = kernel_for(cu_mask);
  try {
    bind(k, cu_mask, args);
  } catch (...) {
    for (auto& [m, pm] : by_mask_)
      if (m == cu_mask)
        for (auto& c : pm.args) c.set = false;
    throw;
  }
  const std::size_t* size = nullptr;
  for (auto& [m, pm] : by_mask_)
    if (m == cu_mask) size = pm.work_size;
  cl_event e = nullptr;
  FPYGA_CL_CALL(clEnqueueNDRangeKernel, program_->odev().queue(), k(), 3, nullptr, size, size,
                static_cast<cl_uint>(deps.size()), deps.empty() ? nullptr : deps.data(), &e);
  cl::Event ev(e, false);
  FPYGA_CL_CALL(clFlush, program_->odev().queue());
  return ev;
}

void ocl_kernel::call(std::span<const bound_arg> args, std::uint64_t cu_mask) {
  check_usable("call");
  ocl_run r(enqueue(args, cu_mask, {}), program_->odev().context());
  if (r.wait(std::nullopt) != run_state::completed)
    throw backend_error("opencl: kernel '" + info.name + "' of " + program_->what() +
                        " failed on " + program_->odev().name());
}

std::shared_ptr<run_impl> ocl_kernel::start(std::span<const bound_arg> args,
                                            std::uint64_t cu_mask,
                                            std::span<const std::shared_ptr<run_impl>> waitfor) {
  check_usable("start");
  std::vector<cl_event> deps;
  const void* ctx = program_->odev().context();
  std::vector<std::shared_ptr<run_impl>> foreign;  // runs of other devices or backends
  for (const auto& w : waitfor) {
    auto* r = dynamic_cast<ocl_run*>(w.get());
    if (r && r->context == ctx)
      deps.push_back(r->event());
    else if (w)
      foreign.push_back(w);
  }
  // OpenCL events do not cross contexts: those are waited for here.
  if (std::string why = wait_for_runs(foreign); !why.empty()) {
    // It never starts: a run that has already ended in error, as on the other backends.
    cl_event e = FPYGA_CL_CREATE(clCreateUserEvent, program_->odev().context());
    cl::Event failed(e, false);
    FPYGA_CL_CALL(clSetUserEventStatus, e, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
    auto r = std::make_shared<ocl_run>(std::move(failed), ctx);
    r->error_message = std::move(why);
    return r;
  }
  auto r = std::make_shared<ocl_run>(enqueue(args, cu_mask, deps), ctx);
  program_->track(r);
  return r;
}

void ocl_kernel::drop() {
  std::lock_guard lock(mutex_);
  by_mask_.clear();
}

// ---------------------------------------------------------------------------------------------
// Programs

ocl_device& ocl_program::odev() const { return static_cast<ocl_device&>(*device); }

void ocl_program::track(const std::shared_ptr<ocl_run>& r) {
  std::lock_guard lock(mutex_);
  prune(runs_);
  runs_.push_back(r);
}

std::shared_ptr<buffer_impl> ocl_program::allocate(host_memory host, std::size_t bytes,
                                                   unsigned memory_index) {
  if (released) throw error("opencl: cannot allocate in " + what() + ", which was unloaded");
  auto self = std::static_pointer_cast<ocl_program>(shared_from_this());
  auto b = std::make_shared<ocl_buffer>(self, std::move(host), bytes, memory_index);
  std::lock_guard lock(mutex_);
  prune(buffers_);
  buffers_.push_back(b);
  return b;
}

std::shared_ptr<kernel_impl> ocl_program::open_kernel(const kernel_info& kernel,
                                                      std::vector<compute_unit> cus) {
  if (released)
    throw error("opencl: cannot open kernel '" + kernel.name + "' of " + what() +
                ", which was unloaded");
  auto self = std::static_pointer_cast<ocl_program>(shared_from_this());
  auto k = std::make_shared<ocl_kernel>(self, kernel, std::move(cus));
  std::lock_guard lock(mutex_);
  prune(kernels_);
  kernels_.push_back(k);
  return k;
}

std::size_t ocl_program::runs_in_flight() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& w : runs_)
    if (auto r = w.lock()) {
      const run_state s = r->state();
      if (s == run_state::queued || s == run_state::running) ++n;
    }
  return n;
}

void ocl_program::release() {
  std::lock_guard lock(mutex_);
  if (released) return;
  released = true;
  clFinish(odev().queue());  // nothing may still use the objects dropped below
  for (auto& w : kernels_)
    if (auto k = w.lock()) k->drop();
  for (auto& w : buffers_)
    if (auto b = w.lock()) b->release_device();
  kernels_.clear();
  buffers_.clear();
  program = cl::Program();
}

memory_usage ocl_program::usage(unsigned memory_index) {
  std::lock_guard lock(mutex_);
  return count_own_buffers(buffers_, memory_index);
}

// ---------------------------------------------------------------------------------------------
// Devices

ocl_device::ocl_device(unsigned index, cl::Platform p, cl::Device d)
    : platform(std::move(p)), device(std::move(d)), index_(index) {
  device_name = device_string(device(), CL_DEVICE_NAME);
  platform_name = platform_string(platform(), CL_PLATFORM_NAME);
  FPYGA_CL_CALL(clGetDeviceInfo, device(), CL_DEVICE_TYPE, sizeof type, &type, nullptr);
  const std::string vendor = platform_string(platform(), CL_PLATFORM_VENDOR);
  xilinx = vendor.find("Xilinx") != std::string::npos || platform_name.find("Xilinx") != std::string::npos;
  // Xilinx's runtime leaves the name empty on its noop shim.
  name_ = (device_name.empty() ? "device " + std::to_string(index) : device_name) + " (" +
          platform_name + ")";
}

void ocl_device::ensure_context() {
  if (context()) return;
  cl_device_id d = device();
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   reinterpret_cast<cl_context_properties>(platform()), 0};
  cl_context c = FPYGA_CL_CREATE(clCreateContext, props, 1, &d, nullptr, nullptr);
  context = cl::Context(c, false);
  cl_command_queue q = FPYGA_CL_CREATE(clCreateCommandQueue, c, d, 0);
  queue = cl::CommandQueue(q, false);
}

std::shared_ptr<program_impl> ocl_device::load(const xclbin& bin, const std::string& path) {
  std::lock_guard lock(mutex_);
  // The core released the current program already unless this device loads beside it.
  if (!loads_beside_current() && current && !current->released) current->release();
  ensure_context();
  auto prog = std::make_shared<ocl_program>();
  prog->device = shared_from_this();
  prog->path = path;
  cl_device_id d = device();
  cl_program p = nullptr;
  std::string options;
  if (is_source(path)) {
    prog->from_source = true;
    const std::string src = read_file(path);
    const char* text = src.c_str();
    const std::size_t len = src.size();
    p = FPYGA_CL_CREATE(clCreateProgramWithSource, context(), 1, &text, &len);
    options = "-cl-kernel-arg-info";  // argument names and types for the metadata
  } else {
    if (!xilinx)
      throw value_error("opencl: '" + path + "' is an xclbin, which only Xilinx's OpenCL platform "
                        "runs; device " + name_ + " builds OpenCL C sources (.cl)");
    // Old files name compute units by their kernel only, which XRT's OpenCL matches to no
    // kernel: it gets a copy with "kernel:instance" names, as the core names them.
    std::string bytes;
    if (bin.has_bare_cu_names()) {
      const auto renamed = bin.with_full_cu_names().write();
      bytes.assign(reinterpret_cast<const char*>(renamed.data()), renamed.size());
    } else {
      bytes = read_file(path);
    }
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t len = bytes.size();
    cl_int status = CL_SUCCESS;
    p = FPYGA_CL_CREATE(clCreateProgramWithBinary, context(), 1, &d, &len, &data, &status);
    check(status, "clCreateProgramWithBinary (binary status)");
  }
  prog->program = cl::Program(p, false);
  const cl_int built = clBuildProgram(p, 1, &d, options.c_str(), nullptr, nullptr);
  if (built != CL_SUCCESS)
    throw backend_error("opencl: clBuildProgram of '" + path + "' for " + name_ + " failed: " +
                        error_name(built) + " (" + std::to_string(built) + ")\n" +
                        build_log(p, d));
  if (prog->from_source) {
    prog->bin = describe_source_program(prog->program, path, *this);
  } else {
    prog->bin = bin;
  }
  prog->memories = prog->bin.memories;
  if (prog->memories.empty()) {
    cl_ulong size = 0;
    FPYGA_CL_CALL(clGetDeviceInfo, d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof size, &size, nullptr);
    prog->memories.push_back(default_bank(size));
  }
  current = prog;
  return prog;
}

xclbin describe_source_program(const cl::Program& program, const std::string& path,
                               const ocl_device& dev) {
  xclbin x;
  x.source = path;
  x.mode = xclbin_mode::flat;
  x.platform_vbnv = dev.device_name;
  memory_info bank;
  bank.used = true;
  bank.tag = "bank0";
  FPYGA_CL_CALL(clGetDeviceInfo, dev.device(), CL_DEVICE_GLOBAL_MEM_SIZE, sizeof bank.size_bytes,
                &bank.size_bytes, nullptr);
  x.memories.push_back(bank);

  cl_uint count = 0;
  FPYGA_CL_CALL(clCreateKernelsInProgram, program(), 0, nullptr, &count);
  std::vector<cl_kernel> raw(count);
  if (count) FPYGA_CL_CALL(clCreateKernelsInProgram, program(), count, raw.data(), nullptr);
  std::vector<cl::Kernel> kernels;
  for (cl_kernel k : raw) kernels.emplace_back(k, false);

  auto kernel_string = [](cl_kernel k, cl_kernel_info what) {
    std::size_t n = 0;
    FPYGA_CL_CALL(clGetKernelInfo, k, what, 0, nullptr, &n);
    std::string s(n, '\0');
    FPYGA_CL_CALL(clGetKernelInfo, k, what, n, s.data(), nullptr);
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
  };
  auto arg_string = [](cl_kernel k, cl_uint i, cl_kernel_arg_info what) {
    std::size_t n = 0;
    FPYGA_CL_CALL(clGetKernelArgInfo, k, i, what, 0, nullptr, &n);
    std::string s(n, '\0');
    FPYGA_CL_CALL(clGetKernelArgInfo, k, i, what, n, s.data(), nullptr);
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
  };

  for (auto& k : kernels) {
    kernel_info ki;
    ki.name = kernel_string(k(), CL_KERNEL_FUNCTION_NAME);
    ki.language = "opencl c";
    cl_uint nargs = 0;
    FPYGA_CL_CALL(clGetKernelInfo, k(), CL_KERNEL_NUM_ARGS, sizeof nargs, &nargs, nullptr);
    std::uint64_t offset = 0x10;  // laid out as Vitis HLS would, for information only
    const unsigned ip_index = static_cast<unsigned>(x.ips.size());
    for (cl_uint i = 0; i < nargs; ++i) {
      arg_info a;
      a.index = i;
      a.name = arg_string(k(), i, CL_KERNEL_ARG_NAME);
      std::string type = arg_string(k(), i, CL_KERNEL_ARG_TYPE_NAME);
      cl_kernel_arg_address_qualifier aq = 0;
      FPYGA_CL_CALL(clGetKernelArgInfo, k(), i, CL_KERNEL_ARG_ADDRESS_QUALIFIER, sizeof aq, &aq,
                    nullptr);
      cl_kernel_arg_type_qualifier tq = 0;
      FPYGA_CL_CALL(clGetKernelArgInfo, k(), i, CL_KERNEL_ARG_TYPE_QUALIFIER, sizeof tq, &tq,
                    nullptr);
      const bool pointer = !type.empty() && type.back() == '*';
      if (pointer) type.pop_back();
      type = c_spelling(type);
      if (pointer) {
        a.type = type + ((tq & CL_KERNEL_ARG_TYPE_CONST) ? " const *" : " *");
        a.kind = arg_kind::global;
        a.address_qualifier = aq == CL_KERNEL_ARG_ADDRESS_CONSTANT ? 2
                              : aq == CL_KERNEL_ARG_ADDRESS_LOCAL  ? 3
                                                                   : 1;
        a.size = 8;
      } else {
        a.type = type;
        a.kind = arg_kind::scalar;
        a.address_qualifier = 0;
        a.size = c_type::parse(type).storage_bytes();
      }
      a.port = pointer ? "M_AXI_GMEM" : "S_AXI_CONTROL";
      a.offset = offset;
      offset += a.size > 4 ? 12 : 8;
      a.host_size = a.size;
      if (a.kind == arg_kind::global) x.connectivity.push_back({static_cast<std::int32_t>(i),
                                                                static_cast<std::int32_t>(ip_index), 0});
      ki.args.push_back(std::move(a));
    }
    ip_info ip;
    ip.index = ip_index;
    ip.type = ip_type::kernel;
    ip.name = ki.name + ":" + ki.name + "_1";
    ki.instances.push_back({ki.name + "_1", 0});
    x.ips.push_back(ip);
    x.kernels.push_back(std::move(ki));
  }
  return x;
}

}  // namespace oclb

namespace {

std::vector<std::shared_ptr<device_impl>> discover() {
  using namespace oclb;
  std::vector<std::shared_ptr<device_impl>> out;
  try {
    cl_uint np = 0;
    // No ICD or no platform (CL_PLATFORM_NOT_FOUND_KHR) simply means no OpenCL devices.
    if (clGetPlatformIDs(0, nullptr, &np) != CL_SUCCESS || np == 0) return out;
    std::vector<cl_platform_id> platforms(np);
    FPYGA_CL_CALL(clGetPlatformIDs, np, platforms.data(), nullptr);
    for (cl_platform_id p : platforms) {
      cl_uint nd = 0;
      if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0)
        continue;
      std::vector<cl_device_id> ids(nd);
      FPYGA_CL_CALL(clGetDeviceIDs, p, CL_DEVICE_TYPE_ALL, nd, ids.data(), nullptr);
      for (cl_device_id d : ids)
        out.push_back(std::make_shared<ocl_device>(static_cast<unsigned>(out.size()),
                                                   cl::Platform(p), cl::Device(d, false)));
    }
  } catch (const error&) {
    // A broken ICD must not take the other backends down: report what was found so far.
  }
  return out;
}

}  // namespace

backend_entry opencl_backend() {
  return backend_entry{"opencl", false, &devices_once<discover>};
}

}  // namespace fpyga::backend
