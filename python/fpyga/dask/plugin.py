"""The worker plugin: on each Dask worker, the devices it owns and the model loaded on them.

:func:`register` sends a :class:`ModelPlugin` to every worker of a cluster (and to every worker
that joins later, a restarted one included). On a worker, ``setup``

1. picks the worker's devices: an explicit map ``{worker name or address: spec(s)}``, else the
   worker's ``FPYGA_DEVICE`` (``"xrt:0"`` or ``"xrt:0,xrt:1"``), else as many free devices of
   the host as the worker's resource ``FPGA`` says (one without it), claimed host-wide
   (:mod:`fpyga.dask.claims`) so that the workers of one host never share a device;
2. opens them and loads the model once (:class:`fpyga.hls4ml.Model`: the xclbin on each device,
   its buffers allocated once), and keeps it for every task that follows;
3. advertises the worker resource ``fpyga-<name>`` when the model is ready, and reports the
   outcome in the worker's log, its ``fpyga`` event topic and :func:`status`.

Nothing of this is pickled: the plugin travels with the xclbin's bytes or a path and its
settings only; devices and the model exist only inside the worker process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from distributed import WorkerPlugin

from .claims import DeviceBusyError, DeviceClaim

__all__ = ["DaskModel", "ModelPlugin", "NoDeviceError", "register", "status", "unregister"]

logger = logging.getLogger("fpyga.dask")

#: Worker resource that says how many devices a worker takes when nothing names them.
DEFAULT_RESOURCE = "FPGA"


class NoDeviceError(RuntimeError):
    """The worker has no usable device for the model (none assigned, or it failed to open)."""


@dataclass(frozen=True)
class DaskModel:
    """What a task needs to find the model on its worker: small and picklable, no device in it.

    Returned by :func:`register`; pass it to :func:`fpyga.dask.predict`.
    """

    plugin: str                 #: the plugin's name on the workers
    digest: str                 #: sha256 of the xclbin: a task refuses another model by that name
    name: str                   #: the network's name
    input_shape: tuple
    output_shape: tuple
    info: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def resource(self) -> str:
        """The worker resource of the workers where the model is ready."""
        return _resource_name(self.plugin)

    def __dask_tokenize__(self):
        return ("fpyga.dask.DaskModel", self.plugin, self.digest)


def _resource_name(plugin_name: str) -> str:
    return f"fpyga-{plugin_name}"


def _network_info(description) -> dict | None:
    if description is None:
        return None
    return json.loads(description) if isinstance(description, str) else dict(description)


def _default_pool(backend):
    import fpyga

    devices = fpyga.Device.devices
    if backend is not None:
        return [d.spec for d in devices if d.backend == backend]
    # as fpyga's default device: cards first (XRT, Xilinx's OpenCL platform), else emu
    cards = [d.spec for d in devices
             if d.backend == "xrt" or (d.backend == "opencl" and "xilinx" in d.name.lower())]
    return cards or [d.spec for d in devices if d.backend == "emu"]


class ModelPlugin(WorkerPlugin):
    """Opens a worker's devices and loads one model on them, once, for all the worker's tasks.

    Parameters
    ----------
    xclbin : bytes, str or path
        The network's xclbin (from :func:`fpyga.hls4ml.build`): its bytes, shipped to every
        worker through the scheduler, or a path that every worker can read (a shared file
        system), for large hardware xclbins.
    name : str
        The plugin's name; several models may be registered under different names, each on
        devices of its own.
    devices : dict, list or None
        ``{worker name or address: "spec" or [specs]}`` assigns devices explicitly (a worker not
        in it gets none); a list is the pool that workers claim from; None: ``FPYGA_DEVICE`` of
        the worker, else claims from the host's cards, else from its emu devices.
    backend : str, optional
        Claim only devices of this backend (``"xrt"``, ``"emu"``, ...).
    resource : str
        The worker resource that says how many devices a worker claims (default ``"FPGA"``;
        one device for a worker without it).
    """

    idempotent = False

    def __init__(self, xclbin, *, name="fpyga", devices=None, backend=None, resource=DEFAULT_RESOURCE):
        if isinstance(xclbin, (bytes, bytearray, memoryview)):
            self.xclbin_bytes, self.xclbin_path = bytes(xclbin), None
            self.digest = hashlib.sha256(self.xclbin_bytes).hexdigest()
        elif isinstance(xclbin, (str, os.PathLike)):
            self.xclbin_bytes, self.xclbin_path = None, os.fspath(xclbin)
            # the client may not see the workers' file system: then the workers' copy decides
            self.digest = _file_digest(self.xclbin_path) if os.path.isfile(self.xclbin_path) else None
        else:
            raise TypeError(f"fpyga.dask: xclbin must be bytes or a path, got {type(xclbin).__name__}")
        if devices is not None and not isinstance(devices, (dict, list, tuple)):
            raise TypeError("fpyga.dask: devices must be a dict {worker: spec(s)}, a list of specs or None, "
                            f"got {type(devices).__name__}")
        self.name = name
        self.devices = dict(devices) if isinstance(devices, dict) else (None if devices is None else list(devices))
        self.backend = backend
        self.resource = resource
        self._reset()

    def _reset(self):
        self._model = None
        self._claims = []
        self._specs = []
        self._state = "not set up"
        self._error = None
        self._skipped = []
        self._loads = 0
        self._tasks = 0
        self._lock = threading.Lock()
        self._worker_label = "?"

    # The runtime state never travels: a plugin is pickled before setup, and if it is pickled
    # again (the scheduler keeps it for workers that join later) it starts afresh.
    def __getstate__(self):
        keep = ("xclbin_bytes", "xclbin_path", "digest", "name", "devices", "backend", "resource")
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset()

    # --- on the client -------------------------------------------------------------------------
    def client_info(self) -> dict | None:
        """The network's description, read on the client when it can see the xclbin."""
        from .. import _core

        if self.xclbin_bytes is not None:
            xcl = _core.xclbin.parse(self.xclbin_bytes, "<fpyga.dask xclbin>")
        elif os.path.isfile(self.xclbin_path):
            xcl = _core.xclbin.read(self.xclbin_path)
        else:
            return None
        info = _network_info(xcl.network)
        if info is None:
            raise ValueError(f"fpyga.dask: the xclbin ({self.xclbin_path or 'bytes'}) carries no network "
                             "description; build it with fpyga.hls4ml.build")
        return info

    # --- on the worker -------------------------------------------------------------------------
    async def setup(self, worker):
        self._worker_label = f"{worker.name} ({worker.address})"
        where = dict(name=worker.name, address=worker.address,
                     resources=dict(worker.state.total_resources), local_directory=worker.local_directory)
        # Opening devices and loading an xclbin can take seconds on a card: off the event loop.
        await asyncio.get_running_loop().run_in_executor(None, self._open, where)
        if self._state == "ready":
            await worker.set_resources(**{_resource_name(self.name): 1})
            logger.info("fpyga.dask: model '%s' ready on %s (%s)", self.name, self._worker_label,
                        ", ".join(self._specs))
        else:
            logger.error("fpyga.dask: model '%s' on worker %s: %s", self.name, self._worker_label, self._error)
        worker.log_event("fpyga", self.status())

    async def teardown(self, worker):
        self.close()
        if _resource_name(self.name) in worker.state.total_resources:
            await worker.set_resources(**{_resource_name(self.name): 0})

    def close(self):
        """Drops the model and gives the devices back."""
        with self._lock:
            self._model = None
            for c in self._claims:
                c.release()
            self._claims = []
            self._state = "closed"

    def _assigned(self, where):
        """The device specs this worker takes, or ``(count, pool)`` to claim from the host."""
        if self.devices is not None and isinstance(self.devices, dict):
            for key in (where["name"], str(where["name"]), where["address"]):
                if key in self.devices:
                    specs = self.devices[key]
                    return [specs] if isinstance(specs, str) else list(specs)
            raise NoDeviceError(f"worker {self._worker_label} has no entry in the device map "
                                f"(it names {sorted(map(str, self.devices))})")
        env = os.environ.get("FPYGA_DEVICE", "").strip()
        if self.devices is None and env:
            return [s.strip() for s in env.split(",") if s.strip()]
        count = where["resources"].get(self.resource, 1)
        if count < 1 or count != int(count):
            raise NoDeviceError(f"worker {self._worker_label}: resource {self.resource}={count} is not a "
                                "positive whole number of devices")
        pool = self.devices if self.devices is not None else _default_pool(self.backend)
        return int(count), list(pool)

    def _open(self, where):
        from ..hls4ml import Model

        try:
            assigned = self._assigned(where)
            if isinstance(assigned, tuple):
                count, pool = assigned
                devices = self._claim_from(pool, count)
            else:
                devices = [self._claim_named(spec) for spec in assigned]
        except Exception as e:  # noqa: BLE001 - any failure to get a device is reported, never raised
            self._fail("device error", e)
            return
        try:
            path = self._local_xclbin(where["local_directory"])
            self._model = Model(path, device=devices)
            self._loads += 1
            self._state = "ready"
        except Exception as e:  # noqa: BLE001 - the tasks raise it, naming this worker
            self._fail("load error", e)

    def _claim_named(self, spec):
        import fpyga

        claim = DeviceClaim(spec)
        self._claims.append(claim)
        try:
            device = fpyga.Device.open(spec)
        except Exception as e:
            raise NoDeviceError(f"device {spec} failed to open: {e}") from e
        self._specs.append(device.spec)
        return device

    def _claim_from(self, pool, count):
        import fpyga

        devices = []
        for spec in pool:
            if len(devices) == count:
                break
            try:
                claim = DeviceClaim(spec)
            except DeviceBusyError:
                continue
            try:
                device = fpyga.Device.open(spec)
            except Exception as e:  # noqa: BLE001 - a broken device of the pool is skipped, and said
                claim.release()
                self._skipped.append(f"{spec}: {e}")
                continue
            self._claims.append(claim)
            self._specs.append(device.spec)
            devices.append(device)
        if len(devices) < count:
            raise NoDeviceError(
                f"worker {self._worker_label} needs {count} device(s) and found {len(devices)} free in "
                f"[{', '.join(pool)}] (the other workers of the host hold the rest"
                + (f"; failed to open: {'; '.join(self._skipped)}" if self._skipped else "") + ")")
        return devices

    def _local_xclbin(self, local_directory) -> str:
        if self.xclbin_bytes is None:
            if not os.path.isfile(self.xclbin_path):
                raise FileNotFoundError(f"xclbin {self.xclbin_path} not found on this worker (a path must be "
                                        "one every worker sees; or pass the xclbin's bytes)")
            if self.digest is not None and _file_digest(self.xclbin_path) != self.digest:
                raise RuntimeError(f"xclbin {self.xclbin_path} on this worker differs from the client's copy")
            return self.xclbin_path
        d = Path(local_directory) / "fpyga"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{self.digest}.xclbin"
        if not path.is_file():
            tmp = d / f"{self.digest}.{os.getpid()}.tmp"
            tmp.write_bytes(self.xclbin_bytes)
            os.replace(tmp, path)
        return str(path)

    def _fail(self, state, e):
        self._state = state
        self._error = f"{type(e).__name__}: {e}"
        if state == "device error":
            for c in self._claims:
                c.release()
            self._claims, self._specs = [], []

    def status(self) -> dict:
        """This worker's view: its devices, the model's state, and counts of loads and tasks."""
        m = self._model
        return {"plugin": self.name, "state": self._state, "error": self._error, "devices": list(self._specs),
                "skipped": list(self._skipped), "compute_units": m.compute_units if m is not None else 0,
                "network": m.name if m is not None else None, "digest": self.digest,
                "loads": self._loads, "tasks": self._tasks, "pid": os.getpid()}

    def predict(self, x: np.ndarray, ref: DaskModel) -> np.ndarray:
        """Runs ``x`` (n, n_in) through the worker's model (tasks of one worker take turns).

        Raises
        ------
        NoDeviceError
            The worker has no device for the model (the caller sends the work elsewhere).
        RuntimeError
            The model failed to load here, or the worker holds another model under this name.
        """
        if self._state == "device error":
            raise NoDeviceError(f"fpyga.dask: worker {self._worker_label} has no device for model "
                                f"'{self.name}': {self._error}")
        if self._state == "load error":
            raise RuntimeError(f"fpyga.dask: model '{ref.name}' failed to load on worker {self._worker_label} "
                               f"(devices {', '.join(self._specs) or 'none'}): {self._error}")
        if self._state != "ready":
            raise RuntimeError(f"fpyga.dask: model '{self.name}' is {self._state} on worker {self._worker_label}")
        if self.digest is not None and ref.digest and self.digest != ref.digest:
            raise RuntimeError(f"fpyga.dask: worker {self._worker_label} holds another model under the name "
                               f"'{self.name}' (xclbin sha256 {self.digest[:12]}, the graph wants "
                               f"{ref.digest[:12]}): the graph was built before a new register()")
        # An unpickled array (every chunk a worker receives) carries a dtype equal to numpy's
        # but not numpy's own instance, which the core's check wants.
        canonical = np.dtype(x.dtype.name)
        if x.dtype is not canonical:
            x = x.view(canonical)
        with self._lock:
            if self._model is None:
                raise RuntimeError(f"fpyga.dask: model '{self.name}' is {self._state} on worker {self._worker_label}")
            self._tasks += 1
            return self._model.predict(x, progress=False)


