"""The per-sample MLP round trip (inject one sample, run the network, extract the result) through
every host path available here, in one run; medians, p99 and ratios to the floor (the bare kernel
function) are printed and written to reports/bench.json. A benchmark, never a test.

Rows:
- bare kernel function: the muon MLP's sw_emu kernel `nn` called directly (fpyga_demo_host);
- fpyga C++ on emu: fpyga_demo_host, to_fixed + sync + call + sync + from_fixed per sample;
- fpyga Python on emu: the demo's PYNQ-style Python host, the same phases;
- fpyga Python on the OpenCL backend (PoCL): the same network as OpenCL C (float), loaded as a
  .cl overlay through fpyga's PYNQ API, when the backend can run it;
- pyopencl on PoCL: the same OpenCL C kernel with pyopencl (blocking write, kernel, blocking read),
  the paper's OpenCL flow from Python;
- a plain OpenCL C++ host on PoCL (our own, bench/opencl_mlp.cpp) and fpyga's C++ API on its
  OpenCL backend with the same .cl overlay (the same program).

The OpenCL rows run the network in float OpenCL C compiled by PoCL, the emu rows run hls4ml's
ap_fixed C++: the kernels' own compute times differ, so compare the OpenCL rows with each other
and the emu rows with the bare kernel function.

    .venv/bin/python bench/compare_hosts.py [--samples 2000] [--out reports/bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MLP_CL = r"""
