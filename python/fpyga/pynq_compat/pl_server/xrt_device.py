"""PYNQ's ``pynq.pl_server.xrt_device``: one device class serves every card (XRT, OpenCL) and
emu, so PYNQ's XRT class names are the same classes as fpyga's."""

from ...device import Device, Memory
from ...kernel import WaitHandle
from ...stream import Stream

__all__ = ["ErtWaitHandle", "XrtDevice", "XrtMemory", "XrtStream"]

XrtDevice = Device
XrtMemory = Memory
ErtWaitHandle = WaitHandle
XrtStream = Stream
