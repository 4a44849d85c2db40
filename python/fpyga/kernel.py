"""Kernels (compute units) of an overlay, shaped like PYNQ's ``DefaultIP`` on Alveo/XRT.

``call`` and ``start`` are the compiled core's: the arguments are converted and checked in C++
against the kernel's metadata, and the GIL is released while the kernel runs.
"""

import inspect
import keyword

from . import _core

__all__ = ["Kernel", "Register", "RegisterMap", "WaitHandle"]

#: The handle ``Kernel.start`` returns: ``wait()``, ``done``, ``state``.
WaitHandle = _core.run


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
        ``{name: fpyga._core.kernel_arg}`` in argument order.
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
            for a in self.kernel_args
        ]
        self.signature = inspect.Signature(params)
        self.args = {a.name: a for a in self.kernel_args}
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