// The demo's MLP in OpenCL C (float): one work-item per sample, ReLU hidden layers, linear output.
// w holds, per layer, the kernel (n_in x n_out, row-major) then the bias.
__kernel void mlp(__global const float* in, __global float* out, __global const float* w,
                  __global const int* dims, int n_layers) {
  float a[64], b[64];
  for (int i = 0; i < dims[0]; ++i) a[i] = in[i];
  int off = 0;
  for (int l = 0; l < n_layers; ++l) {
    const int nin = dims[l], nout = dims[l + 1];
    for (int j = 0; j < nout; ++j) {
      float acc = w[off + nin * nout + j];
      for (int i = 0; i < nin; ++i) acc += a[i] * w[off + i * nout + j];
      b[j] = (l < n_layers - 1) ? fmax(acc, 0.0f) : acc;
    }
    for (int j = 0; j < nout; ++j) a[j] = b[j];
    off += nin * nout + nout;
  }
  for (int j = 0; j < dims[n_layers]; ++j) out[j] = a[j];
}
"""


def stats(ns, floor_median=None) -> dict:
    us = np.asarray(ns, np.float64) / 1e3
    s = {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)), "samples": int(len(us))}
    if floor_median:
        s["ratio_to_floor"] = s["median_us"] / floor_median
    return s


def flat_weights(model):
    parts, dims = [], [model.n_inputs]
    for layer in model.layers:
        parts += [layer.kernel.astype(np.float32).ravel(), layer.bias.astype(np.float32)]
        dims.append(layer.kernel.shape[1])
    return np.concatenate(parts), np.asarray(dims, np.int32)


def run_pyopencl(x, model):
    import pyopencl as cl

    platforms = [p for p in cl.get_platforms() if "Portable Computing Language" in p.name]
    if not platforms:
        raise RuntimeError("no PoCL platform")
    ctx = cl.Context(platforms[0].get_devices()[:1])
    q = cl.CommandQueue(ctx)
    prg = cl.Program(ctx, MLP_CL).build()
    w, dims = flat_weights(model)
    mf = cl.mem_flags
    wbuf = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=w)
    dbuf = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=dims)
    inb = cl.Buffer(ctx, mf.READ_ONLY, x.shape[1] * 4)
    outb = cl.Buffer(ctx, mf.WRITE_ONLY, 4 * int(dims[-1]))
    res = np.empty(int(dims[-1]), np.float32)
    knl = prg.mlp
    knl.set_args(inb, outb, wbuf, dbuf, np.int32(len(model.layers)))
    times = np.empty(len(x), np.int64)
    outs = np.empty((len(x), int(dims[-1])), np.float32)
    for i in range(len(x)):
        t0 = time.perf_counter_ns()
        cl.enqueue_copy(q, inb, x[i], is_blocking=True)
        cl.enqueue_nd_range_kernel(q, knl, (1,), None)
        cl.enqueue_copy(q, res, outb, is_blocking=True)
        times[i] = time.perf_counter_ns() - t0
        outs[i] = res
    return times, outs


def run_fpyga_opencl(x, model):
    import fpyga as pynq

    devs = [d for d in pynq.Device.devices if d.backend == "opencl"]
    if not devs:
        raise RuntimeError("no fpyga OpenCL device (backend not built or no ICD)")
    dev = devs[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlp.cl"
        path.write_text(MLP_CL)
        ol = pynq.Overlay(str(path), device=dev)
    w, dims = flat_weights(model)
    wbuf = pynq.allocate(w.shape, "f4", target=dev)
    dbuf = pynq.allocate(dims.shape, "i4", target=dev)
    wbuf[:] = w
    dbuf[:] = dims
    wbuf.sync_to_device()
    dbuf.sync_to_device()
    inp = pynq.allocate((x.shape[1],), "f4", target=dev)
    out = pynq.allocate((int(dims[-1]),), "f4", target=dev)
    k = ol.mlp
    times = np.empty(len(x), np.int64)
    outs = np.empty((len(x), int(dims[-1])), np.float32)
    nl = len(model.layers)
    for i in range(len(x)):
        t0 = time.perf_counter_ns()
        inp[:] = x[i]
        inp.sync_to_device()
        k.call(inp, out, wbuf, dbuf, nl)
        out.sync_from_device()
        times[i] = time.perf_counter_ns() - t0
        outs[i] = out
    return times, outs, dev.name


def find_opencl_bench() -> Path:
    repo = Path(__file__).resolve().parents[1]
    env = os.environ.get("FPYGA_BENCH_OPENCL_MLP")
    for c in ([Path(env)] if env else []) + [repo / "build" / "bench" / "fpyga_bench_opencl_mlp"]:
        if c.is_file():
            return c
    raise FileNotFoundError("fpyga_bench_opencl_mlp not built (needs the OpenCL backend and CLHPP)")


def run_opencl_cpp(x, model) -> dict:
    import subprocess

    w, dims = flat_weights(model)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "mlp.cl").write_text(MLP_CL)
        w.tofile(t / "w.f32")
        dims.tofile(t / "d.i32")
        np.ascontiguousarray(x, np.float32).tofile(t / "x.f32")
        p = subprocess.run([str(find_opencl_bench()), "--cl", str(t / "mlp.cl"), "--weights", str(t / "w.f32"),
                            "--dims", str(t / "d.i32"), "--input", str(t / "x.f32")],
                           capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip())
    return json.loads(p.stdout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["muon", "iris"], default="muon",
                   help="network (iris: a 2.5 us kernel, where host overheads show)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--out", default="reports/bench.json")
    args = p.parse_args(argv)

    from fpyga.demo import data, host
    from fpyga.demo.model import load

    model = load(args.model)
    if args.model == "muon":
        d = data.muons(model.meta["n"], model.meta["seed"])
        x = model.standardize(d.x_val[: args.samples])
    else:  # Iris's validation set, repeated up to --samples
        d = data.iris(model.meta["seed"], model.meta["val_fraction"])
        x = np.resize(model.standardize(d.x_val), (args.samples, model.n_inputs)).astype(np.float32)
    n_out = model.n_outputs
    xclbin = host.find_xclbin(args.model)
    rows, notes = {}, {}

    import subprocess

    # The C++ host's JSON carries per-sample phase times and per-call bare-function timings.
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "x.f32"
        x.tofile(f)
        out = subprocess.run([str(host.find_cpp_host()), "--xclbin", str(xclbin), "--input", str(f),
                              "--inputs", str(x.shape[1]), "--outputs", str(n_out), "--device", "emu"],
                             capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)
    fm = stats(j["bare_call_ns"])["median_us"]
    rows["bare kernel function"] = stats(j["bare_call_ns"], fm)
    rows["fpyga C++ (emu)"] = stats(np.asarray(j["inject_ns"]) + np.asarray(j["inference_ns"]) + np.asarray(j["extract_ns"]), fm)
    py = host.run_python_host(xclbin, x, n_out, device="emu")
    rows["fpyga Python (emu)"] = stats(py.total_ns, fm)
    rows["fpyga Python (emu)"]["bit_identical_to_cpp"] = bool(np.array_equal(py.raw.ravel(), np.asarray(j["raw_outputs"])))
    try:
        t, o, name = run_fpyga_opencl(x, model)
        rows["fpyga Python (OpenCL backend, PoCL)"] = stats(t, fm)
        rows["fpyga Python (OpenCL backend, PoCL)"]["device"] = name
    except Exception as e:  # reported, not fatal: the row is optional
        notes["fpyga Python (OpenCL backend, PoCL)"] = f"not run: {type(e).__name__}: {e}"
    try:
        t, o = run_pyopencl(x, model)
        rows["pyopencl (PoCL)"] = stats(t, fm)
        if args.model == "muon":  # (Iris's float reference ends in a softmax, the OpenCL C one does not)
            y = model.forward(x)[:, 0]
            rows["pyopencl (PoCL)"]["max_abs_diff_to_float"] = float(np.max(np.abs(o[:, 0] - y)))
    except Exception as e:
        notes["pyopencl (PoCL)"] = f"not run: {type(e).__name__}: {e}"
    try:
        j2 = run_opencl_cpp(x, model)
        rows["plain OpenCL C++ host (PoCL)"] = stats(j2["plain_ns"], fm)
        if "fpyga_ns" in j2:
            rows["fpyga C++ (OpenCL backend, PoCL)"] = stats(j2["fpyga_ns"], fm)
            rows["fpyga C++ (OpenCL backend, PoCL)"]["same_outputs_as_plain"] = j2["fpyga_out"] == j2["plain_out"]
        else:
            notes["fpyga C++ (OpenCL backend, PoCL)"] = f"not run: {j2.get('fpyga_error')}"
    except Exception as e:
        notes["plain OpenCL C++ host (PoCL)"] = f"not run: {type(e).__name__}: {e}"

    plain = rows.get("plain OpenCL C++ host (PoCL)")
    if plain:
        for k, r in rows.items():
            if "PoCL" in k:
                r["ratio_to_plain_opencl"] = r["median_us"] / plain["median_us"]
    print(f"per-sample {args.model} MLP round trip, {len(x)} samples (load average {os.getloadavg()[0]:.1f})")
    print(f"{'path':<40}{'median us':>11}{'p99 us':>10}{'x floor':>9}{'x plain OpenCL':>16}")
    for k, r in rows.items():
        po = f"{r['ratio_to_plain_opencl']:.2f}" if "ratio_to_plain_opencl" in r else ""
        print(f"{k:<40}{r['median_us']:>11.2f}{r['p99_us']:>10.2f}{r['ratio_to_floor']:>9.2f}{po:>16}")
    for k, v in notes.items():
        print(f"{k:<40}{v}")
    report = {"model": args.model, "samples": len(x), "rows": rows, "notes": notes,
              "load_average": list(os.getloadavg())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
