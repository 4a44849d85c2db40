"""PYNQ's ``pynq.pl_server``: the device classes."""

from ...device import Device
from ...xclbin import XclBin
from .xrt_device import XrtDevice

__all__ = ["Device", "XclBin", "XrtDevice"]
