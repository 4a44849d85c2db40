#!/usr/bin/env python3
"""Throughput of the 3-kernel stream chain on emu against the same computation as one kernel.

stream_chain.xclbin holds chain_load -> chain_compute -> chain_store, joined by two streams
(FIFO depth 16; on emu each CU runs in its own thread and every element crosses two bounded
FIFOs), and chain_mm, which computes out[i] = in[i] * scale + offset in one memory-mapped kernel.
One sample = the host starts the three chain kernels and waits for them, or calls chain_mm once,
on n int32 elements; the two alternate in one run. Prints the median time per sample and the
elements per second of each, and their ratio. Not a test: nothing is asserted.

With --depth D the chain is built first (fpyga.toolchain.build_xclbin, into a temporary
directory) with FIFOs of depth D instead of the 16 of stream_chain.xclbin.

Usage: python bench/stream_chain.py [--xclbin stream_chain.xclbin | --depth D] [--n 65536] [--samples 15]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import fpyga as pynq
from python_roundtrip import find_xclbin  # this directory's scripts share it


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xclbin", default=None, help="default: stream_chain.xclbin of the build")
    p.add_argument("--n", type=int, default=1 << 16, help="elements per sample")
    p.add_argument("--samples", type=int, default=15, help="timed samples of each")
    p.add_argument("--depth", type=int, default=None, help="build the chain with this FIFO depth")
    args = p.parse_args()

    depth = args.depth or 16
    if args.depth:
        from fpyga import toolchain

        work = Path(tempfile.mkdtemp(prefix="fpyga_stream_chain_"))
        path = toolchain.build_xclbin(
            [Path(__file__).resolve().parent.parent / "kernels" / "streams" / "chain.cpp"],
            ["chain_load", "chain_compute", "chain_store", "chain_mm"], work / "chain.xclbin", work_dir=work,
            connectivity=[f"sc=chain_load_1.out:chain_compute_1.in:{depth}",
                          f"sc=chain_compute_1.out:chain_store_1.in:{depth}"])
    else:
        path = Path(args.xclbin) if args.xclbin else find_xclbin("stream_chain.xclbin")
    ol = pynq.Overlay(path, device=pynq.Device.open("emu"))
    n = args.n
    x = (np.arange(n, dtype="i4") * 7) % 1001 - 500
    a = pynq.allocate(n, "i4", target=ol.bank0)
    out = pynq.allocate(n, "i4", target=ol.bank0)
    ref = pynq.allocate(n, "i4", target=ol.bank0)
    a[:] = x
    a.sync_to_device()

    def chain():
        runs = [ol.chain_store_1.start(out, n), ol.chain_compute_1.start(n, 3, 7), ol.chain_load_1.start(a, n)]
        for r in runs:
            r.wait()

    def single():
        ol.chain_mm_1.call(a, ref, n, 3, 7)

    chain()
    single()  # warm-up
    out.sync_from_device()
    ref.sync_from_device()
    if not np.array_equal(out, ref) or not np.array_equal(ref, x * 3 + 7):
        sys.exit("the chain and the memory-mapped kernel disagree")

    times = {"chain": [], "single": []}
    for _ in range(args.samples):
        for name, fn in (("chain", chain), ("single", single)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)

    print(f"{n} int32 elements per sample, {args.samples} samples each, alternating; "
          f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, label in (("chain", f"3-kernel stream chain (2 FIFOs of depth {depth})"),
                        ("single", "one memory-mapped kernel (chain_mm)")):
        print(f"  {label:45s} median {med[name] * 1e3:8.3f} ms  {n / med[name] / 1e6:8.2f} M elements/s")
    print(f"  chain / single time: {med['chain'] / med['single']:.1f}x")
    ol.free()
    if args.depth:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
