"""Inference over a Dask cluster: each worker drives its own devices, the chunks go to them.

>>> from distributed import Client                                   # doctest: +SKIP
>>> import fpyga.dask                                                # doctest: +SKIP
>>> client = Client(cluster)                                         # doctest: +SKIP
>>> net = fpyga.dask.register(client, open("muon.xclbin", "rb").read())  # doctest: +SKIP
>>> y = fpyga.dask.predict(net, X)   # X: a dask array (n, n_in); lazy  # doctest: +SKIP
>>> y.compute()                                                      # doctest: +SKIP

``register`` sends a :class:`ModelPlugin` to the workers: each claims devices of its host that no
other worker holds (or those it is told: ``FPYGA_DEVICE``, the resource ``FPGA``, a map), loads
the network once and keeps it. ``predict`` maps the network over the chunks of a Dask array or
the partitions of a Dask DataFrame (and, when dask-awkward is installed, an awkward array of
events): lazy, same partitioning, results in order, bit for bit ``fpyga.hls4ml.Model.predict``.
Needs ``dask`` and ``distributed`` (an optional dependency: ``pip install "dask[dataframe]" distributed``). See docs/cluster.md.
"""

from .claims import DeviceBusyError
from .plugin import DaskModel, ModelPlugin, NoDeviceError, register, status, unregister
from .predict import predict

__all__ = ["DaskModel", "DeviceBusyError", "ModelPlugin", "NoDeviceError", "predict", "register", "status",
           "unregister"]
