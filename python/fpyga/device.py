"""Devices and their memory banks, shaped like PYNQ's ``pynq.Device``."""

import os

from . import _core

__all__ = ["Device", "Memory"]


class _DeviceMeta(type):
    """Gives ``Device`` PYNQ's class-level ``devices`` and settable ``active_device``."""

    @property
    def devices(cls):
        """list of Device: every device of every backend, cards first, emu last."""
        if cls._devices is None:
            cls._devices = [Device(d) for d in _core.devices()]
        return list(cls._devices)

    @property
    def active_device(cls):
        """Device: the device an Overlay or allocate() uses when none is given.

        Defaults to the device ``FPYGA_DEVICE`` names, else the first card, else emu.
        """
        if cls._active is None:
            cls._active = cls.wrap(_core.device.open(os.environ.get("FPYGA_DEVICE", "")))
        return cls._active

    @active_device.setter
    def active_device(cls, device):
        if not isinstance(device, Device):
            raise TypeError(
                f"active_device must be a fpyga.Device (one of Device.devices), got "
                f"{type(device).__name__}"
            )
        cls._active = device


class Device(metaclass=_DeviceMeta):
    """One device: a card seen by XRT or OpenCL, or the emulated device ``emu``.

    Use ``Device.devices`` to list them and ``Device.active_device`` to choose the default.

    Attributes
    ----------
    name : str
        The device's name as its runtime reports it.
    spec : str
        ``"backend:index"``, the string ``FPYGA_DEVICE`` accepts.
    """

    _devices = None
    _active = None

    def __init__(self, core):
        self._core = core

    @classmethod
    def wrap(cls, core):
        """The Device for a ``_core.device``, the same object each time."""
        for d in cls.devices:
            if d._core == core:
                return d
        dev = cls(core)
        cls._devices.append(dev)
        return dev

    @classmethod
    def open(cls, spec=""):
        """Opens a device by spec (``"emu"``, ``"emu:1"``, ``"xrt:0"``, ``"opencl:0"``).

        Parameters
        ----------
        spec : str
            The device to open; ``""`` is the default device.

        Returns
        -------
        Device
        """
        return cls.wrap(_core.device.open(spec))

    @property
    def name(self):
        """str: the device's name."""
        return self._core.name

    @property
    def backend(self):
        """str: ``"emu"``, ``"xrt"`` or ``"opencl"``."""
        return self._core.backend

    @property
    def index(self):
        """int: index among the devices of its backend."""
        return self._core.index

    @property
    def spec(self):
        """str: ``"backend:index"``."""
        return self._core.spec

    @property
    def memories(self):
        """list of Memory: the banks of the xclbin loaded on the device."""
        return [Memory(m) for m in self._core.memories()]

    @property
    def default_memory(self):
        """Memory: the single used bank of the loaded xclbin.

        Raises
        ------
        RuntimeError
            When nothing is loaded, or when several banks are in use (then choose one with
            ``allocate(..., target=ol.<bank>)``).
        """
        used = [m for m in self._core.memories() if m.used]
        if len(used) == 1:
            return Memory(used[0])
        if not used:
            raise RuntimeError(
                f"No active memories on device {self.spec} ({self.name}): load an overlay first "
                f"(fpyga.Overlay('file.xclbin', device=...)), or pass allocate(..., target=...)"
            )
        tags = ", ".join(m.tag for m in used)
        raise RuntimeError(
            f"Multiple memories active on device {self.spec} ({self.name}): {tags}. Choose one "
            f"with allocate(shape, dtype, target=ol.<bank>), e.g. target=ol."
            f"{_attribute_name(used[0].tag)}"
        )

    def __eq__(self, other):
        return isinstance(other, Device) and self._core == other._core

    def __hash__(self):
        return hash(self._core)

    def __repr__(self):
        return f"<fpyga.Device {self.spec} '{self.name}'>"


class Memory:
    """A memory bank of a loaded xclbin (an ``ol.<tag>`` attribute), usable as ``target``.

    Attributes
    ----------
    tag : str
        The bank's tag in MEM_TOPOLOGY (``bank0``, ``DDR[1]``, ``HBM[0]``...).
    idx : int
        Its index in MEM_TOPOLOGY.
    size : int
        Its size in bytes.
    """

    def __init__(self, core):
        self._core = core

    @property
    def tag(self):
        return self._core.tag

    @property
    def idx(self):
        return self._core.index

    @property
    def size(self):
        return self._core.size

    @property
    def base_address(self):
        return self._core.base_address

    @property
    def type(self):
        return self._core.type

    @property
    def used(self):
        return self._core.used

    @property
    def device(self):
        """Device: the device whose xclbin has this bank."""
        return Device.wrap(self._core.device)

    def allocate(self, shape, dtype="u4", **kwargs):
        """Allocates a buffer in this bank; see :func:`fpyga.allocate`."""
        from .buffer import allocate

        return allocate(shape, dtype, target=self, **kwargs)

    def __eq__(self, other):
        return isinstance(other, Memory) and self._core == other._core

    def __hash__(self):
        return hash(self._core)

    def __repr__(self):
        return f"<fpyga.Memory {self.tag} (index {self.idx}, {self.size} bytes)>"


def _attribute_name(tag):
    """An overlay's attribute name for a memory tag: its alphanumerics (``DDR[0]`` -> ``DDR0``)."""
    return "".join(c for c in tag if c.isalnum())
