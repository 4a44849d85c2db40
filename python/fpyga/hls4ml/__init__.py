"""Your own hls4ml network on fpyga: build it into an xclbin, predict with it on any device.

>>> import hls4ml, fpyga.hls4ml                                              # doctest: +SKIP
>>> hls_model = hls4ml.converters.convert_from_keras_model(model, backend="Vitis")  # doctest: +SKIP
>>> xclbin = fpyga.hls4ml.build(hls_model, "muon.xclbin", compute_units=2)  # doctest: +SKIP
>>> net = fpyga.hls4ml.Model(xclbin)                                         # doctest: +SKIP
>>> y = net.predict(X)                                                       # doctest: +SKIP

``build`` compiles the network hls4ml wrote against Xilinx's own HLS headers with fpyga's kernel
toolchain (no Vitis, no CMake) into an sw_emu xclbin that carries the network's description;
``Model`` runs it bit-exactly as hls4ml's C simulation on emu, or the hardware build of the same
kernel interface (``export``) on a card. From a shell: ``fpyga hls4ml build|export ...``.
"""

from ..toolchain import ToolchainError
from .build import build
from .export import export
from .model import Model
from .project import NetworkError

__all__ = ["Model", "NetworkError", "ToolchainError", "build", "export"]
