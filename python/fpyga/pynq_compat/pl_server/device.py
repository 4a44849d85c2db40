"""PYNQ's ``pynq.pl_server.device``."""

from ...device import Device

__all__ = ["Device"]
