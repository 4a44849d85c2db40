// fpyga::nn_model::predict per sample on a batch, on the emulated device, against the bare loop
// over the compiled network on one core, and with 1 against 2 compute units.
//
//   bare kernel    the xclbin's kernel .so (its BITSTREAM), dlopened here, `mlp_batch(in, out, n)`
//                  called once on raw inputs converted beforehand: the network's compute alone.
//   bare + convert the same call with to_fixed / from_fixed around it, on the same thread: what a
//                  one-core host that starts from floats does.
//   predict 1 CU   nn_model(mlp.xclbin).predict(x, n, y): floats in and out, the CU's worker
//                  thread runs the kernel while the calling thread converts other chunks.
//   predict 2 CUs  nn_model(mlp_2cu.xclbin).predict: two CUs, two worker threads.
//   bare, 2 threads the bare kernel on two threads (half the samples each): a control for what
//                  two threads can gain on this machine at the time of the run.
// Each variant runs `repeats` times, interleaved; the medians per sample and the ratios are
// printed. Outputs of every variant are compared (the bench fails on a mismatch).
//
// usage: fpyga_bench_nn_model [samples] [repeats] [xclbin dir]
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fpyga/fpyga.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

fs::path xclbin_dir(int argc, char** argv) {
  if (argc > 3) return argv[3];
  if (const char* d = std::getenv("FPYGA_XCLBIN_DIR")) return d;
  return fs::path(FPYGA_BINARY_DIR_DEFAULT) / "kernels";
}

using batch_fn = void (*)(const void*, void*, int);

}  // namespace

