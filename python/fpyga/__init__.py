"""fpyga: a host runtime for FPGA accelerator cards with PYNQ's Python API.

Existing PYNQ host code for Alveo and AWS F1 runs unchanged with ``import fpyga as pynq``,
on a card (XRT or OpenCL) or on the emulated device ``emu``.

Examples
--------
>>> import fpyga as pynq
>>> ol = pynq.Overlay("vadd.xclbin")                       # doctest: +SKIP
>>> a = pynq.allocate(1024, "u4"); b = pynq.allocate(1024, "u4")   # doctest: +SKIP
>>> c = pynq.allocate(1024, "u4")                          # doctest: +SKIP
>>> a[:] = 1; b[:] = 2; a.sync_to_device(); b.sync_to_device()     # doctest: +SKIP
>>> ol.vadd_1.call(a, b, c, 1024); c.sync_from_device()    # doctest: +SKIP
"""

from . import _core
from .buffer import PynqBuffer, allocate
from .device import Device, Memory
from .kernel import Kernel, RegisterMap, WaitHandle
from .overlay import DefaultIP, Overlay
from .pynq_alias import install_pynq_alias
from .xclbin import XclBin

__version__ = "0.1.0"

__all__ = [
    "DefaultIP",
    "Device",
    "Kernel",
    "Memory",
    "Overlay",
    "PynqBuffer",
    "RegisterMap",
    "WaitHandle",
    "XclBin",
    "allocate",
    "install_pynq_alias",
]
