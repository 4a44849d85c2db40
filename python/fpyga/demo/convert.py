"""The paper's hls4ml conversion of a committed model (``myproject``, ap_fixed<16,6>, Latency).

``convert`` gives the hls4ml ModelGraph the study builds with ``fpyga.hls4ml.build`` and
cross-checks against hls4ml's own C simulation (``compile()`` then ``predict``). Keras's JSON/H5
files are read by hls4ml's KerasJson/KerasH5 front end, so no TensorFlow is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The precision of inputs, outputs, weights, biases and accumulators, as in the paper.
DEFAULT_PRECISION = "ap_fixed<16,6>"


def hls_config(precision: str = DEFAULT_PRECISION) -> dict:
    """hls4ml's HLSConfig: one model-wide precision, fully parallel (ReuseFactor 1, Latency strategy)."""
    return {"Model": {"Precision": precision, "ReuseFactor": 1, "Strategy": "Latency"}}


def convert(model_base: str | os.PathLike, out_dir: str | os.PathLike, precision: str = DEFAULT_PRECISION,
            part: str = "xcvu9p-flgb2104-2-i"):
    """The hls4ml ``ModelGraph`` of ``model_base`` (.json/.h5 pair), with ``out_dir`` as its OutputDir.

    ``fpyga.hls4ml.build`` (or ``compile()``) writes the project there.
    ``part`` defaults to the VU9P of AWS F1.
    """
    base = Path(model_base)
    config = {
        "KerasJson": str(base.with_suffix(".json")),
        "KerasH5": str(base.with_suffix(".h5")),
        "OutputDir": str(out_dir),
        "ProjectName": "myproject",
        "Backend": "Vitis",
        "Part": part,
        "ClockPeriod": 4,
        "IOType": "io_parallel",
        "HLSConfig": hls_config(precision),
    }
    for key in ("KerasJson", "KerasH5"):
        if not Path(config[key]).exists():
            raise FileNotFoundError(f"model '{base.name}': missing {config[key]}")
    from hls4ml.converters import keras_v2_to_hls

    return keras_v2_to_hls(config)
