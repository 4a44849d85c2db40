"""fpyga._core.nn_model, xclbin_pack and xclbin.network (bind_nn.cpp) on the project's mlp
xclbins: the NumPy boundary (shapes, dtypes, the raw containers, progress, errors raised by the
callback) against the mlp's reference computed from mlp_weights.json."""

import json

import numpy as np
import pytest

from conftest import missing_input
from fpyga import _core


def _require(path):
    if not path.is_file():
        missing_input(f"{path} is not built")
    return path


def _reference(weights_path, raw):
    """hls4ml's dense/ReLU stack on ap_fixed<16,6> with an exact ap_fixed<32,12> accumulator."""
    layers = json.loads(weights_path.read_text())["layers"]
    a = raw.astype(np.int64)
    for layer in layers:
        w = np.array(layer["weights_raw"], dtype=np.int64).reshape(layer["n_in"], layer["n_out"])
        b = np.array(layer["biases_raw"], dtype=np.int64)
        acc = (a @ w + (b << 10)).astype(np.int64)
        acc = ((acc + (1 << 31)) % (1 << 32)) - (1 << 31)  # 32-bit accumulator
        out = ((acc >> 10) + (1 << 15)) % (1 << 16) - (1 << 15)  # floor, 16-bit wrap
        if layer["activation"] == "relu":
            out = np.maximum(out, 0)
        a = out
    return a.astype(np.int16)


@pytest.fixture
def mlp(xclbin_dir):
    return _require(xclbin_dir / "mlp_2cu.xclbin"), _require(xclbin_dir / "mlp_weights.json")


def test_predict_matches_the_reference_in_every_dtype(mlp):
    path, weights = mlp
    m = _core.nn_model(str(path), ["emu:0"])
    assert (m.n_inputs, m.n_outputs, m.compute_units) == (27, 1, 2)
    assert m.info["kernels"]["batch"] == "mlp_batch" and m.info["inputs"][0]["shape"] == [27]
    assert np.dtype(m.raw_input_dtype) == np.int16 and np.dtype(m.raw_output_dtype) == np.int16
    rng = np.random.default_rng(3)
    x = rng.uniform(-4, 4, (301, 27)).astype(np.float32)
    x[::7, 3] = rng.uniform(-100, 100, len(x[::7]))  # outside +-32: wraps
    raw = np.floor(x.astype(np.float64) * 1024).astype(np.int64).astype(np.int16)
    want = _reference(weights, raw)
    assert np.count_nonzero(want) > 50

    y = m.predict(x)
    assert y.dtype == np.float32 and y.shape == (301, 1)
    np.testing.assert_array_equal(y, want / np.float32(1024))
    y64 = m.predict(x.astype(np.float64), None, np.float64)
    assert y64.dtype == np.float64
    np.testing.assert_array_equal(y64, want / 1024.0)
    np.testing.assert_array_equal(m.predict(x.reshape(301, 3, 9)), y)  # (n, ...) of 27 values
    np.testing.assert_array_equal(m.predict_raw(raw), want)
    np.testing.assert_array_equal(m.predict(x[:1]), y[:1])
    assert m.predict(np.zeros((0, 27), np.float32)).shape == (0, 1)


def test_progress_and_its_exception(mlp):
    path, _ = mlp
    m = _core.nn_model(str(path), "emu:0")
    m.chunk_samples = 10
    assert m.chunk_samples == 10
    x = np.zeros((95, 27), np.float32)
    seen = []
    m.predict(x, seen.append)
    assert seen == sorted(seen) and seen[-1] == 95 and len(seen) == 10

    def stop(done):
        if done >= 30:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        m.predict(x, stop)
    assert m.predict(x).shape == (95, 1)  # still usable


def test_bad_input_names_what_was_expected(mlp, xclbin_dir):
    path, _ = mlp
    m = _core.nn_model(str(path), ["emu:0"])
    with pytest.raises(ValueError, match=r"must have shape \(n, 27\).*got \(3, 5\)"):
        m.predict(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"got \(27,\)"):
        m.predict(np.zeros(27, np.float32))
    with pytest.raises(ValueError, match="float32 or float64.*int32"):
        m.predict(np.zeros((2, 27), np.int32))
    with pytest.raises(ValueError, match="not C-contiguous"):
        m.predict(np.zeros((27, 2), np.float32).T)
    with pytest.raises(ValueError, match="int16 array"):
        m.predict_raw(np.zeros((2, 27), np.float32))
    with pytest.raises(TypeError, match="a device must be"):
        _core.nn_model(str(path), [3])
    with pytest.raises(ValueError, match="vadd.xclbin.*no network description"):
        _core.nn_model(str(_require(xclbin_dir / "vadd.xclbin")), ["emu:0"])


_DESCRIPTION = {
    "mode": "sw_emu",
    "memories": [{"tag": "bank0"}],
    "kernels": [
        {"name": "nn", "args": [{"name": "in", "type": "ap_fixed<16, 6> const *"},
                                {"name": "out", "type": "ap_fixed<16, 6>*"}]},
        {"name": "nn_batch", "args": [{"name": "in", "type": "ap_fixed<16, 6> const *"},
                                      {"name": "out", "type": "ap_fixed<16, 6>*"},
                                      {"name": "n", "type": "int"}],
         "instances": [{"name": "nn_batch_1"}, {"name": "nn_batch_2"}]},
    ],
    "network": {"schema": "fpyga.network/1", "name": "muon", "producer": "hls4ml",
                "producer_version": "1.3.0", "io_type": "io_parallel", "interface": "fpyga_batch",
                "kernels": {"single": "nn", "batch": "nn_batch"},
                "inputs": [{"name": "input_1", "shape": [27], "type": "ap_fixed<16,6>"}],
                "outputs": [{"name": "layer14_out", "shape": [1], "type": "ap_fixed<16, 6>"}]},
}


def test_xclbin_pack_and_network(xclbin_dir, tmp_path):
    out = tmp_path / "packed.xclbin"
    uuid = _core.xclbin_pack(json.dumps(_DESCRIPTION), b"", str(out))
    x = _core.xclbin.read(str(out))
    assert x.uuid == uuid
    net = json.loads(x.network)
    assert net["outputs"][0]["type"] == "ap_fixed<16,6>"  # canonical
    assert {k: v for k, v in net.items() if k != "outputs"} == \
        {k: v for k, v in _DESCRIPTION["network"].items() if k != "outputs"}
    assert json.loads(_core.xclbin.read(str(_require(xclbin_dir / "mlp.xclbin"))).network)["name"] == "mlp"
    assert _core.xclbin.read(str(_require(xclbin_dir / "vadd.xclbin"))).network is None

    bad_desc = json.loads(json.dumps(_DESCRIPTION))
    bad_desc["network"]["outputs"][0]["type"] = "ap_fixed<99,6>"
    bad = tmp_path / "bad.xclbin"
    with pytest.raises(ValueError, match=r"outputs\[0\]\.type"):
        _core.xclbin_pack(json.dumps(bad_desc), b"", str(bad))
    assert not bad.exists() and not (tmp_path / "bad.xclbin.tmp").exists()
