// The demo's C++ host (issue 6): runs an nn_<model>.xclbin sample by sample the way the paper's
// OpenCL host does on F1 (program the device, allocate, then per sample: convert and inject the
// input, run the kernel, extract and convert the output), timing the three phases; then the batch
// kernel over all samples and a bare loop over the kernel function itself (the floor).
//
//   fpyga_demo_host --xclbin nn_muon.xclbin --input x.f32 --inputs 27 --outputs 1 [--device emu]
//   fpyga_demo_host --xclbin nn_muon.xclbin --sizes     (prints {"inputs": 27, "outputs": 1})
//
// The input file holds n x inputs float32 values (standardized features). Prints one JSON object
// on stdout: per-sample phase times (ns), the raw output bits, the batch and bare-loop timings.
// The float -> ap_fixed conversion is fpyga::to_fixed, the same code the Python host calls.
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "fpyga/fixed.hpp"
#include "fpyga/fpyga.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t ns_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

struct options {
  std::string xclbin, input, device;
  std::size_t inputs = 0, outputs = 0;
  int repeat = 1;
  bool sizes_only = false;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--xclbin")
      o.xclbin = next();
    else if (a == "--input")
      o.input = next();
    else if (a == "--inputs")
      o.inputs = std::stoul(next());
    else if (a == "--outputs")
      o.outputs = std::stoul(next());
    else if (a == "--device")
      o.device = next();
    else if (a == "--repeat")
      o.repeat = std::stoi(next());
    else if (a == "--sizes")
      o.sizes_only = true;
    else
      throw std::invalid_argument("unknown option " + a);
  }
  if (o.sizes_only && !o.xclbin.empty()) return o;
  if (o.xclbin.empty() || o.input.empty() || o.inputs == 0 || o.outputs == 0)
    throw std::invalid_argument(
        "usage: fpyga_demo_host --xclbin FILE --input FILE --inputs N --outputs M [--device SPEC] "
        "[--repeat R]");
  return o;
}

std::vector<float> read_floats(const std::string& path, std::size_t per_sample) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("cannot open input file " + path);
  const auto bytes = static_cast<std::size_t>(f.tellg());
  if (bytes % (per_sample * sizeof(float)) != 0)
    throw std::runtime_error("input file " + path + ": " + std::to_string(bytes) +
                             " bytes is not a whole number of samples of " +
                             std::to_string(per_sample) + " floats");
  std::vector<float> x(bytes / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(bytes));
  return x;
}

// The raw bits of element i of an array of `f`'s containers, sign-extended as to_fixed stores them.
std::int64_t raw_at(const void* base, std::size_t i, const fpyga::fixed_format& f) {
  const auto* p = static_cast<const unsigned char*>(base) + i * f.storage_bytes();
  std::int64_t v = 0;
  switch (f.storage_bytes()) {
    case 1: {
      std::int8_t t;
      std::memcpy(&t, p, 1);
      v = t;
      break;
    }
    case 2: {
      std::int16_t t;
      std::memcpy(&t, p, 2);
      v = t;
      break;
    }
    case 4: {
      std::int32_t t;
      std::memcpy(&t, p, 4);
      v = t;
      break;
    }
    default:
      std::memcpy(&v, p, 8);
      break;
  }
  return v;
}

// The kernel function itself, loaded from the xclbin's sw_emu shared object (a private copy).
struct bare_kernel {
  void* handle = nullptr;
  void (*one)(const void*, void*) = nullptr;
  std::size_t inputs = 0, outputs = 0;
  explicit bare_kernel(const fpyga::xclbin& x) {
    const int fd = memfd_create("fpyga_demo_bare", MFD_CLOEXEC);
    if (fd < 0) throw std::runtime_error("memfd_create failed");
    if (write(fd, x.bitstream.data(), x.bitstream.size()) !=
        static_cast<ssize_t>(x.bitstream.size()))
      throw std::runtime_error("writing the kernel object failed");
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    close(fd);
    if (!handle) throw std::runtime_error(std::string("dlopen of the kernel object: ") + dlerror());
    one = reinterpret_cast<void (*)(const void*, void*)>(dlsym(handle, "nn"));
    if (!one) throw std::runtime_error("kernel object has no symbol nn");
    const auto* ni = static_cast<const int*>(dlsym(handle, "fpyga_nn_inputs"));
    const auto* no = static_cast<const int*>(dlsym(handle, "fpyga_nn_outputs"));
    if (!ni || !no)
      throw std::runtime_error("kernel object does not record its I/O sizes (not an nn_* xclbin?)");
    inputs = static_cast<std::size_t>(*ni);
    outputs = static_cast<std::size_t>(*no);
  }
  ~bare_kernel() {
    if (handle) dlclose(handle);
  }
};

}  // namespace

