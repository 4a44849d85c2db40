"""The OpenCL backend through the PYNQ-shaped Python API on PoCL.

The overlays are the OpenCL C sources in kernels/opencl (vadd.cl, mlp.cl): results must come back
to NumPy through sync_from_device. The MLP is checked against a fixed-point model computed here
from the seeded weights' reference file (mlp_weights.json, built with the kernels).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import fpyga

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"
CL_DIR = ROOT / "kernels" / "opencl"


def _missing(reason: str):
    if CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def dev():
    for d in fpyga.Device.devices:
        if d.backend == "opencl":
            return d
    _missing("no OpenCL device (install pocl-opencl-icd)")


def _weights_file() -> Path:
    candidates = []
    if os.environ.get("FPYGA_XCLBIN_DIR"):
        candidates.append(Path(os.environ["FPYGA_XCLBIN_DIR"]))
    candidates += [ROOT / "build" / "kernels", Path(sys.prefix) / "share" / "fpyga" / "xclbin"]
    for d in candidates:
        if (d / "mlp_weights.json").exists():
            return d / "mlp_weights.json"
    _missing("mlp_weights.json not built (build the mlp_xclbin target)")


def test_opencl_devices_are_listed_but_not_the_default(dev):
    devices = fpyga.Device.devices
    # PoCL builds OpenCL C only: it comes after every device that loads xclbins (emu among them).
    assert not dev._core.loads_xclbin
    assert devices.index(fpyga.Device.open("emu:0")) < devices.index(dev)
    if "xrt" not in [d.backend for d in devices] and not os.environ.get("FPYGA_DEVICE"):
        assert fpyga.Device.open("").backend == "emu"  # the default-device rule itself


def test_vadd_cl(dev):
    ol = fpyga.Overlay(str(CL_DIR / "vadd.cl"), device=dev)
    n = 1000
    a = fpyga.allocate(n, "u4", target=dev)
    b = fpyga.allocate(n, "u4", target=dev)
    c = fpyga.allocate(n, "u4", target=dev)
    a[:] = np.arange(n, dtype=np.uint32) * 7
    b[:] = 0xFFFFFF00
    a.sync_to_device()
    b.sync_to_device()
    ol.vadd.call(a, b, c, n)
    c.sync_from_device()
    np.testing.assert_array_equal(c, (a.astype(np.uint64) + b) % 2**32)
    # start/wait through the instance name, with a different size
    c[:] = 0
    c.sync_to_device()
    ol.vadd_1.start(a, b, c, 10).wait()
    c.sync_from_device()
    np.testing.assert_array_equal(c[:10], (a[:10].astype(np.uint64) + b[:10]) % 2**32)
    assert not c[10:].any()


def _mlp_model(layers, x):
    a = x.astype(np.int64)
    for layer in layers:
        w = np.array(layer["weights_raw"], dtype=np.int64).reshape(layer["n_in"], layer["n_out"])
        acc = (a @ w + (np.array(layer["biases_raw"], dtype=np.int64) << 10)) & 0xFFFFFFFF
        acc = np.where(acc >= 2**31, acc - 2**32, acc) >> 10  # 32-bit wrap, floor
        v = ((acc & 0xFFFF) ^ 0x8000) - 0x8000                 # 16-bit wrap
        if layer["activation"] == "relu":
            v = np.maximum(v, 0)
        a = v
    return a.astype(np.int16)


def test_mlp_cl(dev):
    layers = json.loads(_weights_file().read_text())["layers"]
    params = np.concatenate(
        [np.concatenate([l["weights_raw"], l["biases_raw"]]) for l in layers]).astype(np.int16)
    ol = fpyga.Overlay(str(CL_DIR / "mlp.cl"), device=dev)
    samples = 32
    rng = np.random.default_rng(11)
    x = fpyga.allocate((samples, 27), "i2", target=dev)
    y = fpyga.allocate(samples, "i2", target=dev)
    p = fpyga.allocate(params.size, "i2", target=dev)
    x[:] = rng.integers(-4 << 10, 4 << 10, size=(samples, 27), dtype=np.int16)
    p[:] = params
    x.sync_to_device()
    p.sync_to_device()
    ol.mlp_batch.call(x, y, p, samples)
    y.sync_from_device()
    expect = _mlp_model(layers, np.asarray(x)).reshape(samples)
    assert expect.any(), "an all-zero reference checks nothing"
    np.testing.assert_array_equal(np.asarray(y), expect)


def test_opencl_errors(dev, tmp_path):
    bad = tmp_path / "bad.cl"
    bad.write_text("__kernel void k(__global int* x) { x[0] = nope; }\n")
    with pytest.raises(RuntimeError, match="clBuildProgram.*CL_BUILD_PROGRAM_FAILURE"):
        fpyga.Overlay(str(bad), device=dev)
    ol = fpyga.Overlay(str(CL_DIR / "vadd.cl"), device=dev)
    a = fpyga.allocate(4, "u4", target=dev)
    with pytest.raises(TypeError):
        ol.vadd.call(a, a, a)
    with pytest.raises(NotImplementedError):
        ol.vadd.read(0x10)
    a[:] = 5
    a.sync_to_device()
    ol.vadd.call(a, a, a, 4)
    a.sync_from_device()
    assert list(a) == [10, 10, 10, 10]
