"""What fpyga needs to know of an hls4ml project: its top function, tensors, types and interface.

Every build goes through a project directory as hls4ml writes it (``hls_model.write()``): a
``ModelGraph`` is first written to its ``OutputDir``, exactly as ``hls_model.compile()`` does, so
a graph and a directory the user wrote earlier take the same path. The directory is read, not
imported: ``hls4ml_config.yml`` (project name, IO type, backend, shapes), ``firmware/<prj>.h``
(the top function), ``firmware/defines.h`` (the tensor types) and ``<prj>_bridge.cpp`` (the
sizes hls4ml's own C simulation converts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NetworkError", "project", "tensor", "read_project", "check_graph"]

#: Backends whose projects are Vivado/Vitis HLS C++ with the nnet_utils templates.
SUPPORTED_BACKENDS = ("Vivado", "Vitis", "VivadoAccelerator")
SUPPORTED_IO = ("io_parallel", "io_stream")
_FIXED_RE = re.compile(r"^ap_u?(fixed|int)<[^<>]*>$")


class NetworkError(ValueError):
    """A network or project fpyga's kernel wrapper cannot take; the message names the layer or
    file and why."""


@dataclass
class tensor:
    """One input or output of the network."""

    name: str  #: the top function's argument name (hls4ml's layer output name)
    shape: list[int]
    type: str  #: the element type, e.g. ``ap_fixed<16,6>``
    ctype: str = ""  #: the project's C type of the top function's argument (``input_t``)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n

    def to_json(self) -> dict:
        return {"name": self.name, "shape": [int(d) for d in self.shape], "type": self.type}


@dataclass
class project:
    """An hls4ml project directory, read."""

    directory: Path
    name: str  #: ProjectName (the top function)
    io_type: str
    backend: str
    inputs: list[tensor]
    outputs: list[tensor]
    #: "fpyga_batch" (kernels nn/nn_batch) or "hls4ml_axi" (VivadoAccelerator's krnl_rtl)
    interface: str = "fpyga_batch"
    config: dict = field(default_factory=dict)

    @property
    def firmware(self) -> Path:
        return self.directory / "firmware"

    @property
    def input_ctype(self) -> str:
        return self.inputs[0].ctype

    @property
    def output_ctype(self) -> str:
        return self.outputs[0].ctype

    @property
    def n_in(self) -> int:
        return self.inputs[0].size

    @property
    def n_out(self) -> int:
        return self.outputs[0].size


def _graph_layer_of(var, graph) -> str:
    for layer in graph.get_layers():
        if layer.get_output_variable() is var:
            return f"{layer.name} ({layer.class_name})"
    return var.name


def check_graph(graph) -> None:
    """Refuses, before anything is written, a ModelGraph the wrapper cannot take: another backend
    or IO type, several inputs or outputs, tensors of a type that is not ap_fixed/ap_int."""
    backend = type(graph.config.backend).__name__.replace("Backend", "")
    if backend not in SUPPORTED_BACKENDS:
        raise NetworkError(
            f"hls4ml model '{graph.config.get_project_name()}': backend {backend} writes no Vivado/Vitis "
            f"HLS project; convert with backend='Vitis' (or 'Vivado', 'VivadoAccelerator')")
    io_type = graph.config.get_config_value("IOType")
    if io_type not in SUPPORTED_IO:
        raise NetworkError(f"hls4ml model: IOType '{io_type}' is not supported (io_parallel or io_stream)")
    for what, variables in (("inputs", graph.get_input_variables()), ("outputs", graph.get_output_variables())):
        if len(variables) != 1:
            names = ", ".join(_graph_layer_of(v, graph) for v in variables)
            raise NetworkError(
                f"hls4ml model: the network has {len(variables)} {what} ({names}); fpyga's kernel wrapper "
                f"takes networks with one input and one output")
        var = variables[0]
        precision = var.type.precision.definition_cpp()
        if not _FIXED_RE.match(precision.replace(" ", "")):
            raise NetworkError(
                f"hls4ml model: {what[:-1]} of layer {_graph_layer_of(var, graph)} has type {precision}; "
                f"the device buffers carry ap_fixed/ap_int values (set that layer's precision to one)")


def _read_config(directory: Path) -> dict:
    import yaml

    path = directory / "hls4ml_config.yml"
    if not path.is_file():
        raise NetworkError(f"{directory}: not an hls4ml project (no hls4ml_config.yml)")
    try:
        # hls4ml may tag Python objects in this file; only plain keys are read here.
        cfg = yaml.load(path.read_text(), Loader=yaml.BaseLoader)
    except yaml.YAMLError as e:
        raise NetworkError(f"{path}: unreadable YAML ({e})") from None
    if not isinstance(cfg, dict):
        raise NetworkError(f"{path}: expected a mapping of hls4ml settings")
    return cfg


def _typedefs(defines_h: Path) -> dict[str, str]:
    text = defines_h.read_text()
    return {m.group(2): " ".join(m.group(1).split()) for m in re.finditer(r"typedef\s+(.+?)\s+(\w+)\s*;", text)}


def _element_type(type_text: str, typedefs: dict[str, str], where: str) -> str:
    """``ap_fixed<16,6>`` for ``input_t``, following typedefs and nnet::array<E, N>."""
    t = type_text.strip()
    for _ in range(8):
        if t in typedefs:
            t = typedefs[t]
            continue
        m = re.match(r"^nnet::array<\s*(.+?)\s*,\s*[^,<>]+>$", t)
        if m:
            t = m.group(1)
            continue
        break
    if not _FIXED_RE.match(t.replace(" ", "")):
        raise NetworkError(f"{where}: tensor type {type_text} is {t}, not an ap_fixed/ap_int type")
    return t.replace(" ", "")


def _bridge_sizes(bridge: Path, prj: str) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """(name, type, size) of inputs and outputs from hls4ml's float bridge (``<prj>_float``)."""
    text = bridge.read_text()
    m = re.search(rf"void\s+{re.escape(prj)}_float\s*\((.*?)\)\s*\{{(.*?)\n\}}", text, re.S)
    if not m:
        raise NetworkError(f"{bridge}: no {prj}_float() bridge function (not an hls4ml project?)")
    body = m.group(2)
    ins = [(n, t, int(eval_size(s))) for t, s, n in
           re.findall(r"convert_data<\s*float\s*,\s*(\w+)\s*,\s*([^>]+?)\s*>\s*\(\s*(\w+)\s*,", body)]
    outs = [(n, t, int(eval_size(s))) for t, s, n in
            re.findall(r"convert_data<\s*(\w+)\s*,\s*float\s*,\s*([^>]+?)\s*>\s*\(\s*\w+\s*,\s*(\w+)\s*\)", body)]
    return ins, outs


