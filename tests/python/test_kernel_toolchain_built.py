"""The xclbins the kernel toolchain built (kernels/): container, metadata and the kernels' results.

Found in $FPYGA_XCLBIN_DIR, else <repo>/build/kernels, else <prefix>/share/fpyga/xclbin. Each
xclbin is read with a small reader written from XRT's documented layout (independent of fpyga's
C++ reader), its sw_emu BITSTREAM is loaded with ctypes and its kernels are called directly; the
MLP's outputs are compared with a fixed-point model computed here in NumPy from the generated
weights' reference file.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").lower() == "true"
XCLBINS = ("vadd", "vmult", "vadd_2cu", "scale", "mlp")


def _xclbin_dir() -> Path | None:
    candidates = []
    if os.environ.get("FPYGA_XCLBIN_DIR"):
        candidates.append(Path(os.environ["FPYGA_XCLBIN_DIR"]))
    candidates += [ROOT / "build" / "kernels", Path(sys.prefix) / "share" / "fpyga" / "xclbin"]
    for d in candidates:
        if (d / "vadd.xclbin").exists():
            return d
    return None


XCLBIN_DIR = _xclbin_dir()


def _require(path: Path) -> Path:
    if not path.exists():
        reason = f"{path.name} not built (build the fpyga_kernels target; looked in {path.parent})"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def xclbin_path(name: str) -> Path:
    if XCLBIN_DIR is None:
        reason = ("no built xclbins found ($FPYGA_XCLBIN_DIR, build/kernels, "
                  f"{Path(sys.prefix) / 'share/fpyga/xclbin'}); build the fpyga_kernels target")
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return _require(XCLBIN_DIR / f"{name}.xclbin")


# --- a minimal axlf reader (XRT's xclbin.h layout) --------------------------------------------------
BITSTREAM, EMBEDDED_METADATA, MEM_TOPOLOGY, CONNECTIVITY, IP_LAYOUT, CLOCK_FREQ_TOPOLOGY = 0, 2, 6, 7, 8, 11
HEADER = 304  # axlf_header after magic, signature length, reserved, key block, unique id
SECTIONS = 456


class Xclbin:
    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        d = self.data
        assert d[:8] == b"xclbin2\0", f"{path}: bad magic"
        self.length = struct.unpack_from("<Q", d, HEADER)[0]
        self.mode = struct.unpack_from("<H", d, HEADER + 28)[0]
        self.platform = d[HEADER + 48:HEADER + 112].split(b"\0")[0].decode()
        count = struct.unpack_from("<I", d, HEADER + 144)[0]
        self.sections: dict[int, bytes] = {}
        for i in range(count):
            kind, = struct.unpack_from("<I", d, SECTIONS + 40 * i)
            offset, size = struct.unpack_from("<QQ", d, SECTIONS + 40 * i + 24)
            assert offset + size <= len(d), f"{path}: section {kind} out of the file"
            self.sections[kind] = d[offset:offset + size]

    def memories(self) -> list[dict]:
        s = self.sections[MEM_TOPOLOGY]
        count, = struct.unpack_from("<i", s, 0)
        out = []
        for i in range(count):
            mtype, used, size_kb, base = struct.unpack_from("<BB6xQQ", s, 8 + 40 * i)
            tag = s[8 + 40 * i + 24:8 + 40 * i + 40].split(b"\0")[0].decode()
            out.append({"type": mtype, "used": bool(used), "size": size_kb * 1024, "base": base, "tag": tag})
        return out

    def ips(self) -> list[dict]:
        s = self.sections[IP_LAYOUT]
        count, = struct.unpack_from("<i", s, 0)
        out = []
        for i in range(count):
            itype, props, base = struct.unpack_from("<IIQ", s, 8 + 80 * i)
            name = s[8 + 80 * i + 16:8 + 80 * i + 80].split(b"\0")[0].decode()
            out.append({"type": itype, "control": (props >> 8) & 0xFF, "base": base, "name": name})
        return out

    def connectivity(self) -> list[tuple[int, int, int]]:
        s = self.sections[CONNECTIVITY]
        count, = struct.unpack_from("<i", s, 0)
        return [struct.unpack_from("<iii", s, 4 + 12 * i) for i in range(count)]

    def kernels(self) -> dict[str, list[dict]]:
        xml = self.sections[EMBEDDED_METADATA].rstrip(b"\0").decode()
        root = ET.fromstring(xml)
        out = {}
        for k in root.iter("kernel"):
            out[k.get("name")] = sorted(
                ({"name": a.get("name"), "type": a.get("type"), "aq": int(a.get("addressQualifier")),
                  "id": int(a.get("id")), "offset": int(a.get("offset"), 16),
                  "size": int(a.get("size"), 16), "port": a.get("port")}
                 for a in k.iter("arg")), key=lambda a: a["id"])
        return out

    def bank_of(self, cu: str, arg_index: int) -> list[str]:
        ips = self.ips()
        mems = self.memories()
        idx = next(i for i, ip in enumerate(ips) if ip["name"].split(":")[-1] == cu)
        return [mems[m]["tag"] for a, ip, m in self.connectivity() if ip == idx and a == arg_index]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """name -> (Xclbin, ctypes.CDLL of its BITSTREAM)."""
    cache = {}

    def load(name):
        if name not in cache:
            x = Xclbin(xclbin_path(name))
            so = tmp_path_factory.mktemp(name) / f"{name}.so"
            so.write_bytes(x.sections[BITSTREAM])
            cache[name] = (x, ctypes.CDLL(str(so)))
        return cache[name]

    return load


def ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


# --- container and metadata ------------------------------------------------------------------------
EXPECTED_KERNELS = {
    "vadd": {"vadd"}, "vmult": {"vmult"}, "vadd_2cu": {"vadd"}, "scale": {"scale"},
    "mlp": {"mlp", "mlp_batch"},
}


@pytest.mark.parametrize("name", XCLBINS)
def test_sw_emu_container_exports_every_kernel(name, loaded):
    x, lib = loaded(name)
    assert x.length == len(x.data)
    assert x.mode == 5  # SW_EMU
    assert x.platform == "xilinx_aws-vu9p-f1_shell-v04261818_201920_2"
    bits = x.sections[BITSTREAM]
    assert bits[:4] == b"\x7fELF"
    assert set(x.kernels()) == EXPECTED_KERNELS[name]
    for k in EXPECTED_KERNELS[name]:
        assert hasattr(lib, k), f"{name}.xclbin's .so does not export {k}"
    # Kernel CUs only, named kernel:instance, on F1's CU address map.
    ips = x.ips()
    assert all(ip["type"] == 1 and ip["control"] == 0 for ip in ips)
    assert [ip["base"] for ip in ips] == [0x1800000 + 0x10000 * i for i in range(len(ips))]


def test_kernel_so_needs_only_libc_and_libstdcxx(loaded, tmp_path):
    readelf = shutil.which("readelf")
    if readelf is None:
        if CI:
            pytest.fail("readelf (binutils) not installed")
        pytest.skip("readelf (binutils) not installed")
    for name in XCLBINS:
        x, _ = loaded(name)
        so = tmp_path / f"{name}.so"
        so.write_bytes(x.sections[BITSTREAM])
        dyn = subprocess.run([readelf, "-d", str(so)], capture_output=True, text=True, check=True).stdout
        needed = {line.split("[")[1].split("]")[0] for line in dyn.splitlines() if "(NEEDED)" in line}
        # `make sanitize` builds instrumented kernels (FPYGA_SANITIZE_KERNELS): they need the
        # sanitizer runtimes too, and nothing else.
        if os.environ.get("FPYGA_SANITIZED_KERNELS"):
            needed = {n for n in needed if not re.fullmatch(r"lib(asan|ubsan|tsan)\.so\.\d+", n)}
        assert needed <= {"libc.so.6", "libstdc++.so.6", "libm.so.6", "libgcc_s.so.1"}, (name, needed)


VADD_ARGS = [
    {"name": "in1", "type": "unsigned int const *", "aq": 1, "id": 0, "offset": 0x10, "size": 8, "port": "M_AXI_GMEM"},
    {"name": "in2", "type": "unsigned int const *", "aq": 1, "id": 1, "offset": 0x1C, "size": 8, "port": "M_AXI_GMEM"},
    {"name": "out_r", "type": "unsigned int*", "aq": 1, "id": 2, "offset": 0x28, "size": 8, "port": "M_AXI_GMEM"},
    {"name": "size", "type": "int", "aq": 0, "id": 3, "offset": 0x34, "size": 4, "port": "S_AXI_CONTROL"},
]


def test_vadd_metadata(loaded):
    x, _ = loaded("vadd")
    assert x.kernels()["vadd"] == VADD_ARGS
    assert [ip["name"] for ip in x.ips()] == ["vadd:vadd_1"]
    assert [m["tag"] for m in x.memories()] == ["bank0", "bank1", "bank2", "bank3"]
    assert [m["used"] for m in x.memories()] == [True, False, False, False]
    assert all(m["type"] == 1 and m["size"] == 16 << 30 for m in x.memories())
    for arg in range(3):
        assert x.bank_of("vadd_1", arg) == ["bank0"]
    assert x.bank_of("vadd_1", 3) == []


def test_vmult_metadata(loaded):
    x, _ = loaded("vmult")
    assert x.kernels()["vmult"] == VADD_ARGS


def test_vadd_2cu_connectivity(loaded):
    x, _ = loaded("vadd_2cu")
    assert x.kernels()["vadd"] == VADD_ARGS
    assert [ip["name"] for ip in x.ips()] == ["vadd:vadd_1", "vadd:vadd_2"]
    for arg in range(3):
        assert x.bank_of("vadd_1", arg) == ["bank0"]
        assert x.bank_of("vadd_2", arg) == ["bank1"]
    assert [m["used"] for m in x.memories()] == [True, True, False, False]


def test_scale_metadata(loaded):
    x, _ = loaded("scale")
    args = x.kernels()["scale"]
    assert [(a["name"], a["type"], a["aq"], a["offset"]) for a in args] == [
        ("in", "int const *", 1, 0x10), ("out", "int*", 1, 0x1C), ("n", "int", 0, 0x28),
        ("factor", "ap_fixed<16, 6>", 0, 0x30)]


def test_mlp_metadata(loaded):
    x, _ = loaded("mlp")
    k = x.kernels()
    assert [(a["name"], a["type"], a["aq"], a["offset"]) for a in k["mlp"]] == [
        ("in", "ap_fixed<16, 6> const *", 1, 0x10), ("out", "ap_fixed<16, 6>*", 1, 0x1C)]
    assert [(a["name"], a["type"], a["aq"], a["offset"]) for a in k["mlp_batch"]] == [
        ("in", "ap_fixed<16, 6> const *", 1, 0x10), ("out", "ap_fixed<16, 6>*", 1, 0x1C),
        ("n", "int", 0, 0x28)]
    assert [ip["name"] for ip in x.ips()] == ["mlp:mlp_1", "mlp_batch:mlp_batch_1"]


def _fpyga_cli() -> str | None:
    candidates = [os.environ.get("FPYGA_CLI")]
    if XCLBIN_DIR is not None:
        candidates.append(str(XCLBIN_DIR.parent / "cpp" / "tools" / "fpyga"))
    candidates += [str(Path(sys.prefix) / "bin" / "fpyga"), shutil.which("fpyga")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.mark.parametrize("name", XCLBINS)
def test_fpyga_cli_reads_the_same_metadata(name, loaded):
    cli = _fpyga_cli()
    if cli is None:
        if CI:
            pytest.fail("fpyga CLI not found ($FPYGA_CLI, <build>/cpp/tools/fpyga, <prefix>/bin/fpyga)")
        pytest.skip("fpyga CLI not found ($FPYGA_CLI, <build>/cpp/tools/fpyga, <prefix>/bin/fpyga)")
    x, _ = loaded(name)
    out = subprocess.run([cli, "xclbin", "info", "--json", str(x.path)], capture_output=True,
                         text=True, check=True).stdout
    info = json.loads(out)
    mine = x.kernels()
    theirs = {k["name"]: k for k in info["kernels"]}
    assert set(theirs) == set(mine)
    for kname, args in mine.items():
        assert [(a["name"], a["type"], a["offset"]) for a in theirs[kname]["args"]] == \
               [(a["name"], a["type"], a["offset"]) for a in args]

    # In the build tree the description the toolchain packed sits beside the .so: what the CLI
    # reads back must be exactly that.
    desc_path = x.path.parent / name / f"{name}.json"
    if not desc_path.exists():
        return
    desc = json.loads(desc_path.read_text())
    assert info["mode"] == desc["mode"] and info["platform"] == desc["platform"]
    keys = ("tag", "type", "used", "base_address", "size_bytes")
    assert [{k: m[k] for k in keys} for m in info["memories"]] == [{k: m[k] for k in keys} for m in desc["memories"]]
    for k in desc["kernels"]:
        t = theirs[k["name"]]
        keys = ("name", "type", "kind", "offset", "size", "host_size", "port")
        assert [{f: a[f] for f in keys} for a in t["args"]] == [{f: a[f] for f in keys} for a in k["args"]]
        assert [(i["name"], i["base_address"], i["control"]) for i in t["instances"]] == \
               [(i["name"], i["base_address"], i["control"]) for i in k["instances"]]
        for a in t["args"]:
            banks = sorted({i["connections"][a["name"]] for i in k["instances"] if a["name"] in i["connections"]})
            assert sorted(a.get("memories") or []) == banks, (k["name"], a["name"])


# --- the kernels compute what they should -------------------------------------------------------------
@pytest.mark.parametrize("name, op", [("vadd", np.add), ("vmult", np.multiply), ("vadd_2cu", np.add)])
def test_vector_kernels(name, op, loaded):
    _, lib = loaded(name)
    kernel = getattr(lib, name.split("_")[0])
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**32, 1000, dtype=np.uint32)
    b = rng.integers(0, 2**32, 1000, dtype=np.uint32)
    out = np.zeros(1001, np.uint32)
    kernel(ptr(a), ptr(b), ptr(out), ctypes.c_int(1000))
    with np.errstate(over="ignore"):
        assert np.array_equal(out[:1000], op(a, b))
    assert out[1000] == 0  # nothing written past size


def test_scale_takes_ap_fixed_by_value(loaded):
    """ap_fixed<16,6> has a user-provided copy constructor: the ABI passes it by address."""
    _, lib = loaded("scale")
    x = np.array([1, -1, 7, -7, 100000, -3, 2**30, -(2**31), 0, 123456789], np.int32)
    out = np.zeros_like(x)
    for raw in (-1535, 1024, 512, -32768, 32767, 1, 0):
        factor = ctypes.c_int16(raw)
        lib.scale(ptr(x), ptr(out), ctypes.c_int(len(x)), ctypes.byref(factor))
        exact = (x.astype(np.int64) * raw) >> 10  # floor(in * raw / 2^10)
        wrapped = ((exact + 2**31) % 2**32 - 2**31).astype(np.int32)
        assert np.array_equal(out, wrapped), raw


def _wrap(v: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return (v + half) % (1 << bits) - half


def mlp_reference(x_raw: np.ndarray, ref: dict) -> np.ndarray:
    """ap_fixed<16,6> MLP on raw int16 values, computed exactly in int64.

    Products of two ap_fixed<16,6> are exact in the ap_fixed<32,12> accumulator (20 fractional
    bits), biases enter shifted by 10, the sum wraps at 32 bits (AP_WRAP), and the cast back to
    ap_fixed<16,6> floors (AP_TRN: arithmetic shift) and wraps at 16 bits; ReLU is max(x, 0).
    """
    assert ref["type"]["frac_bits"] == 10 and ref["accum_type"]["frac_bits"] == 20
    a = x_raw.astype(np.int64)
    for layer in ref["layers"]:
        w = np.array(layer["weights_raw"], np.int64).reshape(layer["n_in"], layer["n_out"])
        b = np.array(layer["biases_raw"], np.int64)
        acc = _wrap(a @ w + (b << 10), 32)
        a = _wrap(acc >> 10, 16)
        if layer["activation"] == "relu":
            a = np.maximum(a, 0)
    return a


@pytest.fixture(scope="module")
def mlp_ref():
    x = xclbin_path("mlp")
    ref = json.loads(_require(x.parent / "mlp_weights.json").read_text())
    shapes = [(l["n_in"], l["n_out"]) for l in ref["layers"]]
    assert shapes == [(27, 35), (35, 20), (20, 25), (25, 40), (40, 20), (20, 15), (15, 1)]
    assert [l["activation"] for l in ref["layers"]] == ["relu"] * 6 + ["linear"]
    return ref


def test_mlp_matches_fixed_point_reference(loaded, mlp_ref):
    _, lib = loaded("mlp")
    rng = np.random.default_rng(2022)
    # Typical inputs (|x| < 4), then any bit pattern (exercises wrap-around inside the network).
    samples = np.concatenate([
        np.round(rng.uniform(-4, 4, (300, 27)) * 1024).astype(np.int16),
        rng.integers(-32768, 32768, (100, 27), dtype=np.int16),
    ])
    expected = mlp_reference(samples, mlp_ref)[:, 0]
    assert len(np.unique(expected)) > 100  # the network is not degenerate
    got = np.zeros(len(samples), np.int16)
    for i, s in enumerate(samples):
        s = np.ascontiguousarray(s)
        out = np.zeros(1, np.int16)
        lib.mlp(ptr(s), ptr(out))
        got[i] = out[0]
    assert np.array_equal(got, expected)

    batch = np.zeros(len(samples) + 1, np.int16)
    batch[-1] = 0x5A5A
    lib.mlp_batch(ptr(samples), ptr(batch), ctypes.c_int(len(samples)))
    assert np.array_equal(batch[:-1], expected)
    assert batch[-1] == 0x5A5A  # nothing written past n outputs


def test_mlp_weights_are_deterministic(mlp_ref):
    """The reference next to the xclbin is what the generator gives for its seed."""
    sys.path.insert(0, str(ROOT / "kernels" / "mlp"))
    import gen_weights

    assert gen_weights.generate(mlp_ref["seed"]) == mlp_ref["layers"]
    assert gen_weights.generate(mlp_ref["seed"] + 1) != mlp_ref["layers"]
