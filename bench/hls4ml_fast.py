"""The fast path of an hls4ml network (issue 17) against hls4ml's C simulation, one core.

    .venv/bin/python bench/hls4ml_fast.py [--model muon] [--samples 200000] [--repeats 5] [--portable]

Pin it to one core (``taskset -c 0``); one process, the contenders interleaved in each repeat
(these machines are noisy); medians of the per-sample time over the repeats:

- fast: the built xclbin's ``nn_batch`` (the fast path) called directly (ctypes) over the batch;
- csim: its ``nn_batch_csim`` (hls4ml's C simulation compiled in the same object);
- hls4ml: ``hls_model.predict(X)`` after ``compile()`` (one ctypes call per sample from Python);
- plain: a plain integer loop of the same layer sizes (int16 weights and activations, int32
  accumulators, one shift and a ReLU per output; no rounding or overflow modes), sample by
  sample, compiled with the toolchain's flags (-O3) and with -O3 -march=native;
- portable (--portable): the fast path compiled without its AVX2/AVX-512 clones.

Targets: fast >= 50x faster than csim; fast <= 3x the plain loop.
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hls4ml_predict import bitstream  # noqa: E402

PLAIN = r"""
#include <cstdint>
#include <cstring>
constexpr int sizes[] = {%(sizes)s};
constexpr int n_layers = %(n_layers)d;
static int16_t weights[%(n_weights)d], biases[%(n_biases)d];
extern "C" void plain_init(const int16_t* w, const int16_t* b) {
  std::memcpy(weights, w, sizeof weights);
  std::memcpy(biases, b, sizeof biases);
}
// y = relu((W x + b) >> 10) per layer (none on the last), sample by sample; W row-major by output.
extern "C" void plain_batch(const int16_t* in, int16_t* out, int n) {
  for (int s = 0; s < n; ++s) {
    int16_t a[64], b[64];
    std::memcpy(a, in + long(s) * sizes[0], sizes[0] * sizeof(int16_t));
    const int16_t* w = weights;
    const int16_t* bias = biases;
    for (int l = 0; l < n_layers; ++l) {
      const int n_in = sizes[l], n_out = sizes[l + 1];
      for (int j = 0; j < n_out; ++j) {
        int32_t acc = int32_t(bias[j]) << 10;
        for (int i = 0; i < n_in; ++i) acc += int32_t(a[i]) * w[j * n_in + i];  // row j: contiguous
        acc >>= 10;
        b[j] = int16_t(l + 1 < n_layers && acc < 0 ? 0 : acc);
      }
      w += n_in * n_out;
      bias += n_out;
      std::memcpy(a, b, n_out * sizeof(int16_t));
    }
    std::memcpy(out + long(s) * sizes[n_layers], a, sizes[n_layers] * sizeof(int16_t));
  }
}
"""


def kernel(lib, name):
    f = getattr(lib, name)
    f.restype = None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    return f


def plain_loop(work: Path, sizes: list[int], flags: list[str]):
    """The plain integer loop for layer ``sizes``, compiled with ``flags``, random int16 weights."""
    n_w = sum(a * b for a, b in zip(sizes, sizes[1:]))
    n_b = sum(sizes[1:])
    src = work / "plain.cpp"
    src.write_text(PLAIN % {"sizes": ", ".join(map(str, sizes)), "n_layers": len(sizes) - 1,
                            "n_weights": n_w, "n_biases": n_b})
    so = work / f"plain{len(list(work.glob('plain*.so')))}.so"
    subprocess.run(["g++", *flags, "-fPIC", "-shared", str(src), "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    rng = np.random.default_rng(3)
    w = rng.integers(-600, 600, n_w).astype(np.int16)
    b = rng.integers(-300, 300, n_b).astype(np.int16)
    lib.plain_init(w.ctypes.data_as(ctypes.c_void_p), b.ctypes.data_as(ctypes.c_void_p))
    lib._keep = (w, b)
    return kernel(lib, "plain_batch")


def portable_build(hls_model, work: Path) -> Path:
    """The network's kernel object with the fast path compiled for the baseline only."""
    from fpyga import toolchain
    from fpyga.hls4ml import fast
    from fpyga.hls4ml.project import read_project

    import fpyga.hls4ml.build  # noqa: F401  (the module, not the function fpyga.hls4ml.build)

    build_mod = sys.modules["fpyga.hls4ml.build"]
    p = read_project(hls_model.config.get_output_dir())
    firmware = work / "portable" / "firmware"
    shutil.copytree(p.firmware, firmware, ignore=shutil.ignore_patterns("*.so", "*.o"))
    build_mod._strip_weight_loading(firmware, p.name)
    source, why = fast.generate(p, firmware)
    if not source:
        raise SystemExit(f"no fast path for this network: {why}")
    (work / "portable" / "fast.cpp").write_text(source)
    (work / "portable" / "wrapper.cpp").write_text(build_mod.wrapper_source(p))
    cxx = toolchain.compiler()
    inc = ["-I", str(firmware), "-isystem", str(firmware / "ap_types"), "-isystem", str(toolchain.hls_include_dir())]
    objs = []
    for s in (work / "portable" / "wrapper.cpp", firmware / f"{p.name}.cpp", work / "portable" / "fast.cpp"):
        o = s.with_suffix(".o")
        subprocess.run([cxx, *toolchain.CXX_FLAGS, *inc, "-DFPYGA_NN_FAST", "-DFPYGA_FAST_PORTABLE", "-c", str(s),
                        "-o", str(o)], check=True)
        objs.append(str(o))
    so = work / "portable" / "kernels.so"
    subprocess.run([cxx, "-shared", *objs, "-o", str(so)], check=True)
    return so


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="muon", choices=["muon", "iris"])
    p.add_argument("--samples", type=int, default=200000)
    p.add_argument("--csim-samples", type=int, default=3000)
    p.add_argument("--hls4ml-samples", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--portable", action="store_true", help="also time the fast path without AVX2/AVX-512")
    args = p.parse_args(argv)

    import fpyga.hls4ml
    from fpyga import _core
    from fpyga.demo.convert import convert
    from fpyga.demo.model import models_dir

    work = Path(tempfile.mkdtemp(prefix="fpyga-bench-fast-"))
    hls_model = convert(models_dir() / args.model, work / "prj")
    xclbin = fpyga.hls4ml.build(hls_model, work / f"{args.model}.xclbin")
    model = fpyga.hls4ml.Model(xclbin, device="emu")
    if "batch_csim" not in model.info["kernels"]:
        raise SystemExit(f"{xclbin}: built without the fast path (see the build's warning)")
    hls_model.compile()
    (work / "kernel.so").write_bytes(bitstream(xclbin))
    lib = ctypes.CDLL(str(work / "kernel.so"))
    contenders = {"fast": kernel(lib, "nn_batch"), "csim": kernel(lib, "nn_batch_csim")}

    sizes = [model.n_inputs] + [l.get_attr("n_out") for l in hls_model.get_layers() if l.class_name == "Dense"]
    contenders["plain -O3"] = plain_loop(work, sizes, ["-O3"])
    contenders["plain native"] = plain_loop(work, sizes, ["-O3", "-march=native"])
    if args.portable:
        contenders["portable"] = kernel(ctypes.CDLL(str(portable_build(hls_model, work))), "nn_batch")

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1.5, (args.samples, model.n_inputs)).astype(np.float32)
    raw_in = _core.to_fixed(x, model.input_type)
    raw_out = np.zeros((len(x), model.n_outputs), raw_in.dtype)
    check = np.zeros_like(raw_out)
    contenders["fast"](raw_in.ctypes.data, raw_out.ctypes.data, len(x))
    contenders["csim"](raw_in.ctypes.data, check.ctypes.data, args.csim_samples)
    assert np.array_equal(raw_out[: args.csim_samples], check[: args.csim_samples]), "fast and csim differ"
    xh = x[: args.hls4ml_samples]
    yh = np.asarray(hls_model.predict(xh)).reshape(len(xh), -1)
    assert np.array_equal(_core.from_fixed(raw_out[: len(xh)], model.output_type), yh), "fast and hls4ml differ"

    n_of = {k: args.samples for k in contenders}
    n_of["csim"] = args.csim_samples
    rows = {k: [] for k in [*contenders, "hls4ml"]}
    for r in range(args.repeats):
        order = list(rows) if r % 2 == 0 else list(reversed(rows))
        for what in order:
            if what == "hls4ml":
                t = time.perf_counter()
                hls_model.predict(xh)
                rows[what].append((time.perf_counter() - t) / len(xh))
            else:
                n = n_of[what]
                t = time.perf_counter()
                contenders[what](raw_in.ctypes.data, raw_out.ctypes.data, n)
                rows[what].append((time.perf_counter() - t) / n)
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1] * 1e6:.3f} us" for k, v in rows.items()),
              file=sys.stderr)

    med = {k: float(np.median(v)) * 1e6 for k, v in rows.items()}
    macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
    print(f"\n{args.model}: layers {sizes} ({macs} multiply-accumulates), {args.samples} samples "
          f"({args.csim_samples} csim, {args.hls4ml_samples} hls4ml), {args.repeats} repeats, medians per sample:")
    for k, v in med.items():
        print(f"  {k:<13} {v:10.3f} us")
    plain = min(med["plain -O3"], med["plain native"])
    print(f"csim / fast                 {med['csim'] / med['fast']:.1f}x  (target >= 50)")
    print(f"hls4ml predict / fast       {med['hls4ml'] / med['fast']:.1f}x")
    print(f"fast / plain (best)         {med['fast'] / plain:.2f}x  (target <= 3)")
    if "portable" in med:
        print(f"portable / fast             {med['portable'] / med['fast']:.2f}x  (what AVX2/AVX-512 clones bring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
