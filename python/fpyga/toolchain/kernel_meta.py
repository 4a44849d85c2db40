#!/usr/bin/env python3
"""Derive an xclbin's JSON description from HLS C++ kernel sources.

Part of fpyga's kernel toolchain (kernels/cmake/FpygaKernels.cmake). The sources are parsed with
libclang (PyPI ``libclang``, module ``clang.cindex``) using the include paths the kernel is
compiled with. For each requested kernel -- an ``extern "C"`` function defined in the sources --
the arguments are derived from its signature and its ``#pragma HLS INTERFACE`` lines:

* names, and C types spelled as Vitis writes them in EMBEDDED_METADATA (``unsigned int const *``,
  ``int*``, ``int``, ``ap_fixed<16, 6> const *``, ``ap_fixed<16, 6, 0, 0, 0>`` when the
  quantization/overflow modes are not the defaults, as their enum values);
* kinds: ``global`` for pointers and arrays (m_axi), ``stream`` for ``hls::stream`` and ``axis``
  ports, ``scalar`` for values (s_axilite); a stream's type is written as Vitis writes it,
  ``stream<T>&``, its direction (``input``/``output``) from how the kernel accesses it;
* AXI-lite register offsets as Vitis HLS assigns them: after the control registers (0x00 control,
  0x04 global interrupt enable, 0x08 IP interrupt enable, 0x0C IP interrupt status) the first
  argument is at 0x10, and each argument takes its data words plus one reserved word: a pointer or
  64-bit scalar 12 bytes, a scalar of up to 32 bits 8 bytes, an N-bit scalar 4*ceil(N/32)+4.

Connectivity is given in v++ style (``nk=vadd:2``, ``nk=vadd:2:a.b``, ``sp=vadd_1.in1:bank1``,
``sc=load_1.out:compute_1.in:16`` for a kernel-to-kernel stream):
kernels without ``nk`` get one compute unit ``<kernel>_1``, global arguments without ``sp`` are
connected to the first memory. The description's format is the one ``fpyga xclbin pack --json``
reads (see the team brief / docs/xclbin.md).

Usable as a module (the tests import it) and as a command::

    kernel_meta.py --kernel vadd --connectivity nk=vadd:2 -I <hls include> -o desc.json vadd.cpp
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Iterable, Sequence

#: The AWS F1 shell the default description names.
DEFAULT_PLATFORM = "xilinx_aws-vu9p-f1_shell-v04261818_201920_2"
#: Memories of an F1 card: four 16 GiB DDR4 banks.
DEFAULT_MEMORIES = ("bank0:ddr4:16G", "bank1:ddr4:16G", "bank2:ddr4:16G", "bank3:ddr4:16G")
#: Clocks as on F1 (data clock 250 MHz, kernel clock 500 MHz).
DEFAULT_CLOCKS = (
    {"name": "DATA_CLK", "frequency_mhz": 250, "type": "data"},
    {"name": "KERNEL_CLK", "frequency_mhz": 500, "type": "kernel"},
)
#: Where the first compute unit's control registers live on F1; later CUs follow 64 KiB apart.
CU_BASE_ADDRESS = 0x1800000
CU_STRIDE = 0x10000
#: IP_LAYOUT base address of a compute unit without control registers (ap_ctrl_none).
NO_CONTROL_BASE = 0xFFFFFFFFFFFFFFFF
#: Offset of the first argument register (after CTRL, GIE, IER, ISR).
FIRST_ARG_OFFSET = 0x10

MEMORY_TYPES = (
    "ddr3", "ddr4", "dram", "streaming", "preallocated_glob", "are", "hbm", "bram", "uram",
    "streaming_connection", "host", "ps_kernel",
)
CONTROLS = ("ap_ctrl_hs", "ap_ctrl_chain", "ap_ctrl_none")

# Xilinx's default ap_fixed modes (ap_decl.h): AP_TRN = 5, AP_WRAP = 3, 0 saturation bits.
_AP_FIXED_DEFAULT_MODES = (5, 3, 0)
_AP_INTEGER_TEMPLATES = ("ap_int", "ap_uint")
_AP_FIXED_TEMPLATES = ("ap_fixed", "ap_ufixed")


class KernelMetaError(Exception):
    """A kernel, its interface or the connectivity cannot be described; the message says why."""


@dataclasses.dataclass
class Arg:
    """One kernel argument as the description lists it."""

    name: str
    type: str  # C type string as Vitis writes it
    kind: str  # scalar | global | stream
    port: str
    offset: int = 0
    size: int = 0  # bytes of the register data (pointers: 8)
    host_size: int = 0  # bytes the host passes (sizeof the value, 8 for pointers/streams)
    bits: int = 0  # value width of a scalar (sizes its register)
    direction: str = ""  # streams: "input" (the kernel reads it) or "output"
    element: dict | None = None  # streams: what one element holds (see stream_element)

    def to_json(self) -> dict:
        out = {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "offset": self.offset,
            "size": self.size,
            "port": self.port,
            "host_size": self.host_size,
        }
        if self.kind == "stream" and self.direction:
            out["direction"] = self.direction
        return out


@dataclasses.dataclass
class Kernel:
    name: str
    args: list[Arg]
    control: str = "ap_ctrl_hs"
    source: str = ""


@dataclasses.dataclass
class Memory:
    tag: str
    type: str
    size_bytes: int
    base_address: int = 0
    used: bool = False
    stream: dict | None = None  # streaming_connection: {"source", "sink", "depth"}

    def to_json(self) -> dict:
        return {
            "tag": self.tag,
            "type": self.type,
            "used": self.used,
            "base_address": self.base_address,
            "size_bytes": self.size_bytes,
        }


@dataclasses.dataclass
class Instance:
    name: str
    kernel: str
    base_address: int = 0
    connections: dict[str, str] = dataclasses.field(default_factory=dict)


# --- register map ------------------------------------------------------------------------------
def register_bytes(kind: str, bits: int) -> int:
    """Bytes of the AXI-lite map an argument takes (data words plus one reserved word)."""
    if kind == "stream":
        return 0
    if kind == "global":
        bits = 64
    words = max(1, -(-bits // 32))
    return 4 * words + 4


def assign_offsets(args: Sequence[Arg]) -> None:
    """Gives each register-mapped argument its Vitis HLS offset, in declaration order."""
    offset = FIRST_ARG_OFFSET
    for arg in args:
        if arg.kind == "stream":
            arg.offset = 0
            continue
        arg.offset = offset
        offset += register_bytes(arg.kind, arg.bits)


# --- pragmas -----------------------------------------------------------------------------------
_PRAGMA_RE = re.compile(r"^\s*#\s*pragma\s+HLS\s+INTERFACE\b(.*)$", re.IGNORECASE)


def parse_interface_pragmas(body: str) -> tuple[dict[str, dict[str, dict[str, str]]], str | None]:
    """Reads ``#pragma HLS INTERFACE`` lines of a function body.

    Returns ({port: {mode: {option: value}}}, control) where control is the block protocol
    set by ``port=return`` (None when the body does not set it). Both the classic
    (``INTERFACE m_axi port=a``) and the 2022 (``INTERFACE mode=m_axi port=a``) spellings are read.
    """
    ports: dict[str, dict[str, dict[str, str]]] = {}
    control = None
    text = body.replace("\\\n", " ")
    for line in text.splitlines():
        m = _PRAGMA_RE.match(line)
        if not m:
            continue
        rest = m.group(1).split("//")[0]
        # clang-format writes "port = in1"; HLS accepts both.
        words = re.sub(r"\s*=\s*", "=", rest).split()
        opts: dict[str, str] = {}
        mode = None
        for word in words:
            if "=" in word:
                key, _, value = word.partition("=")
                opts[key.strip().lower()] = value.strip()
            elif mode is None:
                mode = word.lower()
            else:
                opts[word.lower()] = ""
        mode = (opts.pop("mode", None) or mode or "").lower()
        port = opts.get("port")
        if not port:
            raise KernelMetaError(f"'#pragma HLS INTERFACE{rest}' names no port=")
        if port == "return":
            if mode in CONTROLS:
                control = mode
            elif mode == "s_axilite":
                control = control or "ap_ctrl_hs"
            continue
        if not mode:
            raise KernelMetaError(f"'#pragma HLS INTERFACE{rest}' names no interface mode")
        ports.setdefault(port, {}).setdefault(mode, {}).update(opts)
    return ports, control


# --- types -------------------------------------------------------------------------------------
def _cindex():
    try:
        import clang.cindex as ci
    except ImportError as exc:  # pragma: no cover - environment problem
        raise KernelMetaError(
            "libclang's Python module (clang.cindex) is missing; install the pinned 'libclang' "
            f"from requirements.txt into {sys.executable}") from exc
    return ci


def _template_name(t) -> str:
    decl = t.get_declaration()
    return decl.spelling if decl is not None else ""


def _unqualified_spelling(t) -> str:
    """Spelling of a canonical type without top-level cv-qualifiers."""
    s = t.spelling
    for q in ("const ", "volatile "):
        while s.startswith(q):
            s = s[len(q):]
    for q in (" const", " volatile"):
        while s.endswith(q):
            s = s[: -len(q)]
    return s


def ap_spelling(t) -> tuple[str, int] | None:
    """(Vitis spelling, value bits) of an ap_int/ap_uint/ap_fixed/ap_ufixed type, else None."""
    name = _template_name(t)
    if name not in _AP_INTEGER_TEMPLATES + _AP_FIXED_TEMPLATES:
        return None
    decl = t.get_declaration()
    n = decl.get_num_template_arguments()
    values = [decl.get_template_argument_value(i) for i in range(n)]
    if name in _AP_INTEGER_TEMPLATES:
        return f"{name}<{values[0]}>", values[0]
    width, integer = values[0], values[1]
    modes = tuple(values[2:5]) + _AP_FIXED_DEFAULT_MODES[len(values[2:5]):]
    if modes == _AP_FIXED_DEFAULT_MODES:
        return f"{name}<{width}, {integer}>", width
    return f"{name}<{width}, {integer}, {modes[0]}, {modes[1]}, {modes[2]}>", width


def value_spelling(t) -> tuple[str, int]:
    """(Vitis spelling, value bits) of a non-pointer type (canonical, unqualified)."""
    ci = _cindex()
    t = t.get_canonical()
    ap = ap_spelling(t)
    if ap is not None:
        return ap
    size = t.get_size()
    bits = 8 * size if size > 0 else 0
    if t.kind == ci.TypeKind.BOOL:
        bits = 1
    return _unqualified_spelling(t), bits


def is_stream_type(t) -> bool:
    t = t.get_canonical()
    return _template_name(t) == "stream" and "hls::stream" in t.spelling


_AXIS_TEMPLATES = ("ap_axiu", "ap_axis", "qdma_axis", "axis")


def stream_element(t) -> dict:
    """What one element of a stream of type ``t`` (the element type, not the stream) holds.

    ``ap_axiu<W, U, TI, TD>`` / ``ap_axis`` give TDATA width W and the side-channel widths, as
    Vitis's AXI4-Stream port has them; any other T gives its value width (``ap_*`` the template
    width, else 8 * sizeof(T)) and no side channels.
    """
    t = t.get_canonical()
    name = _template_name(t)
    if name in _AXIS_TEMPLATES:
        decl = t.get_declaration()
        values = [decl.get_template_argument_value(i) for i in range(decl.get_num_template_arguments())]
        if len(values) >= 4:
            spelled = f"{name}<{values[0]}, {values[1]}, {values[2]}, {values[3]}>"
            return {"type": spelled, "data_bits": values[0], "axis": True, "signed": name == "ap_axis",
                    "user_bits": values[1], "id_bits": values[2], "dest_bits": values[3]}
    spelled, bits = value_spelling(t)
    signed = spelled.startswith(("ap_int<", "ap_fixed<")) or spelled in (
        "char", "signed char", "short", "int", "long", "long long", "float", "double")
    return {"type": spelled, "data_bits": bits, "axis": False, "signed": signed,
            "user_bits": 0, "id_bits": 0, "dest_bits": 0}


_READS = {"read", "read_nb", "empty", ">>"}
_WRITES = {"write", "write_nb", "full", "<<"}


def _body_tokens(cursor) -> list[str]:
    return [t.spelling for t in cursor.get_tokens()]


def _template_of(cursor):
    """The template a function specialization was instantiated from (else the cursor)."""
    ci = _cindex()
    t = ci.conf.lib.clang_getSpecializedCursorTemplate(cursor)
    return t if t is not None and not t.kind.is_invalid() else cursor


def stream_uses(func, name: str, depth: int = 0, seen=None) -> set[str]:
    """How function ``func`` uses its stream parameter ``name``: a set of "read"/"write".

    Looks for ``name.read()``, ``name >> x``, ``name.write()``, ``name << x`` (and the _nb, empty
    and full forms) in the body, and follows ``name`` into the functions it is passed to (also
    function templates, through their template's body), as HLS does when it infers a port's
    direction from its accesses.
    """
    ci = _cindex()
    seen = set() if seen is None else seen
    key = (func.hash, name)
    if key in seen or depth > 16:
        return set()
    seen.add(key)
    uses: set[str] = set()
    toks = _body_tokens(func)
    for i, tok in enumerate(toks[:-1]):
        if tok != name:
            continue
        nxt = toks[i + 1]
        if nxt in (".", "->") and i + 2 < len(toks):
            nxt = toks[i + 2]
        if nxt in _READS:
            uses.add("read")
        elif nxt in _WRITES:
            uses.add("write")
    for node in func.walk_preorder():
        if node.kind != ci.CursorKind.CALL_EXPR:
            continue
        args = list(node.get_arguments())
        for pos, a in enumerate(args):
            ref = a
            while ref.kind == ci.CursorKind.UNEXPOSED_EXPR and len(list(ref.get_children())) == 1:
                ref = next(ref.get_children())
            if ref.kind != ci.CursorKind.DECL_REF_EXPR or ref.spelling != name:
                continue
            callee = node.referenced
            if callee is None or callee.kind not in (ci.CursorKind.FUNCTION_DECL, ci.CursorKind.FUNCTION_TEMPLATE):
                continue
            target = callee.get_definition() or callee
            body = _template_of(target)
            body = body.get_definition() or body
            params = [p for p in body.get_children() if p.kind == ci.CursorKind.PARM_DECL]
            if pos < len(params) and any(c.kind == ci.CursorKind.COMPOUND_STMT for c in body.get_children()):
                uses |= stream_uses(body, params[pos].spelling, depth + 1, seen)
    return uses


def stream_direction(func, arg: "Arg", pointer_const: bool | None = None) -> str:
    """"input" or "output" for stream argument ``arg`` of kernel ``func`` (KernelMetaError when
    the body both reads and writes it, or does neither in a way fpyga can see)."""
    if pointer_const is not None:
        # An axis pointer: HLS reads a const one and writes the other.
        return "input" if pointer_const else "output"
    uses = stream_uses(func, arg.name)
    if uses == {"read"}:
        return "input"
    if uses == {"write"}:
        return "output"
    if uses:
        raise KernelMetaError(
            f"stream argument '{arg.name}' is both read and written; an AXI4-Stream port has one "
            "direction (read it in one kernel and write it in another)")
    raise KernelMetaError(
        f"stream argument '{arg.name}' is neither read nor written in the kernel (fpyga looks for "
        f"{arg.name}.read()/write(), >>/<< and follows it into the functions it is passed to), so "
        "its direction is unknown")


def describe_arg(cursor, pragmas: dict[str, dict[str, str]] | None) -> Arg:
    """Derives an Arg from a PARM_DECL cursor and its INTERFACE pragmas ({mode: options})."""
    ci = _cindex()
    name = cursor.spelling
    t = cursor.type.get_canonical()
    pragmas = pragmas or {}
    # A pointer has its data interface (m_axi/axis) and its address register (s_axilite).
    data_modes = [m for m in pragmas if m != "s_axilite"]
    if len(data_modes) > 1:
        raise KernelMetaError(f"argument '{name}' has several interface modes: {', '.join(data_modes)}")
    mode = data_modes[0] if data_modes else ("s_axilite" if pragmas else "")
    bundle = pragmas.get(mode, {}).get("bundle", "")
    control_bundle = pragmas.get("s_axilite", {}).get("bundle", "")
    if t.kind in (ci.TypeKind.LVALUEREFERENCE, ci.TypeKind.RVALUEREFERENCE):
        pointee = t.get_pointee()
        if not is_stream_type(pointee):
            raise KernelMetaError(
                f"argument '{name}' is a reference to '{pointee.spelling}'; a kernel takes "
                "pointers, values or hls::stream references")
        # Vitis writes a stream's type without its namespace: "stream<ap_axiu<32, 0, 0, 0>>&".
        spelled = _unqualified_spelling(pointee.get_canonical()).removeprefix("hls::") + "&"
        canon = pointee.get_canonical()
        elem_t = canon.get_template_argument_type(0) if canon.get_num_template_arguments() > 0 else None
        element = stream_element(elem_t) if elem_t is not None and elem_t.kind != ci.TypeKind.INVALID else None
        return Arg(name, spelled, "stream", name, size=0, host_size=8, element=element)
    if is_stream_type(t):
        raise KernelMetaError(f"argument '{name}': hls::stream must be passed by reference")
    if t.kind in (ci.TypeKind.POINTER, ci.TypeKind.CONSTANTARRAY, ci.TypeKind.INCOMPLETEARRAY):
        pointee = t.get_pointee() if t.kind == ci.TypeKind.POINTER else t.get_array_element_type()
        if pointee.kind == ci.TypeKind.POINTER:
            raise KernelMetaError(f"argument '{name}': pointers to pointers cannot cross to a device")
        base, _ = value_spelling(pointee)
        spelled = f"{base} const *" if pointee.is_const_qualified() else f"{base}*"
        if mode == "axis":
            return Arg(name, spelled, "stream", name, size=0, host_size=8, element=stream_element(pointee),
                       direction="input" if pointee.is_const_qualified() else "output")
        if mode and mode not in ("m_axi", "s_axilite"):
            raise KernelMetaError(
                f"argument '{name}': interface mode '{mode}' is not supported for a pointer "
                "(expected m_axi or axis)")
        port = "M_AXI_" + (bundle or "gmem").upper()
        return Arg(name, spelled, "global", port, size=8, host_size=8, bits=64)
    if t.kind == ci.TypeKind.RECORD and _template_name(t) not in _AP_INTEGER_TEMPLATES + _AP_FIXED_TEMPLATES:
        raise KernelMetaError(
            f"argument '{name}' has type '{t.spelling}'; scalar kernel arguments must be "
            "integers, floating point or ap_int/ap_uint/ap_fixed/ap_ufixed")
    if mode and mode not in ("s_axilite",):
        raise KernelMetaError(
            f"argument '{name}': interface mode '{mode}' is not supported for a scalar "
            "(expected s_axilite)")
    spelled, bits = value_spelling(t)
    if bits <= 0:
        raise KernelMetaError(f"argument '{name}' has incomplete type '{t.spelling}'")
    words = max(1, -(-bits // 32))
    size = cursor.type.get_canonical().get_size()
    port = "S_AXI_" + (control_bundle or "control").upper()
    return Arg(name, spelled, "scalar", port, size=4 * words, host_size=size, bits=bits)


# --- parsing sources ---------------------------------------------------------------------------
def clang_args(include_dirs: Iterable[str] = (), defines: Iterable[str] = (), std: str = "c++14",
               resource_dir: str | None = None, builtin_include: str | None = None) -> list[str]:
    args = ["-x", "c++", f"-std={std}"]
    if resource_dir:
        args += ["-resource-dir", resource_dir]
    elif builtin_include:
        args += ["-isystem", builtin_include]
    args += [f"-I{d}" for d in include_dirs]
    args += [f"-D{d}" for d in defines]
    return args


def is_c_source(path: str) -> bool:
    """A plain C kernel: v++ compiles ``.c`` files as C (no extern "C" needed)."""
    return str(path).endswith(".c")


#: The C standard plain C kernels are parsed and compiled with.
C_STD = "gnu11"


def c_source_args(args: Sequence[str]) -> list[str]:
    """``args`` (made for C++) for a C source: ``-x c`` and the C standard."""
    out = list(args)
    for i, a in enumerate(out):
        if a == "c++" and i > 0 and out[i - 1] == "-x":
            out[i] = "c"
        elif a.startswith("-std="):
            out[i] = f"-std={C_STD}"
    return out


def default_resource_dir() -> tuple[str | None, str | None]:
    """(clang resource dir, or a compiler's builtin include dir) for libclang's builtin headers."""
    for clang in ("clang-14", "clang"):
        exe = shutil.which(clang)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "-print-resource-dir"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if os.path.exists(os.path.join(out, "include", "stddef.h")):
            return out, None
    for cc in ("g++", "c++", "gcc"):
        exe = shutil.which(cc)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "-print-file-name=include"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if os.path.exists(os.path.join(out, "stddef.h")):
            return None, out
    return None, None


def _function_body_text(cursor) -> str:
    extent = cursor.extent
    path = extent.start.file.name
    with open(path, "rb") as f:
        data = f.read()
    return data[extent.start.offset:extent.end.offset].decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=None)
def _realpath(name: str) -> str:
    return os.path.realpath(name)


def _functions_in_file(cursor, path: str):
    """Function declarations of file `path` at namespace scope (extern "C" blocks included).

    Only declarations of the file itself are visited, not the (large) HLS headers it includes.
    """
    ci = _cindex()
    scopes = (ci.CursorKind.LINKAGE_SPEC, ci.CursorKind.NAMESPACE, ci.CursorKind.UNEXPOSED_DECL)
    for c in cursor.get_children():
        f = c.location.file
        if f is None or _realpath(f.name) != path:
            continue
        if c.kind == ci.CursorKind.FUNCTION_DECL:
            yield c
        elif c.kind in scopes:
            yield from _functions_in_file(c, path)


def parse_sources(sources: Sequence[str], kernel_names: Sequence[str], args: Sequence[str],
                  depends: set[str] | None = None) -> dict[str, Kernel]:
    """Parses `sources` and describes each kernel of `kernel_names`.

    Raises KernelMetaError when a source does not compile, a kernel is missing, not extern "C",
    not defined, defined twice, or has an argument that cannot cross to a device.
    """
    ci = _cindex()
    index = ci.Index.create()
    found: dict[str, Kernel] = {}
    defined: list[str] = []
    wanted = set(kernel_names)
    for src in sources:
        if not os.path.exists(src):
            raise KernelMetaError(f"kernel source '{src}' does not exist")
        try:
            tu = index.parse(src, args=c_source_args(args) if is_c_source(src) else list(args))
        except ci.TranslationUnitLoadError as exc:
            raise KernelMetaError(f"libclang could not parse '{src}': {exc}") from exc
        errors = [d for d in tu.diagnostics if d.severity >= ci.Diagnostic.Error]
        if errors:
            text = "\n  ".join(str(d) for d in errors[:10])
            raise KernelMetaError(f"'{src}' does not compile:\n  {text}")
        if depends is not None:
            depends.add(os.path.realpath(src))
            for inc in tu.get_includes():
                # realpath, not abspath: libclang reports paths such as
                # /usr/lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/..., whose ".." only
                # resolve correctly after symlinks. A missing prerequisite would rerun every build.
                path = os.path.realpath(inc.include.name)
                if os.path.exists(path):
                    depends.add(path)
        for cur in _functions_in_file(tu.cursor, os.path.realpath(src)):
            if not cur.is_definition():
                continue
            defined.append(cur.spelling)
            if cur.spelling not in wanted:
                continue
            parent = cur.semantic_parent
            while parent is not None and parent.kind == ci.CursorKind.LINKAGE_SPEC:
                parent = parent.semantic_parent
            if parent is None or parent.kind != ci.CursorKind.TRANSLATION_UNIT:
                raise KernelMetaError(
                    f"kernel '{cur.spelling}' in '{src}' is inside a namespace or class; a kernel is a "
                    "global extern \"C\" function")
            if cur.mangled_name != cur.spelling:
                raise KernelMetaError(
                    f"kernel '{cur.spelling}' in '{src}' is not declared extern \"C\"; sw_emu finds "
                    "kernels by their C symbol name")
            if cur.spelling in found:
                raise KernelMetaError(
                    f"kernel '{cur.spelling}' is defined in both '{found[cur.spelling].source}' and '{src}'")
            pragmas, control = parse_interface_pragmas(_function_body_text(cur))
            params = list(cur.get_arguments())
            param_names = {p.spelling for p in params}
            for port in pragmas:
                if port not in param_names:
                    raise KernelMetaError(
                        f"kernel '{cur.spelling}': '#pragma HLS INTERFACE' names port '{port}', "
                        f"which is not an argument (arguments: {', '.join(sorted(param_names)) or 'none'})")
            kargs = []
            for p in params:
                if not p.spelling:
                    raise KernelMetaError(f"kernel '{cur.spelling}' has an unnamed argument")
                try:
                    a = describe_arg(p, pragmas.get(p.spelling))
                    if a.kind == "stream" and not a.direction:
                        a.direction = stream_direction(cur, a)
                    kargs.append(a)
                except KernelMetaError as exc:
                    raise KernelMetaError(f"kernel '{cur.spelling}': {exc}") from None
            assign_offsets(kargs)
            if control == "ap_ctrl_none":
                host = [a.name for a in kargs if a.kind != "stream"]
                if host:
                    raise KernelMetaError(
                        f"kernel '{cur.spelling}' is free-running (ap_ctrl_none) but takes host "
                        f"argument(s) {', '.join(repr(h) for h in host)}; a free-running kernel has no "
                        "control registers and takes streams only")
            found[cur.spelling] = Kernel(cur.spelling, kargs, control or "ap_ctrl_hs", src)
    missing = [k for k in kernel_names if k not in found]
    if missing:
        raise KernelMetaError(
            f"kernel{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} not defined "
            f"in {', '.join(sources)} (functions defined there: {', '.join(sorted(set(defined))) or 'none'})")
    return {k: found[k] for k in kernel_names}


# --- memories and connectivity -----------------------------------------------------------------
_SIZE_RE = re.compile(r"^(\d+)\s*([KMGT]?)(i?B)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise KernelMetaError(f"memory size '{text}' is not a size such as 16G, 512M or 65536")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(m.group(1)) * scale


def parse_memories(specs: Sequence[str]) -> list[Memory]:
    """Parses 'tag:type:size' entries; banks are laid out one after another from address 0."""
    mems: list[Memory] = []
    base = 0
    for spec in specs:
        parts = spec.split(":")
        if len(parts) != 3:
            raise KernelMetaError(f"memory '{spec}' is not 'tag:type:size' (e.g. bank0:ddr4:16G)")
        tag, mtype, size = (p.strip() for p in parts)
        if not tag or len(tag.encode()) > 15:
            raise KernelMetaError(f"memory '{spec}': the tag must have 1 to 15 characters")
        if mtype.lower() not in MEMORY_TYPES:
            raise KernelMetaError(
                f"memory '{spec}': unknown type '{mtype}' (expected one of {', '.join(MEMORY_TYPES)})")
        if any(m.tag == tag for m in mems):
            raise KernelMetaError(f"memory tag '{tag}' is given twice")
        nbytes = parse_size(size)
        if nbytes <= 0 or nbytes % 1024:
            raise KernelMetaError(f"memory '{spec}': size must be a positive multiple of 1 KiB")
        mems.append(Memory(tag, mtype.lower(), nbytes, base))
        base += nbytes
    if not mems:
        raise KernelMetaError("an xclbin needs at least one memory")
    return mems


def _find_memory(ref: str, memories: Sequence[Memory], where: str) -> Memory:
    for m in memories:
        if m.tag == ref:
            return m
    # v++ also names banks by index: DDR[1], HBM[0] ...
    m = re.fullmatch(r"(?:DDR|HBM|PLRAM|bank)\[(\d+)\]", ref)
    if m and int(m.group(1)) < len(memories):
        return memories[int(m.group(1))]
    raise KernelMetaError(
        f"{where}: unknown memory '{ref}' (memories: {', '.join(x.tag for x in memories)})")


def parse_connectivity(lines: Sequence[str], kernels: dict[str, Kernel],
                       memories: Sequence[Memory]) -> list[Instance]:
    """Applies v++ [connectivity] lines; returns every compute unit with its connections.

    Supports ``nk=<kernel>:<count>[:<cu1>.<cu2>...]`` and ``sp=<cu>.<arg>:<memory>``; blank lines,
    ``#`` comments and a ``[connectivity]`` header are skipped. Marks referenced memories used.
    """
    counts: dict[str, list[str]] = {}
    sps: list[tuple[str, str, str, str]] = []
    scs: list[tuple[str, str, str, str, str, int]] = []
    for raw in lines:
        line = raw.split("#")[0].strip()
        if not line or line.lower() == "[connectivity]":
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq:
            raise KernelMetaError(f"connectivity line '{raw}' is not 'nk=...' or 'sp=...'")
        if key == "nk":
            parts = value.split(":")
            if len(parts) not in (2, 3) or not parts[1].strip().isdigit() or int(parts[1]) < 1:
                raise KernelMetaError(f"connectivity '{raw}': expected nk=<kernel>:<count>[:<cu>.<cu>...]")
            kname, count = parts[0].strip(), int(parts[1])
            if kname not in kernels:
                raise KernelMetaError(
                    f"connectivity '{raw}': unknown kernel '{kname}' (kernels: {', '.join(kernels)})")
            if kname in counts:
                raise KernelMetaError(f"connectivity '{raw}': kernel '{kname}' has two nk= lines")
            if len(parts) == 3:
                names = [n.strip() for n in parts[2].split(".")]
                if len(names) != count or not all(names):
                    raise KernelMetaError(f"connectivity '{raw}': {count} compute unit names expected")
            else:
                names = [f"{kname}_{i}" for i in range(1, count + 1)]
            counts[kname] = names
        elif key == "sp":
            target, colon, mem = value.rpartition(":")
            cu, dot, arg = target.partition(".")
            if not colon or not dot or not cu or not arg or not mem:
                raise KernelMetaError(f"connectivity '{raw}': expected sp=<cu>.<arg>:<memory>")
            sps.append((raw, cu.strip(), arg.strip(), mem.strip()))
        elif key in ("sc", "stream_connect"):
            parts = [x.strip() for x in value.split(":")]
            if len(parts) not in (2, 3) or not all(parts):
                raise KernelMetaError(
                    f"connectivity '{raw}': expected sc=<cu>.<output>:<cu>.<input>[:<depth>]")
            ends = []
            for part in parts[:2]:
                cu, dot, arg = part.partition(".")
                if not dot or not cu or not arg:
                    raise KernelMetaError(
                        f"connectivity '{raw}': '{part}' is not <cu>.<argument>")
                ends.append((cu, arg))
            depth = DEFAULT_STREAM_DEPTH
            if len(parts) == 3:
                if not re.fullmatch(r"\d+", parts[2]):
                    raise KernelMetaError(f"connectivity '{raw}': depth '{parts[2]}' is not a number")
                depth = int(parts[2])
                if depth < 1:
                    raise KernelMetaError(
                        f"connectivity '{raw}': depth 0; a stream needs a depth of at least 1")
            scs.append((raw, ends[0][0], ends[0][1], ends[1][0], ends[1][1], depth))
        elif key in ("slr", "connect"):
            raise KernelMetaError(f"connectivity '{raw}': '{key}' is not supported by the sw_emu toolchain")
        else:
            raise KernelMetaError(f"connectivity '{raw}': unknown directive '{key}' (expected nk, sp or sc)")

    instances: list[Instance] = []
    by_name: dict[str, Instance] = {}
    for kname, kernel in kernels.items():
        for cu in counts.get(kname, [f"{kname}_1"]):
            if cu in by_name:
                raise KernelMetaError(f"compute unit name '{cu}' is used twice")
            inst = Instance(cu, kname)
            instances.append(inst)
            by_name[cu] = inst
    for i, inst in enumerate(instances):
        inst.base_address = CU_BASE_ADDRESS + i * CU_STRIDE

    for raw, cu, arg, mem in sps:
        inst, kernel, karg = _cu_argument(raw, cu, arg, by_name, kernels)
        if karg.kind != "global":
            raise KernelMetaError(
                f"connectivity '{raw}': argument '{arg}' of kernel '{kernel.name}' is a {karg.kind}, "
                "only global (m_axi) arguments connect to memory")
        if arg in inst.connections:
            raise KernelMetaError(f"connectivity '{raw}': '{cu}.{arg}' is connected twice")
        inst.connections[arg] = _find_memory(mem, memories, f"connectivity '{raw}'").tag

    _connect_streams(scs, by_name, kernels, memories)

    default = memories[0]
    for inst in instances:
        for karg in kernels[inst.kernel].args:
            if karg.kind == "global" and karg.name not in inst.connections:
                inst.connections[karg.name] = default.tag
    used = {tag for inst in instances for tag in inst.connections.values()}
    for m in memories:
        m.used = m.tag in used
    for inst in instances:
        for karg in kernels[inst.kernel].args:
            if karg.kind == "stream" and karg.name not in inst.connections:
                hint = (f"sc=<cu>.<output>:{inst.name}.{karg.name}" if karg.direction == "input"
                        else f"sc={inst.name}.{karg.name}:<cu>.<input>")
                raise KernelMetaError(
                    f"stream argument '{karg.name}' ({karg.direction}) of compute unit '{inst.name}' "
                    f"(kernel '{inst.kernel}') is not connected: add '{hint}' to the connectivity")
    return instances


#: FIFO depth of an sc= line that gives none (fpyga's choice; stream_layout::default_depth in C++).
DEFAULT_STREAM_DEPTH = 16


def _elements_match(a: dict | None, b: dict | None) -> bool:
    if not a or not b:
        return True
    keys = ("data_bits", "axis", "user_bits", "id_bits", "dest_bits")
    return all(a.get(k) == b.get(k) for k in keys)


def _element_text(e: dict | None) -> str:
    return f"{e['type']}, {e['data_bits']} data bits" if e else "unknown element"


def _connect_streams(scs, by_name: dict[str, Instance], kernels: dict[str, Kernel],
                     memories: list[Memory]) -> None:
    """Applies sc= lines: one STREAMING_CONNECTION memory (dc_0, dc_1, ... as v++ names them) per
    line, the producer's and the consumer's argument connected to it."""
    n = 0
    for raw, src_cu, src_arg, dst_cu, dst_arg, depth in scs:
        ends = []
        for cu, arg, want in ((src_cu, src_arg, "output"), (dst_cu, dst_arg, "input")):
            inst, kernel, karg = _cu_argument(raw, cu, arg, by_name, kernels)
            if karg.kind != "stream":
                raise KernelMetaError(
                    f"connectivity '{raw}': argument '{arg}' of kernel '{kernel.name}' is a {karg.kind}, "
                    "only hls::stream / axis arguments are stream-connected")
            if karg.direction != want:
                side = "first (the producer)" if want == "output" else "second (the consumer)"
                raise KernelMetaError(
                    f"connectivity '{raw}': {cu}.{arg} is an {karg.direction} of kernel '{kernel.name}', "
                    f"but the {side} end of sc= must be an {want}")
            if arg in inst.connections:
                raise KernelMetaError(
                    f"connectivity '{raw}': {cu}.{arg} is already connected (to '{inst.connections[arg]}')")
            ends.append((inst, karg))
        (si, sa), (di, da) = ends
        if not _elements_match(sa.element, da.element):
            raise KernelMetaError(
                f"connectivity '{raw}': {src_cu}.{src_arg} ({_element_text(sa.element)}) and "
                f"{dst_cu}.{dst_arg} ({_element_text(da.element)}) differ in width or side channels")
        while any(m.tag == f"dc_{n}" for m in memories):
            n += 1
        tag = f"dc_{n}"
        n += 1
        mem = Memory(tag, "streaming_connection", 0, 0, True)
        mem.stream = {"source": f"{src_cu}.{src_arg}", "sink": f"{dst_cu}.{dst_arg}", "depth": depth}
        memories.append(mem)
        si.connections[src_arg] = tag
        di.connections[dst_arg] = tag


def _cu_argument(raw: str, cu: str, arg: str, by_name: dict[str, Instance],
                 kernels: dict[str, Kernel]) -> tuple[Instance, Kernel, Arg]:
    """The compute unit, kernel and argument a connectivity line names (KernelMetaError listing
    what exists when there is none)."""
    inst = by_name.get(cu)
    if inst is None:
        raise KernelMetaError(
            f"connectivity '{raw}': unknown compute unit '{cu}' (compute units: {', '.join(by_name)})")
    kernel = kernels[inst.kernel]
    karg = next((a for a in kernel.args if a.name == arg), None)
    if karg is None:
        raise KernelMetaError(
            f"connectivity '{raw}': kernel '{kernel.name}' has no argument '{arg}' (arguments: "
            f"{', '.join(a.name for a in kernel.args)})")
    return inst, kernel, karg


def read_config_connectivity(path: str) -> list[str]:
    """The ``[connectivity]`` lines of a v++ ``--config`` file (other sections are ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise KernelMetaError(f"cannot read v++ config file '{path}': {exc.strerror}") from None
    lines, section = [], ""
    for raw in text.splitlines():
        line = raw.split("#")[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
        elif line and section == "connectivity":
            lines.append(line)
    return lines


# --- the description ---------------------------------------------------------------------------
def build_description(kernels: dict[str, Kernel], instances: Sequence[Instance],
                      memories: Sequence[Memory], platform: str = DEFAULT_PLATFORM) -> dict:
    out_kernels = []
    for kname, kernel in kernels.items():
        out_kernels.append({
            "name": kname,
            "language": "c++",
            "args": [a.to_json() for a in kernel.args],
            "instances": [
                {
                    "name": inst.name,
                    # A free-running CU has no control registers: all ones, as Vitis writes it.
                    "base_address": NO_CONTROL_BASE if kernel.control == "ap_ctrl_none" else inst.base_address,
                    "control": kernel.control,
                    # Keep argument order so the output is stable.
                    "connections": {a.name: inst.connections[a.name] for a in kernel.args
                                    if a.name in inst.connections},
                }
                for inst in instances if inst.kernel == kname
            ],
        })
    out = {
        "mode": "sw_emu",
        "platform": platform,
        "timestamp": 0,
        "clocks": [dict(c) for c in DEFAULT_CLOCKS],
        "memories": [m.to_json() for m in memories],
        "kernels": out_kernels,
    }
    streams = streams_metadata(kernels, memories)
    if streams is not None:
        out["streams"] = streams
    return out


#: Schema of fpyga's stream additions (USER_METADATA "fpyga_streams"; stream_layout in C++).
STREAMS_SCHEMA = "fpyga.streams/1"


def streams_metadata(kernels: dict[str, Kernel], memories: Sequence[Memory]) -> dict | None:
    """What emu needs and Vitis has no place for: each stream argument's element (TDATA width,
    side channels) and each kernel-to-kernel stream's FIFO depth. None without streams."""
    args = []
    for kname, kernel in kernels.items():
        for a in kernel.args:
            if a.kind != "stream" or not a.element or a.element.get("data_bits", 0) <= 0:
                continue
            e = a.element
            args.append({"kernel": kname, "arg": a.name, "direction": a.direction, "type": e["type"],
                         "data_bits": e["data_bits"], "width_bytes": (e["data_bits"] + 7) // 8,
                         "axis": e["axis"], "signed": e["signed"], "user_bits": e["user_bits"],
                         "id_bits": e["id_bits"], "dest_bits": e["dest_bits"]})
    conns = [{"tag": m.tag, **m.stream} for m in memories if m.stream]
    if not args and not conns:
        return None
    return {"schema": STREAMS_SCHEMA, "args": args, "connections": conns}


def describe(sources: Sequence[str], kernel_names: Sequence[str], connectivity: Sequence[str] = (),
             memories: Sequence[str] = DEFAULT_MEMORIES, include_dirs: Sequence[str] = (),
             defines: Sequence[str] = (), std: str = "c++14", platform: str = DEFAULT_PLATFORM,
             resource_dir: str | None = None, builtin_include: str | None = None,
             depends: set[str] | None = None) -> dict:
    """The whole pipeline: sources and options in, the JSON description (a dict) out."""
    if not kernel_names:
        raise KernelMetaError("no kernel names given")
    if len(set(kernel_names)) != len(kernel_names):
        raise KernelMetaError(f"kernel names repeat: {', '.join(kernel_names)}")
    if resource_dir is None and builtin_include is None:
        resource_dir, builtin_include = default_resource_dir()
    mems = parse_memories(memories or DEFAULT_MEMORIES)
    args = clang_args(include_dirs, defines, std, resource_dir, builtin_include)
    kernels = parse_sources(sources, kernel_names, args, depends)
    instances = parse_connectivity(connectivity, kernels, mems)
    return build_description(kernels, instances, mems, platform)


def _escape_dep(path: str) -> str:
    return path.replace(" ", "\\ ")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="+", help="HLS C++ source files")
    p.add_argument("--kernel", action="append", required=True, help="kernel (extern \"C\" function) to describe")
    p.add_argument("--connectivity", action="append", default=[], help="v++ connectivity line (nk=, sp=)")
    p.add_argument("--config", action="append", default=[], help="v++ config file; its [connectivity] lines are used")
    p.add_argument("--memory", action="append", default=[], help="memory 'tag:type:size' (default: F1's 4 DDR4 banks)")
    p.add_argument("-I", dest="includes", action="append", default=[], help="include directory")
    p.add_argument("-D", dest="defines", action="append", default=[], help="preprocessor definition")
    p.add_argument("--std", default="c++14")
    p.add_argument("--platform", default=DEFAULT_PLATFORM)
    p.add_argument("--resource-dir", help="clang resource directory (builtin headers)")
    p.add_argument("--builtin-include", help="compiler builtin include directory, if no clang resource dir")
    p.add_argument("-o", "--output", required=True, help="JSON description to write")
    p.add_argument("--depfile", help="write a Makefile-style dependency file")
    p.add_argument("--network", help="JSON file of the network the kernels run (schema "
                   "fpyga.network/1), copied into the description's \"network\" key")
    ns = p.parse_args(argv)
    depends: set[str] = set()
    try:
        connectivity = []
        for cfg in ns.config:
            connectivity += read_config_connectivity(cfg)
            depends.add(os.path.realpath(cfg))
        connectivity += ns.connectivity
        desc = describe(ns.sources, ns.kernel, connectivity, ns.memory or DEFAULT_MEMORIES,
                        ns.includes, ns.defines, ns.std, ns.platform, ns.resource_dir,
                        ns.builtin_include, depends)
        if ns.network:
            # Checked against the kernels by `fpyga xclbin pack`, which knows the schema.
            try:
                with open(ns.network, encoding="utf-8") as f:
                    desc["network"] = json.load(f)
            except (OSError, ValueError) as exc:
                raise KernelMetaError(f"network description '{ns.network}': {exc}") from None
            depends.add(os.path.realpath(ns.network))
    except KernelMetaError as exc:
        print(f"kernel_meta: error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(desc, indent=2) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(ns.output)), exist_ok=True)
    with open(ns.output, "w", encoding="utf-8") as f:
        f.write(text)
    if ns.depfile:
        with open(ns.depfile, "w", encoding="utf-8") as f:
            f.write(_escape_dep(os.path.abspath(ns.output)) + ": \\\n")
            f.write(" \\\n".join("  " + _escape_dep(d) for d in sorted(depends)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
