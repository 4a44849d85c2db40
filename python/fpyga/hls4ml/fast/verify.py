"""Proof, not hope: the fast path against hls4ml's C simulation of the same network.

Both are kernels of the same compiled object (``nn_batch`` with the fast path, ``nn_batch_csim``
the C simulation); :func:`compare` runs them on the same raw inputs through ctypes and reports the
first sample whose output bits differ. :func:`inputs` makes the inputs: every edge of the input
type (zero, +-1 LSB, the largest and smallest values, one input at an extreme and the others
zero), a ladder of magnitudes from 1 LSB to the full range (so every layer sees values that
saturate or wrap), exact rounding ties, and random samples.
"""

from __future__ import annotations

import ctypes
import concurrent.futures
from dataclasses import dataclass

import numpy as np

from . import fixed_type

__all__ = ["container_dtype", "inputs", "compare", "mismatch"]


def container_dtype(t: fixed_type) -> np.dtype:
    """The container ap_fixed keeps its bits in (sizeof(T)): int8/16/32/64."""
    for bits, dt in ((8, np.int8), (16, np.int16), (32, np.int32), (64, np.int64)):
        if t.width <= bits:
            return np.dtype(dt)
    raise ValueError(f"{t.text}: wider than 64 bits")


def _canonical(raw: np.ndarray, t: fixed_type) -> np.ndarray:
    """Raw codes reduced to the type's W bits, sign- or zero-extended, in its container."""
    raw = raw.astype(np.int64) & ((1 << t.width) - 1)
    if t.signed:
        raw = np.where(raw >= 1 << (t.width - 1), raw - (1 << t.width), raw)
    return raw.astype(container_dtype(t))


def inputs(t: fixed_type, n_in: int, n_random: int = 20000, seed: int = 0) -> np.ndarray:
    """Raw input containers of shape (n, n_in): the edges first, then n_random random samples."""
    rng = np.random.default_rng(seed)
    lo = -(1 << (t.width - 1)) if t.signed else 0
    hi = (1 << (t.width - 1)) - 1 if t.signed else (1 << t.width) - 1
    extremes = sorted({0, 1, -1 if t.signed else 2, hi, lo, hi - 1, lo + 1, hi >> 1, lo >> 1})
    rows = [np.full(n_in, v) for v in extremes]
    for v in extremes:  # one input at an extreme, the others zero
        for i in range(n_in):
            r = np.zeros(n_in, np.int64)
            r[i] = v
            rows.append(r)
    rows.append(np.where(np.arange(n_in) % 2 == 0, hi, lo))
    rows.append(np.where(np.arange(n_in) % 2 == 0, lo, hi))
    edges = np.array(rows, np.int64)
    # the ladder: uniform codes within +-2^k LSB for every k, 64 samples each
    ladder = np.concatenate([rng.integers(-(1 << k) if t.signed else 0, (1 << k) + 1, (64, n_in))
                             for k in range(t.width)])
    # exact ties of every rounding position: odd multiples of 2^(k-1)
    ties = np.concatenate([(rng.integers(-64, 64, (16, n_in)) * 2 + 1) << k for k in range(min(t.width - 2, 20))])
    parts = [edges, ladder, ties]
    if n_random > 0:
        q = n_random // 4
        scale = 2.0 ** (t.width - t.integer)  # 1.0 in LSBs
        parts += [rng.integers(lo, hi + 1, (q, n_in)),  # the whole range: saturates and wraps everywhere
                  np.round(rng.normal(0, 1.0, (q, n_in)) * scale),  # ordinary values
                  np.round(rng.normal(0, 4.0, (q, n_in)) * scale),
                  np.where(rng.random((n_random - 3 * q, n_in)) < 0.3,
                           rng.integers(lo, hi + 1, (n_random - 3 * q, n_in)), 0)]  # sparse extremes
    x = np.concatenate([np.clip(p.astype(np.int64), lo - (1 << t.width), hi + (1 << t.width)) for p in parts])
    if not t.signed:
        x = np.abs(x)
    return _canonical(x, t)


@dataclass
class mismatch:
    """The first sample whose fast-path output differs from the C simulation's."""

    sample: int
    inputs: np.ndarray
    fast: np.ndarray
    csim: np.ndarray
    layer: int = -2  #: index of the first layer whose outputs differ (-1 none, -2 not traced)

    def __str__(self):
        outs = np.flatnonzero(self.fast != self.csim)
        return (f"sample {self.sample} (raw inputs {self.inputs.tolist()}): output {outs[0]} is raw "
                f"{int(self.fast[outs[0]])} on the fast path, {int(self.csim[outs[0]])} in the C simulation "
                f"({len(outs)} of {len(self.fast)} outputs differ)")


def _kernel(lib, name):
    f = getattr(lib, name)
    f.restype = None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    return f


def compare(library: str, x: np.ndarray, n_out: int, out_dtype, *, threads: int = 1, chunk: int = 2048):
    """Runs ``nn_batch`` and ``nn_batch_csim`` of ``library`` (a kernel object) on the raw inputs
    ``x``; returns the first :class:`mismatch`, or None when every output bit agrees."""
    lib = ctypes.CDLL(str(library))
    try:
        fast, csim = _kernel(lib, "nn_batch"), _kernel(lib, "nn_batch_csim")
        x = np.ascontiguousarray(x)

        def run(start):
            part = x[start:start + chunk]
            a = np.zeros((len(part), n_out), out_dtype)
            b = np.ones((len(part), n_out), out_dtype)  # different, so a kernel that writes nothing shows
            fast(part.ctypes.data, a.ctypes.data, len(part))
            csim(part.ctypes.data, b.ctypes.data, len(part))
            bad = np.flatnonzero(np.any(a != b, axis=1))
            if bad.size:
                i = int(bad[0])
                return mismatch(start + i, part[i].copy(), a[i].copy(), b[i].copy())
            return None

        # the C simulation fills its activation tables at first use, unguarded: the first chunk alone
        results = [run(0)] if len(x) else []
        rest = range(chunk, len(x), chunk)
        if results and results[0] is None:
            if threads > 1:
                with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                    results += list(pool.map(run, rest))
            else:
                for s in rest:  # stop at the first difference
                    results.append(run(s))
                    if results[-1] is not None:
                        break
        first = next((r for r in results if r is not None), None)
        if first is not None and hasattr(lib, "fpyga_fast_first_layer_differing"):
            trace = lib.fpyga_fast_first_layer_differing
            trace.restype = ctypes.c_int
            trace.argtypes = [ctypes.c_void_p]
            sample = np.ascontiguousarray(first.inputs)
            first.layer = int(trace(sample.ctypes.data))
            del trace
        return first
    finally:
        import _ctypes

        handle = lib._handle
        del lib, fast, csim
        _ctypes.dlclose(handle)
