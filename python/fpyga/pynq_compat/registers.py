"""PYNQ's ``pynq.registers``: a kernel's registers, bit-sliceable (``rm.size[3:0]``)."""

from ..kernel import Register, RegisterMap

__all__ = ["Register", "RegisterMap"]
