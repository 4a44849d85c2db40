"""Small hls4ml networks for the tests, written as Keras (v2) JSON + H5 files that hls4ml's
KerasJson/KerasH5 front end reads without TensorFlow, with random weights from a fixed seed.

Each network returns ``(json_path, h5_path, hls_config)``; :func:`convert` turns it into an
hls4ml ModelGraph (backend Vitis unless told otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _layer(cls, name, **config):
    return {"class_name": cls, "config": {"name": name, "dtype": "float32", **config}}


def _write(directory: Path, name: str, n_in: int, layers: list[dict], weights: dict[str, dict[str, np.ndarray]]):
    directory.mkdir(parents=True, exist_ok=True)
    import h5py

    arch = {"class_name": "Sequential",
            "config": {"name": name, "layers": [_layer("InputLayer", "input_1", batch_input_shape=[None, n_in])]
                       + layers},
            "keras_version": "2.15.0", "backend": "tensorflow"}
    json_path, h5_path = directory / f"{name}.json", directory / f"{name}.h5"
    json_path.write_text(json.dumps(arch, indent=1))
    with h5py.File(h5_path, "w") as f:
        for layer, variables in weights.items():
            g = f.create_group(layer).create_group(layer)
            for var, value in variables.items():
                g.create_dataset(f"{var}:0", data=np.asarray(value, np.float32))
    return json_path, h5_path


def _dense(rng, n_in, n_out, scale=0.6):
    return {"kernel": rng.normal(0, scale, (n_in, n_out)), "bias": rng.normal(0, 0.2, n_out)}


def batchnorm(directory: Path, seed: int = 1):
    """Dense(12) -> BatchNormalization -> ReLU -> Dense(4, linear)."""
    rng = np.random.default_rng(seed)
    layers = [_layer("Dense", "fc1", units=12, activation="linear", use_bias=True),
              _layer("BatchNormalization", "bn1", axis=-1, epsilon=0.001, center=True, scale=True,
                     momentum=0.99),
              _layer("Activation", "relu1", activation="relu"),
              _layer("Dense", "fc2", units=4, activation="linear", use_bias=True)]
    weights = {"fc1": _dense(rng, 8, 12),
               "bn1": {"gamma": rng.uniform(0.5, 1.5, 12), "beta": rng.normal(0, 0.3, 12),
                       "moving_mean": rng.normal(0, 0.5, 12), "moving_variance": rng.uniform(0.3, 2.0, 12)},
               "fc2": _dense(rng, 12, 4)}
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"}}
    return (*_write(directory, "bn_net", 8, layers, weights), cfg)


def softmax(directory: Path, seed: int = 2):
    """A 5-class classifier: Dense(16, relu) -> Dense(5) -> Softmax (hls4ml's table-based softmax)."""
    rng = np.random.default_rng(seed)
    layers = [_layer("Dense", "fc1", units=16, activation="relu", use_bias=True),
              _layer("Dense", "fc2", units=5, activation="linear", use_bias=True),
              _layer("Activation", "softmax", activation="softmax")]
    weights = {"fc1": _dense(rng, 10, 16), "fc2": _dense(rng, 16, 5, 1.0)}
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"}}
    return (*_write(directory, "softmax_net", 10, layers, weights), cfg)


def per_layer(directory: Path, seed: int = 3):
    """Per-layer precisions (what hls4ml's ``granularity='name'`` config gives): an 12-bit input,
    8-bit weights, a 20-bit result in a 4-byte container, a saturating/rounding layer; the
    Resource strategy with a reuse factor on the first layer."""
    rng = np.random.default_rng(seed)
    layers = [_layer("Dense", "fc1", units=16, activation="linear", use_bias=True),
              _layer("Activation", "relu1", activation="relu"),
              _layer("Dense", "fc2", units=8, activation="tanh", use_bias=True),
              _layer("Dense", "fc3", units=3, activation="linear", use_bias=True)]
    weights = {"fc1": _dense(rng, 6, 16), "fc2": _dense(rng, 16, 8), "fc3": _dense(rng, 8, 3)}
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"},
           "LayerName": {
               "input_1": {"Precision": {"result": "ap_fixed<12,4>"}},
               "fc1": {"Precision": {"weight": "ap_fixed<8,2>", "bias": "ap_fixed<8,2>",
                                     "result": "ap_fixed<14,5,AP_RND,AP_SAT>"},
                       "ReuseFactor": 4, "Strategy": "Resource"},
               "relu1": {"Precision": {"result": "ap_ufixed<10,4,AP_RND_CONV,AP_SAT>"}},
               "fc2": {"Precision": {"weight": "ap_fixed<10,3>", "result": "ap_fixed<18,8>"}},
               "fc2_tanh": {"Precision": {"result": "ap_fixed<12,2>"}},
               "fc3": {"Precision": {"weight": "ap_fixed<12,4>"}},
               "fc3_linear": {"Precision": {"result": "ap_fixed<20,8,AP_RND,AP_SAT>"}},
           }}
    return (*_write(directory, "per_layer_net", 6, layers, weights), cfg)


