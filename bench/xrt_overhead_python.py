#!/usr/bin/env python3
"""fpyga's Python per-call round trip on XRT's noop shim against direct XRT (target: within 1.5 us).

One round trip = sync the input buffer to the device, call the kernel, sync the output back.
Measured in one run of this script:
  - fpyga's Python API (PYNQ-style code: a.sync_to_device(); ol.vector_add.call(...); ...),
    median over batches of per-call means, in this process;
  - fpyga's C++ API doing the same, timed in C++ in this process (fpyga._core._bench_cpp_roundtrip);
  - the same flow written directly on XRT's native C++ API (xrt::bo::sync, xrt::run set_arg +
    start + wait), from bench/xrt_overhead.cpp's binary (fpyga_bench_xrt_overhead), which XRT's
    C++ API requires; it runs on the same shim and prints its medians.
Not a test: nothing is asserted.

Usage: python bench/xrt_overhead_python.py [--xclbin F] [--cpp-bench BIN] [--iterations N]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Before fpyga touches XRT: the noop shim.
os.environ["XCL_EMULATION_MODE"] = "noop"
os.environ.pop("FPYGA_DEVICE", None)

import fpyga as pynq  # noqa: E402
from fpyga import _core  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xclbin", default=str(REPO.parent / "shared" / "data" / "xclbin" /
                                           "aws_vector_addition_2018_3.awsxclbin"))
    p.add_argument("--cpp-bench", default=None,
                   help="fpyga_bench_xrt_overhead (default: build*/bench/ of this tree)")
    p.add_argument("--iterations", type=int, default=100000)
    p.add_argument("--batch", type=int, default=1000)
    args = p.parse_args()

    dev = pynq.Device.open("xrt:0")
    ol = pynq.Overlay(args.xclbin, device=dev)
    kernel = ol.vector_add
    a = pynq.allocate(1024, "u4", target=ol.bank0)
    b = pynq.allocate(1024, "u4", target=ol.bank0)
    c = pynq.allocate(1024, "u4", target=ol.bank0)

    def round_trip(n):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            a.sync_to_device()
            kernel.call(c, a, b, 1024)
            c.sync_from_device()
        return (time.perf_counter_ns() - t0) / n

    def call_only(n):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            kernel.call(c, a, b, 1024)
        return (time.perf_counter_ns() - t0) / n

    round_trip(2000)
    batches = max(1, args.iterations // args.batch)
    py_rt = statistics.median(round_trip(args.batch) for _ in range(batches)) / 1000
    py_call = statistics.median(call_only(args.batch) for _ in range(batches)) / 1000
    cpp = _core._bench_cpp_roundtrip(kernel, a, c, (c, a, b, 1024), args.iterations)
    cpp_rt = statistics.median(
        statistics.fmean(cpp[i:i + args.batch]) for i in range(0, len(cpp), args.batch)) / 1000

    direct_rt = direct_call = None
    bench = Path(args.cpp_bench) if args.cpp_bench else next(
        iter(sorted(REPO.glob("build*/bench/fpyga_bench_xrt_overhead"))), None)
    if bench and bench.exists():
        out = subprocess.run([str(bench), args.xclbin], capture_output=True, text=True,
                             check=True).stdout
        m = re.search(r"round trip.*direct XRT ([0-9.]+) us", out)
        n = re.search(r"call only:.*direct XRT ([0-9.]+) us", out)
        direct_rt = float(m.group(1)) if m else None
        direct_call = float(n.group(1)) if n else None

    print(f"XRT noop shim, {Path(args.xclbin).name}, kernel vector_add, "
          f"{batches} batches x {args.batch} calls")
    print(f"  round trip (sync in, call, sync out):")
    print(f"    fpyga Python  {py_rt:7.3f} us")
    print(f"    fpyga C++     {cpp_rt:7.3f} us   (same process)")
    if direct_rt is not None:
        print(f"    direct XRT    {direct_rt:7.3f} us   ({bench.name})")
        print(f"    Python - direct XRT = {py_rt - direct_rt:.3f} us (target <= 1.5 us)")
    print(f"  call only: fpyga Python {py_call:.3f} us" +
          (f", direct XRT {direct_call:.3f} us, difference {py_call - direct_call:.3f} us"
           if direct_call is not None else ""))
    if direct_rt is None:
        print("  (direct XRT not measured: build the fpyga_bench_xrt_overhead target or pass "
              "--cpp-bench)", file=sys.stderr)


if __name__ == "__main__":
    main()
