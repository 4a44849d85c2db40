"""The demo's two hosts: the Python one (PYNQ style, in this process) and the C++ one
(``fpyga_demo_host``, run as a subprocess), each timing per sample

- inject: float -> ap_fixed raw bits into the input buffer (``to_fixed``), ``sync_to_device``;
- inference: the kernel call (start and wait);
- extract: ``sync_from_device``, raw bits -> float (``from_fixed``).

Both convert with the same C++ code (``fpyga::to_fixed``), so their outputs are bit-identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class host_run:
    """Per-sample phase times (ns) and raw output bits of one host over one sample set."""

    host: str
    inject_ns: np.ndarray
    inference_ns: np.ndarray
    extract_ns: np.ndarray
    raw: np.ndarray  #: (n, n_out) int64 raw output bits
    outputs: np.ndarray  #: (n, n_out) float outputs
    extra: dict = field(default_factory=dict)

    @property
    def total_ns(self) -> np.ndarray:
        return self.inject_ns + self.inference_ns + self.extract_ns


def find_xclbin(model: str, directory: str | os.PathLike | None = None) -> Path:
    """``nn_<model>.xclbin``: from ``directory`` or ``$FPYGA_XCLBIN_DIR`` when one holds it (a
    hardware build, say), else built from the committed model through the public path,
    ``fpyga.hls4ml.build`` (cached: only the first call compiles)."""
    name = f"nn_{model}.xclbin"
    for d in (directory, os.environ.get("FPYGA_XCLBIN_DIR")):
        if d and (Path(d) / name).is_file():
            return Path(d) / name
    if directory:
        raise FileNotFoundError(f"{name} not found in {directory}")
    return build_xclbin(model)


def build_xclbin(model: str, out_dir: str | os.PathLike | None = None, hls_model=None) -> Path:
    """Builds ``nn_<model>.xclbin`` from the committed model with ``fpyga.hls4ml.build`` into
    ``out_dir`` (default: the fpyga cache's ``demo/``). ``hls_model`` reuses a conversion."""
    import fpyga.hls4ml
    from fpyga.hls4ml.cache import default_root

    from .convert import convert
    from .model import models_dir

    out = Path(out_dir) if out_dir else default_root() / "demo"
    if hls_model is None:
        hls_model = convert(models_dir() / model, out / f"hls4ml_{model}")
    return fpyga.hls4ml.build(hls_model, out / f"nn_{model}.xclbin")


def find_cpp_host() -> Path:
    """The C++ host executable: ``$FPYGA_DEMO_HOST``, else the one the package carries
    (``bin/fpyga_demo_host``)."""
    from .._paths import demo_host

    return demo_host()


def network_sizes(xclbin: str | os.PathLike, exe: str | os.PathLike | None = None) -> tuple[int, int] | None:
    """(inputs, outputs) of the network in an ``nn_*.xclbin``, from the data symbols
    ``fpyga_nn_inputs``/``fpyga_nn_outputs`` of its kernel object, read by the C++ host in a
    subprocess (loading kernel objects into this process would leave them there). ValueError
    naming the file when it records none; None for a hardware xclbin (no CPU code to ask)."""
    exe = Path(exe) if exe else find_cpp_host()
    p = subprocess.run([str(exe), "--xclbin", str(xclbin), "--sizes"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise ValueError(f"{xclbin}: cannot read the network's sizes: {p.stderr.strip()}")
    j = json.loads(p.stdout)
    if j["inputs"] is None:
        return None
    return int(j["inputs"]), int(j["outputs"])


def run_python_host(xclbin: str | os.PathLike, x: np.ndarray, n_out: int, device=None, progress=None,
                    check_sizes: bool = True) -> host_run:
    """Run ``x`` (n x n_in float32, standardized) sample by sample through kernel ``nn``.

    ``device`` is a device spec (``"emu"``, ``"xrt:0"``...), an ``fpyga.Device``, or None for the
    default device. ``progress`` wraps the sample range (e.g. ``tqdm.tqdm``). With ``check_sizes``
    the sizes are checked against the xclbin's network first (a wrong buffer size would let the
    kernel read or write past it); turn it off for a Vitis-built hardware xclbin.
    """
    import fpyga as pynq
    from fpyga import _core

    if isinstance(device, str):
        device = pynq.Device.open(device)
    ol = pynq.Overlay(str(xclbin), device=device)
    nn = ol.nn_1
    in_type = _core.fixed_format("ap_fixed<16,6>")  # parsed once, not per call
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, n_in = x.shape
    if check_sizes:
        want = network_sizes(xclbin)
        if want is not None and want != (n_in, n_out):
            raise ValueError(f"{xclbin}: the network takes {want[0]} inputs and gives {want[1]} outputs, "
                             f"not {n_in} and {n_out}")
    dev = ol.device
    inp = pynq.allocate((n_in,), "u2", target=dev)
    out = pynq.allocate((n_out,), "u2", target=dev)
    t_inj = np.empty(n, np.int64)
    t_inf = np.empty(n, np.int64)
    t_ext = np.empty(n, np.int64)
    y = np.empty((n, n_out), np.float32)
    raw = np.empty((n, n_out), np.int64)
    to_fixed, from_fixed, clock = _core.to_fixed, _core.from_fixed, time.perf_counter_ns
    call = nn.call
    rng = range(n) if progress is None else progress(range(n))
    for i in rng:
        t0 = clock()
        to_fixed(x[i], in_type, inp)
        inp.sync_to_device()
        t1 = clock()
        call(inp, out)
        t2 = clock()
        out.sync_from_device()
        y[i] = from_fixed(out, in_type)
        t3 = clock()
        t_inj[i], t_inf[i], t_ext[i] = t1 - t0, t2 - t1, t3 - t2
        raw[i] = out.view(np.int16)
    device_name = dev.name
    inp.freebuffer()
    out.freebuffer()
    return host_run("python", t_inj, t_inf, t_ext, raw, y, {"device": device_name})


def run_cpp_host(xclbin: str | os.PathLike, x: np.ndarray, n_out: int, device: str | None = None,
                 exe: str | os.PathLike | None = None, timeout: float = 600) -> host_run:
    """Run the C++ host over ``x`` and parse its JSON; RuntimeError with its stderr on failure."""
    exe = Path(exe) if exe else find_cpp_host()
    x = np.ascontiguousarray(x, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="fpyga_demo_") as tmp:
        path = Path(tmp) / "x.f32"
        x.tofile(path)
        cmd = [str(exe), "--xclbin", str(xclbin), "--input", str(path), "--inputs", str(x.shape[1]),
               "--outputs", str(n_out)]
        if device:
            cmd += ["--device", device]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"C++ host {exe} failed ({p.returncode}): {p.stderr.strip()}")
    j = json.loads(p.stdout)
    raw = np.asarray(j["raw_outputs"], np.int64).reshape(-1, n_out)
    from fpyga import _core

    outputs = _core.from_fixed(raw, j["output_type"])
    extra = {k: v for k, v in j.items() if not isinstance(v, list)}
    return host_run("cpp", np.asarray(j["inject_ns"], np.int64), np.asarray(j["inference_ns"], np.int64),
                    np.asarray(j["extract_ns"], np.int64), raw, outputs, extra)
