"""Kernels (compute units) of an overlay, shaped like PYNQ's ``DefaultIP`` on Alveo/XRT.

``call`` and ``start`` are the compiled core's: the arguments are converted and checked in C++
against the kernel's metadata, and the GIL is released while the kernel runs.
"""

import asyncio
import collections
import inspect
import keyword

from . import _core

__all__ = ["Kernel", "Register", "RegisterMap", "WaitHandle", "XrtArgument"]

#: The handle ``Kernel.start`` returns: ``wait()``, ``wait_async()``, ``done``, ``state``.
WaitHandle = _core.run


async def _wait_async(self):
    """Waits for the run without blocking the event loop (``await handle.wait_async()``)."""
    if not self.done:
        # wait() releases the GIL; a worker thread holds it, the loop stays free.
        await asyncio.get_running_loop().run_in_executor(None, self.wait)
    self.wait()  # raises the run's error, if it failed


WaitHandle.wait_async = _wait_async


class XrtArgument(collections.namedtuple("XrtArgument", ["name", "index", "type", "mem"])):
    """One entry of ``Kernel.args``, as PYNQ gives it: ``(name, index, type, mem)`` with
    ``index`` counted from 1 in register order (PYNQ's numbering) and ``mem`` the bank tag
    (``None`` for scalars). The core's view of the argument (``kind``, ``offset``, ``size``,
    ``memories``...) is reachable as attributes too."""

    # No __slots__: each instance keeps its core argument in its own __dict__.
    def __getattr__(self, name):
        arg = self.__dict__.get("_arg")
        if arg is not None and not name.startswith("_"):
            return getattr(arg, name)
        raise AttributeError(f"XrtArgument has no attribute {name!r}")


def _xrt_arguments(kernel_args, description):
    registers = description.get("registers", {})
    args = {}
    for a in kernel_args:
        if a.kind == "stream":
            continue  # streams are not registers, and PYNQ does not list them in args
        mem = registers.get(a.name, {}).get("memory")
        x = XrtArgument(a.name, len(args) + 1, a.type, mem)
        x._arg = a
        args[a.name] = x
    return args


class Kernel(_core.kernel):
    """A kernel of a loaded overlay: one compute unit (``ol.vadd_1``), or every compute unit of
    the kernel (``ol.vadd``), in which case each run goes to an idle one.

    Methods
    -------
    call(*args, **kwargs)
        Runs the kernel with these arguments and waits for it.
    start(*args, waitfor=(), **kwargs)
        Starts the kernel once the runs in ``waitfor`` have finished; returns a
        :data:`WaitHandle` with ``wait()`` and ``done``.

    Attributes
    ----------
    description : dict
        The compute unit's ``ip_dict`` entry (for a kernel over several CUs, the first one's).
    signature : inspect.Signature
        Parameters named like the kernel's arguments, annotated with their C types.
    args : dict
        ``{name: XrtArgument(name, index, type, mem)}`` in register order, as in PYNQ.
    register_map : RegisterMap
        The AXI-lite registers of the (first) compute unit.
    """

    def __init__(self, overlay, name, description=None):
        super().__init__(overlay, name)
        self.description = description or {}
        self.name = name
        params = [
            inspect.Parameter(_parameter_name(a.name), inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=a.type)
            for a in self.kernel_args if a.kind != "stream"  # streams are not host arguments
        ]
        self.signature = inspect.Signature(params)
        self.args = _xrt_arguments(self.kernel_args, self.description)
        self._register_map = None

    @property
    def register_map(self):
        """RegisterMap: the AXI-lite registers, readable and writable by name."""
        if self._register_map is None:
            self._register_map = RegisterMap(self)
        return self._register_map

    def read(self, offset=0):
        """Reads the 32-bit register at byte ``offset``.

        Parameters
        ----------
        offset : int
            Byte offset in the compute unit's AXI-lite space.

        Returns
        -------
        int
        """
        return self.read_register(offset)

    def write(self, offset, value):
        """Writes the 32-bit register at byte ``offset``.

        Parameters
        ----------
        offset : int
            Byte offset in the compute unit's AXI-lite space.
        value : int
            The value (0 to 2**32-1).
        """
        self.write_register(offset, value)

    def __repr__(self):
        cus = ", ".join(self.compute_units)
        return f"<fpyga.Kernel {self.name} ({self.kernel_name}: {cus}){self.signature}>"


def _parameter_name(name):
    """A kernel argument's name as a Python parameter: keywords get a trailing underscore
    (``in`` -> ``in_``); call() and start() accept both spellings as keywords."""
    return name + "_" if keyword.iskeyword(name) else name