int main(int argc, char** argv) {
  const std::size_t samples = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 7;
  const fs::path dir = xclbin_dir(argc, argv);
  const fs::path one_cu = dir / "mlp.xclbin", two_cu = dir / "mlp_2cu.xclbin";
  for (const auto& p : {one_cu, two_cu})
    if (!fs::exists(p)) {
      std::fprintf(stderr, "%s not found (build targets mlp_xclbin, mlp_2cu_xclbin)\n", p.c_str());
      return 2;
    }

  // One xclbin per device, as on a card: the 1-CU and 2-CU models on two emulated devices.
  ::setenv("FPYGA_EMU_DEVICES", "2", 1);
  fpyga::nn_model m1(one_cu.string(), {fpyga::device::open("emu:0")});
  fpyga::nn_model m2(two_cu.string(), {fpyga::device::open("emu:1")});
  const std::size_t n_in = m1.n_inputs(), n_out = m1.n_outputs();
  const auto in_format = m1.info().inputs.front().type;
  const auto out_format = m1.info().outputs.front().type;

  // The bare loop: the same kernel .so, a separate copy dlopened into this process.
  const auto bin = fpyga::xclbin::read(one_cu.string());
  const auto so =
      fs::temp_directory_path() / ("fpyga_bench_nn_" + std::to_string(::getpid()) + ".so");
  std::ofstream(so, std::ios::binary)
      .write(reinterpret_cast<const char*>(bin.bitstream.data()),
             static_cast<std::streamsize>(bin.bitstream.size()));
  void* lib = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  fs::remove(so);
  if (!lib) {
    std::fprintf(stderr, "dlopen: %s\n", ::dlerror());
    return 1;
  }
  const auto bare = reinterpret_cast<batch_fn>(::dlsym(lib, m1.info().batch_kernel.c_str()));
  if (!bare) {
    std::fprintf(stderr, "no symbol %s in the kernel .so\n", m1.info().batch_kernel.c_str());
    return 1;
  }

  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
  std::vector<float> x(samples * n_in);
  for (auto& v : x) v = dist(rng);
  std::vector<std::int16_t> raw_in(x.size()), raw_out(samples * n_out);
  fpyga::to_fixed(x.data(), x.size(), raw_in.data(), 2, in_format);
  std::vector<float> y_bare(samples * n_out), y_conv(samples * n_out), y1(samples * n_out),
      y2(samples * n_out);

  const auto timed = [](const std::function<void()>& f) {
    const auto t0 = clock_type::now();
    f();
    return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
  };
  const auto run_bare = [&] { bare(raw_in.data(), raw_out.data(), static_cast<int>(samples)); };
  std::vector<std::int16_t> conv_in(x.size()), conv_out(samples * n_out);
  const auto run_bare_convert = [&] {
    fpyga::to_fixed(x.data(), x.size(), conv_in.data(), 2, in_format,
                    fpyga::nonfinite_policy::ap_fixed);
    bare(conv_in.data(), conv_out.data(), static_cast<int>(samples));
    fpyga::from_fixed(conv_out.data(), 2, conv_out.size(), y_conv.data(), out_format);
  };
  // Control: the bare kernel on two threads, half the samples each. What it gains over one
  // thread is what this machine (its load, its scheduler) lets any two threads gain.
  std::vector<std::int16_t> raw_out2(samples * n_out);
  const auto run_bare2 = [&] {
    const std::size_t half = samples / 2;
    std::thread t([&] { bare(raw_in.data(), raw_out2.data(), static_cast<int>(half)); });
    bare(raw_in.data() + half * n_in, raw_out2.data() + half * n_out,
         static_cast<int>(samples - half));
    t.join();
  };
  const auto run_m1 = [&] { m1.predict(x.data(), samples, y1.data()); };
  const auto run_m2 = [&] { m2.predict(x.data(), samples, y2.data()); };

  // Warm-up (page faults, buffer allocation, CU worker threads).
  run_bare();
  run_bare_convert();
  run_m1();
  run_m2();

  std::vector<double> t_bare, t_bare2, t_conv, t_1, t_2;
  for (int r = 0; r < repeats; ++r) {
    t_bare.push_back(timed(run_bare));
    t_bare2.push_back(timed(run_bare2));
    t_conv.push_back(timed(run_bare_convert));
    t_1.push_back(timed(run_m1));
    t_2.push_back(timed(run_m2));
  }
  fpyga::from_fixed(raw_out.data(), 2, raw_out.size(), y_bare.data(), out_format);
  for (std::size_t i = 0; i < y_bare.size(); ++i)
    if (y_bare[i] != y1[i] || y_bare[i] != y2[i] || y_bare[i] != y_conv[i] ||
        raw_out[i] != raw_out2[i]) {
      std::fprintf(stderr, "mismatch at output %zu: bare %g, convert %g, 1 CU %g, 2 CUs %g\n", i,
                   y_bare[i], y_conv[i], y1[i], y2[i]);
      return 1;
    }

  const double n = static_cast<double>(samples);
  const double bare_us = median(t_bare) / n, conv_us = median(t_conv) / n;
  const double bare2_us = median(t_bare2) / n;
  const double one_us = median(t_1) / n, two_us = median(t_2) / n;
  std::printf("network %s: %zu samples x %d repeats (medians, per sample), %ld cores online\n",
              m1.info().name.c_str(), samples, repeats, ::sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("  bare kernel (one core)         %8.3f us\n", bare_us);
  std::printf("  bare kernel + conversion       %8.3f us\n", conv_us);
  std::printf(
      "  bare kernel, 2 threads         %8.3f us   (control: the machine's 1->2 thread "
      "speed-up %.2fx)\n",
      bare2_us, bare_us / bare2_us);
  std::printf("  nn_model::predict, 1 CU        %8.3f us   %.3fx bare kernel, %.3fx bare+conv\n",
              one_us, one_us / bare_us, one_us / conv_us);
  std::printf(
      "  nn_model::predict, 2 CUs       %8.3f us   %.3fx bare kernel; 1->2 CUs speed-up %.2fx\n",
      two_us, two_us / bare_us, one_us / two_us);
  ::dlclose(lib);
  return 0;
}