def _file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _worker_status(name, dask_worker=None):
    plugin = dask_worker.plugins.get(name)
    if not isinstance(plugin, ModelPlugin):
        return {"plugin": name, "state": "not registered", "error": None, "devices": [], "pid": os.getpid()}
    s = plugin.status()
    s["name"] = dask_worker.name
    return s


def status(client, name="fpyga") -> dict:
    """Each worker's devices and model state, ``{worker address: {...}}``.

    Keys of each entry: ``state`` (``ready``, ``device error``, ``load error``, ``not registered``),
    ``error``, ``devices`` (specs), ``skipped`` (devices of the pool that failed to open),
    ``compute_units``, ``network``, ``loads``, ``tasks``, ``pid``, ``name`` (the worker's).
    """
    return client.run(_worker_status, name)


def register(client, xclbin, *, name="fpyga", devices=None, backend=None, resource=DEFAULT_RESOURCE) -> DaskModel:
    """Loads a network on every worker of ``client``'s cluster (and on workers that join later).

    Parameters are those of :class:`ModelPlugin`. Registering again under the same name replaces
    the model (each worker gives its devices back first).

    Returns
    -------
    DaskModel
        The handle to pass to :func:`fpyga.dask.predict`.

    Warns
    -----
    RuntimeWarning
        For each worker whose devices failed to open (its tasks go to the other workers) or whose
        model failed to load (a computation that runs a task there fails with this error).

    Raises
    ------
    ValueError
        The xclbin carries no network description.
    RuntimeError
        The client cannot read the xclbin and no worker could load it (nothing tells the
        network's shape).
    """
    plugin = ModelPlugin(xclbin, name=name, devices=devices, backend=backend, resource=resource)
    info = plugin.client_info()
    client.register_plugin(plugin, name=name)
    report = status(client, name)
    for address, s in sorted(report.items()):
        if s["state"] != "ready":
            warnings.warn(f"fpyga.dask: model '{name}' on worker {s.get('name')} ({address}): {s['state']}: "
                          f"{s['error']}", RuntimeWarning, stacklevel=2)
    if info is None:
        ready = [a for a, s in report.items() if s["state"] == "ready"]
        if not ready:
            raise RuntimeError(f"fpyga.dask: no worker loaded {xclbin!r}: "
                               + "; ".join(f"{a}: {s['error']}" for a, s in sorted(report.items())))
        info = client.run(_worker_info, name, workers=ready[:1])[ready[0]]
        digest = report[ready[0]]["digest"] or ""
    else:
        digest = plugin.digest or ""
    return DaskModel(plugin=name, digest=digest, name=info.get("name", "network"),
                     input_shape=tuple(info["inputs"][0]["shape"]), output_shape=tuple(info["outputs"][0]["shape"]),
                     info=info)


def _worker_info(name, dask_worker=None):
    return dict(dask_worker.plugins[name]._model.info)


def unregister(client, name="fpyga") -> None:
    """Drops the model from every worker and gives its devices back."""
    client.unregister_worker_plugin(name)
