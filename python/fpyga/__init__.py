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
from ._core import FpygaWarning
from ._paths import get_cmake_dir, get_include
from .buffer import PynqBuffer, allocate
from .device import Device, Memory
from .driver import DefaultIP, UnsupportedConfiguration
from .kernel import Kernel, Register, RegisterMap, WaitHandle, XrtArgument
from .mmio import MMIO
from .overlay import Overlay
from .pmbus import DataRecorder, get_rails
from .pynq_alias import install_pynq_alias
from .xclbin import XclBin

#: The one version: project(fpyga VERSION ...) in CMakeLists.txt, compiled into _core (and read from the
#: same line into the package metadata, the CLI and the CMake package).
__version__ = _core.__version__

__all__ = [
    "DataRecorder",
    "DefaultIP",
    "Device",
    "FpygaWarning",
    "Kernel",
    "MMIO",
    "Memory",
    "Overlay",
    "PynqBuffer",
    "Register",
    "RegisterMap",
    "UnsupportedConfiguration",
    "WaitHandle",
    "XclBin",
    "XrtArgument",
    "allocate",
    "get_cmake_dir",
    "get_include",
    "get_rails",
    "install_pynq_alias",
]

# Modules PYNQ code reaches as attributes after a bare `import pynq` (pynq.ps.CPU_ARCH,
# pynq.pl_server.Device), imported on first use.
_PYNQ_MODULES = {"ps": ".pynq_compat.ps", "pl_server": ".pynq_compat.pl_server",
                 "registers": ".pynq_compat.registers"}


def __getattr__(name):
    if name in _PYNQ_MODULES:
        import importlib

        return importlib.import_module(_PYNQ_MODULES[name], __name__)
    raise AttributeError(f"module 'fpyga' has no attribute {name!r}")
