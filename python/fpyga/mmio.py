"""Register access shaped like PYNQ's ``pynq.MMIO``: 32-bit words of a compute unit's AXI-lite
space, by byte offset from a base address.

On Alveo/XRT, PYNQ reaches registers through the device (``read_registers`` at an absolute
address); fpyga does the same through the compute unit whose address range holds the window, so
the window must lie inside one compute unit of the overlay loaded on the device.
"""

import numbers
import warnings

import numpy as np

__all__ = ["MMIO"]


class MMIO:
    """A window of a device's register space, read and written in 32-bit words.

    Parameters
    ----------
    base_addr : int
        Absolute address of the window (a compute unit's ``phys_addr`` plus an offset).
    length : int
        Length of the window in bytes (default 4).
    device : Device, optional
        The device; default ``Device.active_device``.

    Attributes
    ----------
    base_addr : int
    length : int
    device : Device
    array : sequence of uint32
        The window as 32-bit words: ``mmio.array[i]`` reads word ``i``, assigning writes it.

    Raises
    ------
    ValueError
        For a negative address or length, or a window outside every compute unit of the loaded
        overlay (the message lists them).
    RuntimeError
        When no overlay is loaded on the device.
    """

    def __init__(self, base_addr, length=4, device=None, **kwargs):
        if "debug" in kwargs:
            warnings.warn("MMIO: keyword debug is deprecated (as in PYNQ)", DeprecationWarning,
                          stacklevel=2)
            kwargs.pop("debug")
        if kwargs:
            raise TypeError(f"MMIO() got unexpected keyword arguments: {', '.join(kwargs)}")
        if base_addr < 0 or length < 0:
            raise ValueError(f"MMIO: base address {base_addr:#x} and length {length} cannot be "
                             f"negative")
        from .device import Device

        if device is None:
            device = Device.active_device
        elif not isinstance(device, Device):
            raise TypeError(f"MMIO: device must be a fpyga.Device, got {type(device).__name__}")
        kernel, offset = _compute_unit_at(device, base_addr, length)
        self._init(kernel, offset, base_addr, length, device)

    @classmethod
    def _of_kernel(cls, kernel, base_addr, length, device):
        """The MMIO of a compute unit's whole register space (what a DefaultIP holds)."""
        mmio = cls.__new__(cls)
        mmio._init(kernel, 0, base_addr, length, device)
        return mmio

    def _init(self, kernel, offset, base_addr, length, device):
        self._kernel = kernel
        self._offset = offset
        self.base_addr = base_addr
        self.length = length
        self.device = device
        self.array = _Words(self)

    def _check(self, offset, nbytes, what):
        if not isinstance(offset, numbers.Integral) or isinstance(offset, bool):
            raise TypeError(f"MMIO.{what}: offset must be an int, got {type(offset).__name__}")
        if offset < 0:
            raise ValueError(f"MMIO.{what}: offset {offset} cannot be negative")
        if offset % 4:
            # PYNQ's exception type for unaligned access.
            raise MemoryError(f"MMIO.{what}: unaligned offset {offset:#x}: must be a multiple "
                              f"of 4")
        if offset + nbytes > self.length:
            raise ValueError(f"MMIO.{what}: {nbytes} bytes at offset {offset:#x} do not fit "
                             f"the window of {self.length} bytes at {self.base_addr:#x}")

    def _read_word(self, offset):
        return self._kernel.read_register(self._offset + offset)

    def _write_word(self, offset, value):
        self._kernel.write_register(self._offset + offset, value)

    def read(self, offset=0, length=4, word_order="little"):
        """Reads 1, 2, 4 or 8 bytes at ``offset``.

        Parameters
        ----------
        offset : int
            Byte offset in the window (a multiple of 4).
        length : int
            1, 2 or 4 (the low bytes of one word) or 8 (two words).
        word_order : str
            For 8 bytes: ``"little"`` (the word at ``offset`` is the low half) or ``"big"``.

        Returns
        -------
        int
        """
        if length not in (1, 2, 4, 8):
            raise ValueError(f"MMIO.read: length {length}: only 1, 2, 4 and 8-byte reads exist")
        if length == 8 and word_order not in ("little", "big"):
            raise ValueError(f"MMIO.read: word_order {word_order!r}: 'little' or 'big'")
        self._check(offset, max(length, 4), "read")
        low = self._read_word(offset)
        if length == 8:
            high = self._read_word(offset + 4)
            return (high << 32) | low if word_order == "little" else (low << 32) | high
        return low & ((1 << (8 * length)) - 1)

    def write(self, offset, data):
        """Writes one 32-bit word (an int) or consecutive words (bytes) at ``offset``.

        Parameters
        ----------
        offset : int
            Byte offset in the window (a multiple of 4).
        data : int or bytes-like
            A value from -2**31 to 2**32-1, or a byte string whose length is a multiple of 4
            (little-endian words).
        """
        if isinstance(data, numbers.Integral) and not isinstance(data, bool):
            data = int(data)
            if not -(1 << 31) <= data < (1 << 32):
                raise ValueError(f"MMIO.write: value {data} does not fit a 32-bit register")
            self._check(offset, 4, "write")
            self._write_word(offset, data & 0xFFFFFFFF)
            return
        if isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
            if len(raw) % 4:
                raise MemoryError(f"MMIO.write: {len(raw)} bytes is not a whole number of "
                                  f"32-bit words")
            self._check(offset, len(raw), "write")
            for i, word in enumerate(np.frombuffer(raw, "<u4")):
                self._write_word(offset + 4 * i, int(word))
            return
        raise ValueError(f"MMIO.write: data must be an int or bytes, got {type(data).__name__}")

    def __repr__(self):
        return f"<fpyga.MMIO {self.base_addr:#x} +{self.length:#x} on {self.device.spec}>"


