"""Convert a committed model to an hls4ml HLS project (``myproject``, ap_fixed<16,6>).

The build runs this file as a script (``python convert.py --model models/iris --out DIR``) before
fpyga's package is installed, so it imports only NumPy, h5py and hls4ml. The output directory gets
hls4ml's project (``firmware/myproject.cpp``, ``firmware/parameters.h``, ``firmware/weights/``,
``firmware/nnet_utils/``) and ``fpyga_model.json`` describing the I/O sizes and types for the
fpyga kernel wrapper. hls4ml's sources are build outputs, never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

#: The precision of inputs, outputs, weights, biases and accumulators, as in the paper.
DEFAULT_PRECISION = "ap_fixed<16,6>"


def hls_config(precision: str = DEFAULT_PRECISION) -> dict:
    """hls4ml's HLSConfig: one model-wide precision, fully parallel (ReuseFactor 1, Latency strategy)."""
    return {"Model": {"Precision": precision, "ReuseFactor": 1, "Strategy": "Latency"}}


def convert(model_base: str | os.PathLike, out_dir: str | os.PathLike, precision: str = DEFAULT_PRECISION,
            part: str = "xcvu9p-flgb2104-2-i"):
    """Build the hls4ml ``ModelGraph`` of ``model_base`` (.json/.h5 pair) and write its project to ``out_dir``.

    Returns the ModelGraph (call ``compile()`` on it for hls4ml's bit-accurate C simulation).
    ``part`` defaults to the VU9P of AWS F1.
    """
    import hls4ml

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
        # Weights inline in the headers: the kernel .so must not read text files at run time.
        "WriterConfig": {"Namespace": None, "WriteWeightsTxt": False, "WriteTar": False, "TBOutputStream": "both"},
    }
    for key in ("KerasJson", "KerasH5"):
        if not Path(config[key]).exists():
            raise FileNotFoundError(f"model '{base.name}': missing {config[key]}")
    from hls4ml.converters import keras_v2_to_hls

    hls_model = keras_v2_to_hls(config)
    hls_model.write()
    inputs = hls_model.get_input_variables()
    outputs = hls_model.get_output_variables()
    desc = {
        "model": base.name,
        "precision": precision,
        "n_inputs": int(sum(v.size() for v in inputs)),
        "n_outputs": int(sum(v.size() for v in outputs)),
        "input_type": str(inputs[0].type.precision.definition_cpp()),
        "output_type": str(outputs[0].type.precision.definition_cpp()),
        "project": "myproject",
    }
    (Path(out_dir) / "fpyga_model.json").write_text(json.dumps(desc, indent=1) + "\n")
    return hls_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model path without suffix, e.g. models/iris")
    p.add_argument("--out", required=True, help="output directory for the hls4ml project")
    p.add_argument("--precision", default=DEFAULT_PRECISION)
    p.add_argument("--stamp", default=None, help="file to touch when done (for the build system)")
    args = p.parse_args(argv)
    try:
        convert(args.model, args.out, args.precision)
    except Exception as e:  # the build shows one line naming the model, not a traceback
        print(f"convert.py: model '{args.model}': {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.stamp:
        Path(args.stamp).write_text("")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