def eval_size(expr: str) -> int:
    """A size hls4ml writes as an integer product (``4*1``)."""
    if not re.fullmatch(r"[0-9\s*]+", expr):
        raise NetworkError(f"unexpected tensor size expression '{expr}' in the hls4ml bridge")
    n = 1
    for f in expr.split("*"):
        n *= int(f)
    return n


def read_project(directory) -> project:
    """Reads an hls4ml project directory. NetworkError names the file and what is wrong."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise NetworkError(f"{directory}: no such hls4ml project directory")
    cfg = _read_config(directory)
    prj = cfg.get("ProjectName", "myproject")
    backend = cfg.get("Backend", "Vitis")
    io_type = cfg.get("IOType", "io_parallel")
    if backend not in SUPPORTED_BACKENDS:
        raise NetworkError(f"{directory}: an hls4ml {backend} project; fpyga builds Vivado/Vitis HLS projects "
                           f"({', '.join(SUPPORTED_BACKENDS)})")
    if io_type not in SUPPORTED_IO:
        raise NetworkError(f"{directory}: IOType '{io_type}' is not supported (io_parallel or io_stream)")
    firmware = directory / "firmware"
    for f in (firmware / f"{prj}.cpp", firmware / f"{prj}.h", firmware / "defines.h", directory / f"{prj}_bridge.cpp"):
        if not f.is_file():
            raise NetworkError(f"{directory}: missing {f.relative_to(directory)} (run hls_model.write() first)")
    typedefs = _typedefs(firmware / "defines.h")
    ins, outs = _bridge_sizes(directory / f"{prj}_bridge.cpp", prj)
    for what, found in (("inputs", ins), ("outputs", outs)):
        if len(found) != 1:
            names = ", ".join(n for n, _, _ in found) or "none found"
            raise NetworkError(f"{directory}: the network has {len(found)} {what} ({names}); fpyga's kernel "
                               f"wrapper takes networks with one input and one output")
    shapes_in = cfg.get("InputShapes") or {}
    shapes_out = cfg.get("OutputShapes") or {}

    def make(entry, shapes):
        name, type_name, size = entry
        # VivadoAccelerator's bridge converts through the AXI-stream structs (float data); the
        # network's own tensor types are the project's input_t / result_t.
        type_name = {"input_axi_t": "input_t", "output_axi_t": "result_t"}.get(type_name, type_name)
        shape = [int(d) for d in shapes.get(name, [size])] if isinstance(shapes, dict) else [size]
        t = tensor(name, shape, _element_type(type_name, typedefs, f"{directory}: tensor {name}"), type_name)
        if t.size != size:
            t.shape = [size]
        return t

    p = project(directory, prj, io_type, backend, [make(ins[0], shapes_in)], [make(outs[0], shapes_out)], config=cfg)
    if backend == "VivadoAccelerator" and (firmware / f"{prj}_axi.cpp").is_file():
        p.interface = "hls4ml_axi"
        axi_h = (firmware / f"{prj}_axi.h").read_text()
        for t in ("T_in", "T_out"):
            m = re.search(rf"typedef\s+(.+?)\s+{t}\s*;", axi_h)
            if not m or m.group(1).strip() != "float":
                found = m.group(1).strip() if m else "not declared"
                raise NetworkError(
                    f"{firmware / (prj + '_axi.h')}: {t} is {found}; fpyga's krnl_rtl kernel moves float "
                    f"streams (hls4ml's default Interface/InputType)")
    return p
