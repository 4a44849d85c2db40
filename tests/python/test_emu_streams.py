"""Kernels joined by AXI4-Streams on emu, from Python (issue 12): the host starts the kernels of
a load -> compute -> store chain with their host arguments only, a free-running kernel runs
between two host-started ones from load to unload, a deadlock raises RuntimeError naming the
stuck streams and the device runs the next kernels, and fpyga.toolchain.build_xclbin builds
stream kernels at run time as fpyga_add_xclbin does.
"""

from pathlib import Path

import numpy as np
import pytest

import fpyga as pynq
from conftest import missing_input

ROOT = Path(__file__).resolve().parents[2]


def _xclbin(xclbin_dir, name):
    path = xclbin_dir / f"{name}.xclbin"
    if not path.is_file():
        missing_input(f"{path} was not built (kernels/CMakeLists.txt builds it)")
    return path


def _int_buffer(ol, values):
    buf = pynq.allocate(len(values), "i4", target=ol.bank0)
    buf[:] = values
    buf.sync_to_device()
    return buf


def test_chain_runs_with_host_arguments_only(xclbin_dir, emu):
    ol = pynq.Overlay(_xclbin(xclbin_dir, "stream_chain"), device=emu)
    n = 4096
    x = np.arange(n, dtype="i4") - 2000
    a = _int_buffer(ol, x)
    out = pynq.allocate(n, "i4", target=ol.bank0)
    store = ol.chain_store_1.start(out, n)
    compute = ol.chain_compute_1.start(n, 5, -3)
    ol.chain_load_1.call(a, n)
    compute.wait()
    store.wait()
    out.sync_from_device()
    np.testing.assert_array_equal(out, x * 5 - 3)
    # The memory-mapped kernel computing the same gives the same.
    ref = pynq.allocate(n, "i4", target=ol.bank0)
    ol.chain_mm_1.call(a, ref, n, 5, -3)
    ref.sync_from_device()
    np.testing.assert_array_equal(out, ref)
    with pytest.raises(TypeError, match="stream"):
        ol.chain_load_1.call(a, a, n)
    ol.free()


def test_free_running_kernel_between_host_started_ones(xclbin_dir, emu):
    path = _xclbin(xclbin_dir, "stream_free_running")
    for load in range(2):
        ol = pynq.Overlay(path, device=emu)
        n = 100
        x = np.arange(n, dtype="i4") * (load + 2)
        a = _int_buffer(ol, x)
        out = pynq.allocate(n, "i4", target=ol.bank0)
        sink = ol.fr_sink_1.start(out, n)
        ol.fr_source_1.call(a, n)
        sink.wait()
        out.sync_from_device()
        np.testing.assert_array_equal(out, x + 1)
        # fr_increment now waits on its empty input; freeing the overlay ends it.
        ol.free()


def test_deadlock_raises_naming_the_streams_and_the_device_goes_on(xclbin_dir, emu):
    ol = pynq.Overlay(_xclbin(xclbin_dir, "stream_handshake_d1"), device=emu)
    n = 4
    got_ping = pynq.allocate(n, "i4", target=ol.bank0)
    got_pong = pynq.allocate(n, "i4", target=ol.bank0)
    # Both kernels write all n elements first into FIFOs of depth 1: neither ever reads.
    r1 = ol.hs_ping_1.start(got_ping, n, 1)
    r2 = ol.hs_pong_1.start(got_pong, n, 1)
    for r in (r1, r2):
        with pytest.raises(RuntimeError, match=r"deadlocked.*'dc_0' \(hs_ping_1.to_pong -> hs_pong_1.from_ping\)"):
            r.wait()
    r1 = ol.hs_ping_1.start(got_ping, n, 1)
    r2 = ol.hs_pong_1.start(got_pong, n, 0)
    r1.wait()
    r2.wait()
    for buf in (got_ping, got_pong):
        buf.sync_from_device()
        np.testing.assert_array_equal(buf, np.arange(n))
    ol.free()


def test_io_stream_network_equals_the_memory_mapped_one(xclbin_dir, emu):
    # The mlp network written as an hls4ml io_stream project (nnet_utils' stream layers on
    # hls::stream<nnet::array<ap_fixed<16,6>, N>>) between a load and a store kernel, against
    # mlp_batch (the same weights and layer kernels, io_parallel, memory-mapped).
    n = 300
    x = np.random.default_rng(12).integers(-(2**13), 2**13, (n, 27), dtype="i2")  # raw ap_fixed<16,6>
    results = []
    for name in ("mlp", "stream_mlp"):
        ol = pynq.Overlay(_xclbin(xclbin_dir, name), device=emu)
        a = pynq.allocate((n, 27), "i2", target=ol.bank0)
        out = pynq.allocate(n, "i2", target=ol.bank0)
        a[:] = x
        a.sync_to_device()
        if name == "mlp":
            ol.mlp_batch_1.call(a, out, n)
        else:
            runs = [ol.mlps_store_1.start(out, n), ol.mlps_network_1.start(n)]
            ol.mlps_load_1.call(a, n)
            for r in runs:
                r.wait()
        out.sync_from_device()
        results.append(np.array(out))
        ol.free()
    assert np.count_nonzero(results[0]) > n // 2  # a network that computes something
    np.testing.assert_array_equal(results[1], results[0])


def test_build_xclbin_builds_stream_kernels(emu, tmp_path):
    from fpyga import toolchain

    try:
        toolchain.hls_include_dir()
    except toolchain.ToolchainError as e:
        missing_input(str(e))
    out = toolchain.build_xclbin(
        [ROOT / "kernels" / "streams" / "chain.cpp"], ["chain_load", "chain_compute", "chain_store"],
        tmp_path / "chain.xclbin", work_dir=tmp_path / "work",
        connectivity=["sc=chain_load_1.out:chain_compute_1.in:2", "sc=chain_compute_1.out:chain_store_1.in:3"])
    ol = pynq.Overlay(out, device=emu)
    n = 50
    x = np.arange(n, dtype="i4")
    a = _int_buffer(ol, x)
    res = pynq.allocate(n, "i4", target=ol.bank0)
    runs = [ol.chain_load_1.start(a, n), ol.chain_compute_1.start(n, 2, 1), ol.chain_store_1.start(res, n)]
    for r in runs:
        r.wait()
    res.sync_from_device()
    np.testing.assert_array_equal(res, 2 * x + 1)
    ol.free()
