"""Stream metadata (issue 12): what the kernel toolchain derives from hls::stream / axis arguments,
``sc=`` connectivity and ``ap_ctrl_none``, and what the xclbin it writes says, checked against how
Vitis describes streams (FACTS.md "Streams in an xclbin": addressQualifier 4, port modes
read_only / write_only, MEM_TOPOLOGY STREAMING_CONNECTION entries dc_N, CONNECTIVITY for both
ends, IP_LAYOUT ap_ctrl_none); bad designs refused at build time naming kernels and ports; and
the Python side: ``kernel.streams``, ``ol.dc_0`` (and the ``ol.dc0`` alias), streams in
``ip_dict``, no host value for a stream argument (TypeError), no buffers in a stream. The
overlay scenarios run on XRT's noop shim (host side only: emu's stream runtime has its own tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fpyga
from fpyga import _core, toolchain
from fpyga.toolchain import kernel_meta as km
from fpyga.xclbin import ip_dict, mem_dict

from conftest import missing_input

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "streams"
CHAIN = DATA / "meta_chain.cpp"
CHAIN_SC = ["sc=meta_load_1.out:meta_inc_1.in:4", "sc=meta_inc_1.out:meta_store_1.in"]


@pytest.fixture(scope="module")
def hls_include():
    try:
        return str(toolchain.hls_include_dir())
    except toolchain.ToolchainError as e:
        missing_input(str(e))


def describe(hls_include, kernels, connectivity=(), sources=(CHAIN,)):
    return km.describe([str(s) for s in sources], list(kernels), list(connectivity),
                       include_dirs=[hls_include, str(toolchain.fpyga_include_dir())])


@pytest.fixture(scope="module")
def chain_xclbin(tmp_path_factory, hls_include):
    work = tmp_path_factory.mktemp("chain")
    return toolchain.build_xclbin([CHAIN], ["meta_load", "meta_inc", "meta_store"], work / "chain.xclbin",
                                  work_dir=work / "build", connectivity=CHAIN_SC)


def _args(desc, kernel):
    k = next(k for k in desc["kernels"] if k["name"] == kernel)
    return {a["name"]: a for a in k["args"]}, k


# --- the toolchain's derivation ------------------------------------------------------------------
def test_directions_come_from_reads_and_writes_through_helpers_and_templates(hls_include):
    d = describe(hls_include, ["meta_load", "meta_inc", "meta_store"], CHAIN_SC)
    load, _ = _args(d, "meta_load")
    inc, _ = _args(d, "meta_inc")
    store, _ = _args(d, "meta_store")
    assert load["out"]["kind"] == "stream" and load["out"]["direction"] == "output"  # via load()
    assert inc["in"]["direction"] == "input" and inc["out"]["direction"] == "output"  # via a template
    assert store["in"]["direction"] == "input"  # in.read()
    assert "direction" not in load["in"] and "direction" not in load["n"]
    # Streams take no register: the scalar after a stream sits right after the pointer.
    assert load["in"]["offset"] == 0x10 and load["n"]["offset"] == 0x1C and load["out"]["offset"] == 0


def test_sc_lines_become_streaming_connection_memories(hls_include):
    d = describe(hls_include, ["meta_load", "meta_inc", "meta_store"], CHAIN_SC)
    mems = {m["tag"]: m for m in d["memories"]}
    # v++ names kernel-to-kernel streams dc_0, dc_1, ... in MEM_TOPOLOGY.
    assert mems["dc_0"]["type"] == "streaming_connection" and mems["dc_0"]["used"]
    assert mems["dc_1"]["type"] == "streaming_connection"
    _, load = _args(d, "meta_load")
    _, inc = _args(d, "meta_inc")
    _, store = _args(d, "meta_store")
    assert load["instances"][0]["connections"]["out"] == "dc_0"
    assert inc["instances"][0]["connections"] == {"in": "dc_0", "out": "dc_1"}
    assert store["instances"][0]["connections"]["in"] == "dc_1"
    # The free-running kernel has no control registers.
    assert inc["instances"][0]["control"] == "ap_ctrl_none"
    assert inc["instances"][0]["base_address"] == 0xFFFFFFFFFFFFFFFF
    # What emu needs and Vitis has no place for.
    s = d["streams"]
    assert s["schema"] == "fpyga.streams/1"
    assert s["connections"] == [
        {"tag": "dc_0", "source": "meta_load_1.out", "sink": "meta_inc_1.in", "depth": 4},
        {"tag": "dc_1", "source": "meta_inc_1.out", "sink": "meta_store_1.in", "depth": km.DEFAULT_STREAM_DEPTH},
    ]
    out = next(a for a in s["args"] if a["kernel"] == "meta_load" and a["arg"] == "out")
    assert out == {"kernel": "meta_load", "arg": "out", "direction": "output", "type": "ap_axiu<32, 0, 0, 0>",
                   "data_bits": 32, "width_bytes": 4, "axis": True, "signed": False, "user_bits": 0,
                   "id_bits": 0, "dest_bits": 0}


@pytest.mark.parametrize("line, message", [
    ("sc=meta_load_1.out:meta_wide_1.in", "differ in width"),
    ("sc=meta_load_1.out:meta_inc_1.in:0", "depth 0"),
    ("sc=meta_load_1.n:meta_inc_1.in", "is a scalar, only hls::stream"),
    ("sc=meta_inc_1.in:meta_store_1.in", "meta_inc_1.in is an input of kernel 'meta_inc', but the first"),
    ("sc=meta_load_1.out:meta_load_1.out", "meta_load_1.out is an output of kernel 'meta_load', but the second"),
    ("sc=meta_load_1.out:nowhere_1.in", "unknown compute unit 'nowhere_1'"),
    ("sc=meta_load_1.out", "expected sc=<cu>.<output>:<cu>.<input>[:<depth>]"),
])
def test_bad_stream_connections_name_the_ports(hls_include, line, message):
    with pytest.raises(km.KernelMetaError) as e:
        describe(hls_include, ["meta_load", "meta_inc", "meta_store", "meta_wide"],
                 [line, "sc=meta_inc_1.out:meta_store_1.in"])
    assert message in str(e.value), str(e.value)


def test_sc_lines_of_a_vpp_config_file(tmp_path, hls_include):
    cfg = tmp_path / "link.cfg"
    cfg.write_text("[connectivity]\n" + "\n".join(["# the chain"] + CHAIN_SC) + "\n[vivado]\nprop=x\n")
    lines = km.read_config_connectivity(str(cfg))
    assert lines == CHAIN_SC
    d = describe(hls_include, ["meta_load", "meta_inc", "meta_store"], lines)
    assert [c["tag"] for c in d["streams"]["connections"]] == ["dc_0", "dc_1"]


def test_a_second_connection_of_one_port_is_refused(hls_include):
    with pytest.raises(km.KernelMetaError, match=r"meta_load_1.out is already connected \(to .dc_0.\)"):
        describe(hls_include, ["meta_load", "meta_inc", "meta_store"],
                 CHAIN_SC + ["sc=meta_load_1.out:meta_inc_1.in"])


def test_an_unconnected_stream_is_refused_naming_it(hls_include):
    with pytest.raises(km.KernelMetaError) as e:
        describe(hls_include, ["meta_load", "meta_inc", "meta_store"], CHAIN_SC[:1])
    assert "stream argument 'out' (output) of compute unit 'meta_inc_1'" in str(e.value)
    assert "sc=meta_inc_1.out:<cu>.<input>" in str(e.value)


@pytest.mark.parametrize("kernel, message", [
    ("meta_both", "'s' is both read and written"),
    ("meta_unused", "'s' is neither read nor written"),
    ("meta_free_scalar", "free-running (ap_ctrl_none) but takes host argument(s) 'n'"),
])
def test_kernels_a_stream_design_cannot_have(hls_include, kernel, message):
    with pytest.raises(km.KernelMetaError) as e:
        describe(hls_include, [kernel])
    assert f"kernel '{kernel}'" in str(e.value) and message in str(e.value), str(e.value)


def test_a_plain_c_kernel_is_compiled_as_c(tmp_path, hls_include):
    out = toolchain.build_xclbin([DATA / "plain_c.c"], ["c_scale"], tmp_path / "c.xclbin", work_dir=tmp_path / "w")
    x = _core.xclbin.read(str(out))
    k = x.kernels[0]
    assert k.name == "c_scale"
    assert [(a.name, a.type, a.kind) for a in k.args] == [
        ("in", "int const *", "global"), ("out", "int*", "global"), ("factor", "int", "scalar"),
        ("n", "int", "scalar")]
    log = (tmp_path / "w" / "build.log").read_text()
    assert "-std=gnu11" in log and "plain_c.c" in log  # compiled by the C compiler, as C


# --- the xclbin, as Vitis and PYNQ describe streams -----------------------------------------------
def test_the_xclbin_describes_streams_as_vitis_does(chain_xclbin):
    x = _core.xclbin.read(str(chain_xclbin))
    xml = x.embedded_metadata
    assert 'addressQualifier="4"' in xml
    inc = next(k for k in x.kernels if k.name == "meta_inc")
    assert {p.name: p.mode for p in inc.ports} == {"in": "read_only", "out": "write_only"}  # no control port
    assert 'hwControlProtocol="ap_ctrl_none"' in xml
    mems = mem_dict(x)
    assert mems["dc_0"]["raw_type"] == 9 and mems["dc_0"]["streaming"] and mems["dc_0"]["used"]
    ips = ip_dict(x)
    assert ips["meta_inc_1"]["hw_control_protocol"] == "ap_ctrl_none"
    assert ips["meta_inc_1"]["registers"] == {}
    # PYNQ 3.0.1's stream entries: id, type, direction, stream_id (the memory tag).
    assert ips["meta_load_1"]["streams"]["out"] == {
        "id": 1, "type": "stream<ap_axiu<32, 0, 0, 0>>&", "direction": "output", "stream_id": "dc_0"}
    assert ips["meta_inc_1"]["streams"]["in"]["stream_id"] == "dc_0"
    assert ips["meta_inc_1"]["streams"]["out"]["direction"] == "output"
    assert ips["meta_store_1"]["streams"]["in"] == {
        "id": 0, "type": "stream<ap_axiu<32, 0, 0, 0>>&", "direction": "input", "stream_id": "dc_1"}
    # CONNECTIVITY maps both ends to the same entry.
    load_ip = next(ip for ip in x.ips if ip.name == "meta_load:meta_load_1")
    inc_ip = next(ip for ip in x.ips if ip.name == "meta_inc:meta_inc_1")
    assert x.memories_of(load_ip.index, 1) == x.memories_of(inc_ip.index, 0) == [mems["dc_0"]["idx"]]
    assert inc_ip.control == "ap_ctrl_none" and inc_ip.base_address == 0xFFFFFFFFFFFFFFFF
    # The core's derivation, as C++ hosts and emu see it.
    layout = x.stream_layout()
    assert layout["connections"] == [
        {"tag": "dc_0", "memory_index": mems["dc_0"]["idx"], "source": "meta_load_1.out",
         "sink": "meta_inc_1.in", "depth": 4},
        {"tag": "dc_1", "memory_index": mems["dc_1"]["idx"], "source": "meta_inc_1.out",
         "sink": "meta_store_1.in", "depth": 16}]
    inc_in = next(p for p in layout["ports"] if p["instance"] == "meta_inc_1" and p["arg"] == "in")
    assert (inc_in["direction"], inc_in["data_bits"], inc_in["axis"], inc_in["connection"]) == ("input", 32, True, 0)


# --- Python on XRT's noop shim --------------------------------------------------------------------
def run_noop(code: str) -> str:
    env = dict(os.environ)
    env.update(XCL_EMULATION_MODE="noop", FPYGA_XRT_NOOP_DEVICES="1")
    env.pop("XILINX_XRT", None)
    env.pop("FPYGA_DEVICE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(fpyga.__file__).resolve().parents[1])] + sys.path)
    proc = subprocess.run([sys.executable, "-c", "import numpy as np\nimport fpyga\n" + textwrap.dedent(code)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"scenario failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_overlay_streams_memory_names_and_host_arguments(chain_xclbin):
    out = run_noop(f"""
        ol = fpyga.Overlay({str(chain_xclbin)!r})
        # Stream memories keep the tag's spelling, with the stripped form as an alias.
        s = ol.dc_0
        assert ol.dc0 is s, (ol.dc0, s)
        assert type(s).__name__ == "Stream"
        assert (s.source, s.sink) == ("meta_load_1.out", "meta_inc_1.in"), (s.source, s.sink)
        assert (s.source_ip, s.source_port, s.sink_ip, s.sink_port) == ("meta_load_1", "out", "meta_inc_1", "in")
        assert ol.dc_1.sink == "meta_store_1.in"
        assert (s.depth, ol.dc_1.depth) == (4, 16), (s.depth, ol.dc_1.depth)  # sc=...:4, and the default
        assert repr(s) == "XrtStream(source=meta_load_1.out, sink=meta_inc_1.in, depth 4)", repr(s)
        assert "dc_0" not in ol.memories and "bank0" in ol.memories
        # kernel.streams (kernel and CU attributes alike).
        assert ol.meta_load.streams == {{"out": s}}
        assert ol.meta_store_1.streams["in"] is ol.dc_1
        assert set(ol.meta_inc_1.streams) == {{"in", "out"}}
        # Streams are not host arguments: the signature, args and calls skip them.
        assert list(ol.meta_load.signature.parameters) == ["in_", "n"]
        assert "out" not in ol.meta_load.args
        a = fpyga.allocate(16, np.int32, target=ol.bank0)
        ol.meta_load.start(a, 16).wait()
        ol.meta_load.call(a, n=16)
        for call in (lambda: ol.meta_load.call(a, a, 16), lambda: ol.meta_load.call(a, 16, out=a)):
            try:
                call()
                raise AssertionError("a stream argument was passed")
            except TypeError as e:
                assert "argument 'out' is connected to a stream" in str(e), e
        # Nothing is allocated in a stream, and a free-running kernel is not started by the host.
        for bad in (lambda: s.allocate(16), lambda: ol.meta_inc_1.start(), lambda: ol.meta_inc.call()):
            try:
                bad()
                raise AssertionError("accepted")
            except TypeError as e:
                print(e)
        print("ok")
    """)
    assert out.strip().endswith("ok"), out
    assert "free-running kernel (ap_ctrl_none)" in out
    assert "nothing can be allocated in it" in out


def test_on_emu_the_chain_runs_from_its_host_arguments(chain_xclbin):
    # The host side as a user writes it, on emu (which runs the CUs concurrently): the load and
    # store kernels start with their host arguments only; the free-running increment kernel in
    # between runs by itself; a depth of 4 makes 100 values wait on the FIFO.
    dev = fpyga.Device.open("emu")
    ol = fpyga.Overlay(str(chain_xclbin), device=dev)
    try:
        assert ol.dc_0.depth == 4 and ol.meta_load.streams["out"] is ol.dc_0
        assert type(ol.meta_inc_1).__name__ == "FreeRunningIP"
        n = 100
        src = fpyga.allocate(n, "i4", target=ol.bank0)
        dst = fpyga.allocate(n, "i4", target=dev)  # the one bank: streams are no memories
        with pytest.raises(TypeError, match="got Stream"):
            fpyga.allocate(n, "i4", target=ol.dc_0)
        src[:] = range(n)
        src.sync_to_device()
        store = ol.meta_store.start(dst, n)
        ol.meta_load.start(src, n).wait()
        store.wait()
        dst.sync_from_device()
        assert list(dst) == [i + 1 for i in range(n)]
        with pytest.raises(TypeError, match="'out' is connected to a stream"):
            ol.meta_load.call(src, src, n)
    finally:
        ol.free()
