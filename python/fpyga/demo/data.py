"""Data sets of the demo: Iris, and a seeded surrogate of the CMS barrel-muon pT problem.

Iris is the copy that ships inside scikit-learn (no download). The CMS data used by the paper is
not public, so :func:`muon_surrogate` generates muons with the same 27-feature layout from a small,
documented physics model (see its docstring). Real data of the same shape can be loaded with
:func:`load_muon_file` (CSV or NPZ) and used in place of the surrogate.

This module needs only NumPy (and scikit-learn for Iris), so the build can import it by path.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Number of barrel muon stations (MB1..MB4) crossed by the surrogate muons.
N_STATIONS = 4
#: Ratio used for the muon regression target: the network predicts ``PT_SCALE / pT``.
#: Predicting an inverse pT keeps the target inside ap_fixed<16,6>'s range [-32, 32) for
#: pT >= 1 GeV with a quantization step of 2**-10 (1% at 200 GeV).
PT_SCALE = 20.0
PT_MIN, PT_MAX = 3.0, 200.0

#: Names of the 27 muon features, in column order.
MUON_FEATURES = (
    [f"{name}_{s + 1}" for s in range(N_STATIONS) for name in ("bend", "phi", "theta", "quality", "valid")]
    + [f"dphi_{a + 1}{b + 1}" for a in range(N_STATIONS) for b in range(a + 1, N_STATIONS)]
    + ["eta"]
)
assert len(MUON_FEATURES) == 27


@dataclass
class split:
    """A seeded train/validation split.

    ``x_*`` are float32 feature matrices, ``y_*`` targets (class indices for Iris, ``PT_SCALE/pT``
    for muons); ``pt_*`` the true transverse momenta (muons only).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    pt_train: np.ndarray | None = None
    pt_val: np.ndarray | None = None


