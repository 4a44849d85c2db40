// start().wait() cost as starts accumulate, on XRT's noop shim (issue 18 item 16: every start
// appended to a per-kernel list that was pruned linearly, so the cost grew from 0.99 us to
// 11.4 us after 40,000 starts). Runs `total` starts in one kernel handle and reports the mean
// cost at each checkpoint (1k, 10k, 100k, 1M, ...): the median of the last ten windows of 1000
// starts before it, so a cost that grows with use shows as a rising column. The noop shim completes
// each run at once: what is timed is fpyga's and XRT's host-side bookkeeping.
//
// Usage: fpyga_bench_xrt_start_scaling [total] [xclbin]
//   total defaults to 1,000,000; xclbin to the AWS vector_add beside the source tree.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fpyga/fpyga.hpp"

int main(int argc, char** argv) {
  setenv("XCL_EMULATION_MODE", "noop", 1);  // before anything touches XRT
  const long total = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const std::string path =
      argc > 2 ? argv[2]
               : (std::filesystem::path(FPYGA_SOURCE_DIR_DEFAULT) / ".." / "shared" / "data" /
                  "xclbin" / "aws_vector_addition_2018_3.awsxclbin")
                     .string();
  constexpr long window = 1000;
  try {
    auto dev = fpyga::device::open("xrt:0");
    fpyga::overlay ol(dev, path);
    auto k = ol.kernels().front();
    fpyga::buffer c(k, 0, 4096), a(k, 1, 4096), b(k, 2, 4096);
    std::printf("start().wait() on %s, %s (noop shim)\n", dev.name().c_str(), k.name().c_str());
    std::printf("%12s %16s\n", "starts", "ns per start");
    using clock = std::chrono::steady_clock;
    // Per-start cost of each window of 1000 starts; a checkpoint reports the median of the last
    // (up to) ten windows, so one window disturbed by another process does not show.
    std::vector<double> windows;
    long next = window;  // checkpoints: 1k, 10k, 100k, ... and the last start
    auto t0 = clock::now();
    for (long i = 1; i <= total; ++i) {
      k.start(c, a, b, static_cast<int>(i & 0xffff)).wait();
      if (i % window != 0) continue;
      const auto t1 = clock::now();
      windows.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / window);
      if (i == next || i == total) {
        std::vector<double> last(windows.end() - std::min<std::ptrdiff_t>(10, windows.size()),
                                 windows.end());
        std::sort(last.begin(), last.end());
        std::printf("%12ld %16.0f\n", i, last[last.size() / 2]);
        std::fflush(stdout);
        if (i == next) next *= 10;
      }
      t0 = clock::now();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fpyga_bench_xrt_start_scaling: %s\n", e.what());
    return 1;
  }
  return 0;
}
