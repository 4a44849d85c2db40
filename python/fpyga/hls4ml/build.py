"""``fpyga.hls4ml.build``: an hls4ml network (a ModelGraph or a written project) into an xclbin.

The project's C++ (hls4ml's ``firmware/``, compiled against the Xilinx headers the project
carries) is wrapped by a generated kernel (``templates/``) and built by fpyga's toolchain into an
sw_emu xclbin whose ``fpyga_network`` section describes the network, so a host needs nothing but
the xclbin. Builds are cached by content (see :mod:`fpyga.hls4ml.cache`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
import warnings
from importlib import resources
from pathlib import Path
from string import Template

from .. import toolchain
from . import cache, fast
from .project import NetworkError, check_graph, project, read_project

__all__ = ["build", "wrapper_source", "network_description", "resolve_project"]

#: Bumped when the wrapper or the build steps change what a cached xclbin would hold.
BUILD_FORMAT = "1"


def _hls4ml_version() -> str:
    try:
        return importlib.metadata.version("hls4ml")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates", name).read_text())


def _infer_body(p: project) -> str:
    top = p.name
    if p.io_type == "io_parallel":
        return (f"  input_t x[fpyga_n_in];\n  result_t y[fpyga_n_out];\n"
                f"  for (int i = 0; i < fpyga_n_in; ++i) x[i] = in[i];\n"
                f"  {top}(x, y);\n"
                f"  for (int i = 0; i < fpyga_n_out; ++i) out[i] = y[i];").replace("input_t", p.input_ctype) \
            .replace("result_t", p.output_ctype)
    return (f"  hls::stream<{p.input_ctype}> x(\"fpyga_in\");\n  hls::stream<{p.output_ctype}> y(\"fpyga_out\");\n"
            f"  for (int i = 0; i < fpyga_n_in / int({p.input_ctype}::size); ++i) {{\n"
            f"    {p.input_ctype} word;\n"
            f"    for (int j = 0; j < int({p.input_ctype}::size); ++j) word[j] = in[i * {p.input_ctype}::size + j];\n"
            f"    x.write(word);\n  }}\n"
            f"  {top}(x, y);\n"
            f"  for (int i = 0; i < fpyga_n_out / int({p.output_ctype}::size); ++i) {{\n"
            f"    {p.output_ctype} word = y.read();\n"
            f"    for (int j = 0; j < int({p.output_ctype}::size); ++j) out[i * {p.output_ctype}::size + j] = word[j];\n"
            f"  }}")


def wrapper_source(p: project) -> str:
    """The generated kernel source around the project's top function."""
    if p.interface == "hls4ml_axi":
        return _template("hls4ml_axi.cpp.in").substitute(project=p.name, n_in=p.n_in, n_out=p.n_out)
    return _template("fpyga_batch.cpp.in").substitute(
        project=p.name, io_type=p.io_type, n_in=p.n_in, n_out=p.n_out, in_type=p.inputs[0].type,
        out_type=p.outputs[0].type, infer_body=_infer_body(p))


def kernel_names(p: project) -> list[str]:
    return ["krnl_rtl"] if p.interface == "hls4ml_axi" else ["nn", "nn_batch"]


def network_description(p: project, name: str) -> dict:
    """The ``fpyga.network/1`` description the xclbin carries."""
    kernels = {"axi": "krnl_rtl"} if p.interface == "hls4ml_axi" else {"single": "nn", "batch": "nn_batch"}
    return {"schema": "fpyga.network/1", "name": name, "producer": "hls4ml",
            "producer_version": _hls4ml_version(), "io_type": p.io_type, "interface": p.interface,
            "kernels": kernels, "inputs": [t.to_json() for t in p.inputs],
            "outputs": [t.to_json() for t in p.outputs]}


def resolve_project(source) -> project:
    """A project from a ModelGraph (written to its OutputDir first, as ``compile()`` does) or a
    directory."""
    if isinstance(source, (str, os.PathLike)):
        return read_project(source)
    if not hasattr(source, "get_input_variables") or not hasattr(source, "write"):
        raise TypeError(f"build() takes an hls4ml ModelGraph or the directory of an hls4ml project, "
                        f"got {type(source).__name__}")
    check_graph(source)
    source.write()
    return read_project(source.config.get_output_dir())


def _strip_weight_loading(firmware: Path, top: str) -> None:
    """hls4ml's C simulation reads weights from ``weights/*.txt`` at run time (``WriteWeightsTxt``,
    its default); an xclbin must not depend on files beside it. In the build copy the weight
    headers keep their initialised definitions (the same text as the .txt files, so the same
    values) and the top function stops reading files."""
    for h in (firmware / "weights").glob("*.h"):
        text = h.read_text()
        new = re.sub(r"#ifndef __SYNTHESIS__\n[^\n]*;\n#else\n(.*?)\n#endif\n", r"\1\n", text, flags=re.S)
        if new != text:
            h.write_text(new)
    cpp = firmware / f"{top}.cpp"
    text = cpp.read_text()
    new = re.sub(r"#ifndef __SYNTHESIS__\n\s*static bool loaded_weights = false;.*?#endif\n", "", text, flags=re.S)
    cpp.write_text(new)


