"""``python -m fpyga.hls4ml`` (also ``fpyga hls4ml``): build or export an hls4ml network.

    fpyga hls4ml build model.json model.h5 -o muon.xclbin [--compute-units 2] [--precision ...]
    fpyga hls4ml build path/to/hls4ml_project -o muon.xclbin
    fpyga hls4ml export model.json model.h5 -o muon_vitis/ [--platform ...]

A Keras model is read as hls4ml's KerasJson/KerasH5 front end reads it (no TensorFlow needed)
and converted with backend Vitis; a directory is a project hls4ml already wrote.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..toolchain import ToolchainError
from .project import NetworkError


def _convert_keras(json_path: Path, h5_path: Path, out_dir: Path, args):
    from hls4ml.converters import keras_v2_to_hls

    for p in (json_path, h5_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
    config = {
        "KerasJson": str(json_path), "KerasH5": str(h5_path), "OutputDir": str(out_dir),
        "ProjectName": "myproject", "Backend": "Vitis", "Part": args.part, "ClockPeriod": args.clock_period,
        "IOType": args.io_type,
        "HLSConfig": {"Model": {"Precision": args.precision, "ReuseFactor": args.reuse_factor,
                                "Strategy": args.strategy}},
    }
    return keras_v2_to_hls(config)


def _source(args, work: Path):
    """The ModelGraph or project directory the arguments name."""
    inputs = [Path(i) for i in args.inputs]
    if len(inputs) == 1 and inputs[0].is_dir():
        return inputs[0]
    if len(inputs) == 2 and inputs[0].suffix == ".json" and inputs[1].suffix in (".h5", ".hdf5"):
        return _convert_keras(inputs[0], inputs[1], work / "hls4ml_prj", args)
    raise ValueError("expected an hls4ml project directory, or a Keras model as two files: "
                     f"ARCH.json WEIGHTS.h5 (got {' '.join(args.inputs)})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="fpyga hls4ml", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,export}")
    for cmd, helptext in (("build", "build an sw_emu xclbin for fpyga's emulated device"),
                          ("export", "write kernel sources, a v++ config and a Makefile for a card")):
        s = sub.add_parser(cmd, help=helptext)
        s.add_argument("inputs", nargs="+", metavar="MODEL", help="ARCH.json WEIGHTS.h5, or a project directory")
        s.add_argument("-o", "--output", required=True, help="the xclbin (build) or directory (export) to write")
        s.add_argument("--compute-units", type=int, default=1)
        s.add_argument("--name", help="the network's name (default: the output's name)")
        s.add_argument("--precision", default="ap_fixed<16,6>", help="model-wide precision (Keras input)")
        s.add_argument("--reuse-factor", type=int, default=1)
        s.add_argument("--strategy", default="Latency", choices=["Latency", "Resource"])
        s.add_argument("--io-type", default="io_parallel", choices=["io_parallel", "io_stream"])
        s.add_argument("--part", default="xcvu9p-flgb2104-2-i")
        s.add_argument("--clock-period", type=float, default=4)
        if cmd == "build":
            s.add_argument("--cache-dir", help="build cache (default $FPYGA_CACHE_DIR or ~/.cache/fpyga)")
        else:
            s.add_argument("--platform", help="the Makefile's default PLATFORM")
    args = p.parse_args(argv)
    from . import build, export

    try:
        with tempfile.TemporaryDirectory(prefix="fpyga-hls4ml-cli-") as tmp:
            source = _source(args, Path(tmp))
            if args.command == "build":
                out = build(source, args.output, args.compute_units, name=args.name, cache_dir=args.cache_dir)
            else:
                kw = {"platform": args.platform} if args.platform else {}
                out = export(source, args.output, args.compute_units, name=args.name, **kw)
    except (NetworkError, ToolchainError, FileNotFoundError, ValueError) as e:
        print(f"fpyga hls4ml {args.command}: error: {e}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