class Register:
    """One register of a :class:`RegisterMap`: its value (``int(reg)``) and bit fields."""

    def __init__(self, kernel, name, offset, bits, fields=None):
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_offset", offset)
        object.__setattr__(self, "_words", max(1, (bits + 31) // 32))
        object.__setattr__(self, "_fields", fields or {})

    @property
    def value(self):
        """int: the register's value (64-bit arguments read as two words)."""
        v = 0
        for w in range(self._words):
            v |= self._kernel.read_register(self._offset + 4 * w) << (32 * w)
        return v

    @value.setter
    def value(self, v):
        v = int(v)
        for w in range(self._words):
            self._kernel.write_register(self._offset + 4 * w, (v >> (32 * w)) & 0xFFFFFFFF)

    def __int__(self):
        return self.value

    __index__ = __int__

    @property
    def width(self):
        """int: the register's width in bits (32, or 64 for pointers)."""
        return 32 * self._words

    def __getitem__(self, index):
        """Bits of the value, as PYNQ's ``Register`` slices them: ``reg[3]`` is bit 3,
        ``reg[7:4]`` bits 7 down to 4 (both ends included), and an ascending slice
        ``reg[0:3]`` the same bits in reversed order."""
        low, high, reverse = _bit_range(index, self.width)
        width = high - low + 1
        bits = (self.value >> low) & ((1 << width) - 1)
        return _reverse_bits(bits, width) if reverse else bits

    def __setitem__(self, index, value):
        """Writes bits of the register (a read-modify-write), indexed as in ``__getitem__``."""
        low, high, reverse = _bit_range(index, self.width)
        width = high - low + 1
        value = int(value)
        if not 0 <= value < (1 << width):
            raise ValueError(f"register {self._name}: {value} does not fit bits {high}:{low} "
                             f"({width} bits)")
        if reverse:
            value = _reverse_bits(value, width)
        mask = ((1 << width) - 1) << low
        self.value = (self.value & ~mask) | (value << low)

    def __getattr__(self, name):
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            f = fields[name]
            return (self.value >> f["bit_offset"]) & ((1 << f["bit_width"]) - 1)
        raise AttributeError(f"register {self._name} has no field {name!r} (fields: "
                             f"{', '.join(fields) or 'none'})")

    def __setattr__(self, name, v):
        if name == "value":
            object.__setattr__(self, name, v)
            return
        if name not in self._fields:
            raise AttributeError(f"register {self._name} has no field {name!r}")
        f = self._fields[name]
        if f["access"] == "read-only":
            raise AttributeError(f"field {self._name}.{name} is read-only")
        mask = ((1 << f["bit_width"]) - 1) << f["bit_offset"]
        self.value = (self.value & ~mask) | ((int(v) << f["bit_offset"]) & mask)

    def __repr__(self):
        try:
            v = self.value
        except Exception as e:  # registers a backend cannot read (XRT's noop shim)
            return f"Register(<unreadable: {e}>)"
        if self._fields:
            parts = ", ".join(
                f"{n}={(v >> f['bit_offset']) & ((1 << f['bit_width']) - 1)}"
                for n, f in self._fields.items()
            )
            return f"Register({parts})"
        return f"Register(value={v})"


def _bit_range(index, width):
    """``(low, high, reversed)`` bit positions of a PYNQ register index or closed slice."""
    if isinstance(index, int):
        if not 0 <= index < width:
            raise IndexError(f"bit {index} is outside a {width}-bit register")
        return index, index, False
    if not isinstance(index, slice):
        raise TypeError(f"register bits are indexed by an int or a slice, not "
                        f"{type(index).__name__}")
    start, stop, step = index.start, index.stop, index.step
    if step in (None, -1):
        start = width - 1 if start is None else start
        stop = 0 if stop is None else stop
    elif step == 1:
        start = 0 if start is None else start
        stop = width - 1 if stop is None else stop
    else:
        raise ValueError(f"register slice step {step}: only 1 and -1 are valid")
    for end in (start, stop):
        if not 0 <= end < width:
            raise IndexError(f"slice end {end} is outside a {width}-bit register")
    return (stop, start, False) if start >= stop else (start, stop, True)


def _reverse_bits(value, width):
    return int(format(value, f"0{width}b")[::-1], 2)


class RegisterMap:
    """The AXI-lite registers of a kernel's compute unit, by name.

    ``rm.CTRL.AP_IDLE`` reads a field, ``rm.size = 16`` writes an argument register, and
    ``print(rm)`` lists them all.
    """

    def __init__(self, kernel):
        regs = {}
        described = kernel.description.get("registers")
        if described:
            for name, r in described.items():
                bits = r["size"] * 8 if name == "CTRL" else r["size"]
                regs[name] = Register(kernel, name, r["address_offset"], bits, r.get("fields"))
        else:
            from .xclbin import _ctrl_register

            regs["CTRL"] = Register(kernel, "CTRL", 0, 32, _ctrl_register("ap_ctrl_hs")["fields"])
            for a in kernel.kernel_args:
                if a.kind != "stream":
                    regs[a.name] = Register(kernel, a.name, a.offset, a.size * 8)
        object.__setattr__(self, "_registers", regs)

    def __getattr__(self, name):
        regs = object.__getattribute__(self, "_registers")
        if name in regs:
            return regs[name]
        raise AttributeError(f"no register {name!r} (registers: {', '.join(regs)})")

    def __setattr__(self, name, value):
        if name not in self._registers:
            raise AttributeError(f"no register {name!r} (registers: {', '.join(self._registers)})")
        self._registers[name].value = value

    def __dir__(self):
        return list(self._registers)

    def __iter__(self):
        return iter(self._registers.items())

    def __repr__(self):
        lines = [f"  {n} = {r!r}," for n, r in self._registers.items()]
        return "RegisterMap {\n" + "\n".join(lines) + "\n}"