def stream(directory: Path, seed: int = 4):
    """An io_stream network: Dense(10, relu) -> Dense(6, sigmoid)."""
    rng = np.random.default_rng(seed)
    layers = [_layer("Dense", "fc1", units=10, activation="relu", use_bias=True),
              _layer("Dense", "fc2", units=6, activation="sigmoid", use_bias=True)]
    weights = {"fc1": _dense(rng, 7, 10), "fc2": _dense(rng, 10, 6)}
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"}}
    return (*_write(directory, "stream_net", 7, layers, weights), cfg)


def two_inputs(directory: Path):
    """A functional model with two inputs (concatenated): fpyga's wrapper refuses it."""
    rng = np.random.default_rng(5)
    directory.mkdir(parents=True, exist_ok=True)
    import h5py

    arch = {"class_name": "Functional", "config": {
        "name": "two_in",
        "layers": [
            {"class_name": "InputLayer", "name": "in_a", "config": {"name": "in_a", "batch_input_shape": [None, 3],
                                                                   "dtype": "float32"}, "inbound_nodes": []},
            {"class_name": "InputLayer", "name": "in_b", "config": {"name": "in_b", "batch_input_shape": [None, 2],
                                                                   "dtype": "float32"}, "inbound_nodes": []},
            {"class_name": "Concatenate", "name": "cat", "config": {"name": "cat", "axis": -1, "dtype": "float32"},
             "inbound_nodes": [[["in_a", 0, 0, {}], ["in_b", 0, 0, {}]]]},
            {"class_name": "Dense", "name": "fc", "config": {"name": "fc", "units": 2, "activation": "linear",
                                                           "use_bias": True, "dtype": "float32"},
             "inbound_nodes": [[["cat", 0, 0, {}]]]}],
        "input_layers": [["in_a", 0, 0], ["in_b", 0, 0]],
        "output_layers": [["fc", 0, 0]]},
        "keras_version": "2.15.0", "backend": "tensorflow"}
    json_path, h5_path = directory / "two_in.json", directory / "two_in.h5"
    json_path.write_text(json.dumps(arch))
    with h5py.File(h5_path, "w") as f:
        g = f.create_group("fc").create_group("fc")
        w = _dense(rng, 5, 2)
        g.create_dataset("kernel:0", data=w["kernel"].astype(np.float32))
        g.create_dataset("bias:0", data=w["bias"].astype(np.float32))
    return json_path, h5_path, {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1}}


def convert(net, out_dir: Path, io_type: str = "io_parallel", backend: str = "Vitis", **extra):
    """The hls4ml ModelGraph of ``net`` (a ``(json, h5, hls_config)`` triple), written to out_dir."""
    from hls4ml.converters import keras_v2_to_hls

    json_path, h5_path, cfg = net
    config = {"KerasJson": str(json_path), "KerasH5": str(h5_path), "OutputDir": str(out_dir),
              "ProjectName": "myproject", "Backend": backend, "Part": "xcvu9p-flgb2104-2-i", "ClockPeriod": 4,
              "IOType": io_type, "HLSConfig": cfg, **extra}
    return keras_v2_to_hls(config)


def inputs(n_in: int, n: int = 300, seed: int = 0) -> np.ndarray:
    """Samples that cover the ordinary range and, in the last rows, values that saturate or wrap
    the input type (|x| up to 1000) and exact halves of the LSB."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2.0, (n, n_in))
    x[-20:] = rng.uniform(-1000, 1000, (20, n_in))
    x[-25:-20] = np.round(rng.normal(0, 4, (5, n_in)) * 2048) / 2048 + 1 / 4096
    return x.astype(np.float32)