def _split(x, y, pt, val_fraction, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    pick = (lambda a, i: None if a is None else a[i])
    return split(x[train], y[train], x[val], y[val], pick(pt, train), pick(pt, val))


def iris(seed: int = 7, val_fraction: float = 0.3) -> split:
    """Iris (4 features, 3 classes) from ``sklearn.datasets.load_iris``, split with ``seed``."""
    from sklearn.datasets import load_iris

    d = load_iris()
    return _split(d.data.astype(np.float32), d.target.astype(np.int64), None, val_fraction, seed)


def muon_surrogate(n: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` surrogate barrel muons; returns ``(features[n, 27], pt[n])``.

    The model, chosen to have the structure that makes the CMS problem interesting rather than to
    reproduce the detector:

    - pT falls like dN/dpT ~ pT^-2 between 3 and 200 GeV (flat in 1/pT), charge +-1 with equal
      probability, eta uniform in [-1.2, 1.2] (the barrel), azimuth uniform inside a 30 degree
      sector.
    - Each of the four stations measures a local bending angle ``bend = q * b_s / pT`` (largest in
      MB1, where the field before the muon is strongest) and an azimuth ``phi = phi0 + q * a_s / pT``
      (the track drifts outward, less in the outer stations because the return-yoke field bends
      it back), plus multiple scattering with a spread proportional to 1/pT (it grows with the
      material crossed, i.e. with the station) and a constant detector resolution that depends on
      the hit's quality code (1..6, better codes are more precise).
    - ``theta`` is the longitudinal position, a smeared function of eta.
    - Stations are missing with probability 8-20% (features zero, ``valid`` 0, quality 0), and 2%
      of hits are wrong (a shower or a ghost: a random bending angle), which produces the tails.
    - Derived features: the six azimuth differences between station pairs (zero when either is
      missing) and the track-finder's eta.

    Angles are in units of 0.1 rad so that features are O(1); ``pt`` is in GeV.
    """
    rng = np.random.default_rng(seed)
    inv_pt = rng.uniform(1.0 / PT_MAX, 1.0 / PT_MIN, n)
    pt = 1.0 / inv_pt
    q = rng.choice([-1.0, 1.0], n)
    eta = rng.uniform(-1.2, 1.2, n)
    phi0 = rng.uniform(-0.26, 0.26, n)

    b = np.array([1.10, 0.80, 0.45, 0.25])          # bending-angle coefficient, rad GeV
    a = np.array([0.30, 0.38, 0.42, 0.44])          # azimuth drift, rad GeV
    ms = np.array([0.030, 0.045, 0.060, 0.075])     # multiple scattering, rad GeV
    p_missing = np.array([0.08, 0.10, 0.14, 0.20])
    r = np.array([4.0, 4.9, 5.9, 7.0])              # station radius, m

    x = np.zeros((n, 27), dtype=np.float64)
    phis = np.zeros((n, N_STATIONS))
    valid = np.zeros((n, N_STATIONS), dtype=bool)
    for s in range(N_STATIONS):
        quality = rng.integers(1, 7, n)
        res_bend = 0.004 + 0.012 / quality           # rad
        res_phi = 0.0005 + 0.002 / quality            # rad
        scatter = rng.normal(0.0, 1.0, n) * ms[s] * inv_pt
        bend = q * b[s] * inv_pt + scatter + rng.normal(0.0, res_bend)
        phi = phi0 + q * a[s] * inv_pt + 0.5 * scatter + rng.normal(0.0, res_phi)
        wrong = rng.random(n) < 0.02
        bend = np.where(wrong, rng.uniform(-0.4, 0.4, n), bend)
        theta = np.tanh(eta) * r[s] / 7.0 + rng.normal(0.0, 0.01, n)
        present = rng.random(n) >= p_missing[s]
        valid[:, s] = present
        phis[:, s] = phi
        col = 5 * s
        x[:, col + 0] = np.where(present, bend * 10.0, 0.0)
        x[:, col + 1] = np.where(present, phi * 10.0, 0.0)
        x[:, col + 2] = np.where(present, theta, 0.0)
        x[:, col + 3] = np.where(present, quality, 0)
        x[:, col + 4] = present
    col = 5 * N_STATIONS
    for i in range(N_STATIONS):
        for j in range(i + 1, N_STATIONS):
            both = valid[:, i] & valid[:, j]
            x[:, col] = np.where(both, (phis[:, j] - phis[:, i]) * 100.0, 0.0)
            col += 1
    x[:, col] = np.round((eta + rng.normal(0.0, 0.02, n)) * 64) / 64   # the track finder's eta LSB
    return x.astype(np.float32), pt.astype(np.float32)


def muons(n: int = 60000, seed: int = 11, val_fraction: float = 1 / 3, path: str | Path | None = None) -> split:
    """The muon data set: the surrogate (``n`` muons from ``seed``), or a real file when ``path`` is given."""
    if path is not None:
        x, pt = load_muon_file(path)
    else:
        x, pt = muon_surrogate(n, seed)
    return _split(x, (PT_SCALE / pt).astype(np.float32), pt, val_fraction, seed + 1)


def load_muon_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Load real muon data of the surrogate's shape.

    NPZ: arrays ``x`` (n x 27) and ``pt`` (n). CSV: a header row, 27 feature columns then a ``pt``
    column (GeV). Raises ``ValueError`` naming the file when the shape does not match.
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as f:
            if "x" not in f or "pt" not in f:
                raise ValueError(f"muon data file '{path}': expected arrays 'x' and 'pt', found {sorted(f.files)}")
            x, pt = np.asarray(f["x"], np.float32), np.asarray(f["pt"], np.float32)
    elif path.suffix == ".csv":
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        if len(rows) < 2:
            raise ValueError(f"muon data file '{path}': expected a header row and at least one data row")
        try:
            data = np.array(rows[1:], dtype=np.float32)
        except ValueError as e:
            raise ValueError(f"muon data file '{path}': non-numeric value ({e})") from None
        if data.ndim != 2 or data.shape[1] != 28:
            raise ValueError(f"muon data file '{path}': expected 28 columns (27 features, pt), found {data.shape[-1]}")
        x, pt = data[:, :27], data[:, 27]
    else:
        raise ValueError(f"muon data file '{path}': expected a .npz or .csv file")
    if x.ndim != 2 or x.shape[1] != 27 or pt.shape != (x.shape[0],):
        raise ValueError(f"muon data file '{path}': expected x of shape (n, 27) and pt of shape (n,), "
                         f"found {x.shape} and {pt.shape}")
    if not np.all(pt > 0):
        raise ValueError(f"muon data file '{path}': pt must be positive")
    return x, pt


class trigger_lut:
    """Level-1-trigger-style pT estimate: a lookup on the azimuth difference between two stations.

    Like a hardware track finder, it quantizes |dphi| between MB1 and MB2 (falling back to MB1-MB3,
    MB2-MB3, MB2-MB4, MB3-MB4 when a station is missing) into ``bins`` bins and reads a pT from a
    table filled with the median true pT of the training muons in each bin. Muons with no usable
    pair get the lowest threshold, ``PT_MIN``.
    """

    PAIRS = ((0, 1), (0, 2), (1, 2), (1, 3), (2, 3))

    def __init__(self, bins: int = 64, lsb: float = 0.25):
        self.bins, self.lsb = bins, lsb
        self.tables = np.full((len(self.PAIRS), bins), PT_MIN, dtype=np.float64)

    @staticmethod
    def _dphi_column(i, j):
        base = 5 * N_STATIONS
        k = 0
        for a in range(N_STATIONS):
            for b in range(a + 1, N_STATIONS):
                if (a, b) == (i, j):
                    return base + k
                k += 1
        raise ValueError(f"no station pair ({i}, {j})")

    def _select(self, x):
        pair = np.full(len(x), -1)
        for p, (i, j) in enumerate(self.PAIRS):
            usable = (pair < 0) & (x[:, 5 * i + 4] > 0) & (x[:, 5 * j + 4] > 0)
            pair[usable] = p
        bins = np.zeros(len(x), dtype=np.int64)
        for p, (i, j) in enumerate(self.PAIRS):
            sel = pair == p
            bins[sel] = np.minimum(np.abs(x[sel, self._dphi_column(i, j)]) / self.lsb, self.bins - 1).astype(np.int64)
        return pair, bins

    def fit(self, x: np.ndarray, pt: np.ndarray) -> "trigger_lut":
        pair, bins = self._select(x)
        for p in range(len(self.PAIRS)):
            for b in range(self.bins):
                sel = (pair == p) & (bins == b)
                if np.any(sel):
                    self.tables[p, b] = np.median(pt[sel])
                elif b > 0:
                    self.tables[p, b] = self.tables[p, b - 1]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        pair, bins = self._select(x)
        out = np.full(len(x), PT_MIN, dtype=np.float64)
        ok = pair >= 0
        out[ok] = self.tables[pair[ok], bins[ok]]
        return out


def resolution(pt_est: np.ndarray, pt_true: np.ndarray) -> np.ndarray:
    """The paper's pT resolution, delta = (pT_est - pT_true) / pT_true."""
    return (np.asarray(pt_est, np.float64) - pt_true) / pt_true


def resolution_summary(delta: np.ndarray) -> dict:
    """mean, std, q05, q50, q95 and the fraction below -0.9 of a resolution sample."""
    delta = np.asarray(delta, np.float64)
    return {
        "mean": float(np.mean(delta)),
        "std": float(np.std(delta)),
        "q05": float(np.quantile(delta, 0.05)),
        "q50": float(np.quantile(delta, 0.50)),
        "q95": float(np.quantile(delta, 0.95)),
        "frac_below_minus_0_9": float(np.mean(delta < -0.9)),
    }


def pt_from_output(y: np.ndarray) -> np.ndarray:
    """pT (GeV) from the network's ``PT_SCALE/pT`` output; outputs <= one LSB read as 2**-10."""
    return PT_SCALE / np.maximum(np.asarray(y, np.float64), 2.0**-10)
