"""``python -m fpyga.demo``: the paper's study on the default device (``make demo``).

For each model (Iris classifier, muon pT regressor): load the committed model and its validation
data, cross-check fpyga's kernel against hls4ml's bit-accurate C simulation, run every validation
sample through the Python host and the C++ host timing inject / inference / extract, time the
batch kernel against a bare loop over the kernel function, and compare accuracy (Iris) or the pT
resolution (muon) of float CPU inference, the fixed-point kernel and the trigger-style baseline.
Prints a table, writes ``reports/demo.json`` (schema: docs/demo.md) and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from . import data
from .convert import convert
from .host import build_xclbin, find_cpp_host, find_xclbin, run_cpp_host, run_python_host
from .model import load, models_dir

MODELS = ("iris", "muon")


def _stats(ns: np.ndarray) -> dict:
    us = np.asarray(ns, np.float64) / 1e3
    return {"median": float(np.median(us)), "p90": float(np.percentile(us, 90)), "p99": float(np.percentile(us, 99)),
            "mean": float(np.mean(us))}


def _latency(run) -> dict:
    return {"inject": _stats(run.inject_ns), "inference": _stats(run.inference_ns),
            "extract": _stats(run.extract_ns), "total": _stats(run.total_ns)}


def _progress(enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, unit="sample", mininterval=0.5, leave=False, file=sys.stderr)


def hls4ml_predict(hls_model, x: np.ndarray) -> np.ndarray:
    """hls4ml's own bit-accurate C simulation (``compile()`` then ``predict``)."""
    hls_model.compile()
    y = hls_model.predict(np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(y, np.float64).reshape(len(x), -1)


def study(name: str, args, work_dir: Path) -> tuple[dict, dict]:
    """Run one model; returns its report entry and the arrays the plots need."""
    from fpyga import _core

    t_start = time.perf_counter()
    m = load(name)
    if name == "iris":
        d = data.iris(m.meta["seed"], m.meta["val_fraction"])
    else:
        d = data.muons(m.meta.get("n", 60000), m.meta["seed"], path=args.muon_data)
    x_val = d.x_val if args.samples is None else d.x_val[: args.samples]
    y_val = d.y_val[: len(x_val)]
    x = m.standardize(x_val)
    n_out = m.n_outputs
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if not args.quiet else (lambda *a: None)
    # The network goes the way anyone's does: hls4ml converts it, fpyga.hls4ml.build builds it.
    hls_model = convert(models_dir() / name, work_dir / f"hls4ml_{name}")
    if args.xclbin_dir:
        xclbin = find_xclbin(name, args.xclbin_dir)
    else:
        log(f"[{name}] fpyga.hls4ml.build (cached after the first run) ...")
        xclbin = build_xclbin(name, work_dir, hls_model)

    log(f"[{name}] {len(x)} validation samples, {xclbin}")
    y_float = m.forward(x)
    log(f"[{name}] hls4ml C simulation (compile) ...")
    t = time.perf_counter()
    y_hls = hls4ml_predict(hls_model, x) if not args.skip_hls4ml else None
    t_hls = time.perf_counter() - t

    # Small validation sets are passed several times so that the percentiles mean something.
    repeat = args.repeat if args.repeat is not None else max(1, -(-1000 // len(x)))
    x_timed = np.tile(x, (repeat, 1))
    log(f"[{name}] Python host ({repeat} pass(es)) ...")
    py = run_python_host(xclbin, x_timed, n_out, device=args.device or None,
                         progress=_progress(not args.quiet and len(x_timed) > 5000, f"{name} python host"))
    log(f"[{name}] C++ host ...")
    cpp = run_cpp_host(xclbin, x_timed, n_out, device=args.device or None, exe=args.cpp_host)

    identical = bool(np.array_equal(py.raw, cpp.raw))
    repeat_stable = bool(np.array_equal(py.raw, np.tile(py.raw[: len(x)], (repeat, 1))))
    py.raw, py.outputs = py.raw[: len(x)], py.outputs[: len(x)]
    fixed_out = py.outputs.astype(np.float64)
    entry = {
        "samples": int(len(x)),
        "passes": int(repeat),
        "timed_samples": int(len(x_timed)),
        "repeated_passes_identical": repeat_stable,
        "xclbin": str(xclbin),
        "device": py.extra.get("device", ""),
        "precision": "ap_fixed<16,6>",
        "sparsity": m.sparsity(),
        "layers": [[int(l.kernel.shape[0]), int(l.kernel.shape[1]), l.activation] for l in m.layers],
        "latency_us": {"python": _latency(py), "cpp": _latency(cpp)},
        "hosts_bit_identical": identical,
        "throughput_sps": {
            "batch_kernel": len(x_timed) / (cpp.extra["batch_ns"] / 1e9),
            "bare_loop": (len(x_timed) / (cpp.extra["bare_loop_ns"] / 1e9)) if "bare_loop_ns" in cpp.extra else None,
        },
        "batch_matches_single": bool(cpp.extra.get("batch_matches_single", False)),
        "bare_matches_batch": bool(cpp.extra.get("bare_matches_batch", False)),
    }
    lat = entry["latency_us"]
    entry["latency_us"]["ratio_python_to_cpp"] = {
        p: lat["python"][p]["median"] / lat["cpp"][p]["median"] if lat["cpp"][p]["median"] > 0 else None
        for p in ("inject", "inference", "extract", "total")}
    tp = entry["throughput_sps"]
    tp["batch_to_bare_ratio"] = tp["batch_kernel"] / tp["bare_loop"] if tp["bare_loop"] else None
    if y_hls is not None:
        hls_raw = _core.to_fixed(y_hls, "ap_fixed<16,6>").astype(np.int64)
        mism = int(np.count_nonzero(np.any(hls_raw != py.raw, axis=1)))
        entry["hls4ml"] = {"kernel_matches_csim": mism == 0, "mismatched_samples": mism, "seconds": t_hls}
    arrays = {"python": py, "cpp": cpp}
    if name == "iris":
        acc_float = float(np.mean(np.argmax(y_float, axis=1) == y_val))
        acc_fixed = float(np.mean(np.argmax(fixed_out, axis=1) == y_val))
        entry["accuracy"] = {"float": acc_float, "fixed": acc_fixed}
    else:
        pt_true = d.pt_val[: len(x)].astype(np.float64)
        lut = data.trigger_lut().fit(d.x_train, d.pt_train)
        deltas = {
            "float": data.resolution(data.pt_from_output(y_float[:, 0]), pt_true),
            "fixed": data.resolution(data.pt_from_output(fixed_out[:, 0]), pt_true),
            "trigger": data.resolution(lut.predict(x_val), pt_true),
        }
        entry["resolution"] = {k: data.resolution_summary(v) for k, v in deltas.items()}
        arrays["deltas"] = deltas
    entry["seconds"] = time.perf_counter() - t_start
    return entry, arrays


def print_table(report: dict) -> None:
    for name, e in report["models"].items():
        lat = e["latency_us"]
        print(f"\n== {name}: {e['samples']} samples x {e['passes']} pass(es) on {e['device']} ({e['precision']}, sparsity {e['sparsity']:.2f})")
        print(f"{'phase (us)':<12}{'py median':>11}{'py p90':>9}{'py p99':>9}{'C++ median':>12}{'C++ p90':>9}"
              f"{'C++ p99':>9}{'py/C++':>8}")
        for p in ("inject", "inference", "extract", "total"):
            a, b = lat["python"][p], lat["cpp"][p]
            r = lat["ratio_python_to_cpp"][p]
            print(f"{p:<12}{a['median']:>11.2f}{a['p90']:>9.2f}{a['p99']:>9.2f}{b['median']:>12.2f}{b['p90']:>9.2f}"
                  f"{b['p99']:>9.2f}{(r if r else float('nan')):>8.2f}")
        tp = e["throughput_sps"]
        if tp["bare_loop"]:
            print(f"batch kernel {tp['batch_kernel']:.0f} samples/s, bare loop over the kernel function "
                  f"{tp['bare_loop']:.0f} samples/s (ratio {tp['batch_to_bare_ratio']:.3f})")
        else:
            print(f"batch kernel {tp['batch_kernel']:.0f} samples/s (no bare loop: hardware xclbin)")
        print(f"Python and C++ hosts bit-identical: {e['hosts_bit_identical']}", end="")
        if "hls4ml" in e:
            h = e["hls4ml"]
            print(f"; kernel == hls4ml C simulation: {h['kernel_matches_csim']} ({h['mismatched_samples']} mismatches)")
        else:
            print()
        if "accuracy" in e:
            print(f"accuracy: float CPU {e['accuracy']['float']:.4f}, fixed-point kernel {e['accuracy']['fixed']:.4f}")
        if "resolution" in e:
            print(f"{'pT resolution':<16}{'mean':>8}{'std':>8}{'q05':>8}{'q50':>8}{'q95':>8}{'<-0.9':>9}")
            for k, r in e["resolution"].items():
                print(f"{k:<16}{r['mean']:>8.3f}{r['std']:>8.3f}{r['q05']:>8.3f}{r['q50']:>8.3f}{r['q95']:>8.3f}"
                      f"{r['frac_below_minus_0_9']:>9.4f}")


def _time_bins(samples: list[np.ndarray], n_bins: int = 60):
    """Shared bin edges for several hosts' per-sample times (us), the range drawn, and whether the
    axis is logarithmic: the range is [min, min(p99, 1.5 x p95, 4 x median)] (largest over the
    hosts), so scheduler preemptions do not squeeze the distribution into one bin, and log when it
    spans a decade."""
    lo = min(float(np.min(us)) for us in samples)
    hi = min(max(float(np.percentile(us, 99)) for us in samples),
             1.5 * max(float(np.percentile(us, 95)) for us in samples),
             4 * max(float(np.median(us)) for us in samples))
    hi = max(hi, lo * 1.01 + 1e-9)
    log = lo > 0 and hi / lo >= 10
    edges = np.geomspace(lo, hi, n_bins + 1) if log else np.linspace(lo, hi, n_bins + 1)
    return edges, log


def _histogram_times(ax, runs, get_us, title: str) -> None:
    colours = {"python": "tab:blue", "cpp": "tab:orange"}
    labels = {"python": "Python host", "cpp": "C++ host"}
    data = [get_us(run) for run in runs]
    edges, log = _time_bins(data)
    cut_notes = []
    for run, us in zip(runs, data):
        cut = int(np.count_nonzero(us > edges[-1]))
        ax.hist(us[us <= edges[-1]], bins=edges, alpha=0.55, color=colours.get(run.host),
                label=f"{labels.get(run.host, run.host)}: median {np.median(us):.2f} \u00b5s")
        if cut:
            cut_notes.append(f"{run.host} {cut}/{len(us)}")
    if log:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("time per sample (\u00b5s" + (", log scale)" if log else ")"))
    ax.set_ylabel("samples")
    ax.legend(fontsize=7, loc="upper right")
    note = f"not drawn (> {edges[-1]:.2f} \u00b5s): " + ", ".join(cut_notes) if cut_notes else "all samples drawn"
    ax.text(0.01, -0.28, note, transform=ax.transAxes, fontsize=7, color="dimgray", va="top")


def plot(name: str, arrays: dict, out_dir: Path, device: str = "", data_note: str = "") -> list[str]:
    """Figures like the paper's 6-10: phase and total time histograms of both hosts (shared bins,
    units, what was cut), and for the muon study the pT resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    runs = [arrays["python"], arrays["cpp"]]
    where = f" on the {device}" if device else ""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, phase in zip(axes, ("inject", "inference", "extract")):
        _histogram_times(ax, runs, lambda r, ph=phase: getattr(r, f"{ph}_ns") / 1e3, f"{name}: {phase}")
    fig.suptitle(f"{name}: time per sample by phase{where}" + (f" ({data_note})" if data_note else ""), fontsize=11)
    fig.tight_layout()
    path = out_dir / f"{name}_phases.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(str(path))

    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    _histogram_times(ax, runs, lambda r: r.total_ns / 1e3,
                     f"{name}: inject + inference + extract per sample{where}" + (f"\n{data_note}" if data_note else ""))
    fig.tight_layout()
    path = out_dir / f"{name}_total.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(str(path))

    if "deltas" in arrays:
        fig, ax = plt.subplots(figsize=(6.8, 4.4))
        bins = np.linspace(-1.0, 2.0, 121)
        for k, colour, label in (("trigger", "tab:gray", "L1-style lookup table"), ("float", "tab:green", "float CPU"),
                                 ("fixed", "tab:red", "fixed-point kernel")):
            dlt = arrays["deltas"][k]
            out = int(np.count_nonzero((dlt < bins[0]) | (dlt > bins[-1])))
            ax.hist(np.clip(dlt, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.5, color=colour,
                    label=f"{label}: std {np.std(dlt):.3f}" + (f", {out} outside [-1, 2] in the edge bins" if out else ""))
        ax.set_xlabel("relative pT error (pT_est \u2212 pT_true) / pT_true")
        ax.set_ylabel("muons per bin (bin width 0.025)")
        ax.set_title(f"muon pT resolution{where}", fontsize=10)
        ax.legend(fontsize=7)
        if data_note:
            ax.text(0.99, 0.6, data_note, transform=ax.transAxes, fontsize=7, ha="right", color="dimgray")
        fig.tight_layout()
        path = out_dir / f"{name}_resolution.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(str(path))
    return files


def _device_label(entry: dict, spec: str) -> str:
    name = entry.get("device", "")
    return "emulated device (emu)" if "emulated" in name or spec.startswith("emu") else name


def _data_note(name: str, args) -> str:
    if name != "muon":
        return ""
    return "data: real muons from " + Path(args.muon_data).name if args.muon_data else \
        "data: seeded synthetic surrogate of the CMS barrel muons (docs/demo.md)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fpyga.demo", description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=[*MODELS, "all"], default="all")
    p.add_argument("--device", default=os.environ.get("FPYGA_DEVICE", ""),
                   help="device spec (emu, emu:N, xrt:N, opencl:N); default: the default device")
    p.add_argument("--samples", type=int, default=None, help="validation samples per model (default: all)")
    p.add_argument("--repeat", type=int, default=None,
                   help="passes over the samples for timing (default: enough for 1000 timed samples)")
    p.add_argument("--out", default="reports", help="report directory (default: reports)")
    p.add_argument("--xclbin-dir", default=None,
                   help="where prebuilt nn_<model>.xclbin are, e.g. hardware builds (default: build them)")
    p.add_argument("--cpp-host", default=None, help="the fpyga_demo_host executable (default: installed/build)")
    p.add_argument("--work-dir", default=None,
                   help="hls4ml projects and the built xclbins (default: <out>/.hls4ml)")
    p.add_argument("--muon-data", default=None, help="real muon data (.npz/.csv) instead of the surrogate")
    p.add_argument("--skip-hls4ml", action="store_true", help="skip the cross-check against hls4ml's C simulation")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.samples is not None and args.samples < 1:
        p.error("--samples must be at least 1")
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be at least 1")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work_dir) if args.work_dir else out / ".hls4ml"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report = {"study": "Lorusso et al., ISGC 2022, with fpyga", "device_spec": args.device or "default",
              "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                       "load_average": list(os.getloadavg())},
              "models": {}, "plots": []}
    names = MODELS if args.model == "all" else (args.model,)
    find_cpp_host() if args.cpp_host is None else None
    for name in names:
        entry, arrays = study(name, args, work)
        report["models"][name] = entry
        if not args.no_plots:
            report["plots"] += plot(name, arrays, out, _device_label(entry, args.device), _data_note(name, args))
    report["elapsed_s"] = time.perf_counter() - t0
    (out / "demo.json").write_text(json.dumps(report, indent=1) + "\n")
    print_table(report)
    print(f"\nwrote {out / 'demo.json'}" + (f" and {len(report['plots'])} plots" if report["plots"] else "")
          + f" in {report['elapsed_s']:.0f} s")
    ok = all(e["hosts_bit_identical"] and e.get("hls4ml", {}).get("kernel_matches_csim", True)
             for e in report["models"].values())
    return 0 if ok else 2


if __name__ == "__main__":
    raise SystemExit(main())
