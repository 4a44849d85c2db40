"""The demo's study (issue 6): data, models, the fixed-point kernels on emu against hls4ml's
bit-accurate C simulation and the float reference, the two hosts, and the job's report."""

import json
import os

import numpy as np
import pytest

import fpyga
from fpyga.demo import data, host
from fpyga.demo.model import load

from conftest import missing_input


@pytest.fixture(scope="module")
def nn_xclbins():
    """The demo's two networks, built by fpyga.hls4ml.build from the committed models."""
    return {m: host.find_xclbin(m) for m in ("iris", "muon")}


@pytest.fixture(scope="module")
def cpp_host():
    try:
        return host.find_cpp_host()
    except FileNotFoundError as e:
        missing_input(str(e))


def test_muon_surrogate_is_seeded_and_shaped():
    x1, pt1 = data.muon_surrogate(3000, seed=3)
    x2, pt2 = data.muon_surrogate(3000, seed=3)
    x3, _ = data.muon_surrogate(3000, seed=4)
    assert x1.shape == (3000, 27) and x1.dtype == np.float32 and len(data.MUON_FEATURES) == 27
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(pt1, pt2)
    assert not np.array_equal(x1, x3)
    assert np.all(np.isfinite(x1)) and pt1.min() >= data.PT_MIN and pt1.max() <= data.PT_MAX
    # Falling spectrum: more muons below 10 GeV than above 100 GeV; both charges bend.
    assert np.sum(pt1 < 10) > 3 * np.sum(pt1 > 100)
    bend1 = x1[:, 0][x1[:, 4] > 0]
    assert np.mean(bend1 > 0) == pytest.approx(0.5, abs=0.05)
    # Missing stations are marked and zeroed.
    missing = x1[:, 19] == 0
    assert 0.1 < missing.mean() < 0.3 and np.all(x1[missing, 15] == 0)


def test_real_muon_files_load_and_bad_shapes_are_refused(tmp_path):
    x, pt = data.muon_surrogate(50, seed=1)
    np.savez(tmp_path / "m.npz", x=x, pt=pt)
    x2, pt2 = data.load_muon_file(tmp_path / "m.npz")
    np.testing.assert_array_equal(x2, x)
    csv = tmp_path / "m.csv"
    csv.write_text(",".join(list(data.MUON_FEATURES) + ["pt"]) + "\n"
                   + "\n".join(",".join(map(repr, list(map(float, r)) + [float(p)])) for r, p in zip(x, pt)))
    x3, pt3 = data.load_muon_file(csv)
    np.testing.assert_allclose(x3, x)
    np.savez(tmp_path / "bad.npz", x=x[:, :20], pt=pt)
    with pytest.raises(ValueError, match="bad.npz"):
        data.load_muon_file(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="expected a .npz or .csv"):
        data.load_muon_file(tmp_path / "m.txt")


def test_committed_models_reproduce_their_training_figures():
    iris = load("iris")
    d = data.iris(iris.meta["seed"], iris.meta["val_fraction"])
    acc = np.mean(np.argmax(iris.forward(iris.standardize(d.x_val)), axis=1) == d.y_val)
    assert acc == pytest.approx(iris.meta["val_accuracy_float"])
    assert acc > 0.9
    muon = load("muon")
    assert [l.kernel.shape[1] for l in muon.layers] == [35, 20, 25, 40, 20, 15, 1]
    assert muon.sparsity() == pytest.approx(muon.meta["sparsity"]) and muon.sparsity() >= 0.45


def test_network_beats_the_trigger_lookup():
    muon = load("muon")
    d = data.muons(muon.meta["n"], muon.meta["seed"])
    x, pt = d.x_val[:5000], d.pt_val[:5000]
    nn = data.resolution(data.pt_from_output(muon.forward(muon.standardize(x))[:, 0]), pt)
    lut = data.resolution(data.trigger_lut().fit(d.x_train, d.pt_train).predict(x), pt)
    assert np.std(nn) < 0.5 * np.std(lut)


def test_kernel_on_emu_equals_hls4ml_csim(nn_xclbins, emu, tmp_path):
    from fpyga.demo.__main__ import hls4ml_predict
    from fpyga.demo.convert import convert
    from fpyga.demo.model import models_dir

    m = load("iris")
    d = data.iris(m.meta["seed"], m.meta["val_fraction"])
    x = m.standardize(d.x_val)
    y_hls = hls4ml_predict(convert(models_dir() / "iris", tmp_path / "hls4ml_iris"), x)
    run = host.run_python_host(nn_xclbins["iris"], x, 3, device=emu)
    np.testing.assert_array_equal(run.raw, fpyga._core.to_fixed(y_hls, "ap_fixed<16,6>"))
    np.testing.assert_array_equal(run.outputs, y_hls.astype(np.float32))
    # And the fixed-point kernel agrees with the float network on almost every class.
    assert np.mean(np.argmax(run.outputs, 1) == np.argmax(m.forward(x), 1)) > 0.9


