"""Device buffers as NumPy arrays, shaped like PYNQ's ``pynq.allocate`` and ``PynqBuffer``."""

import operator

import numpy as np

from . import _core
from .device import Device, Memory, _track

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
    TypeError
        For a shape that is not integers (``1.5``), or a dtype that is not plain data
        (``object``, or a structured dtype with an object field).
    RuntimeError
        When no target is given and the device has no single used bank (the message says how
        to choose one).
    MemoryError
        When the bank is full, or the shape needs more bytes than the bank holds (the message
        says how many).
    """
    dtype = _plain_dtype(dtype)
    shape = _shape(shape)
    count = 1
    for n in shape:
        count *= n
    nbytes = count * dtype.itemsize
    mem = _target_memory(target)
    if nbytes > mem.size:
        # Also keeps sizes beyond 64 bits from reaching the core as an argument it cannot take.
        raise MemoryError(
            f"allocate(): shape {shape} of {dtype} needs {nbytes} bytes ({_human(nbytes)}), more "
            f"than memory '{mem.tag}' holds ({mem.size} bytes, {_human(mem.size)})"
        )
    buf = _core.buffer(mem.device, nbytes, mem)
    array = np.ndarray.__new__(PynqBuffer, shape, dtype, buffer=buf)
    if not hasattr(mem, "usage"):
        _track(mem, array)  # a core without usage reports: Memory.mem_used counts these
    return array


def _plain_dtype(dtype):
    """``dtype`` as a numpy.dtype, refusing types whose elements are not plain data.

    A kernel writes raw bytes into a device buffer and NumPy reads them back as elements: for
    object references (``dtype=object``, or a structured type with an object field) or NumPy's
    variable-width strings those bytes would be dereferenced as pointers.
    """
    dtype = np.dtype(dtype)
    if dtype.hasobject or dtype.kind not in _PLAIN_KINDS:
        raise TypeError(
            f"allocate(): dtype {dtype!r} cannot back a device buffer: its elements are "
            f"references to Python or NumPy objects, not plain data. Use a numeric, bool, "
            f"fixed-width string or structured dtype of those"
        )
    return dtype


# bool, integers, floats, complex, fixed-width bytes and str, structured/void, datetimes.
_PLAIN_KINDS = frozenset("biufcSUVmM")


def _shape(shape):
    """``shape`` as a tuple of non-negative ints; a float (``1.5``) is a TypeError, as in NumPy."""
    dims = tuple(shape) if np.iterable(shape) else (shape,)
    out = []
    for n in dims:
        try:
            n = operator.index(n)
        except TypeError:
            raise TypeError(
                f"allocate(): shape must be an int or a tuple of ints, got {shape!r} "
                f"({type(n).__name__} {n!r} is not an integer)"
            ) from None
        if n < 0:
            raise ValueError(f"allocate(): negative dimension in shape {shape!r}")
        out.append(n)
    return tuple(out)


def _human(nbytes):
    """``nbytes`` in the largest binary unit that keeps it at least 1 (``16 EiB``)."""
    if nbytes < 1024:
        return f"{nbytes} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        nbytes /= 1024
        if nbytes < 1024 or unit == "EiB":
            return f"{nbytes:.4g} {unit}"