int main(int argc, char** argv) try {
  const options opt = parse(argc, argv);
  if (opt.sizes_only) {  // the network's I/O sizes, without a device (null for a hardware xclbin)
    const fpyga::xclbin xb = fpyga::xclbin::read(opt.xclbin);
    if (!xb.bitstream_is_elf()) {
      std::cout << R"({"inputs":null,"outputs":null})"
                << "\n";
      return 0;
    }
    bare_kernel k(xb);
    std::cout << nlohmann::json{{"inputs", k.inputs}, {"outputs", k.outputs}}.dump() << "\n";
    return 0;
  }
  const std::vector<float> x = read_floats(opt.input, opt.inputs);
  const std::size_t n = x.size() / opt.inputs;

  fpyga::device dev = fpyga::device::open(opt.device);
  fpyga::overlay ol(dev, opt.xclbin);
  fpyga::kernel nn = ol.kernel("nn");
  fpyga::kernel nn_batch = ol.kernel("nn_batch");
  const auto in_fmt = fpyga::fixed_format::from(fpyga::c_type::parse(nn.args()[0].type));
  const auto out_fmt = fpyga::fixed_format::from(fpyga::c_type::parse(nn.args()[1].type));
  const std::size_t n_in = opt.inputs;
  const std::size_t in_bytes = in_fmt.storage_bytes(), out_bytes = out_fmt.storage_bytes();

  const std::size_t n_out = opt.outputs;
  // The kernel function itself (for the floor) also tells the network's sizes: check them first.
  // The kernel function itself (sw_emu xclbins only; a hardware xclbin has no CPU code): the
  // floor of the benchmark, and the network's sizes, checked before the first call.
  std::unique_ptr<bare_kernel> bare;
  if (ol.xclbin().bitstream_is_elf()) {
    bare = std::make_unique<bare_kernel>(ol.xclbin());
    if (bare->inputs != n_in || bare->outputs != n_out)
      throw std::invalid_argument(opt.xclbin + ": the network takes " +
                                  std::to_string(bare->inputs) + " inputs and gives " +
                                  std::to_string(bare->outputs) + " outputs, not " +
                                  std::to_string(n_in) + " and " + std::to_string(n_out));
  }
  fpyga::buffer in(nn, 0, n_in * in_bytes);
  fpyga::buffer out1(nn, 1, n_out * out_bytes);

  std::vector<std::int64_t> t_inject(n), t_infer(n), t_extract(n);
  std::vector<float> y(n * n_out);
  std::vector<std::int64_t> raw(n * n_out);
  for (int r = 0; r < opt.repeat; ++r) {
    for (std::size_t s = 0; s < n; ++s) {
      const auto t0 = clock_type::now();
      fpyga::to_fixed(x.data() + s * n_in, n_in, in.data(), in_bytes, in_fmt);
      in.sync_to_device();
      const auto t1 = clock_type::now();
      nn.call(in, out1);
      const auto t2 = clock_type::now();
      out1.sync_from_device();
      fpyga::from_fixed(out1.data(), out_bytes, n_out, y.data() + s * n_out, out_fmt);
      const auto t3 = clock_type::now();
      t_inject[s] = ns_between(t0, t1);
      t_infer[s] = ns_between(t1, t2);
      t_extract[s] = ns_between(t2, t3);
      for (std::size_t j = 0; j < n_out; ++j) raw[s * n_out + j] = raw_at(out1.data(), j, out_fmt);
    }
  }

  // Batch kernel: all samples in one call (sync in, call, sync out), best of three.
  fpyga::buffer bin(nn_batch, 0, n * n_in * in_bytes);
  fpyga::buffer bout(nn_batch, 1, n * n_out * out_bytes);
  fpyga::to_fixed(x.data(), n * n_in, bin.data(), in_bytes, in_fmt);
  std::int64_t batch_ns = INT64_MAX;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = clock_type::now();
    bin.sync_to_device();
    nn_batch.call(bin, bout, static_cast<int>(n));
    bout.sync_from_device();
    batch_ns = std::min(batch_ns, ns_between(t0, clock_type::now()));
  }
  bool batch_matches = true;
  for (std::size_t i = 0; i < n * n_out; ++i)
    batch_matches &= raw_at(bout.data(), i, out_fmt) == raw[i];

  // The floor: the kernel function called directly in a loop on host memory, best of three.
  std::int64_t bare_ns = -1;
  bool bare_matches = false;
  std::vector<std::int64_t> bare_call;
  if (bare) {
    std::vector<unsigned char> host_in(n * n_in * in_bytes), host_out(n * n_out * out_bytes);
    std::memcpy(host_in.data(), bin.data(), host_in.size());
    bare_ns = INT64_MAX;
    for (int r = 0; r < 3; ++r) {
      const auto t0 = clock_type::now();
      for (std::size_t s = 0; s < n; ++s)
        bare->one(host_in.data() + s * n_in * in_bytes, host_out.data() + s * n_out * out_bytes);
      bare_ns = std::min(bare_ns, ns_between(t0, clock_type::now()));
    }
    bare_matches = std::memcmp(host_out.data(), bout.data(), host_out.size()) == 0;
    // Per call, for medians and tails comparable with the round trips.
    bare_call.resize(n);
    for (std::size_t s = 0; s < n; ++s) {
      const auto t0 = clock_type::now();
      bare->one(host_in.data() + s * n_in * in_bytes, host_out.data() + s * n_out * out_bytes);
      bare_call[s] = ns_between(t0, clock_type::now());
    }
  }

  nlohmann::json j;
  j["device"] = dev.name();
  j["backend"] = dev.backend();
  j["samples"] = n;
  j["n_outputs"] = n_out;
  j["input_type"] = in_fmt.to_string();
  j["output_type"] = out_fmt.to_string();
  j["inject_ns"] = t_inject;
  j["inference_ns"] = t_infer;
  j["extract_ns"] = t_extract;
  j["raw_outputs"] = raw;
  j["batch_ns"] = batch_ns;
  j["batch_matches_single"] = batch_matches;
  if (bare_ns >= 0) j["bare_loop_ns"] = bare_ns;  // absent for a hardware xclbin
  j["bare_matches_batch"] = bare_matches;
  j["bare_call_ns"] = bare_call;
  std::cout << j.dump() << "\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "fpyga_demo_host: " << e.what() << "\n";
  return 1;
}
