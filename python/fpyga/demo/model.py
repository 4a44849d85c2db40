"""The demo's trained models as committed in ``models/``: load them and run the float reference.

A model is three files next to each other:

- ``<name>.json``: the architecture in Keras's (v2) Sequential JSON format, which hls4ml's
  ``KerasJson`` front end reads without Keras installed;
- ``<name>.h5``: the weights, one HDF5 group per Dense layer with ``kernel`` and ``bias``
  (hls4ml's ``KerasH5``);
- ``<name>.meta.json``: what the hosts need around the network: the input standardization
  (``mean``, ``scale``), the task, the data seed, the pruning sparsity and the training figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

def models_dir() -> Path:
    """The models directory: ``$FPYGA_MODELS_DIR``, else the committed models the package carries
    (``share/fpyga/models``, a resource of the installed package)."""
    import os

    from .._paths import models_dir as package_models

    if os.environ.get("FPYGA_MODELS_DIR"):
        return Path(os.environ["FPYGA_MODELS_DIR"])
    return package_models()


@dataclass
class dense:
    """One fully connected layer: ``y = act(x @ kernel + bias)``."""

    name: str
    kernel: np.ndarray
    bias: np.ndarray
    activation: str


@dataclass
class mlp:
    """A trained MLP with its host-side preprocessing."""

    name: str
    layers: list[dense]
    meta: dict = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].kernel.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].kernel.shape[1]

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """The input scaling the network was trained with (float32, as the hosts feed it)."""
        mean = np.asarray(self.meta["mean"], np.float32)
        scale = np.asarray(self.meta["scale"], np.float32)
        return ((np.asarray(x, np.float32) - mean) / scale).astype(np.float32)

    def forward(self, x_std: np.ndarray) -> np.ndarray:
        """Float CPU inference on standardized inputs (the reference the fixed-point kernel is compared to)."""
        h = np.asarray(x_std, np.float64)
        for layer in self.layers:
            h = h @ layer.kernel + layer.bias
            if layer.activation == "relu":
                h = np.maximum(h, 0.0)
            elif layer.activation == "softmax":
                e = np.exp(h - h.max(axis=1, keepdims=True))
                h = e / e.sum(axis=1, keepdims=True)
            elif layer.activation != "linear":
                raise ValueError(f"model '{self.name}': unsupported activation '{layer.activation}'")
        return h

    def sparsity(self) -> float:
        """Fraction of weights (kernels, not biases) that are exactly zero."""
        total = sum(layer.kernel.size for layer in self.layers)
        zeros = sum(int(np.count_nonzero(layer.kernel == 0)) for layer in self.layers)
        return zeros / total


def model_paths(name: str, directory: str | Path | None = None) -> tuple[Path, Path, Path]:
    d = Path(directory) if directory is not None else models_dir()
    return d / f"{name}.json", d / f"{name}.h5", d / f"{name}.meta.json"


def load(name: str, directory: str | Path | None = None) -> mlp:
    """Load model ``name`` (``iris`` or ``muon``); raises ``FileNotFoundError`` naming the missing file."""
    import h5py

    arch_path, weights_path, meta_path = model_paths(name, directory)
    for p in (arch_path, weights_path, meta_path):
        if not p.exists():
            raise FileNotFoundError(f"model '{name}': missing {p} (run `make retrain` to create it)")
    arch = json.loads(arch_path.read_text())
    layers = []
    with h5py.File(weights_path, "r") as f:
        for spec in arch["config"]["layers"]:
            if spec["class_name"] != "Dense":
                continue
            cfg = spec["config"]
            g = f[cfg["name"]][cfg["name"]]
            layers.append(dense(cfg["name"], np.array(g["kernel:0"]), np.array(g["bias:0"]), cfg["activation"]))
    return mlp(name, layers, json.loads(meta_path.read_text()))


def save(model: mlp, directory: str | Path | None = None) -> None:
    """Write the three files of ``model`` (see the module docstring)."""
    import h5py

    arch_path, weights_path, meta_path = model_paths(model.name, directory)
    arch_path.parent.mkdir(parents=True, exist_ok=True)
    layers = [{"class_name": "InputLayer",
               "config": {"name": "input_1", "batch_input_shape": [None, model.n_inputs], "dtype": "float32"}}]
    for layer in model.layers:
        layers.append({"class_name": "Dense",
                       "config": {"name": layer.name, "units": int(layer.kernel.shape[1]),
                                  "activation": layer.activation, "use_bias": True, "dtype": "float32"}})
    arch = {"class_name": "Sequential", "config": {"name": model.name, "layers": layers},
            "keras_version": "2.15.0", "backend": "tensorflow"}
    arch_path.write_text(json.dumps(arch, indent=1) + "\n")
    with h5py.File(weights_path, "w") as f:
        for layer in model.layers:
            g = f.create_group(layer.name).create_group(layer.name)
            g.create_dataset("kernel:0", data=layer.kernel.astype(np.float32))
            g.create_dataset("bias:0", data=layer.bias.astype(np.float32))
    meta_path.write_text(json.dumps(model.meta, indent=1) + "\n")
