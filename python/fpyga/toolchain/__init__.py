"""fpyga's kernel toolchain, callable at run time: HLS C++ sources in, an sw_emu xclbin out.

The same three steps as CMake's ``fpyga_add_xclbin`` (kernels/cmake/FpygaKernels.cmake), with no
CMake and no Vitis:

1. the sources are compiled by the host C++ compiler (``$CXX``, else ``g++``) with ``-O3 -fPIC``
   into a shared object that exports the kernels as ``extern "C"`` functions (``#pragma HLS`` lines
   are ignored, as in Vitis's own sw_emu), needing only libc and libstdc++; independent sources
   compile in parallel;
2. :mod:`fpyga.toolchain.kernel_meta` derives each kernel's arguments, register offsets and
   connectivity from the sources with libclang;
3. the description and the shared object are packed into the xclbin by the core library.

Xilinx's HLS headers are never part of fpyga: :func:`hls_include_dir` finds them
(``$XILINX_HLS/include``, else the copy the hls4ml package ships, else ``$FPYGA_HLS_INCLUDE``).
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

__all__ = ["ToolchainError", "compiler", "c_compiler", "compiler_identity", "hls_include_dir",
           "fpyga_include_dir", "build_xclbin"]

#: The kernels' C++ standard: Xilinx's headers and hls4ml's templates are written for C++14.
CXX_STD = "c++14"
CXX_FLAGS = ("-O3", "-fPIC", f"-std={CXX_STD}", "-w")
#: Plain C kernels (``.c``) compile as C, as v++ compiles them.
C_STD = "gnu11"
C_FLAGS = ("-O3", "-fPIC", f"-std={C_STD}", "-w")


class ToolchainError(RuntimeError):
    """A step of the toolchain failed; the message shows the first compiler errors and the
    log's path."""


def _tool(variable: str, default: str, what: str) -> str:
    name = os.environ.get(variable) or default
    path = shutil.which(name)
    if not path:
        raise ToolchainError(f"no {what}: '{name}' is not on PATH (install {default}, or set {variable})")
    return path


def compiler() -> str:
    """The C++ compiler: ``$CXX`` else ``g++`` (ToolchainError naming both when absent)."""
    return _tool("CXX", "g++", "C++ compiler")


def c_compiler() -> str:
    """The C compiler for ``.c`` kernels: ``$CC`` else ``gcc``."""
    return _tool("CC", "gcc", "C compiler")


def fpyga_include_dir() -> Path:
    """fpyga's own kernel headers (``ap_axi_sdata.h``), searched after Xilinx's HLS headers."""
    return Path(__file__).resolve().parent / "include"


def compiler_identity() -> str:
    """Path and version of the compiler, part of every build's cache key."""
    cxx = compiler()
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout
    return f"{cxx} {out.splitlines()[0] if out else ''}"


def hls_include_dir() -> Path:
    """Xilinx's HLS headers (ap_int.h, ap_fixed.h, hls_stream.h)."""
    candidates = []
    if os.environ.get("XILINX_HLS"):
        candidates.append(Path(os.environ["XILINX_HLS"]) / "include")
    spec = importlib.util.find_spec("hls4ml")
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "templates" / "vivado" / "ap_types")
    if os.environ.get("FPYGA_HLS_INCLUDE"):
        candidates.append(Path(os.environ["FPYGA_HLS_INCLUDE"]))
    for c in candidates:
        if (c / "ap_int.h").is_file():
            return c
    raise ToolchainError("Xilinx's HLS headers (ap_int.h) were not found: install hls4ml (it ships them), "
                         "or set XILINX_HLS or FPYGA_HLS_INCLUDE")


def _first_errors(text: str, limit: int = 12) -> str:
    lines = [l for l in text.splitlines() if "error" in l.lower()]
    return "\n".join((lines or text.splitlines())[:limit])


def _run(cmd: list[str], log, cwd=None) -> None:
    log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
    log.flush()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write(proc.stdout)
    log.flush()
    if proc.returncode != 0:
        raise ToolchainError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}):\n{_first_errors(proc.stdout)}\n"
                             f"full log: {log.name}")


