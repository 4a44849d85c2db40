"""Devices and their memory banks, shaped like PYNQ's ``pynq.Device``."""

import os
import types
import weakref

from . import _core
from .repr_dict import ReprDict

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
    def backends(cls):
        """list of _core.backend_info: each backend of this build (name, available, reason,
        plugin); a backend whose plugin or vendor library is missing is listed with
        ``available`` False and the reason, and has no devices."""
        return _core.backends()

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
        self._loaded = None  # weak reference to the Overlay loaded here by this process

    def _loaded_overlay(self):
        """The Overlay loaded on this device by this process, or None."""
        overlay = self._loaded() if self._loaded is not None else None
        return overlay if overlay is not None and overlay.is_loaded() else None

    def _set_loaded_overlay(self, overlay):
        self._loaded = weakref.ref(overlay) if overlay is not None else None

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
        # Streams (host streams, kernel-to-kernel dc_N) are no place for a buffer.
        used = [m for m in self._core.memories() if m.used and m.raw_type not in (3, 9)]
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

    # Introspection, as PYNQ's XrtDevice.

    @property
    def bitfile_name(self):
        """str or None: path of the xclbin this process loaded on the device."""
        overlay = self._loaded_overlay()
        return overlay.bitfile_name if overlay is not None else None

    @property
    def ip_dict(self):
        """dict: the loaded overlay's ``ip_dict`` (empty when nothing is loaded)."""
        overlay = self._loaded_overlay()
        return overlay.ip_dict if overlay is not None else ReprDict(rootname="ip_dict")

    @property
    def mem_dict(self):
        """dict: the loaded overlay's ``mem_dict`` (empty when nothing is loaded)."""
        overlay = self._loaded_overlay()
        return overlay.mem_dict if overlay is not None else ReprDict(rootname="mem_dict")

    @property
    def clocks(self):
        """dict: ``{"clock<i>": {"frequency": MHz}}``, the clocks of the loaded xclbin.

        The frequencies are those the design was built for (CLOCK_FREQ_TOPOLOGY); empty when
        nothing is loaded or the xclbin names no clocks.
        """
        if hasattr(self._core, "clocks"):
            freqs = [c.frequency_mhz for c in self._core.clocks()]
        else:
            overlay = self._loaded_overlay()
            freqs = [c["frequency"] for c in overlay.clock_dict.values()] if overlay else []
        return ReprDict({f"clock{i}": {"frequency": f} for i, f in enumerate(f for f in freqs if f)},
                        rootname="clocks")

    @property
    def sensors(self):
        """dict: the power rails, ``{name: Rail}`` with ``voltage``, ``current`` and ``power``
        sensors, as PYNQ's ``get_xrt_sysfs_rails``. A device that measures nothing (emu, XRT's
        noop shim) lists PYNQ's rail names with sensors whose value is None."""
        from .pmbus import get_xrt_sysfs_rails

        return get_xrt_sysfs_rails(self)

    def get_memory(self, desc):
        """The Memory of a ``mem_dict`` entry."""
        return self.get_memory_by_idx(desc["idx"])

    def get_memory_by_idx(self, idx):
        """The Memory at MEM_TOPOLOGY index ``idx`` of the loaded xclbin.

        Raises
        ------
        RuntimeError
            When the loaded xclbin has no such memory (or nothing is loaded).
        """
        return self._find_memory(lambda m: m.index == idx, f"index {idx}")

    def get_memory_by_name(self, name):
        """The Memory tagged ``name`` (raw tag, ``"bank0"``, ``"DDR[1]"``) in the loaded xclbin.

        Raises
        ------
        RuntimeError
            When the loaded xclbin has no such memory (or nothing is loaded).
        """
        return self._find_memory(lambda m: m.tag == name, repr(name))

    def _find_memory(self, matches, what):
        banks = self._core.memories()
        for m in banks:
            if matches(m):
                return Memory(m)
        known = ("its memories are " + ", ".join(m.tag for m in banks)) if banks else \
            "no xclbin is loaded"
        raise RuntimeError(f"Could not find memory {what} on device {self.spec}: {known}")

    def get_usage(self):
        """Memory use per bank of the loaded xclbin, shaped like the XRT usage report PYNQ
        returns.

        Returns
        -------
        types.SimpleNamespace
            ``ddrMemUsed`` (bytes) and ``ddrBOAllocated`` (buffers), lists indexed by
            MEM_TOPOLOGY index; ``memSize`` (bytes); ``source``: who counted (``"emu"``: emu's
            allocator, ``"xrt"``: XRT's report, ``"fpyga"``: this process's own buffers).
        """
        banks = list(self._core.memories())
        n = max((m.index for m in banks), default=-1) + 1
        used, count, size = [0] * n, [0] * n, [0] * n
        sources = set()
        for m in banks:
            u = _usage(m)
            used[m.index], count[m.index], size[m.index] = u.used_bytes, u.buffers, m.size
            sources.add(u.source)
        return types.SimpleNamespace(ddrMemUsed=used, ddrBOAllocated=count, memSize=size,
                                     source=",".join(sorted(sources)))

    def allocate(self, shape, dtype="u4", **kwargs):
        """Allocates a buffer in the device's single used bank; see :func:`fpyga.allocate`."""
        from .buffer import allocate

        return allocate(shape, dtype, target=self, **kwargs)

    def close(self):
        """Releases the overlay this process loaded on the device (PYNQ closes its handle)."""
        overlay = self._loaded_overlay()
        if overlay is not None:
            overlay.free()

    def has_capability(self, cap):
        """bool: PYNQ's capability test: REGISTER_RW and CALLABLE, never MEMORY_MAPPED (no
        mmap of registers off a Zynq board)."""
        return cap in ("REGISTER_RW", "CALLABLE")

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

    @property
    def desc(self):
        """dict: the bank's ``mem_dict`` entry."""
        from .xclbin import _MEMORY_TYPE_NAMES

        m = self._core
        entry = {"raw_type": m.raw_type, "used": int(m.used)}
        if m.raw_type == 9:  # a stream connection: no address range
            entry.update(flow_id=m.base_address, route_id=m.size // 1024)
        else:
            entry.update(base_address=m.base_address, size=m.size)
        entry.update(type=_MEMORY_TYPE_NAMES.get(m.raw_type, f"type {m.raw_type}"),
                     streaming=m.raw_type == 9, idx=m.index, tag=m.tag)
        return ReprDict(entry, rootname=m.tag)

    @property
    def mem_used(self):
        """int: bytes allocated in the bank now (see ``Device.get_usage`` for who counts)."""
        return _usage(self._core).used_bytes

    @property
    def num_buffers(self):
        """int: buffers allocated in the bank now."""
        return _usage(self._core).buffers

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


# Buffers this process allocated, per bank: the count memory usage falls back to when the compiled
# core does not report it.
_live_buffers = {}


def _track(memory_core, array):
    refs = _live_buffers.setdefault(memory_core, {})
    key = id(array)
    refs[key] = weakref.ref(array, lambda _, refs=refs, key=key: refs.pop(key, None))


def _usage(memory_core):
    """The core's usage report of a bank, else this process's own count of its live buffers."""
    if hasattr(memory_core, "usage"):
        return memory_core.usage()
    arrays = [r() for r in list(_live_buffers.get(memory_core, {}).values())]
    live = [a for a in arrays if a is not None and not a.freed]
    return types.SimpleNamespace(index=memory_core.index, tag=memory_core.tag,
                                 used_bytes=sum(_core.buffer_of(a).size for a in live),
                                 buffers=len(live), source="fpyga")
