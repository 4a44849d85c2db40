// The per-sample MLP round trip over OpenCL (PoCL), two ways, for bench/compare_hosts.py:
//  - "plain": our own host on the OpenCL C++ bindings, the paper's baseline flow (blocking write,
//    enqueue the kernel, blocking read);
//  - "fpyga": fpyga's C++ API on its OpenCL backend with the same .cl file as an overlay
//    (sync_to_device, call, sync_from_device).
//
//   fpyga_bench_opencl_mlp --cl mlp.cl --weights w.f32 --dims d.i32 --input x.f32
//
// Prints JSON: {"plain_ns": [...], "fpyga_ns": [...], "plain_out": [...], "fpyga_out": [...]}.
#define CL_HPP_TARGET_OPENCL_VERSION 120
#define CL_HPP_MINIMUM_OPENCL_VERSION 120
#define CL_HPP_ENABLE_EXCEPTIONS
#include <CL/opencl.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

template <class T>
std::vector<T> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() % sizeof(T))
    throw std::runtime_error(path + ": size is not a multiple of the element");
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) try {
  std::string cl_path, w_path, d_path, x_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--cl")
      cl_path = argv[i + 1];
    else if (a == "--weights")
      w_path = argv[i + 1];
    else if (a == "--dims")
      d_path = argv[i + 1];
    else if (a == "--input")
      x_path = argv[i + 1];
    else
      throw std::invalid_argument("unknown option " + a);
  }
  if (cl_path.empty() || w_path.empty() || d_path.empty() || x_path.empty())
    throw std::invalid_argument(
        "usage: fpyga_bench_opencl_mlp --cl F --weights F --dims F --input F");
  const auto w = read_file<float>(w_path);
  const auto dims = read_file<std::int32_t>(d_path);
  const auto x = read_file<float>(x_path);
  const std::size_t n_in = static_cast<std::size_t>(dims.front()),
                    n_out = static_cast<std::size_t>(dims.back());
  const std::size_t n = x.size() / n_in;
  const int n_layers = static_cast<int>(dims.size()) - 1;
  nlohmann::json j;

  {  // Plain OpenCL host.
    std::vector<cl::Platform> platforms;
    cl::Platform::get(&platforms);
    cl::Platform pocl;
    for (auto& p : platforms)
      if (p.getInfo<CL_PLATFORM_NAME>().find("Portable Computing Language") != std::string::npos)
        pocl = p;
    if (!pocl()) throw std::runtime_error("no PoCL platform");
    std::vector<cl::Device> devs;
    pocl.getDevices(CL_DEVICE_TYPE_ALL, &devs);
    cl::Context ctx(devs.front());
    cl::CommandQueue q(ctx, devs.front());
    cl::Program prg(ctx, read_text(cl_path));
    prg.build({devs.front()});
    cl::Kernel k(prg, "mlp");
    cl::Buffer wb(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, w.size() * 4,
                  const_cast<float*>(w.data()));
    cl::Buffer db(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, dims.size() * 4,
                  const_cast<std::int32_t*>(dims.data()));
    cl::Buffer in(ctx, CL_MEM_READ_ONLY, n_in * 4), out(ctx, CL_MEM_WRITE_ONLY, n_out * 4);
    k.setArg(0, in);
    k.setArg(1, out);
    k.setArg(2, wb);
    k.setArg(3, db);
    k.setArg(4, n_layers);
    std::vector<std::int64_t> t(n);
    std::vector<float> res(n * n_out);
    for (std::size_t s = 0; s < n; ++s) {
      const auto t0 = clock_type::now();
      q.enqueueWriteBuffer(in, CL_TRUE, 0, n_in * 4, x.data() + s * n_in);
      q.enqueueNDRangeKernel(k, cl::NullRange, cl::NDRange(1), cl::NullRange);
      q.enqueueReadBuffer(out, CL_TRUE, 0, n_out * 4, res.data() + s * n_out);
      t[s] = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
    }
    j["plain_ns"] = t;
    j["plain_out"] = res;
  }

  try {  // fpyga's C++ API on its OpenCL backend.
    fpyga::device dev = fpyga::device::open("opencl:0");
    fpyga::overlay ol(dev, cl_path);
    fpyga::kernel k = ol.kernel("mlp");
    fpyga::buffer wb(dev, w.size() * 4), db(dev, dims.size() * 4), in(dev, n_in * 4),
        out(dev, n_out * 4);
    std::memcpy(wb.data(), w.data(), w.size() * 4);
    std::memcpy(db.data(), dims.data(), dims.size() * 4);
    wb.sync_to_device();
    db.sync_to_device();
    std::vector<std::int64_t> t(n);
    std::vector<float> res(n * n_out);
    for (std::size_t s = 0; s < n; ++s) {
      const auto t0 = clock_type::now();
      std::memcpy(in.data(), x.data() + s * n_in, n_in * 4);
      in.sync_to_device();
      k.call(in, out, wb, db, n_layers);
      out.sync_from_device();
      std::memcpy(res.data() + s * n_out, out.data(), n_out * 4);
      t[s] = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
    }
    j["fpyga_ns"] = t;
    j["fpyga_out"] = res;
    j["fpyga_device"] = dev.name();
  } catch (const std::exception& e) {
    j["fpyga_error"] = e.what();
  }
  std::cout << j.dump() << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "fpyga_bench_opencl_mlp: " << e.what() << "\n";
  return 1;
}
