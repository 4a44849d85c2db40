"""Device buffers as NumPy arrays, shaped like PYNQ's ``pynq.allocate`` and ``PynqBuffer``."""

import numpy as np

from . import _core
from .device import Device, Memory

__all__ = ["PynqBuffer", "allocate"]


class PynqBuffer(np.ndarray):
    """A NumPy array over the host memory of a device buffer (zero-copy).

    Slices and views keep the buffer: ``buf[10:20].sync_to_device()`` copies only those bytes,
    and a slice passed to a kernel points it at the slice's first element. Results of arithmetic
    (``buf + 1``) are copies in ordinary memory, not device memory.

    Methods ``sync_to_device``/``flush``, ``sync_from_device``/``invalidate`` and the properties
    ``device_address``/``physical_address`` are implemented in fpyga's compiled core.
    """

    def freebuffer(self):
        """Releases the device memory now. The array's host memory stays readable while referenced,
        but the buffer can no longer be synced or passed to a kernel."""
        _core.buffer_of(self).free()

    def close(self):
        """Same as :meth:`freebuffer`."""
        self.freebuffer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.freebuffer()
        return False

    @property
    def coherent(self):
        """bool: always False: host and device memory are kept in step by explicit syncs."""
        return False

    @property
    def cacheable(self):
        """bool: True (the host side is ordinary cached memory)."""
        return True

    @property
    def device(self):
        """Device: the device that holds this buffer."""
        return Device.wrap(_core.buffer_of(self).device)

    @property
    def memory(self):
        """Memory: the bank that holds this buffer."""
        return Memory(_core.buffer_of(self).memory)

    @property
    def freed(self):
        """bool: True after :meth:`freebuffer`."""
        return _core.buffer_of(self).freed

    def __array_wrap__(self, out_arr, context=None, return_scalar=False):
        # Reductions give a scalar, not a 0-d array (as for plain ndarrays).
        if out_arr.ndim == 0:
            return out_arr[()]
        return np.ndarray.__array_wrap__(self, out_arr, context)


_core._install_array_methods(PynqBuffer)


def _target_memory(target):
    """The ``_core.memory`` a buffer goes to for allocate's ``target``."""
    if target is None:
        target = Device.active_device
    if isinstance(target, Device):
        return target.default_memory._core
    if isinstance(target, Memory):
        return target._core
    if isinstance(target, _core.memory):
        return target
    raise TypeError(
        f"allocate(): target must be a fpyga.Device or a memory bank of an overlay "
        f"(e.g. ol.bank0), got {type(target).__name__}"
    )


def allocate(shape, dtype="u4", target=None, cacheable=False, **kwargs):
    """Allocates a device buffer and returns it as a :class:`PynqBuffer`.

    Parameters
    ----------
    shape : int or tuple of int
        Shape of the array.
    dtype : numpy.dtype or str
        Element type (``'u4'`` by default, as in PYNQ).
    target : Device or Memory, optional
        Where the buffer lives: a memory bank of an overlay (``ol.bank1``), or a device (its
        single used bank). Default: the active device's single used bank.
    cacheable : bool
        Accepted for compatibility with PYNQ; host memory is always cacheable here.

    Returns
    -------
    PynqBuffer
        Zero-filled, backed by the buffer's 4 KiB-aligned host memory.

    Raises
    ------
    RuntimeError
        When no target is given and the device has no single used bank (the message says how
        to choose one).
    MemoryError
        When the bank is full.
    """
    dtype = np.dtype(dtype)
    shape = tuple(shape) if np.iterable(shape) else (int(shape),)
    count = 1
    for n in shape:
        if int(n) < 0:
            raise ValueError(f"allocate(): negative dimension in shape {shape}")
        count *= int(n)
    mem = _target_memory(target)
    buf = _core.buffer(mem.device, count * dtype.itemsize, mem)
    return np.ndarray.__new__(PynqBuffer, shape, dtype, buffer=buf)
