"""Driver classes, as PYNQ binds them: ``DefaultIP`` and subclasses naming the IP they drive.

A subclass with ``bindto = ["vendor:library:name:version"]`` is registered when the class is
created; an Overlay then builds each compute unit whose VLNV matches with that class, passing
its ``ip_dict`` entry, exactly as PYNQ does::

    class Vadd(fpyga.DefaultIP):
        bindto = ["xilinx.com:hls:vadd:1.0"]

        def __init__(self, description):
            super().__init__(description)

        def add(self, a, b, c):
            self.call(a, b, c, len(c))

    ol = fpyga.Overlay("vadd.xclbin")
    type(ol.vadd_1)                     # Vadd
"""

import warnings

from .device import Device
from .kernel import Kernel
from .mmio import MMIO

__all__ = ["DefaultIP", "RegisterIP", "UnsupportedConfiguration"]


class UnsupportedConfiguration(Exception):
    """Raised by a driver's ``__init__`` for a configuration of its IP it cannot drive; the
    overlay then warns and uses :class:`DefaultIP` for that IP (as PYNQ does)."""


#: VLNV (and VLNV without version) -> driver class, filled by ``RegisterIP``.
_ip_drivers = {}


class RegisterIP(type(Kernel)):
    """Metaclass of :class:`DefaultIP`: registers every class that sets ``bindto``."""

    def __init__(cls, name, bases, attrs):
        super().__init__(name, bases, attrs)
        if "bindto" in attrs:
            bindto = attrs["bindto"]
            if isinstance(bindto, str) or not all(isinstance(v, str) for v in bindto):
                raise TypeError(f"{name}.bindto must be a list of VLNV strings "
                                f"(['xilinx.com:hls:vadd:1.0']), got {bindto!r}")
            for vlnv in bindto:
                _ip_drivers[vlnv] = cls
                _ip_drivers[vlnv.rpartition(":")[0]] = cls

    def unregister(cls):
        """Removes this class from the driver registry."""
        for vlnv in getattr(cls, "bindto", ()):
            for key in (vlnv, vlnv.rpartition(":")[0]):
                if _ip_drivers.get(key) is cls:
                    del _ip_drivers[key]


def driver_for(description, ignore_version=False):
    """The driver class for an ``ip_dict`` entry: the class bound to its VLNV; with
    ``ignore_version``, one bound to another version of it (else a warning); else DefaultIP."""
    vlnv = description.get("type")
    if vlnv in _ip_drivers:
        return _ip_drivers[vlnv]
    unversioned = vlnv.rpartition(":")[0] if vlnv else None
    if unversioned in _ip_drivers:
        if ignore_version:
            return _ip_drivers[unversioned]
        others = [v for v in _ip_drivers if v.startswith(unversioned + ":")]
        warnings.warn(f"IP {description.get('fullpath')} is of type {vlnv} and a driver exists "
                      f"for [{', '.join(others)}]. Use ignore_version=True to use it.",
                      UserWarning, stacklevel=3)
    return DefaultIP


class DefaultIP(Kernel, metaclass=RegisterIP):
    """The driver of a compute unit without a more specific driver, and the base class of
    drivers (subclasses set ``bindto``).

    Parameters
    ----------
    description : dict
        The compute unit's ``ip_dict`` entry (``ol.ip_dict["vadd_1"]``). Its ``device`` names
        the device (default ``Device.active_device``); the overlay holding the compute unit
        must be loaded there.

    Attributes
    ----------
    mmio : MMIO
        The compute unit's register space (``read``, ``write``, ``array``).
    device : Device
    args : dict
        ``{name: XrtArgument(name, index, type, mem)}``, as PYNQ gives them.

    Raises
    ------
    RuntimeError
        When the overlay holding this compute unit is not loaded on the device.
    """

    def __init__(self, description):
        device = description.get("device") or Device.active_device
        name = description.get("fullpath")
        overlay = device._loaded_overlay()
        loaded = overlay is not None and overlay.is_loaded()
        if not loaded or name not in overlay.ip_dict or \
                overlay.ip_dict[name].get("xclbin_uuid") != description.get("xclbin_uuid"):
            raise RuntimeError(
                f"{type(self).__name__}: compute unit {name!r} (xclbin "
                f"{description.get('xclbin_uuid')}) is not loaded on device {device.spec}: "
                f"load its overlay first (fpyga.Overlay(...))")
        super().__init__(overlay._core, name, description)
        self.device = device
        self.mmio = MMIO._of_kernel(self, description["phys_addr"], description["addr_range"],
                                    device)
        self._interrupts = {}
        self._gpio = {}
        if "cu_index" in description:
            self.cu_mask = 1 << description["cu_index"]

    def start_ert(self, *args, waitfor=(), **kwargs):
        """PYNQ's name for ``start`` through XRT's scheduler (the only way fpyga starts runs)."""
        return self.start(*args, waitfor=waitfor, **kwargs)

    def start_sw(self, *args, ap_ctrl=1, waitfor=None, **kwargs):
        """PYNQ's register-level start: the same run as ``start``; ``ap_ctrl`` must be 1
        (AP_START), the only control value a scheduled run uses."""
        if ap_ctrl != 1:
            raise ValueError(f"{self.name}.start_sw: ap_ctrl={ap_ctrl!r}: only 1 (AP_START) is "
                             f"supported; write the CTRL register through register_map instead")
        return self.start(*args, waitfor=waitfor, **kwargs)

    def read(self, offset=0):
        """Reads the 32-bit register at byte ``offset`` (``self.mmio.read``)."""
        return self.mmio.read(offset)

    def write(self, offset, value):
        """Writes an int, or bytes as consecutive 32-bit words, at byte ``offset``
        (``self.mmio.write``)."""
        self.mmio.write(offset, value)

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__qualname__} {self.name} " \
               f"({self.kernel_name}){self.signature}>"
