"""fpyga.hls4ml.Model.predict against the bare network and against hls4ml's own predict.

    .venv/bin/python bench/hls4ml_predict.py [--model muon] [--samples 20000] [--repeats 7]

One process, the contenders interleaved in each repeat (these machines are noisy); medians of the
per-sample time over the repeats, and their ratios:

- bare: the compiled network's batch kernel called directly (ctypes) on raw ap_fixed bits, one
  call over the whole batch on one core: the floor of any host. For both kernels of the xclbin:
  the fast path (``nn_batch``) and the C-simulation kernel (``nn_batch_csim``).
- Model 1 CU / 2 CU: ``Model.predict(X)`` on the emulated device, float in and float out
  (conversion in C++, overlapped with the kernel runs), with xclbins of 1 and 2 compute units, on
  each kernel (``exact="csim"`` for the C-simulation one).
- hls4ml: ``hls_model.predict(X)`` after ``compile()`` (hls4ml's C simulation, one ctypes call
  per sample, on one core).

Targets of issue 11: Model 1 CU <= 1.05x bare; Model 2 CU >= 1.5x faster than hls4ml on this
2-core machine; and the 1 -> 2 CU scaling.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def bitstream(xclbin: Path) -> bytes:
    """The BITSTREAM section (the sw_emu kernel object) of an xclbin (layout: shared/FACTS.md)."""
    data = xclbin.read_bytes()
    n_sections = struct.unpack_from("<I", data, 448)[0]
    for i in range(n_sections):
        kind, _name, offset, size = struct.unpack_from("<I16s4xQQ", data, 456 + 40 * i)
        if kind == 0:
            return data[offset:offset + size]
    raise ValueError(f"{xclbin}: no BITSTREAM section")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="muon", choices=["muon", "iris"])
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--hls4ml-samples", type=int, default=3000,
                   help="samples for hls4ml's predict (slow: per-sample Python loop)")
    args = p.parse_args(argv)

    import fpyga
    import fpyga.hls4ml
    from fpyga import _core
    from fpyga.demo.convert import convert
    from fpyga.demo.model import models_dir

    work = Path(tempfile.mkdtemp(prefix="fpyga-bench-hls4ml-"))
    hls_model = convert(models_dir() / args.model, work / "prj")
    xb = {1: fpyga.hls4ml.build(hls_model, work / "one" / f"{args.model}.xclbin", compute_units=1),
          2: fpyga.hls4ml.build(hls_model, work / "two" / f"{args.model}.xclbin", compute_units=2)}
    hls_model.compile()

    emu = fpyga.Device.open("emu")
    probe = fpyga.hls4ml.Model(xb[1], device=emu)
    kernels = probe.info["kernels"]
    n_in, n_out, in_type, out_type = probe.n_inputs, probe.n_outputs, probe.input_type, probe.output_type
    del probe
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1.5, (args.samples, n_in)).astype(np.float32)
    xh = x[: args.hls4ml_samples]

    # The bare network: the xclbin's kernel object called directly, on one core.
    so_path = work / "kernel.so"
    so_path.write_bytes(bitstream(xb[1]))
    lib = ctypes.CDLL(str(so_path))
    raw_in = _core.to_fixed(x, in_type)
    raw_out = np.zeros((len(x), n_out), raw_in.dtype)
    bare = {}
    for exact, kernel in (("fast", kernels["batch"]), ("csim", kernels.get("batch_csim"))):
        if kernel is None:
            continue
        fn = getattr(lib, kernel)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        bare[exact] = lambda fn=fn: fn(raw_in.ctypes.data, raw_out.ctypes.data, len(x))

    contenders = {}
    for exact in bare:
        contenders[f"bare_{exact}"] = ("bare", exact, None)
        for cu in (1, 2):
            contenders[f"model_{exact}_{cu}cu"] = ("model", exact, cu)
    contenders["hls4ml"] = ("hls4ml", None, None)

    def run(kind, exact, cu):
        if kind == "bare":
            return timed(bare[exact]) / len(x)
        if kind == "hls4ml":
            return timed(lambda: hls_model.predict(xh)) / len(xh)
        # A device holds one xclbin: each Model loads its own before it is timed.
        m = fpyga.hls4ml.Model(xb[cu], device=emu, exact="csim" if exact == "csim" else None)
        m.predict(x[:64])
        t = timed(lambda: m.predict(x)) / len(x)
        y = m.predict(x[:512])
        bare[exact]()
        assert np.array_equal(y, _core.from_fixed(raw_out[:512], out_type)), f"{exact} {cu} CU differs from bare"
        return t

    yh = np.asarray(hls_model.predict(xh)).reshape(len(xh), -1)
    m = fpyga.hls4ml.Model(xb[1], device=emu)
    assert np.array_equal(yh, m.predict(xh)), "hls4ml and Model differ"
    del m

    rows = {k: [] for k in contenders}
    for r in range(args.repeats):
        order = list(contenders)
        if r % 2:
            order.reverse()
        for k in order:
            rows[k].append(run(*contenders[k]))
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1] * 1e6:.3f}" for k, v in rows.items()),
              file=sys.stderr)

    med = {k: float(np.median(v)) * 1e6 for k, v in rows.items()}
    load = os.getloadavg()[0]
    print(f"\n{args.model}: {n_in} inputs, {n_out} outputs, {args.samples} samples ({args.hls4ml_samples} for "
          f"hls4ml), {args.repeats} repeats, load average {load:.1f} on {os.cpu_count()} cores; medians per sample:")
    for k, v in med.items():
        print(f"  {k:<18} {v:10.3f} us")
    for exact in bare:
        print(f"[{exact}] Model 1 CU / bare kernel      {med[f'model_{exact}_1cu'] / med[f'bare_{exact}']:.3f}x "
              f"(target <= 1.05)")
        print(f"[{exact}] hls4ml / Model 2 CU           {med['hls4ml'] / med[f'model_{exact}_2cu']:.1f}x faster "
              f"(target >= 1.5)")
        print(f"[{exact}] Model 1 CU / Model 2 CU       {med[f'model_{exact}_1cu'] / med[f'model_{exact}_2cu']:.2f}x "
              f"(1 -> 2 CUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
