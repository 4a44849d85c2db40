// Per-call round trip on the emulated device against a bare call of the same kernel function.
//
// The emu path is the paper's per-sample flow: sync 54 bytes in (27 ap_fixed<16,6> inputs), call
// the MLP, sync its 2-byte output back. The bare path dlopens the very same kernel .so (the
// xclbin's BITSTREAM) and calls `mlp` through a function pointer, in this process. Both run the
// same number of iterations after a warm-up, alternating; the medians and their ratio are printed.
// Last, the same call in isolated mode (FPYGA_EMU_ISOLATE=1: the kernel runs in a helper process;
// loaded on a second emulated device) against in-process mode, alternating again: the cost of the
// process boundary per call.
//
// usage: fpyga_bench_emu_roundtrip [mlp.xclbin] [iterations]
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double median_ns(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string default_xclbin() {
  if (const char* d = std::getenv("FPYGA_XCLBIN_DIR")) return std::string(d) + "/mlp.xclbin";
  return std::string(FPYGA_BINARY_DIR_DEFAULT) + "/kernels/mlp.xclbin";
}

}  // namespace

int main(int argc, char** argv) {
  // Two emulated devices: the isolated-mode comparison loads the xclbin a second time on emu:1.
  ::setenv("FPYGA_EMU_DEVICES", "2", 0);
  const std::string path = argc > 1 ? argv[1] : default_xclbin();
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 20000;
  const int warmup = std::max(100, iterations / 10);
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "mlp.xclbin not found at %s (build target mlp_xclbin, or pass its path)\n", path.c_str());
    return 2;
  }

  // Inputs: 27 ap_fixed<16,6> raw values (x * 2^10), a fixed pattern within range.
  std::int16_t sample[27];
  for (int i = 0; i < 27; ++i) sample[i] = static_cast<std::int16_t>((i * 397) % 4096 - 2048);

  // --- bare: the same .so, dlopened from a file, called directly ---
  const auto bin = fpyga::xclbin::read(path);
  const auto so = std::filesystem::temp_directory_path() / ("fpyga_bench_mlp_" + std::to_string(::getpid()) + ".so");
  std::ofstream(so, std::ios::binary).write(reinterpret_cast<const char*>(bin.bitstream.data()),
                                            static_cast<std::streamsize>(bin.bitstream.size()));
  void* lib = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  // A control: a second, independent copy of the same .so (as emu has its own copy). The gap
  // between the two bare copies shows how much two mappings of one kernel differ by themselves
  // (code placement, caches evicted by the other copy), apart from anything emu does.
  const auto so2 = so.string() + ".copy.so";
  std::filesystem::copy_file(so, so2);
  void* lib2 = ::dlopen(so2.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::filesystem::remove(so);
  std::filesystem::remove(so2);
  if (!lib) {
    std::fprintf(stderr, "dlopen: %s\n", ::dlerror());
    return 1;
  }
  using mlp_fn = void (*)(const void*, void*);
  auto fn = reinterpret_cast<mlp_fn>(::dlsym(lib, "mlp"));
  auto fn2 = lib2 ? reinterpret_cast<mlp_fn>(::dlsym(lib2, "mlp")) : nullptr;
  if (!fn || !fn2) {
    std::fprintf(stderr, "mlp not exported by the kernel .so\n");
    return 1;
  }
  alignas(64) std::int16_t bare_in[27];
  alignas(64) std::int16_t bare_out[1] = {0};
  std::memcpy(bare_in, sample, sizeof sample);

  // --- emu: sync in, call, sync out ---
  auto dev = fpyga::device::open("emu");
  fpyga::overlay ov(dev, path);
  auto k = ov.kernel("mlp");
  fpyga::buffer in(dev, sizeof sample), out(dev, 2);
  std::memcpy(in.data(), sample, sizeof sample);

  // The two paths alternate within one loop, so load from other processes affects both alike.
  std::vector<double> t_round(iterations), t_in(iterations), t_call(iterations), t_out(iterations),
      t_bare(iterations), t_bare2(iterations);
  for (int i = -warmup; i < iterations; ++i) {
    const auto t0 = clock_type::now();
    in.sync_to_device();
    const auto t1 = clock_type::now();
    k.call(in, out);
    const auto t2 = clock_type::now();
    out.sync_from_device();
    const auto t3 = clock_type::now();
    fn(bare_in, bare_out);
    const auto t4 = clock_type::now();
    fn2(bare_in, bare_out);
    const auto t5 = clock_type::now();
    if (i < 0) continue;
    t_bare2[i] = std::chrono::duration<double, std::nano>(t5 - t4).count();
    t_in[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
    t_call[i] = std::chrono::duration<double, std::nano>(t2 - t1).count();
    t_out[i] = std::chrono::duration<double, std::nano>(t3 - t2).count();
    t_round[i] = std::chrono::duration<double, std::nano>(t3 - t0).count();
    t_bare[i] = std::chrono::duration<double, std::nano>(t4 - t3).count();
  }
  std::int16_t emu_result = 0;
  std::memcpy(&emu_result, out.data(), 2);

  // Dispatch cost alone: mlp_batch with n = 0 does no work, so what remains is the call path.
  using batch_fn = void (*)(const void*, void*, int);
  auto bfn = reinterpret_cast<batch_fn>(::dlsym(lib, "mlp_batch"));
  auto kb = ov.kernel("mlp_batch");
  std::vector<double> t_empty(iterations), t_empty_bare(iterations);
  for (int i = -warmup; bfn && i < iterations; ++i) {
    const auto t0 = clock_type::now();
    kb.call(in, out, 0);
    const auto t1 = clock_type::now();
    bfn(bare_in, bare_out, 0);
    const auto t2 = clock_type::now();
    if (i < 0) continue;
    t_empty[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
    t_empty_bare[i] = std::chrono::duration<double, std::nano>(t2 - t1).count();
  }

  const double round = median_ns(t_round), bare = median_ns(t_bare);
  std::printf("mlp per-call round trip, %d iterations (median):\n", iterations);
  std::printf("  emu   sync_to_device (54 B)   %10.1f ns\n", median_ns(t_in));
  std::printf("  emu   call                    %10.1f ns\n", median_ns(t_call));
  std::printf("  emu   sync_from_device (2 B)  %10.1f ns\n", median_ns(t_out));
  std::printf("  emu   round trip              %10.1f ns\n", round);
  std::printf("  bare  mlp() through a pointer %10.1f ns\n", bare);
  std::printf("  bare  mlp(), second .so copy   %10.1f ns   (control)\n", median_ns(t_bare2));
  std::printf("  ratio emu round trip / bare   %10.3f   (overhead %.1f ns)\n", round / bare, round - bare);
  if (bfn) {
    std::printf("  dispatch only (mlp_batch, n = 0): emu call %.1f ns, bare call %.1f ns\n", median_ns(t_empty),
                median_ns(t_empty_bare));
  }
  std::printf("  outputs agree: %s (raw %d)\n", emu_result == bare_out[0] ? "yes" : "NO", emu_result);

  // --- isolated mode: the same xclbin loaded again with FPYGA_EMU_ISOLATE=1 (read at load) ---
  ::setenv("FPYGA_EMU_ISOLATE", "1", 1);
  auto dev_i = fpyga::device::open("emu:1");
  fpyga::overlay iso(dev_i, path);
  ::unsetenv("FPYGA_EMU_ISOLATE");
  auto ki = iso.kernel("mlp");
  auto kbi = iso.kernel("mlp_batch");
  fpyga::buffer in_i(dev_i, sizeof sample), out_i(dev_i, 2);
  std::memcpy(in_i.data(), sample, sizeof sample);
  in_i.sync_to_device();
  std::vector<double> t_local(iterations), t_iso(iterations), t_local0(iterations), t_iso0(iterations);
  for (int i = -warmup; i < iterations; ++i) {
    const auto t0 = clock_type::now();
    k.call(in, out);
    const auto t1 = clock_type::now();
    ki.call(in_i, out_i);
    const auto t2 = clock_type::now();
    kb.call(in, out, 0);
    const auto t3 = clock_type::now();
    kbi.call(in_i, out_i, 0);
    const auto t4 = clock_type::now();
    if (i < 0) continue;
    t_local[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
    t_iso[i] = std::chrono::duration<double, std::nano>(t2 - t1).count();
    t_local0[i] = std::chrono::duration<double, std::nano>(t3 - t2).count();
    t_iso0[i] = std::chrono::duration<double, std::nano>(t4 - t3).count();
  }
  out_i.sync_from_device();
  std::int16_t iso_result = 0;
  std::memcpy(&iso_result, out_i.data(), 2);
  const double local = median_ns(t_local), isolated = median_ns(t_iso);
  const double local0 = median_ns(t_local0), isolated0 = median_ns(t_iso0);
  std::printf("isolated mode (FPYGA_EMU_ISOLATE=1) against in-process, per call (median):\n");
  std::printf("  mlp call               in-process %10.1f ns, isolated %10.1f ns, ratio %.2f (+%.1f ns)\n", local,
              isolated, isolated / local, isolated - local);
  std::printf("  mlp_batch n = 0 call   in-process %10.1f ns, isolated %10.1f ns, ratio %.2f (+%.1f ns)\n", local0,
              isolated0, isolated0 / local0, isolated0 - local0);
  std::printf("  outputs agree: %s (raw %d)\n", iso_result == emu_result ? "yes" : "NO", iso_result);
  return emu_result == bare_out[0] && iso_result == emu_result ? 0 : 1;
}
