// The paper's host flow with fpyga's C++ API: program the device, allocate buffers, sync the
// input to the device, run the kernel, sync the output back. Once on vadd (the Vitis hello
// world), once on the hls4ml MLP with ap_fixed<16,6> inputs and outputs.
//
//   paper_flow [xclbin directory]   (default: $FPYGA_XCLBIN_DIR, else <prefix>/share/fpyga/xclbin)
//
// With no card present the default device is fpyga's emulated device; FPYGA_DEVICE=xrt:0 (or
// emu:0, opencl:0) picks one explicitly.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fpyga/fixed.hpp"
#include "fpyga/fpyga.hpp"

namespace {

int run_vadd(const fpyga::device& dev, const std::string& path) {
  fpyga::overlay ov(dev, path);  // programs the device
  auto vadd = ov.kernel("vadd");

  const unsigned n = 1024;
  // Each buffer goes to the bank its kernel argument is connected to.
  fpyga::buffer in1(vadd, 0, n * sizeof(unsigned));
  fpyga::buffer in2(vadd, 1, n * sizeof(unsigned));
  fpyga::buffer out(vadd, 2, n * sizeof(unsigned));
  for (unsigned i = 0; i < n; ++i) {
    in1.as<unsigned>()[i] = i;
    in2.as<unsigned>()[i] = 2 * i;
  }

  in1.sync_to_device();
  in2.sync_to_device();
  vadd.call(in1, in2, out, n);  // scalars are checked against the declared C type (int)
  out.sync_from_device();

  for (unsigned i = 0; i < n; ++i)
    if (out.as<unsigned>()[i] != 3 * i) {
      std::fprintf(stderr, "vadd: element %u is %u, expected %u\n", i, out.as<unsigned>()[i], 3 * i);
      return 1;
    }
  std::printf("vadd on %s: %u sums correct\n", dev.spec().c_str(), n);
  return 0;
}

int run_mlp(const fpyga::device& dev, const std::string& path) {
  fpyga::overlay ov(dev, path);
  auto mlp = ov.kernel("mlp");
  // The kernel's own metadata says how its data is laid out: ap_fixed<16, 6> const *.
  const auto format = fpyga::fixed_format::from(mlp.args()[0].ctype);

  constexpr std::size_t n_in = 27;
  fpyga::buffer in(mlp, 0, n_in * sizeof(std::int16_t));  // 54 bytes
  fpyga::buffer out(mlp, 1, sizeof(std::int16_t));

  std::vector<float> x(n_in);
  for (std::size_t i = 0; i < n_in; ++i) x[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
  fpyga::to_fixed(std::span<const float>(x), in.as<std::int16_t>(), format);

  in.sync_to_device();
  mlp.call(in, out);
  out.sync_from_device();

  float y = 0;
  fpyga::from_fixed(std::span<const std::int16_t>(out.as<std::int16_t>()), std::span<float>(&y, 1), format);
  std::printf("mlp on %s: output %.6f (raw %d)\n", dev.spec().c_str(), y, out.as<std::int16_t>()[0]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  if (argc > 1) dir = argv[1];
  else if (const char* d = std::getenv("FPYGA_XCLBIN_DIR")) dir = d;
  else dir = FPYGA_EXAMPLE_XCLBIN_DIR;
  try {
    auto dev = fpyga::device::open();  // FPYGA_DEVICE, else the first card, else emu
    std::printf("device: %s (%s)\n", dev.name().c_str(), dev.spec().c_str());
    if (int rc = run_vadd(dev, dir + "/vadd.xclbin")) return rc;
    return run_mlp(dev, dir + "/mlp.xclbin");
  } catch (const fpyga::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
