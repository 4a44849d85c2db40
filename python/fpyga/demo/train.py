"""Train, prune and save the demo's two MLPs (``make retrain`` / ``python -m fpyga.demo.train``).

Training uses scikit-learn's MLP (Adam, ReLU) and needs no deep-learning framework. Pruning is
iterative magnitude pruning: after the dense training, the smallest weights of each layer are
zeroed in steps up to the target sparsity, and each step is fine-tuned for a few epochs with the
pruned weights held at zero. The trained models are committed, so the demo never retrains unless
asked.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from . import data
from .model import dense, mlp, save

IRIS_HIDDEN = (16,)
MUON_HIDDEN = (35, 20, 25, 40, 20, 15)


def _masks(coefs, sparsity):
    masks = []
    for w in coefs:
        k = int(round(w.size * sparsity))
        if k == 0:
            masks.append(np.ones_like(w, dtype=bool))
            continue
        threshold = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
        masks.append(np.abs(w) > threshold)
    return masks


def _prune(est, x, y, sparsity, steps, epochs, partial_fit_args=()):
    for step in range(1, steps + 1):
        masks = _masks(est.coefs_, sparsity * step / steps)
        for _ in range(epochs):
            for w, m in zip(est.coefs_, masks):
                w[~m] = 0.0
            est.partial_fit(x, y, *partial_fit_args)
        for w, m in zip(est.coefs_, masks):
            w[~m] = 0.0


def _to_mlp(name, est, hidden, output_activation, meta):
    layers = []
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        act = "relu" if i < len(hidden) else output_activation
        layers.append(dense(f"fc{i + 1}", w.astype(np.float32), b.astype(np.float32), act))
    return mlp(name, layers, meta)


def train_iris(seed: int = 7, sparsity: float = 0.3) -> mlp:
    """Iris: 4 -> 16 (ReLU) -> 3 (softmax), pruned to ``sparsity``."""
    from sklearn.neural_network import MLPClassifier

    d = data.iris(seed)
    mean, scale = d.x_train.mean(axis=0), d.x_train.std(axis=0)
    xs = (d.x_train - mean) / scale
    est = MLPClassifier(IRIS_HIDDEN, activation="relu", solver="adam", alpha=1e-3, learning_rate_init=0.01,
                        max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(xs, d.y_train)
        _prune(est, xs, d.y_train, sparsity, steps=3, epochs=100)
    m = _to_mlp("iris", est, IRIS_HIDDEN, "softmax", {})
    acc = float(np.mean(np.argmax(m.forward((d.x_val - mean) / scale), axis=1) == d.y_val))
    m.meta = {"name": "iris", "task": "classification", "seed": seed, "val_fraction": 0.3,
              "mean": mean.tolist(), "scale": scale.tolist(), "classes": ["setosa", "versicolor", "virginica"],
              "sparsity": m.sparsity(), "target_sparsity": sparsity, "val_accuracy_float": acc,
              "trainer": "sklearn.neural_network.MLPClassifier + iterative magnitude pruning"}
    return m


def train_muon(n: int = 60000, seed: int = 11, sparsity: float = 0.5, epochs: int = 60, path=None) -> mlp:
    """Muon pT: 27 -> 35, 20, 25, 40, 20, 15 (ReLU) -> 1 (linear, ``PT_SCALE/pT``), pruned to ``sparsity``."""
    from sklearn.neural_network import MLPRegressor

    d = data.muons(n, seed, path=path)
    mean, scale = d.x_train.mean(axis=0), d.x_train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    xs = (d.x_train - mean) / scale
    est = MLPRegressor(MUON_HIDDEN, activation="relu", solver="adam", alpha=1e-4, batch_size=256,
                       learning_rate_init=2e-3, max_iter=epochs, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(xs, d.y_train)
        _prune(est, xs, d.y_train, sparsity, steps=3, epochs=4)
    m = _to_mlp("muon", est, MUON_HIDDEN, "linear", {})
    y_val = m.forward((d.x_val - mean) / scale)[:, 0]
    delta = data.resolution(data.pt_from_output(y_val), d.pt_val)
    m.meta = {"name": "muon", "task": "regression", "seed": seed, "n": n, "val_fraction": 1 / 3,
              "source": str(path) if path else "surrogate", "target": f"{data.PT_SCALE}/pT",
              "pt_scale": data.PT_SCALE, "features": list(data.MUON_FEATURES),
              "mean": mean.tolist(), "scale": scale.tolist(),
              "sparsity": m.sparsity(), "target_sparsity": sparsity,
              "val_resolution_float": data.resolution_summary(delta),
              "trainer": "sklearn.neural_network.MLPRegressor + iterative magnitude pruning"}
    return m


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fpyga.demo.train", description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["iris", "muon", "all"], default="all")
    p.add_argument("--out", default=None, help="output directory (default: the repository's models/)")
    p.add_argument("--muon-data", default=None, help="real muon data (.npz or .csv) instead of the surrogate")
    p.add_argument("--muon-samples", type=int, default=60000)
    args = p.parse_args(argv)
    if args.model in ("iris", "all"):
        t = time.perf_counter()
        m = train_iris()
        save(m, args.out)
        print(f"iris: val accuracy {m.meta['val_accuracy_float']:.3f}, sparsity {m.sparsity():.2f} "
              f"({time.perf_counter() - t:.1f} s)")
    if args.model in ("muon", "all"):
        t = time.perf_counter()
        m = train_muon(args.muon_samples, path=args.muon_data)
        save(m, args.out)
        r = m.meta["val_resolution_float"]
        print(f"muon: val resolution mean {r['mean']:.3f} std {r['std']:.3f}, sparsity {m.sparsity():.2f} "
              f"({time.perf_counter() - t:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
