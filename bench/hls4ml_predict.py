"""fpyga.hls4ml.Model.predict against the bare network and against hls4ml's own predict.

    .venv/bin/python bench/hls4ml_predict.py [--model muon] [--samples 20000] [--repeats 7]

One process, the contenders interleaved in each repeat (these machines are noisy); medians of the
per-sample time over the repeats, and their ratios:

- bare: the compiled network's ``nn_batch`` called directly (ctypes) on raw ap_fixed bits, one
  call over the whole batch on one core: the floor of any host.
- Model 1 CU / 2 CU: ``Model.predict(X)`` on the emulated device, float in and float out
  (conversion in C++, overlapped with the kernel runs), with xclbins of 1 and 2 compute units.
- hls4ml: ``hls_model.predict(X)`` after ``compile()`` (hls4ml's C simulation, one ctypes call
  per sample, on one core).

Targets of issue 11: Model 1 CU <= 1.05x bare; Model 2 CU >= 1.5x faster than hls4ml on this
2-core machine; and the 1 -> 2 CU scaling.
"""

from __future__ import annotations

import argparse
import ctypes
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
    p.add_argument("--hls4ml-samples", type=int, default=5000,
                   help="samples for hls4ml's predict (slow: per-sample Python loop)")
    args = p.parse_args(argv)

    import fpyga
    import fpyga.hls4ml
    from fpyga import _core
    from fpyga.demo.convert import convert
    from fpyga.demo.model import models_dir

    work = Path(tempfile.mkdtemp(prefix="fpyga-bench-hls4ml-"))
    hls_model = convert(models_dir() / args.model, work / "prj")
    xb1 = fpyga.hls4ml.build(hls_model, work / "one" / f"{args.model}.xclbin", compute_units=1)
    xb2 = fpyga.hls4ml.build(hls_model, work / "two" / f"{args.model}.xclbin", compute_units=2)
    hls_model.compile()

    emu = fpyga.Device.open("emu")
    m1 = fpyga.hls4ml.Model(xb1, device=emu)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1.5, (args.samples, m1.n_inputs)).astype(np.float32)
    xh = x[: args.hls4ml_samples]

    so_path = work / "kernel.so"
    so_path.write_bytes(bitstream(xb1))
    lib = ctypes.CDLL(str(so_path))
    nn_batch = lib.nn_batch
    nn_batch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    raw_in = _core.to_fixed(x, m1.input_type)
    raw_out = np.zeros((len(x), m1.n_outputs), raw_in.dtype)

    def bare():
        nn_batch(raw_in.ctypes.data, raw_out.ctypes.data, len(x))

    # warm-up, and the contenders agree
    bare()
    y1 = m1.predict(x)
    assert np.array_equal(_core.from_fixed(raw_out, m1.output_type), y1), "bare loop and Model differ"
    yh = np.asarray(hls_model.predict(xh)).reshape(len(xh), -1)
    assert np.array_equal(yh, y1[: len(xh)]), "hls4ml and Model differ"

    rows = {"bare": [], "model_1cu": [], "model_2cu": [], "hls4ml": []}
    m2 = None
    for r in range(args.repeats):
        order = ["bare", "model_1cu", "model_2cu", "hls4ml"]
        if r % 2:
            order.reverse()
        for what in order:
            if what == "bare":
                rows[what].append(timed(bare) / len(x))
            elif what == "model_1cu":
                rows[what].append(timed(lambda: m1.predict(x)) / len(x))
            elif what == "model_2cu":
                # a device holds one xclbin: the 1-CU and 2-CU models take turns on emu
                m2 = fpyga.hls4ml.Model(xb2, device=emu)
                rows[what].append(timed(lambda: m2.predict(x)) / len(x))
                m1 = fpyga.hls4ml.Model(xb1, device=emu)
            else:
                rows[what].append(timed(lambda: hls_model.predict(xh)) / len(xh))
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1] * 1e6:.2f} us" for k, v in rows.items()),
              file=sys.stderr)

    med = {k: float(np.median(v)) * 1e6 for k, v in rows.items()}
    print(f"\n{args.model}: {m1.n_inputs} inputs, {m1.n_outputs} outputs, {args.samples} samples "
          f"({args.hls4ml_samples} for hls4ml), {args.repeats} repeats, medians per sample:")
    for k, v in med.items():
        print(f"  {k:<10} {v:9.3f} us")
    print(f"Model 1 CU / bare           {med['model_1cu'] / med['bare']:.3f}x  (target <= 1.05)")
    print(f"hls4ml / Model 2 CU         {med['hls4ml'] / med['model_2cu']:.2f}x faster (target >= 1.5)")
    print(f"Model 1 CU / Model 2 CU     {med['model_1cu'] / med['model_2cu']:.2f}x (scaling 1 -> 2 CUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