def test_python_and_cpp_hosts_are_bit_identical(nn_xclbins, cpp_host):
    m = load("muon")
    d = data.muons(m.meta["n"], m.meta["seed"])
    x = m.standardize(d.x_val[:300])
    py = host.run_python_host(nn_xclbins["muon"], x, 1, device="emu")
    cpp = host.run_cpp_host(nn_xclbins["muon"], x, 1, device="emu", exe=cpp_host)
    np.testing.assert_array_equal(py.raw, cpp.raw)
    assert cpp.extra["batch_matches_single"] and cpp.extra["bare_matches_batch"]
    assert len(py.inject_ns) == len(cpp.inference_ns) == 300 and np.all(cpp.inference_ns > 0)
    # The kernel's outputs follow the float network to within the fixed-point error.
    y = m.forward(x)[:, 0]
    assert np.median(np.abs(py.outputs[:, 0] - y) / y) < 0.1


def test_cpp_host_refuses_bad_input(nn_xclbins, cpp_host, tmp_path):
    import subprocess

    path = tmp_path / "x.f32"
    np.zeros(7, np.float32).tofile(path)
    p = subprocess.run([str(cpp_host), "--xclbin", str(nn_xclbins["iris"]), "--input", str(path),
                        "--inputs", "4", "--outputs", "3"], capture_output=True, text=True)
    assert p.returncode == 1 and "not a whole number of samples of 4 floats" in p.stderr
    p = subprocess.run([str(cpp_host), "--xclbin", str(tmp_path / "none.xclbin"), "--input", str(path),
                        "--inputs", "7", "--outputs", "3"], capture_output=True, text=True)
    assert p.returncode == 1 and "none.xclbin" in p.stderr
    with pytest.raises(RuntimeError, match="usage"):
        host.run_cpp_host(nn_xclbins["iris"], np.zeros((2, 4), np.float32), 0, exe=cpp_host)
    # A muon-shaped input for the Iris network is refused before any call, not run past the buffers.
    with pytest.raises(RuntimeError, match="takes 4 inputs and gives 3 outputs, not 27 and 1"):
        host.run_cpp_host(nn_xclbins["iris"], np.zeros((5, 27), np.float32), 1, exe=cpp_host)


def test_python_host_checks_the_network_sizes(nn_xclbins, cpp_host, emu):
    assert host.network_sizes(nn_xclbins["iris"]) == (4, 3)
    assert host.network_sizes(nn_xclbins["muon"]) == (27, 1)
    with pytest.raises(ValueError, match="takes 27 inputs and gives 1 outputs, not 4 and 3"):
        host.run_python_host(nn_xclbins["muon"], np.zeros((3, 4), np.float32), 3, device=emu)


def test_network_sizes_refuses_other_files(xclbin_dir, cpp_host, tmp_path):
    with pytest.raises(ValueError, match="vadd.xclbin: cannot read the network.s sizes"):
        host.network_sizes(xclbin_dir / "vadd.xclbin")
    (tmp_path / "junk.xclbin").write_bytes(b"not an xclbin")
    with pytest.raises(ValueError, match="junk.xclbin"):
        host.network_sizes(tmp_path / "junk.xclbin")


def test_the_job_writes_the_report_schema(nn_xclbins, cpp_host, tmp_path):
    from fpyga.demo.__main__ import main

    rc = main(["--model", "iris", "--out", str(tmp_path), "--device", "emu", "--quiet",
               "--xclbin-dir", str(nn_xclbins["iris"].parent), "--cpp-host", str(cpp_host)])
    assert rc == 0
    report = json.loads((tmp_path / "demo.json").read_text())
    e = report["models"]["iris"]
    for h in ("python", "cpp"):
        for phase in ("inject", "inference", "extract", "total"):
            s = e["latency_us"][h][phase]
            assert 0 < s["median"] <= s["p90"] <= s["p99"]
    assert e["hosts_bit_identical"] is True and e["repeated_passes_identical"] is True
    assert e["passes"] * e["samples"] == e["timed_samples"] >= 1000
    assert e["hls4ml"]["kernel_matches_csim"] is True
    assert e["throughput_sps"]["batch_kernel"] > 0 and e["throughput_sps"]["bare_loop"] > 0
    assert e["accuracy"]["fixed"] > 0.85 and e["accuracy"]["float"] > 0.85
    assert all(os.path.isfile(p) for p in report["plots"]) and len(report["plots"]) == 2


def test_the_job_rejects_bad_options(capsys):
    from fpyga.demo.__main__ import main

    with pytest.raises(SystemExit):
        main(["--samples", "0"])
    assert "--samples must be at least 1" in capsys.readouterr().err
