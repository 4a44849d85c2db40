"""``fpyga.hls4ml.Model``: predict with a network built by :func:`fpyga.hls4ml.build`.

A thin layer over the core's ``nn_model`` (C++ ``fpyga::nn_model``): the core loads the xclbin
on each device, allocates the buffers once, converts float to the network's ap_fixed types and
back, splits the batch over every compute unit and overlaps conversion with the kernel runs.
This layer checks shapes and dtypes, and shows progress.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

from .. import _core
from ..device import Device

__all__ = ["Model"]

#: Inputs shorter than this never show a progress bar.
_PROGRESS_MIN_SAMPLES = 20000


def _core_devices(device):
    if device is None:
        return [Device.active_device._core]
    items = device if isinstance(device, (list, tuple)) else [device]
    if not items:
        raise ValueError("device: an empty list; give a Device, a spec such as 'emu:0', or None")
    out = []
    for d in items:
        if isinstance(d, Device):
            out.append(d._core)
        elif isinstance(d, str):
            out.append(Device.open(d)._core)
        else:
            raise TypeError(f"device must be a fpyga.Device or a spec string such as 'emu:0', got {type(d).__name__}")
    return out


class Model:
    """An hls4ml network loaded on one or more devices.

    Parameters
    ----------
    xclbin : str or path
        An xclbin from :func:`fpyga.hls4ml.build` (or its hardware build): it carries the
        network's description.
    device : Device, str or list, optional
        The device(s) to run on; default ``Device.active_device``. With several, the batch is
        split over all their compute units.
    exact : {None, "csim"}, optional
        ``"csim"`` runs batches through hls4ml's C simulation itself (the ``nn_batch_csim``
        kernel a build keeps beside its verified fast path) instead of the fast path; the same
        bits, ~100x slower. None: the network's batch kernel.

    Examples
    --------
    >>> net = fpyga.hls4ml.Model("muon.xclbin")        # doctest: +SKIP
    >>> y = net.predict(X)                             # doctest: +SKIP
    """

    def __init__(self, xclbin, device=None, *, exact=None):
        self.xclbin = Path(os.fspath(xclbin))
        if exact not in (None, "csim"):
            raise ValueError(f"exact must be None or 'csim', got {exact!r}")
        self._devices = _core_devices(device)
        self._core = _core.nn_model(str(self.xclbin), self._devices, exact or "")
        info = self._core.info
        self.info = json.loads(info) if isinstance(info, str) else dict(info)

    # --- description -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The network's name."""
        return self.info.get("name", self.xclbin.stem)

    @property
    def input_shape(self) -> tuple:
        """Shape of one sample's input."""
        return tuple(self.info["inputs"][0]["shape"])

    @property
    def output_shape(self) -> tuple:
        """Shape of one sample's output."""
        return tuple(self.info["outputs"][0]["shape"])

    @property
    def n_inputs(self) -> int:
        return int(self._core.n_inputs)

    @property
    def n_outputs(self) -> int:
        return int(self._core.n_outputs)

    @property
    def input_type(self) -> str:
        """The input's ap_fixed type, e.g. ``ap_fixed<16,6>``."""
        return self.info["inputs"][0]["type"]

    @property
    def output_type(self) -> str:
        return self.info["outputs"][0]["type"]

    @property
    def compute_units(self) -> int:
        """Compute units used, over every device."""
        return int(self._core.compute_units)

    @property
    def devices(self) -> list:
        return [Device.wrap(d) for d in self._devices]

    def __repr__(self):
        return (f"<fpyga.hls4ml.Model '{self.name}' {self.input_shape} -> {self.output_shape}, "
                f"{self.compute_units} CU(s) on {', '.join(d.spec for d in self.devices)}>")

    # --- prediction --------------------------------------------------------------------------
    def _samples(self, X, what, dtypes):
        x = np.asarray(X)
        if x.dtype not in dtypes:
            names = " or ".join(np.dtype(d).name for d in dtypes)
            raise TypeError(f"Model '{self.name}': {what} takes {names} input, got {x.dtype}"
                            + (" (convert with X.astype(np.float32))" if what == "predict" else ""))
        n_in = self.n_inputs
        single = x.shape == self.input_shape or (x.ndim == 1 and x.size == n_in)
        if single:
            x = x.reshape(1, n_in)
        elif x.ndim >= 2 and x.shape[1:] in (self.input_shape, (n_in,)):
            x = x.reshape(x.shape[0], n_in)
        else:
            raise ValueError(f"Model '{self.name}': {what} expects input of shape (n, {n_in}) or "
                             f"(n, {', '.join(map(str, self.input_shape))}), got {x.shape}")
        return np.ascontiguousarray(x), single

    def _progress(self, n, progress):
        if progress is None:
            progress = n >= _PROGRESS_MIN_SAMPLES and sys.stderr.isatty()
        if not progress:
            return None, lambda: None
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"{self.name} predict", unit="sample", file=sys.stderr, leave=False,
                   mininterval=0.5)
        last = [0]

        def update(done):
            bar.update(done - last[0])
            last[0] = done

        return update, bar.close

    def predict(self, X, *, progress=None):
        """Runs the network on every sample of ``X``.

        Parameters
        ----------
        X : array_like of float32 or float64
            Shape ``(n, n_in)``, ``(n, *input_shape)``, or one sample.
        progress : bool, optional
            Show a progress bar; default on long inputs when stderr is a terminal.

        Returns
        -------
        numpy.ndarray
            ``(n, n_out)`` (``(n_out,)`` for one sample), of X's dtype: bit for bit what
            hls4ml's ``hls_model.predict(X)`` returns.

        Raises
        ------
        TypeError
            X is not float32 or float64.
        ValueError
            X's shape does not fit the network.
        """
        x, single = self._samples(X, "predict", (np.float32, np.float64))
        update, close = self._progress(len(x), progress)
        try:
            y = self._core.predict(x, update, x.dtype)
        finally:
            close()
        return y[0] if single else y

    def predict_raw(self, X_raw):
        """Runs the network on raw fixed-point bits: ``X_raw`` holds each input value's ap_fixed
        bits in its storage integer (int16 for ``ap_fixed<16,6>``); returns the raw output bits."""
        dtypes = (np.dtype(self._core.raw_input_dtype),)
        x, single = self._samples(X_raw, "predict_raw", dtypes)
        y = self._core.predict_raw(x)
        return y[0] if single else y