def _content_key(p: project, wrapper: str, compute_units: int, name: str) -> str:
    h = hashlib.sha256()
    for part in (BUILD_FORMAT, toolchain.compiler_identity(), " ".join(toolchain.CXX_FLAGS), _hls4ml_version(),
                 str(compute_units), name, p.interface, wrapper):
        h.update(part.encode() + b"\0")
    # The fast path is generated from the firmware by fpyga.hls4ml.fast: its code is an input too.
    fast_dir = Path(fast.__file__).parent
    for f in sorted(fast_dir.rglob("*")):
        if f.is_file() and f.suffix in (".py", ".in", ".h", ".cpp"):
            h.update(hashlib.sha256(f.read_bytes()).digest())
    for f in sorted(p.firmware.rglob("*")):
        if f.is_file() and f.suffix in (".h", ".hpp", ".cpp", ".txt"):
            h.update(str(f.relative_to(p.firmware)).encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _progress(enabled):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=5, desc="fpyga.hls4ml.build", unit="step", file=sys.stderr, leave=False)

    def step(name):
        bar.set_postfix_str(name)
        bar.update(1)

    return step, bar.close


def build(model, output, compute_units: int = 1, *, name: str | None = None, cache_dir=None,
          progress: bool | None = None) -> Path:
    """Builds an hls4ml network into an sw_emu xclbin that fpyga's emulated device runs.

    Parameters
    ----------
    model : hls4ml ModelGraph or path
        A converted model from any hls4ml frontend (backend Vitis, Vivado or VivadoAccelerator;
        io_parallel or io_stream), or the directory of a project hls4ml wrote. A ModelGraph is
        written to its OutputDir first, as ``hls_model.compile()`` does.
    output : path
        The xclbin to write.
    compute_units : int
        Compute units of each kernel (``nn`` and ``nn_batch``, or ``krnl_rtl``).
    name : str, optional
        The network's name in the xclbin; default the output's stem.
    cache_dir : path, optional
        Build cache; default ``$FPYGA_CACHE_DIR``, else ``~/.cache/fpyga``. A build whose inputs
        (the project's sources and weights, precision, compute units, compiler, fpyga and hls4ml
        versions) are unchanged returns the cached xclbin at once; a corrupted entry is rebuilt.
    progress : bool, optional
        Show the build's steps; default when stderr is a terminal.

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    NetworkError
        The network cannot be wrapped (several inputs, a non-fixed-point tensor type, another
        backend); the message names the layer or file.
    ToolchainError
        Compiling failed: the message shows the first compiler errors and the log's path.
    """
    if isinstance(compute_units, bool) or not isinstance(compute_units, int) or not 1 <= compute_units <= 64:
        raise ValueError(f"compute_units must be an integer from 1 to 64, got {compute_units!r}")
    output = Path(output)
    step, close = _progress(progress)
    try:
        p = resolve_project(model)
        name = name or output.stem
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise ValueError(f"network name '{name}' must be letters, digits, '_', '-' or '.'")
        wrapper = wrapper_source(p)
        key = _content_key(p, wrapper, compute_units, name)
        store = cache.store(cache_dir)
        if store.fetch(key, output):
            return output
        with tempfile.TemporaryDirectory(prefix="fpyga-hls4ml-") as tmp:
            work = Path(tmp)
            firmware = work / "firmware"
            shutil.copytree(p.firmware, firmware, ignore=shutil.ignore_patterns("*.so", "*.o"))
            _strip_weight_loading(firmware, p.name)
            src = work / f"fpyga_{p.interface}.cpp"
            src.write_text(wrapper)
            kernels = kernel_names(p)
            connectivity = [f"nk={k}:{compute_units}" for k in kernels]
            built = work / "model.xclbin"
            sources = [src, firmware / f"{p.name}.cpp"]
            defines = []
            if p.interface == "hls4ml_axi":
                sources.append(firmware / f"{p.name}_axi.cpp")
            # --- the fast path hook (fpyga.hls4ml.fast): generated, compiled beside the C simulation
            # (kernel nn_batch_csim), verified against it, and dropped (rebuilt without) on any doubt.
            fast_source, why = fast.generate(p, firmware) if p.interface != "hls4ml_axi" else (None, None)
            if fast_source:
                (work / "fpyga_fast.cpp").write_text(fast_source)
            elif why:
                warnings.warn(f"fpyga.hls4ml.build: {why}; the network runs as hls4ml's C simulation", stacklevel=2)
            compile_error = None
            while True:
                extra = fast.build_extras(fast_source, work, compute_units)
                network = network_description(p, name)
                network["kernels"].update(extra["kernels"])
                try:
                    toolchain.build_xclbin(sources + extra["sources"], kernels + list(extra["kernels"].values()),
                                           built, work_dir=work / "build", include_dirs=[firmware],
                                           system_include_dirs=[firmware / "ap_types"]
                                           if (firmware / "ap_types").is_dir() else [],
                                           connectivity=connectivity + extra["connectivity"],
                                           defines=defines + extra["defines"], network=network, progress=step)
                except toolchain.ToolchainError as e:
                    if not fast_source:
                        kept = store.keep_failed(key, work / "build")
                        raise toolchain.ToolchainError(str(e).replace(str(work / "build"), str(kept))) from None
                    # the error may be the project's: said only once the network builds without it
                    compile_error = f"the fast path did not compile ({str(e).splitlines()[0]})"
                    fast_source = None
                    continue
                why = fast.verify_build(p, work / "build" / "kernels.so") if fast_source else None
                if not why:
                    break
                warnings.warn(f"fpyga.hls4ml.build: {why}; the network runs as hls4ml's C simulation", stacklevel=2)
                fast_source = None
            if compile_error:
                warnings.warn(f"fpyga.hls4ml.build: {compile_error}; the network runs as hls4ml's C simulation",
                              stacklevel=2)
            store.put(key, built, work / "build" / "build.log")
        if not store.fetch(key, output):
            raise toolchain.ToolchainError(f"the build cache at {store.root} lost entry {key} during the build")
        return output
    finally:
        close()
