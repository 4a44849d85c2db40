"""PYNQ's ``pynq.ps`` names a host program tests: the CPU architecture.

PYNQ's clock control (``Clocks``, the PS registers of a Zynq) exists only on a Zynq board.
"""

import os

__all__ = ["CPU_ARCH", "CPU_ARCH_IS_SUPPORTED", "CPU_ARCH_IS_x86", "DEFAULT_PL_CLK_MHZ",
           "ZU_ARCH", "ZYNQ_ARCH"]

ZYNQ_ARCH = "armv7l"
ZU_ARCH = "aarch64"
CPU_ARCH = os.uname().machine
#: True on a Zynq board's own CPU (where PYNQ drives the PS), as in PYNQ: False on a host.
CPU_ARCH_IS_SUPPORTED = CPU_ARCH in (ZYNQ_ARCH, ZU_ARCH)
CPU_ARCH_IS_x86 = "x86" in CPU_ARCH
DEFAULT_PL_CLK_MHZ = 100.0