class _Words:
    """``MMIO.array``: the window as 32-bit words, each access a register read or write."""

    dtype = np.dtype("u4")

    def __init__(self, mmio):
        self._mmio = mmio

    @property
    def shape(self):
        return (len(self),)

    def __len__(self):
        return self._mmio.length // 4

    def _indices(self, index, what):
        if isinstance(index, slice):
            return range(*index.indices(len(self))), True
        try:
            i = int(np.asarray(index).item()) if not isinstance(index, int) else index
        except (TypeError, ValueError):
            raise TypeError(f"MMIO.array{what}: index must be an int or a slice") from None
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"MMIO.array{what}: word {i} is outside the window of {n} words")
        return range(i % n, i % n + 1), False

    def __getitem__(self, index):
        words, many = self._indices(index, "[]")
        values = [self._mmio._read_word(4 * i) for i in words]
        return np.array(values, dtype=self.dtype) if many else self.dtype.type(values[0])

    def __setitem__(self, index, value):
        words, many = self._indices(index, "[]=")
        values = np.broadcast_to(np.asarray(value), (len(words),)) if many else [value]
        for i, v in zip(words, values):
            self._mmio.write(4 * i, int(v))

    def __iter__(self):
        return iter(self[:])

    def __array__(self, dtype=None, copy=None):
        a = self[:]
        return a.astype(dtype) if dtype is not None else a

    def __repr__(self):
        return f"<fpyga.MMIO array: {len(self)} uint32 words at {self._mmio.base_addr:#x}>"


def _compute_unit_at(device, base_addr, length):
    """The kernel handle of the compute unit whose register space holds the window, and the
    window's offset in it."""
    from . import _core

    overlay = device._loaded_overlay()
    if overlay is None:
        raise RuntimeError(f"MMIO: no overlay is loaded on device {device.spec}: load one "
                           f"(fpyga.Overlay(...)) before reaching its registers")
    spaces = []
    for name, ip in overlay.ip_dict.items():
        base, size = ip.get("phys_addr"), ip.get("addr_range", 0)
        if base is None or not size:
            continue
        spaces.append(f"{name} at {base:#x} +{size:#x}")
        if base <= base_addr and base_addr + length <= base + size:
            return _core.kernel(overlay._core, name), base_addr - base
    raise ValueError(f"MMIO: {length} bytes at {base_addr:#x} are not inside the register space "
                     f"of a compute unit on {device.spec} ({'; '.join(spaces) or 'none'})")
