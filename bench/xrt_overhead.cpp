// fpyga's per-call overhead over XRT's native API, on XRT's noop shim (no card needed).
//
// One process, the same xclbin and the same flow, measured two ways and interleaved batch by
// batch so both see the same machine noise:
//   fpyga:  buffer::sync_to_device, kernel::call(args...), buffer::sync_from_device
//   direct: xrt::bo::sync, xrt::run::set_arg (the changing scalar) + start + wait, xrt::bo::sync
// Each batch times `batch` round trips; the report gives the median per-call time over the
// batches, and the ratio fpyga / direct (target: within 1.2x). A second pair measures the call
// alone (no syncs). fpyga calls this kernel (buffers and integers) in one pass over the
// arguments (kernel_impl::one_pass_call); its full path (the core binds every argument, then the
// backend's call(), as for kernels with float, fixed-point or wide arguments) is timed too, on
// a second handle with the one pass turned off, and the backend's call() alone with arguments
// already bound.
//
// "Direct" is the fastest XRT host one can write for this loop: one xrt::run, reused, with only
// the changing scalar set per call. Two other ways of writing it are timed for reference:
// setting all four arguments on the reused run, and XRT's call operator (a new run per call,
// `kernel(c, a, b, n).wait()`, as XRT's examples do).
//
// Usage: fpyga_bench_xrt_overhead [xclbin] [batches] [batch]
//   xclbin defaults to ../shared/data/xclbin/aws_vector_addition_2018_3.awsxclbin beside the
//   source tree (kernel vector_add(c, a, b, n_elements)); any xclbin whose first kernel takes
//   (buffer, buffer, buffer, int) works.
#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "core_state.hpp"
#include "fpyga/fpyga.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <class F>
double per_call_ns(F&& f, int batch) {
  const auto t0 = clock_type::now();
  for (int i = 0; i < batch; ++i) f(i);
  const auto t1 = clock_type::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / batch;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything touches XRT: the noop shim, and two devices so each side has its own.
  setenv("XCL_EMULATION_MODE", "noop", 1);
  setenv("FPYGA_XRT_NOOP_DEVICES", "2", 1);
  const std::string path =
      argc > 1 ? argv[1]
               : (std::filesystem::path(FPYGA_SOURCE_DIR_DEFAULT) / ".." / "shared" / "data" /
                  "xclbin" / "aws_vector_addition_2018_3.awsxclbin")
                     .string();
  const int batches = argc > 2 ? std::atoi(argv[2]) : 200;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 2000;
  constexpr std::size_t bytes = 4096;

  try {
    // fpyga on xrt:1 (this also sets XILINX_XRT for Debian's layout, used by the direct side).
    auto dev = fpyga::device::open("xrt:1");
    fpyga::overlay ol(dev, path);
    auto k = ol.kernels().front();
    fpyga::buffer c(k, 0, bytes), a(k, 1, bytes), b(k, 2, bytes);

    // The same flow directly on XRT's device 0.
    xrt::device xd(0u);
    const auto uuid = xd.load_xclbin(path);
    xrt::kernel xk(xd, uuid, k.name());
    auto* hc = static_cast<char*>(std::aligned_alloc(4096, bytes));
    auto* ha = static_cast<char*>(std::aligned_alloc(4096, bytes));
    auto* hb = static_cast<char*>(std::aligned_alloc(4096, bytes));
    xrt::bo xc(xd, hc, bytes, xk.group_id(0)), xa(xd, ha, bytes, xk.group_id(1)),
        xb(xd, hb, bytes, xk.group_id(2));
    xrt::run xr(xk);
    xr.set_arg(0, xc);
    xr.set_arg(1, xa);
    xr.set_arg(2, xb);

    auto fpyga_round = [&](int i) {
      a.sync_to_device();
      k.call(c, a, b, i & 1023);
      c.sync_from_device();
    };
    auto direct_round = [&](int i) {
      xa.sync(XCL_BO_SYNC_BO_TO_DEVICE);
      xr.set_arg(3, i & 1023);
      xr.start();
      xr.wait();
      xc.sync(XCL_BO_SYNC_BO_FROM_DEVICE);
    };
    auto fpyga_call = [&](int i) { k.call(c, a, b, i & 1023); };
    // The full path, on a handle of its own (the same CU) without the one pass.
    auto kf = ol.kernel(k.name() + ":" + k.compute_units().front());
    kf.state()->one_pass = nullptr;
    auto full_call = [&](int i) { kf.call(c, a, b, i & 1023); };
    // The backend alone (arguments already validated and converted, as the core hands them).
    auto* impl = k.state()->impl.get();
    fpyga::backend::bound_arg bound[4];
    const fpyga::buffer* bufs[] = {&c, &a, &b};
    for (int i = 0; i < 3; ++i) {  // as the core hands buffer arguments over
      bound[i].buffer = bufs[i]->impl().get();
      bound[i].bits = bufs[i]->impl()->serial;
    }
    auto backend_call = [&](int i) {
      bound[3].bits = static_cast<std::uint64_t>(i & 1023);
      impl->call(bound, 1);
    };
    auto direct_call = [&](int i) {
      xr.set_arg(3, i & 1023);
      xr.start();
      xr.wait();
    };
    auto direct_all_args = [&](int i) {
      xa.sync(XCL_BO_SYNC_BO_TO_DEVICE);
      xr.set_arg(0, xc);
      xr.set_arg(1, xa);
      xr.set_arg(2, xb);
      xr.set_arg(3, i & 1023);
      xr.start();
      xr.wait();
      xc.sync(XCL_BO_SYNC_BO_FROM_DEVICE);
    };
    auto direct_operator = [&](int i) {
      xa.sync(XCL_BO_SYNC_BO_TO_DEVICE);
      xk(xc, xa, xb, i & 1023).wait();
      xc.sync(XCL_BO_SYNC_BO_FROM_DEVICE);
    };

    for (int w = 0; w < 5; ++w) {  // warm up caches and XRT's command pools
      per_call_ns(fpyga_round, batch);
      per_call_ns(direct_round, batch);
    }
    std::vector<double> fr, dr, fc, dc, fu, bc, da, dop;
    for (int i = 0; i < batches; ++i) {
      fr.push_back(per_call_ns(fpyga_round, batch));
      dr.push_back(per_call_ns(direct_round, batch));
      fc.push_back(per_call_ns(fpyga_call, batch));
      dc.push_back(per_call_ns(direct_call, batch));
      fu.push_back(per_call_ns(full_call, batch));
      bc.push_back(per_call_ns(backend_call, batch));
      da.push_back(per_call_ns(direct_all_args, batch));
      // The call operator makes a run per call: fewer of them, so a batch stays short.
      dop.push_back(per_call_ns(direct_operator, std::max(1, batch / 10)));
    }
    const double mfr = median(fr), mdr = median(dr), mfc = median(fc), mdc = median(dc),
                 mfu = median(fu), mbc = median(bc), mda = median(da), mdop = median(dop);
    std::printf("xclbin: %s (kernel %s), XRT noop shim, %d batches x %d calls\n", path.c_str(),
                k.name().c_str(), batches, batch);
    std::printf("round trip (sync in, call, sync out): fpyga %.3f us, direct XRT %.3f us, "
                "ratio %.2fx (target <= 1.20x)\n",
                mfr / 1000, mdr / 1000, mfr / mdr);
    std::printf("call only:                            fpyga %.3f us, direct XRT %.3f us, "
                "ratio %.2fx, difference %.3f us\n",
                mfc / 1000, mdc / 1000, mfc / mdc, (mfc - mdc) / 1000);
    std::printf(
        "  the full path (bind, then call()):  %.3f us (ratio %.2fx), of which the xrt "
        "backend's call() with bound arguments %.3f us (ratio %.2fx)\n",
        mfu / 1000, mfu / mdc, mbc / 1000, mbc / mdc);
    std::printf(
        "other direct XRT round trips, for reference: all 4 arguments set on the reused "
        "run %.3f us (fpyga %.2fx); kernel(c, a, b, n).wait() %.3f us (fpyga %.2fx)\n",
        mda / 1000, mfr / mda, mdop / 1000, mfr / mdop);
    std::free(hc);
    std::free(ha);
    std::free(hb);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xrt_overhead: %s\n", e.what());
    return 1;
  }
  return 0;
}