def build_xclbin(sources, kernels, output, *, work_dir, include_dirs=(), system_include_dirs=(),
                 connectivity=(), defines=(), network=None, platform=None, progress=None) -> Path:
    """Builds ``sources`` into the sw_emu xclbin ``output``.

    Parameters
    ----------
    sources : list of path
        HLS C++ (``.cpp``) sources, or plain C (``.c``, compiled as C); each compiles to one
        object, in parallel.
    kernels : list of str
        The ``extern "C"`` top functions to expose as kernels.
    output : path
        The xclbin to write.
    work_dir : path
        Where objects, the shared object, the description and ``build.log`` go.
    include_dirs, system_include_dirs : list of path
        ``-I`` and ``-isystem`` directories (Xilinx's headers are added to the latter).
    connectivity : list of str
        v++ ``[connectivity]`` lines (``nk=nn_batch:2``, ``sp=nn_1.in:bank0``,
        ``sc=load_1.out:compute_1.in:16``).
    network : dict, optional
        The network description stored in the xclbin (``fpyga.network/1``).
    progress : callable(str), optional
        Called with the name of each step as it starts.

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    ToolchainError
        A step failed: the message has the first compiler errors and the log's path.
    """
    from . import kernel_meta
    from .. import _core

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda s: None)
    cxx = compiler()
    system_include_dirs = [*system_include_dirs, hls_include_dir(), fpyga_include_dir()]
    inc = [f"-I{d}" for d in include_dirs] + [a for d in system_include_dirs for a in ("-isystem", str(d))]
    defs = [f"-D{d}" for d in defines]
    log_path = work / "build.log"
    with open(log_path, "w") as log:
        step("compile")
        glue = _stream_glue_sources(sources, kernels, work)
        compiled = glue or sources
        if glue:
            defs += ["-DHLS_STREAM_THREAD_SAFE", f"-I{Path(__file__).resolve().parent}"]
        objects = [work / f"{i}_{Path(s).stem}.o" for i, s in enumerate(compiled)]
        jobs = max(1, min(len(compiled), os.cpu_count() or 1))
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = [pool.submit(_run_captured, [c_compiler(), *C_FLAGS, *inc, *defs, "-c", str(s), "-o", str(o)]
                                   if str(s).endswith(".c") else
                                   [cxx, *CXX_FLAGS, *inc, *defs, "-c", str(s), "-o", str(o)])
                       for s, o in zip(compiled, objects)]
            results = [f.result() for f in futures]
        for cmd, rc, out in results:
            log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n" + out)
        log.flush()
        for cmd, rc, out in results:
            if rc != 0:
                raise ToolchainError(f"compiling {Path(cmd[-3]).name} failed (exit {rc}):\n{_first_errors(out)}\n"
                                     f"full log: {log_path}")
        so = work / "kernels.so"
        step("link")
        wraps = [f"-Wl,--wrap={w}" for w in EMU_STREAM_WRAPS] if glue else []
        _run([cxx, "-shared", "-Wl,--no-undefined", *wraps, *map(str, objects), "-o", str(so)], log)

        step("metadata")
        try:
            desc = kernel_meta.describe([str(s) for s in sources], list(kernels), list(connectivity),
                                        include_dirs=[*map(str, include_dirs), *map(str, system_include_dirs)],
                                        defines=list(defines), std=CXX_STD,
                                        **({"platform": platform} if platform else {}))
        except kernel_meta.KernelMetaError as e:
            log.write(f"kernel_meta: {e}\n")
            raise ToolchainError(f"deriving the kernel metadata failed: {e}\nfull log: {log_path}") from None
        if network is not None:
            desc["network"] = network
        desc_text = json.dumps(desc, indent=1)
        (work / "description.json").write_text(desc_text + "\n")

        step("pack")
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + f".tmp{os.getpid()}")
        _core.xclbin_pack(desc_text, so.read_bytes(), str(tmp))
        os.replace(tmp, output)
    return output


#: The calls hls::stream makes out of line, which emu's stream glue sees (emu_stream_glue.cpp); the
#: same list as FPYGA_EMU_STREAM_WRAPS in kernels/cmake/FpygaKernels.cmake.
EMU_STREAM_WRAPS = (
    "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE",
    "_ZNSt18condition_variable10notify_oneEv",
    "pthread_mutex_unlock",
)


def _stream_glue_sources(sources, kernels, work: Path):
    """The sources to compile in stream mode (as fpyga_add_xclbin's): each C++ source through a
    wrapper registering its kernels' hls::stream element types, plus the glue; None when no source
    mentions hls::stream (the kernels are then built as they are)."""
    if not any("hls::stream" in Path(s).read_text(errors="replace") for s in sources):
        return None
    glue_dir = work / "emu_glue"
    glue_dir.mkdir(exist_ok=True)
    out = []
    for i, s in enumerate(sources):
        if str(s).endswith(".c"):
            out.append(Path(s))
            continue
        wrapper = glue_dir / f"{i}_{Path(s).stem}.cpp"
        wrapper.write_text(f"// Generated by fpyga.toolchain: {s} with emu's stream glue.\n"
                           f'#include "{Path(s).resolve()}"\n#include "emu_stream_glue.h"\n'
                           + "".join(f"FPYGA_EMU_STREAM_KERNEL({k})\n" for k in kernels))
        out.append(wrapper)
    out.append(Path(__file__).resolve().parent / "emu_stream_glue.cpp")
    return out


def _run_captured(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return cmd, proc.returncode, proc.stdout
