#!/usr/bin/env python3
"""Per-sample round trip of the MLP kernel on emu: fpyga's Python API against its C++ API.

One round trip = sync a 27-element 'u2' input to the device, call the MLP kernel, sync the
1-element output back (the paper's per-sample flow). The Python side is the plain PYNQ-style
code; the C++ side is the same three calls through fpyga's C++ API, timed in C++ in the same
process (fpyga._core._bench_cpp_roundtrip). Prints medians and their ratio. Not a test: nothing
is asserted.

Usage: python bench/python_roundtrip.py [--xclbin mlp.xclbin] [--device emu] [--iterations N]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import fpyga as pynq
from fpyga import _core


def find_xclbin(name):
    candidates = []
    if os.environ.get("FPYGA_XCLBIN_DIR"):
        candidates.append(Path(os.environ["FPYGA_XCLBIN_DIR"]))
    repo = Path(__file__).resolve().parent.parent
    candidates += [repo / "build" / "kernels", Path(sys.prefix) / "share" / "fpyga" / "xclbin"]
    for d in candidates:
        if (d / name).is_file():
            return d / name
    sys.exit(f"{name} not found in {', '.join(map(str, candidates))}: build the kernels "
             f"(make build) or set FPYGA_XCLBIN_DIR")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xclbin", default=None, help="MLP xclbin (default: mlp.xclbin of the build)")
    p.add_argument("--kernel", default="mlp")
    p.add_argument("--device", default="emu")
    p.add_argument("--iterations", type=int, default=20000)
    p.add_argument("--batch", type=int, default=100, help="round trips per Python timing sample")
    args = p.parse_args()

    path = Path(args.xclbin) if args.xclbin else find_xclbin("mlp.xclbin")
    device = pynq.Device.open(args.device)
    ol = pynq.Overlay(path, device=device)
    kernel = getattr(ol, args.kernel)
    inp = pynq.allocate(27, "u2", target=device)
    out = pynq.allocate(1, "u2", target=device)
    rng = np.random.default_rng(1)
    inp[:] = rng.integers(0, 1 << 16, 27, dtype=np.uint16)

    def python_batch(n):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            inp.sync_to_device()
            kernel.call(inp, out)
            out.sync_from_device()
        return (time.perf_counter_ns() - t0) / n

    def python_batch_attr(n):  # as notebooks write it, looking the kernel up each time
        t0 = time.perf_counter_ns()
        for _ in range(n):
            inp.sync_to_device()
            ol.mlp_1.call(inp, out)
            out.sync_from_device()
        return (time.perf_counter_ns() - t0) / n

    # Warm up both paths (first calls resolve lazily-bound state, caches).
    python_batch(1000)
    _core._bench_cpp_roundtrip(kernel, inp, out, (inp, out), 1000)

    batches = max(1, args.iterations // args.batch)
    py = [python_batch(args.batch) for _ in range(batches)]
    py_attr = [python_batch_attr(args.batch) for _ in range(batches)]
    cpp = _core._bench_cpp_roundtrip(kernel, inp, out, (inp, out), args.iterations)
    # The C++ figures time each round trip; also give its mean over batches like the Python ones.
    cpp_batched = [statistics.fmean(cpp[i:i + args.batch]) for i in range(0, len(cpp), args.batch)]

    med = lambda xs: statistics.median(xs) / 1000.0  # noqa: E731  (µs)
    print(f"MLP round trip on {device.spec} ({device.name}), {path.name}, kernel {args.kernel}: "
          f"sync 54 B in, call, sync 2 B out")
    print(f"  C++ API   per round trip, median   {med(cpp):8.3f} us   (p99 "
          f"{statistics.quantiles(cpp, n=100)[98] / 1000:.3f} us)")
    print(f"  C++ API   mean of {args.batch}, median      {med(cpp_batched):8.3f} us")
    print(f"  Python    mean of {args.batch}, median      {med(py):8.3f} us   "
          f"ratio {med(py) / med(cpp_batched):5.2f}x C++")
    print(f"  Python with ol.{'mlp_1'} lookup each call {med(py_attr):8.3f} us   "
          f"ratio {med(py_attr) / med(cpp_batched):5.2f}x C++")
    overhead_floor(device, args.iterations, args.batch)


def overhead_floor(device, iterations, batch):
    """The same three steps around vadd of one element: what the host path costs by itself."""
    ol = pynq.Overlay(find_xclbin("vadd.xclbin"), device=device)
    a = pynq.allocate(27, "u4", target=device)
    c = pynq.allocate(1, "u4", target=device)
    k = ol.vadd_1

    def python_batch(n):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            a.sync_to_device()
            k.call(a, a, c, 1)
            c.sync_from_device()
        return (time.perf_counter_ns() - t0) / n

    python_batch(1000)
    py = [python_batch(batch) for _ in range(max(1, iterations // batch))]
    cpp = _core._bench_cpp_roundtrip(k, a, c, (a, a, c, 1), iterations)
    cpp_batched = [statistics.fmean(cpp[i:i + batch]) for i in range(0, len(cpp), batch)]
    med = lambda xs: statistics.median(xs) / 1000.0  # noqa: E731
    print(f"Overhead floor (vadd of 1 element, same sync/call/sync):")
    print(f"  C++ API   per round trip, median   {med(cpp):8.3f} us")
    print(f"  C++ API   mean of {batch}, median      {med(cpp_batched):8.3f} us")
    print(f"  Python    mean of {batch}, median      {med(py):8.3f} us   "
          f"ratio {med(py) / med(cpp_batched):5.2f}x C++")


if __name__ == "__main__":
    main()
