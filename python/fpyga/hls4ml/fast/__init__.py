"""The fast path of hls4ml networks on emu (issue 17): integer arithmetic on the raw ap_fixed bits
that reproduces hls4ml's C simulation operation by operation, generated from the project.

:func:`generate` is called by ``fpyga.hls4ml.build`` for every fpyga_batch network. It reads the
written project (the source of truth the C simulation compiles): ``myproject.cpp``'s sequence of
``nnet::`` calls, ``parameters.h``'s configuration structs and ``defines.h``'s types, and emits C++
(``templates/network.cpp.in`` around ``templates/runtime.h.in``) that computes the same layers on
integers, batch-major. The C++ takes every width, mode and signedness from the project's own
typedefs at compile time; the Python side only decides whether each layer is one the fast path
covers, and says why not otherwise. :mod:`.verify` then proves the result against the C
simulation before a build keeps it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

__all__ = ["generate", "Unsupported", "fixed_type", "read_network"]

#: Quantization and overflow modes the runtime implements (ap_fixed_base.h's semantics).
QUANTIZATION = ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV")
OVERFLOW = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")
#: Element-wise activations computed through a table of every input value, made by hls4ml's own
#: function: any input type up to this many bits.
LUT_MAX_BITS = 20
LUT_ACTIVATIONS = ("sigmoid", "tanh", "softplus", "softsign", "selu", "elu", "leaky_relu", "hard_sigmoid",
                   "hard_tanh", "relu6", "thresholded_relu")
DENSE_KERNELS = ("DenseLatency", "DenseResource_rf_leq_nin", "DenseResource_rf_gt_nin_rem0", "DenseResource_rf_gt_nin")


class Unsupported(Exception):
    """A layer or type the fast path does not cover; the message names the layer and why."""


@dataclass
class fixed_type:
    """An ap_fixed/ap_ufixed/ap_int/ap_uint type, parsed."""

    text: str
    signed: bool
    width: int
    integer: int
    quantization: str = "AP_TRN"
    overflow: str = "AP_WRAP"
    saturation_bits: int = 0

    @classmethod
    def parse(cls, text: str) -> "fixed_type | None":
        t = text.replace(" ", "")
        m = re.fullmatch(r"ap_(u?)fixed<(\d+),(-?\d+)(?:,(\w+))?(?:,(\w+))?(?:,(\d+))?>", t)
        if m:
            return cls(t, not m.group(1), int(m.group(2)), int(m.group(3)), m.group(4) or "AP_TRN",
                       m.group(5) or "AP_WRAP", int(m.group(6) or 0))
        m = re.fullmatch(r"ap_(u?)int<(\d+)>", t)
        if m:
            return cls(t, not m.group(1), int(m.group(2)), int(m.group(2)))
        return None

    @property
    def fraction(self) -> int:
        return self.width - self.integer

    def why_not(self) -> str | None:
        """Why the runtime cannot hold this type, or None."""
        if self.width > (32 if self.signed else 31):
            return f"{self.text} is wider than the fast path's 32-bit integers"
        if self.quantization not in QUANTIZATION:
            return f"{self.text} has quantization mode {self.quantization}"
        if self.overflow not in OVERFLOW:
            return f"{self.text} has overflow mode {self.overflow}"
        if not -8 <= self.fraction <= 40:
            return f"{self.text} has {self.fraction} fraction bits (the fast path takes -8 to 40)"
        if self.saturation_bits and self.overflow == "AP_WRAP":
            return f"{self.text} wraps with {self.saturation_bits} saturation bits"
        return None


@dataclass
class call:
    """One ``nnet::`` call of the top function."""

    function: str
    template_args: list[str]
    args: list[str]
    layer: str  #: hls4ml's layer name (the call's trailing comment)

    @property
    def config(self) -> str:
        return self.template_args[-1]


@dataclass
class network:
    """What the generator reads from a project."""

    name: str
    io_type: str
    calls: list[call]
    typedefs: dict[str, str]
    configs: dict[str, str]  #: struct name -> body
    parameters_h: str
    weights: dict[str, str]  #: array name -> the declaration the fast source needs


def _split_top(s: str) -> list[str]:
    """``a, b<c, d>, e`` -> ['a', 'b<c, d>', 'e']."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "<" or ch == "(":
            depth += 1
        elif ch == ">" or ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _weight_declarations(firmware: Path) -> dict[str, str]:
    """Each weight header's array, declared for another translation unit: ``extern`` for arrays
    with external linkage (hls4ml's default), the header itself for static/const ones (their own
    copy is then the same values)."""
    out = {}
    for h in sorted((firmware / "weights").glob("*.h")):
        text = h.read_text()
        m = re.search(r"^\s*((?:static\s+|const\s+)*)([\w:]+(?:<[^;=]*?>)?)\s+(\w+)\s*\[([^\]]+)\]", text, re.M)
        if not m:
            continue
        qualifiers, type_name, name, size = m.groups()
        if qualifiers.strip():
            out[name] = f'#include "weights/{h.name}"'
        else:
            out[name] = f"extern {type_name} {name}[{size}];"
    return out


def read_network(project, firmware: Path) -> network:
    """Reads the calls, configurations, types and weights of a written project."""
    firmware = Path(firmware)
    top = (firmware / f"{project.name}.cpp").read_text()
    params = (firmware / "parameters.h").read_text()
    defines = (firmware / "defines.h").read_text()
    typedefs = {m.group(2): " ".join(m.group(1).split())
                for m in re.finditer(r"^\s*typedef\s+(.+?)\s+(\w+)\s*;", defines, re.M)}
    configs = {m.group(1): m.group(2) for m in
               re.finditer(r"struct\s+(\w+)\s*:\s*nnet::\w+\s*\{(.*?)\n\};", params, re.S)}
    body = top.split("NETWORK INSTANTIATION", 1)[-1]
    calls = []
    for m in re.finditer(r"nnet::(\w+)\s*<(.*?)>\s*\((.*?)\)\s*;[ \t]*(?://[ \t]*(\S+))?", body, re.S):
        fn, targs, args, layer = m.groups()
        if fn.startswith("load_weights"):
            continue
        calls.append(call(fn, _split_top(targs), _split_top(args), layer or fn))
    # anything else the top function does that is not an nnet:: call or a declaration
    return network(project.name, project.io_type, calls, typedefs, configs, params, _weight_declarations(firmware))


class _types:
    """Resolves type names of the project (defines.h, and a configuration's own typedefs)."""

    def __init__(self, net: network):
        self.net = net

    def resolve(self, name: str, config: str | None = None) -> str:
        t = name.strip()
        local = {}
        if config and config in self.net.configs:
            local = {m.group(2): " ".join(m.group(1).split())
                     for m in re.finditer(r"typedef\s+(.+?)\s+(\w+)\s*;", self.net.configs[config])}
        for _ in range(16):
            if t in local:
                t, local = local[t], {}
            elif t in self.net.typedefs:
                t = self.net.typedefs[t]
            else:
                m = re.fullmatch(r"nnet::array<\s*(.+?)\s*,\s*[^,<>]+>", t)
                if not m:
                    break
                t = m.group(1)
        return t

    def fixed(self, name: str, what: str, where: call, config: str | None = None) -> fixed_type:
        text = self.resolve(name, config)
        t = fixed_type.parse(text)
        if t is None:
            raise Unsupported(f"layer {where.layer} ({where.function}): {what} type {text} is not an "
                              f"ap_fixed/ap_int type")
        why = t.why_not()
        if why:
            raise Unsupported(f"layer {where.layer} ({where.function}): {what} type {why}")
        return t


def _config_value(body: str, key: str) -> str | None:
    m = re.search(rf"\b{key}\s*=\s*([^;]+);", body)
    return m.group(1).strip() if m else None


def _config_type(body: str, key: str) -> str | None:
    m = re.search(rf"typedef\s+(.+?)\s+{key}\s*;", body)
    return " ".join(m.group(1).split()) if m else None


def _layer_code(c: call, k: int, net: network, types: _types, src: str, dst: str):
    """(member declaration, initializer, LUT function, body line, tensor size expression) of one call."""
    where = f"layer {c.layer} ({c.function})"
    cfg = c.config
    body = net.configs.get(cfg)
    if body is None:
        raise Unsupported(f"{where}: configuration {cfg} not found in parameters.h")
    if len(c.template_args) < 3:
        raise Unsupported(f"{where}: unexpected template arguments <{', '.join(c.template_args)}>")
    d_t, r_t = c.template_args[0], c.template_args[-2]
    din = types.fixed(d_t, "input", c)
    types.fixed(r_t, "result", c)
    member = init = lut = ""
    if c.function == "dense":
        kernel = re.search(r"using\s+kernel\s*=\s*nnet::(\w+)", body)
        product = re.search(r"using\s+product\s*=\s*nnet::product::(\w+)", body)
        if not kernel or kernel.group(1) not in DENSE_KERNELS:
            raise Unsupported(f"{where}: kernel {kernel.group(1) if kernel else '(none)'} is not one the fast path "
                              f"covers ({', '.join(DENSE_KERNELS)})")
        if not product or product.group(1) != "mult":
            raise Unsupported(f"{where}: product nnet::product::{product.group(1) if product else '?'}; the fast "
                              f"path computes nnet::product::mult")
        w = types.fixed("weight_t", "weight", c, cfg)
        types.fixed("bias_t", "bias", c, cfg)
        acc = types.fixed("accum_t", "accumulator", c, cfg)
        if len(c.args) != 4:
            raise Unsupported(f"{where}: expected (data, res, weights, biases) arguments")
        shift = din.fraction + w.fraction - acc.fraction  # a product's bits below the accumulator's
        if not -31 <= shift <= 62:
            raise Unsupported(f"{where}: products have {shift} fraction bits more than the accumulator {acc.text}")
        wraps = acc.overflow == "AP_WRAP" and din.width + w.width <= 32 and shift <= 31
        if not wraps and kernel.group(1) == "DenseResource_rf_gt_nin":
            raise Unsupported(f"{where}: a saturating accumulator ({acc.text}) with reuse factor > n_in, not a "
                              f"multiple of it (partial sums the fast path does not reproduce)")
        member = f"  dense_weights<{cfg}> l{k};"
        init = f"l{k}({c.args[2]}, {c.args[3]})"
        line = f"  dense_{'wrap' if wraps else 'ordered'}<{d_t}, {r_t}, {cfg}>({src}, {dst}, net.l{k});"
        return member, init, lut, line, f"{cfg}::n_out"
    if c.function in ("relu", "linear") and len(c.args) == 2 and len(c.template_args) == 3:
        return "", "", "", f"  {c.function}<{d_t}, {r_t}, {cfg}::n_in>({src}, {dst});", f"{cfg}::n_in"
    if c.function == "normalize":
        product = re.search(r"using\s+product\s*=\s*nnet::product::(\w+)", body)
        if not product or product.group(1) != "mult":
            raise Unsupported(f"{where}: product nnet::product::{product.group(1) if product else '?'}")
        s = types.fixed("scale_t", "scale", c, cfg)
        bias = types.fixed("bias_t", "bias", c, cfg)
        f = max(din.fraction + s.fraction, bias.fraction)
        if din.width + s.width + f - din.fraction - s.fraction > 62 or bias.width + f - bias.fraction > 62:
            raise Unsupported(f"{where}: data*scale + bias ({din.text}, {s.text}, {bias.text}) needs more than 64 bits")
        if len(c.args) != 4:
            raise Unsupported(f"{where}: expected (data, res, scale, bias) arguments")
        member = f"  batchnorm<{d_t}, {r_t}, {cfg}> l{k};"
        return member, f"l{k}({c.args[2]}, {c.args[3]})", "", f"  net.l{k}.run({src}, {dst});", f"{cfg}::n_in"
    if c.function == "softmax":
        impl = _config_value(body, "implementation") or ""
        impl = impl.rsplit("::", 1)[-1]
        if impl not in ("stable", "latency"):
            raise Unsupported(f"{where}: softmax implementation '{impl}' (the fast path covers stable and latency)")
        for key in ("n_outer", "n_inner"):
            v = _config_value(body, key)
            if v is not None and v != "1":
                raise Unsupported(f"{where}: softmax over an axis with {key} = {v} (the fast path covers 1-D)")
        for key in ("exp_table_t", "inv_table_t", "accum_t", "inv_inp_t") + (("inp_norm_t",) if impl == "stable" else ()):
            if _config_type(body, key) is None:
                raise Unsupported(f"{where}: configuration {cfg} has no {key}")
            t = types.fixed(key, key, c, cfg)
            if key in ("inp_norm_t", "inv_inp_t") and t.width < 10:
                raise Unsupported(f"{where}: {key} {t.text} is narrower than the table's address")
        if din.width < 10 and impl == "latency":
            raise Unsupported(f"{where}: input {din.text} is narrower than the table's address")
        member = f"  softmax<{d_t}, {r_t}, {cfg}> l{k};"
        return member, "", "", f"  net.l{k}.run({src}, {dst});", f"{cfg}::n_in"
    if c.function in LUT_ACTIVATIONS or c.function in ("relu", "linear"):
        if din.width > LUT_MAX_BITS:
            raise Unsupported(f"{where}: input {din.text} is wider than {LUT_MAX_BITS} bits (the fast path "
                              f"tabulates this activation over every input value)")
        if _config_value(body, "n_in") is None:
            raise Unsupported(f"{where}: configuration {cfg} has no n_in")
        # the same function, template arguments and extra arguments, on one array of elements
        elem = {d_t: f"element_of<{d_t}>::type", r_t: f"element_of<{r_t}>::type"}
        targs = ", ".join(elem.get(a, a) for a in c.template_args)
        args = ", ".join(["x"] + c.args[1:-1] + ["y"])
        lut = (f"void act{k}(element_of<{d_t}>::type* x, element_of<{r_t}>::type* y) {{\n"
               f"  nnet::{c.function}<{targs}>({args});\n}}")
        line = f"  lut<{d_t}, {r_t}, {cfg}, act{k}>::run({src}, {dst}, {cfg}::n_in);"
        return "", "", lut, line, f"{cfg}::n_in"
    raise Unsupported(f"{where}: nnet::{c.function} is not a layer the fast path covers (Dense, BatchNormalization, "
                      f"ReLU, linear, Softmax, and element-wise activations)")


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text()


def _check_chain(net: network, project, firmware: Path) -> None:
    if not net.calls:
        raise Unsupported(f"{project.name}.cpp: no nnet:: layer calls found")
    expected = project.inputs[0].name
    for c in net.calls:
        if len(c.args) < 2 or c.args[0] != expected:
            raise Unsupported(f"layer {c.layer} ({c.function}): takes {c.args[0] if c.args else 'nothing'}, not "
                              f"the previous layer's output {expected} (the fast path covers a chain of layers)")
        expected = c.args[1] if c.function in ("dense", "normalize") else c.args[-1]
    if expected != project.outputs[0].name:
        raise Unsupported(f"the last layer writes {expected}, not the network's output {project.outputs[0].name}")
    other = re.sub(r"nnet::\w+\s*<.*?>\s*\(.*?\)\s*;", "", (firmware / f"{project.name}.cpp").read_text(), flags=re.S)
    if re.search(r"\bnnet::\w+", other.split("NETWORK INSTANTIATION", 1)[-1]):
        raise Unsupported(f"{project.name}.cpp calls nnet:: functions the fast path does not parse")


def _trace_body(project, csim: list[str]) -> str:
    if project.io_type != "io_parallel":
        return "  return -2;  // io_stream: the layers pass hls::streams, not traced"
    return "\n".join([f"  {project.input_ctype} x0[fpyga_n_in];",
                      "  for (int i = 0; i < fpyga_n_in; ++i) x0[i] = in[i];", "  int offset = 0;", *csim,
                      "  return -1;"])


def render(project, firmware: Path) -> str:
    """The fast source, or Unsupported naming the layer and why."""
    net = read_network(project, firmware)
    _check_chain(net, project, firmware)
    types = _types(net)
    members, inits, luts, lines, sizes, listing, csim = [], [], [], [], [f"{project.n_in}"], [], []
    bufs = ("a", "b")
    for k, c in enumerate(net.calls):
        src, dst = bufs[k % 2], bufs[(k + 1) % 2]
        member, init, lut, line, size = _layer_code(c, k, net, types, src, dst)
        members += [member] if member else []
        inits += [init] if init else []
        luts += [lut] if lut else []
        lines.append(line)
        lines.append(f"  if (trace) trace->put({dst}, {size});")
        sizes.append(f"int({size})")
        listing.append(f"//   {c.layer}: nnet::{c.function}<{', '.join(c.template_args)}>")
        if project.io_type == "io_parallel":
            # the C simulation's own call, on arrays of this function (the trace below)
            res_t, x_in, x_out = c.template_args[-2], f"x{k}", f"x{k + 1}"
            args = ", ".join([x_in, x_out] + c.args[2:]) if c.function in ("dense", "normalize") \
                else ", ".join([x_in] + c.args[1:-1] + [x_out])
            csim.append(f"  {res_t} {x_out}[{size}];\n"
                        f"  nnet::{c.function}<{', '.join(c.template_args)}>({args});\n"
                        f"  if (differs(fast + offset, {x_out}, {size})) return {k};\n"
                        f"  offset += {size};")
    weights = "\n".join(net.weights.values())
    params = re.sub(r'^\s*#include\s+"weights/[^"]+"\s*$', "", net.parameters_h, flags=re.M)
    params = params.replace("// hls-fpga-machine-learning insert weights", "// weights (declared)\n" + weights)
    largest = f"largest_of({{{', '.join(sizes)}}})"
    return Template(_template("network.cpp.in")).substitute(
        project=project.name, io_type=project.io_type, layer_list="\n".join(listing), parameters=params,
        runtime=_template("runtime.h.in"), in_type=project.inputs[0].type, out_type=project.outputs[0].type,
        lut_functions="\n\n".join(luts), members="\n".join(members) or "  char unused = 0;",
        initializers=(" : " + ", ".join(inits)) if inits else "", n_in=project.n_in, n_out=project.n_out,
        largest=largest, clones='"avx512f", "avx2", "default"', body="\n".join(lines),
        result=bufs[len(net.calls) % 2], total=" + ".join(sizes[1:]), csim_layers=_trace_body(project, csim))


def generate(project, firmware):
    """The fast implementation of ``project`` (read from ``firmware``, the build's copy).

    Returns ``(source, None)``: C++ defining ``extern "C" void fpyga_fast_nn_batch(const
    fpyga_nn_in_t* in, fpyga_nn_out_t* out, int n)``, which the wrapper's ``nn_batch`` then calls;
    or ``(None, reason)``: the network runs as hls4ml's C simulation, and ``reason`` names the
    layer and why (None when there is nothing to say).
    """
    try:
        return render(project, Path(firmware)), None
    except Unsupported as e:
        return None, f"no fast path: {e}"


#: Random samples (beyond the edges) the build compares; the C simulation of the demo's muon
#: network takes ~60 us a sample, so ~1.5 s.
VERIFY_SAMPLES = 20000


def build_extras(source, work: Path, compute_units: int) -> dict:
    """What a build adds for the fast path ``source`` (None: nothing): its source file, the define
    that routes ``nn_batch`` to it, and the C simulation's own kernel ``nn_batch_csim``."""
    if not source:
        return {"sources": [], "defines": [], "kernels": {}, "connectivity": []}
    return {"sources": [Path(work) / "fpyga_fast.cpp"], "defines": ["FPYGA_NN_FAST"],
            "kernels": {"batch_csim": "nn_batch_csim"}, "connectivity": [f"nk=nn_batch_csim:{compute_units}"]}


def verify_build(project, library, n_random: int = VERIFY_SAMPLES, threads: int = 1) -> str | None:
    """Compares the built ``nn_batch`` (fast path) with ``nn_batch_csim`` (the C simulation) of
    ``library`` on the edge inputs and ``n_random`` random samples; None when every output bit
    agrees, else the report of the first differing sample."""
    from . import verify

    t_in = fixed_type.parse(project.inputs[0].type)
    t_out = fixed_type.parse(project.outputs[0].type)
    x = verify.inputs(t_in, project.n_in, n_random)
    try:
        bad = verify.compare(library, x, project.n_out, verify.container_dtype(t_out), threads=threads)
    except OSError as e:  # the kernel object does not load here: nothing is proven
        return f"the fast path could not be verified ({e})"
    if bad is None:
        return None
    where = ""
    if bad.layer >= 0:
        calls = read_network(project, project.firmware).calls
        if bad.layer < len(calls):
            c = calls[bad.layer]
            where = f", first in layer {c.layer} ({c.function})"
    return f"the fast path differs from the C simulation on {bad}{where}"
