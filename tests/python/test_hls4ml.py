"""Your own network (issue 11): hls4ml model -> fpyga.hls4ml.build -> xclbin -> Model.predict,
bit-exact with hls4ml's own C simulation, for networks beyond the demo's: BatchNormalization, a
softmax classifier, per-layer precisions, io_stream; hls4ml's own Alveo driver run unchanged;
the build cache; export for a card; the errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fpyga
import fpyga.hls4ml
from fpyga import toolchain
from fpyga.hls4ml.project import read_project

import hls4ml_networks as nets

NETWORKS = {
    "batchnorm": (nets.batchnorm, "io_parallel"),
    "softmax": (nets.softmax, "io_parallel"),
    "per_layer": (nets.per_layer, "io_parallel"),
    "stream": (nets.stream, "io_stream"),
}


class built:
    """One network: its ModelGraph (compiled: hls4ml's C simulation), xclbin and test inputs."""

    def __init__(self, name, root: Path):
        make, io_type = NETWORKS[name]
        self.files = make(root / "keras")
        self.hls_model = nets.convert(self.files, root / f"{name}_prj", io_type=io_type)
        self.xclbin = fpyga.hls4ml.build(self.hls_model, root / f"{name}.xclbin", compute_units=2)
        self.hls_model.compile()
        self.project = read_project(self.hls_model.config.get_output_dir())
        self.x = nets.inputs(self.project.n_in)


@pytest.fixture(scope="session")
def network(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = built(name, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_predict_is_bit_exact_with_hls4ml(network, emu, name):
    net = network(name)
    model = fpyga.hls4ml.Model(net.xclbin, device=emu)
    assert model.compute_units == 2
    for dtype in (np.float32, np.float64):
        x = net.x.astype(dtype)
        want = np.asarray(net.hls_model.predict(x)).reshape(len(x), -1)
        got = model.predict(x)
        assert got.shape == (len(x), net.project.n_out) and got.dtype == want.dtype
        mismatched = np.flatnonzero(np.any(got != want, axis=1))
        assert mismatched.size == 0, f"{name}: samples {mismatched[:10]} differ from hls4ml's C simulation"
    # one sample in, one sample out (as hls_model.predict gives it)
    one = model.predict(net.x[3])
    np.testing.assert_array_equal(one, np.asarray(net.hls_model.predict(net.x[3:4])).reshape(-1))


def test_per_layer_precisions_reach_the_description(network):
    net = network("per_layer")
    info = fpyga.hls4ml.Model(net.xclbin, device="emu").info
    assert info["inputs"][0]["type"] == "ap_fixed<12,4>"
    assert info["outputs"][0]["type"].startswith("ap_fixed<20,8")  # a 4-byte container
    assert info["io_type"] == "io_parallel" and info["producer"] == "hls4ml"


def test_nonfinite_inputs_convert_as_hls4ml_does(network, emu):
    net = network("batchnorm")
    x = net.x[:8].copy()
    x[0, 0], x[1, 3], x[2, 5] = np.nan, np.inf, -np.inf
    want = np.asarray(net.hls_model.predict(x)).reshape(len(x), -1)
    got = fpyga.hls4ml.Model(net.xclbin, device=emu).predict(x)
    np.testing.assert_array_equal(got, want)


def test_predict_raw_takes_the_fixed_point_bits(network, emu):
    net = network("softmax")
    model = fpyga.hls4ml.Model(net.xclbin, device=emu)
    raw_in = fpyga._core.to_fixed(net.x, model.input_type)
    raw_out = model.predict_raw(raw_in)
    np.testing.assert_array_equal(fpyga._core.from_fixed(raw_out, model.output_type), model.predict(net.x))


def test_one_and_two_compute_units_and_devices_agree(network, tmp_path):
    net = network("stream")
    one_cu = fpyga.hls4ml.build(net.hls_model, tmp_path / "one.xclbin", compute_units=1)
    code = textwrap.dedent(f"""
        import numpy as np, fpyga, fpyga.hls4ml
        x = np.load({str(tmp_path / 'x.npy')!r})
        a = fpyga.hls4ml.Model({str(one_cu)!r}, device="emu:0").predict(x)
        m = fpyga.hls4ml.Model({str(net.xclbin)!r}, device=["emu:0", "emu:1"])
        assert m.compute_units == 4, m.compute_units
        b = m.predict(x)
        assert np.array_equal(a, b)
        print("ok", len(x))
    """)
    x = np.concatenate([net.x] * 7)  # not a multiple of any chunk
    np.save(tmp_path / "x.npy", x)
    env = dict(os.environ, FPYGA_EMU_DEVICES="2")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ok", str(len(x))]


def test_wrong_input_names_the_expected_shape_and_dtype(network, emu):
    net = network("batchnorm")
    model = fpyga.hls4ml.Model(net.xclbin, device=emu)
    with pytest.raises(ValueError, match=r"\(n, 8\)") as e:
        model.predict(np.zeros((5, 7), np.float32))
    assert "(5, 7)" in str(e.value)
    with pytest.raises(TypeError, match="float32 or float64.*int64"):
        model.predict(np.zeros((5, 8), np.int64))
    with pytest.raises(TypeError, match="int16"):
        model.predict_raw(np.zeros((5, 8), np.float32))
    # the model stays usable
    assert model.predict(net.x[:2]).shape == (2, 4)


def test_a_model_needs_a_network_xclbin(xclbin_dir, emu):
    with pytest.raises(Exception, match="vadd.xclbin"):
        fpyga.hls4ml.Model(xclbin_dir / "vadd.xclbin", device=emu)


def test_build_is_cached_by_content(network, tmp_path, monkeypatch):
    net = network("softmax")
    cache = tmp_path / "cache"
    first = fpyga.hls4ml.build(net.hls_model, tmp_path / "a" / "net.xclbin", cache_dir=cache)
    calls = []
    real = toolchain.build_xclbin
    monkeypatch.setattr(toolchain, "build_xclbin", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = fpyga.hls4ml.build(net.hls_model, tmp_path / "b" / "net.xclbin", cache_dir=cache)
    assert calls == [] and second.read_bytes() == first.read_bytes()
    # another compute-unit count is another build
    fpyga.hls4ml.build(net.hls_model, tmp_path / "c" / "net.xclbin", compute_units=3, cache_dir=cache)
    assert calls == [1]
    # a corrupted entry is rebuilt, and the result runs
    entries = [e for e in (cache / "hls4ml").iterdir() if (e / "model.xclbin").is_file()]
    for e in entries:
        (e / "model.xclbin").write_bytes(b"xclbin2\0garbage")
    again = fpyga.hls4ml.build(net.hls_model, tmp_path / "d" / "net.xclbin", cache_dir=cache)
    assert calls == [1, 1] and again.read_bytes() == first.read_bytes()


def test_build_refuses_what_the_wrapper_cannot_take(tmp_path):
    graph = nets.convert(nets.two_inputs(tmp_path / "keras"), tmp_path / "two_in_prj")
    with pytest.raises(fpyga.hls4ml.NetworkError, match="2 inputs.*in_a.*in_b"):
        fpyga.hls4ml.build(graph, tmp_path / "x.xclbin", cache_dir=tmp_path / "cache")
    with pytest.raises(fpyga.hls4ml.NetworkError, match="not an hls4ml project"):
        fpyga.hls4ml.build(tmp_path, tmp_path / "x.xclbin")
    with pytest.raises(TypeError, match="ModelGraph or the directory"):
        fpyga.hls4ml.build(42, tmp_path / "x.xclbin")
    with pytest.raises(ValueError, match="compute_units"):
        fpyga.hls4ml.build(tmp_path, tmp_path / "x.xclbin", compute_units=0)


def test_a_compiler_failure_shows_the_errors_and_the_log(network, tmp_path):
    import shutil

    net = network("batchnorm")
    broken = tmp_path / "broken_prj"
    shutil.copytree(net.project.directory, broken)
    cpp = broken / "firmware" / "myproject.cpp"
    text = cpp.read_text()
    assert "// NETWORK INSTANTIATION" in text
    cpp.write_text(text.replace("// NETWORK INSTANTIATION", "nnet_no_such_namespace::f(); // NETWORK INSTANTIATION"))
    with pytest.raises(fpyga.hls4ml.ToolchainError) as e:
        fpyga.hls4ml.build(broken, tmp_path / "broken.xclbin", cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert "myproject.cpp" in msg and "error" in msg and "nnet_no_such_namespace" in msg
    log = Path(msg.split("full log: ")[1].strip())
    assert log.is_file() and "nnet_no_such_namespace" in log.read_text()
    assert not (tmp_path / "broken.xclbin").exists()


def test_hls4ml_alveo_driver_runs_unchanged(tmp_path):
    """hls4ml's VivadoAccelerator backend for Alveo writes axi_stream_driver.py (a PYNQ Overlay
    subclass calling krnl_rtl_1); fpyga builds that kernel interface and runs the driver as written."""
    graph = nets.convert(nets.softmax(tmp_path / "keras"), tmp_path / "acc_prj", io_type="io_stream",
                         backend="VivadoAccelerator",
                         AcceleratorConfig={"Board": "alveo-u50", "Driver": "python", "Interface": "axi_stream",
                                            "Precision": {"Input": "float", "Output": "float"}})
    xclbin = fpyga.hls4ml.build(graph, tmp_path / "acc.xclbin")
    graph.compile()
    x = nets.inputs(10, 64)
    want = np.asarray(graph.predict(x)).reshape(len(x), -1)
    driver = tmp_path / "acc_prj" / "axi_stream_driver.py"
    assert "from pynq import Overlay, allocate" in driver.read_text()
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "run_driver.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import numpy as np
        sys.path.insert(0, {str(driver.parent)!r})
        from axi_stream_driver import NeuralNetworkOverlay
        x = np.load({str(tmp_path / 'x.npy')!r})
        nn = NeuralNetworkOverlay({str(xclbin)!r})
        assert "krnl_rtl_1" in nn.ip_dict
        y = nn.predict(x, (len(x), 5))
        np.save({str(tmp_path / 'y.npy')!r}, y)
    """))
    p = subprocess.run([sys.executable, "-m", "fpyga.pynq_alias", str(script)], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, FPYGA_DEVICE="emu"))
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


def test_pynq_alias_never_shadows_a_real_pynq(monkeypatch):
    fpyga.pynq_alias.uninstall_pynq_alias()
    real_find = importlib.util.find_spec
    fake = importlib.machinery.ModuleSpec("pynq", None, origin="/opt/pynq/__init__.py")
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: fake if n == "pynq" else real_find(n, *a))
    with pytest.raises(RuntimeError, match="real PYNQ is installed.*/opt/pynq"):
        fpyga.install_pynq_alias()
    assert "pynq" not in sys.modules
    try:
        assert fpyga.install_pynq_alias(force=True) is fpyga
        import pynq  # noqa: F401

        assert pynq is fpyga
    finally:
        fpyga.pynq_alias.uninstall_pynq_alias()
    assert "pynq" not in sys.modules


def test_export_writes_the_same_interface_for_vitis(network, tmp_path):
    from fpyga.toolchain import kernel_meta

    net = network("stream")
    out = fpyga.hls4ml.export(net.hls_model, tmp_path / "stream_vitis", compute_units=3)
    makefile = (out / "Makefile").read_text()
    assert "$(VPP) -c -t $(TARGET)" in makefile and "$(VPP) -l" in makefile
    assert "--add-section USER_METADATA:RAW:network.json" in makefile
    assert (out / "connectivity.cfg").read_text().splitlines()[-2:] == ["nk=nn:3", "nk=nn_batch:3"]
    wrapper = out / "src" / "fpyga_fpyga_batch.cpp"
    assert wrapper.is_file() and (out / "src" / "firmware" / "myproject.cpp").is_file()
    assert not list((out / "src" / "firmware" / "weights").glob("*.txt"))
    # the exported sources describe the kernels exactly as the emu xclbin does
    desc = kernel_meta.describe([str(wrapper)], ["nn", "nn_batch"],
                                include_dirs=[str(out / "src" / "firmware"), str(out / "src" / "firmware" / "ap_types")])
    emu = {k.name: k for k in fpyga._core.xclbin.read(str(net.xclbin)).kernels}
    for k in desc["kernels"]:
        ours = [(a["name"], a["type"], a["offset"]) for a in k["args"]]
        theirs = [(a.name, a.type, a.offset) for a in emu[k["name"]].args]
        assert ours == theirs, k["name"]
    network_json = json.loads((out / "network.json").read_text())
    assert network_json["inputs"] == fpyga.hls4ml.Model(net.xclbin, device="emu").info["inputs"]


def test_model_drives_the_interface_on_xrt_noop(network):
    """On a card the hardware xclbin has the same kernels; XRT's noop shim computes nothing, so this
    checks that Model loads, allocates, syncs and runs nn_batch through the XRT backend."""
    net = network("batchnorm")
    env = dict(os.environ, XCL_EMULATION_MODE="noop", FPYGA_XRT_NOOP_DEVICES="1")
    env.pop("XILINX_XRT", None)
    env.pop("FPYGA_DEVICE", None)
    code = textwrap.dedent(f"""
        import numpy as np, fpyga, fpyga.hls4ml
        m = fpyga.hls4ml.Model({str(net.xclbin)!r}, device="xrt:0")
        assert m.devices[0].backend == "xrt"
        y = m.predict(np.zeros((1000, 8), np.float32))
        assert y.shape == (1000, 4), y.shape
        print("ok", m.compute_units)
    """)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ok", "2"]


def test_cli_builds_keras_files_and_projects(network, tmp_path):
    net = network("batchnorm")
    json_path, h5_path, _ = net.files
    cli = [sys.executable, "-m", "fpyga.hls4ml"]
    p = subprocess.run(cli + ["build", str(json_path), str(h5_path), "-o", str(tmp_path / "k.xclbin")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert fpyga.hls4ml.Model(tmp_path / "k.xclbin", device="emu").n_inputs == 8
    p = subprocess.run(cli + ["build", str(net.project.directory), "-o", str(tmp_path / "p.xclbin")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(cli + ["build", str(tmp_path / "missing.json"), str(h5_path), "-o", str(tmp_path / "m.xclbin")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "missing.json" in p.stderr


def test_the_demo_builds_through_the_public_path():
    from fpyga.demo import host

    xclbin = host.find_xclbin("iris")
    model = fpyga.hls4ml.Model(xclbin, device="emu")
    assert (model.n_inputs, model.n_outputs) == (4, 3) and model.info["name"] == "nn_iris"


def test_predict_takes_arrays_that_came_through_pickle(network, emu):
    """An unpickled array's dtype equals float32 without being numpy's canonical dtype object (as
    on every Dask worker); predict compares dtypes by value."""
    import pickle

    net = network("softmax")
    model = fpyga.hls4ml.Model(net.xclbin, device=emu)
    x = pickle.loads(pickle.dumps(net.x))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(model.predict(x), model.predict(net.x))
