"""The kernel toolchain's metadata extractor (python/fpyga/toolchain/kernel_meta.py).

Kernel sources are written to a temporary directory and parsed with libclang against the same
Xilinx HLS headers the kernels compile with (hls4ml's package data); the derived arguments,
register offsets and connectivity are checked against what Vitis HLS / v++ produce, including the
offsets of a real SDAccel-built xclbin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
from fpyga.toolchain import kernel_meta as km  # noqa: E402

CI = os.environ.get("CI", "").lower() == "true"


def _hls_include() -> str | None:
    if os.environ.get("XILINX_HLS") and Path(os.environ["XILINX_HLS"], "include", "ap_int.h").exists():
        return str(Path(os.environ["XILINX_HLS"], "include"))
    spec = importlib.util.find_spec("hls4ml")
    if spec and spec.origin:
        d = Path(spec.origin).parent / "templates" / "vivado" / "ap_types"
        if (d / "ap_int.h").exists():
            return str(d)
    d = os.environ.get("FPYGA_HLS_INCLUDE")
    return d if d and Path(d, "ap_int.h").exists() else None


HLS_INCLUDE = _hls_include()


@pytest.fixture(scope="module")
def hls_include() -> str:
    if HLS_INCLUDE is None:
        if CI:
            pytest.fail("Xilinx HLS headers not found (install the pinned hls4ml)")
        pytest.skip("Xilinx HLS headers not found (install the pinned hls4ml)")
    return HLS_INCLUDE


@pytest.fixture
def describe(tmp_path, hls_include):
    """describe(source_text, kernels, connectivity=(), memories=...) -> description dict."""

    def run(source: str, kernels, connectivity=(), memories=km.DEFAULT_MEMORIES, name="k.cpp"):
        src = tmp_path / name
        src.write_text(source)
        return km.describe([str(src)], list(kernels), list(connectivity), list(memories),
                           include_dirs=[hls_include])

    return run


def _args(desc, kernel):
    k = next(k for k in desc["kernels"] if k["name"] == kernel)
    return {a["name"]: a for a in k["args"]}, [a["name"] for a in k["args"]]


VADD = """
extern "C" void vadd(const unsigned int* in1, const unsigned int* in2, unsigned int* out_r, int size) {
#pragma HLS INTERFACE m_axi port=in1 offset=slave bundle=gmem
#pragma HLS INTERFACE m_axi port = in2 offset = slave bundle = gmem
#pragma HLS INTERFACE mode=m_axi port=out_r offset=slave bundle=gmem1
#pragma HLS INTERFACE s_axilite port=in1 bundle=control
#pragma HLS INTERFACE s_axilite port=size bundle=control
#pragma HLS INTERFACE s_axilite port=return bundle=control
  for (int i = 0; i < size; ++i) out_r[i] = in1[i] + in2[i];
}
"""


# --- signatures ----------------------------------------------------------------------------------
def test_vadd_signature_types_kinds_offsets(describe):
    desc = describe(VADD, ["vadd"])
    args, order = _args(desc, "vadd")
    assert order == ["in1", "in2", "out_r", "size"]
    assert args["in1"]["type"] == "unsigned int const *"
    assert args["out_r"]["type"] == "unsigned int*"
    assert args["size"]["type"] == "int"
    assert [args[n]["kind"] for n in order] == ["global", "global", "global", "scalar"]
    assert [args[n]["offset"] for n in order] == [0x10, 0x1C, 0x28, 0x34]
    assert [args[n]["size"] for n in order] == [8, 8, 8, 4]
    assert [args[n]["host_size"] for n in order] == [8, 8, 8, 4]
    # bundle= names the m_axi port, whichever pragma spelling is used.
    assert args["in1"]["port"] == "M_AXI_GMEM"
    assert args["in2"]["port"] == "M_AXI_GMEM"
    assert args["out_r"]["port"] == "M_AXI_GMEM1"
    assert args["size"]["port"] == "S_AXI_CONTROL"
    assert desc["mode"] == "sw_emu"
    inst = desc["kernels"][0]["instances"]
    assert [i["name"] for i in inst] == ["vadd_1"]
    assert inst[0]["control"] == "ap_ctrl_hs"


def _real_xclbin() -> Path | None:
    candidates = []
    if os.environ.get("FPYGA_TEST_DATA"):
        candidates.append(Path(os.environ["FPYGA_TEST_DATA"]) / "xclbin")
    candidates.append(ROOT / ".." / "shared" / "data" / "xclbin")
    for d in candidates:
        f = d / "aws_vector_addition_2018_3.awsxclbin"
        if f.exists():
            return f
    return None


def test_offsets_match_a_real_sdaccel_xclbin(describe):
    """The real F1 xclbin's kernel `vector_add(int* c, const int* a, const int* b, const int n)`."""
    path = _real_xclbin()
    if path is None:
        if CI:
            pytest.fail("aws_vector_addition_2018_3.awsxclbin not found ($FPYGA_TEST_DATA/xclbin)")
        pytest.skip("aws_vector_addition_2018_3.awsxclbin not found ($FPYGA_TEST_DATA/xclbin)")
    xml = re.search(rb"<\?xml.*?</project>", path.read_bytes(), re.S).group(0).decode()
    real = {m.group(1): (int(m.group(3), 16), int(m.group(2)))
            for m in re.finditer(r'<arg name="(\w+)" addressQualifier="(\d)"[^>]*offset="(0x[0-9A-Fa-f]+)"', xml)}
    assert set(real) == {"c", "a", "b", "n_elements"}
    desc = describe("""
extern "C" void vector_add(int* c, const int* a, const int* b, const int n_elements) {
#pragma HLS INTERFACE m_axi port=c offset=slave bundle=gmem
#pragma HLS INTERFACE m_axi port=a offset=slave bundle=gmem
#pragma HLS INTERFACE m_axi port=b offset=slave bundle=gmem
  for (int i = 0; i < n_elements; ++i) c[i] = a[i] + b[i];
}
""", ["vector_add"])
    args, _ = _args(desc, "vector_add")
    for name, (offset, qualifier) in real.items():
        assert args[name]["offset"] == offset, name
        assert args[name]["kind"] == {0: "scalar", 1: "global"}[qualifier], name
    assert args["c"]["type"] == "int*"
    assert args["n_elements"]["type"] == "int"  # top-level const is not part of the type


def test_scalar_register_sizes(describe):
    desc = describe("""
#include <ap_int.h>
#include <ap_fixed.h>
extern "C" void k(char a, short b, int c, long long d, double e, float f, ap_uint<128> g,
                  ap_fixed<16,6> h, unsigned long i, bool j, int* p) {}
""", ["k"])
    args, order = _args(desc, "k")
    offsets = [args[n]["offset"] for n in order]
    # <=32 bits: 8 bytes, 64 bits: 12, 128 bits: 20, pointers: 12.
    expected_steps = [8, 8, 8, 12, 12, 8, 20, 8, 12, 8]
    expected = [0x10]
    for step in expected_steps:
        expected.append(expected[-1] + step)
    assert offsets == expected
    assert args["a"]["type"] == "char" and args["a"]["host_size"] == 1
    assert args["d"]["type"] == "long long" and args["d"]["size"] == 8
    assert args["e"]["type"] == "double"
    assert args["g"]["type"] == "ap_uint<128>" and args["g"]["size"] == 16 and args["g"]["host_size"] == 16
    assert args["h"]["type"] == "ap_fixed<16, 6>" and args["h"]["size"] == 4 and args["h"]["host_size"] == 2
    assert args["i"]["type"] == "unsigned long"
    assert args["j"]["type"] == "bool"
    assert all(args[n]["kind"] == "scalar" for n in order[:-1])
    assert args["p"]["kind"] == "global"


def test_ap_types_through_typedefs_arrays_and_modes(describe):
    desc = describe("""
#include <ap_fixed.h>
typedef ap_fixed<16,6> input_t;
typedef ap_ufixed<8,2,AP_RND,AP_SAT> u_t;
extern "C" void k(const input_t* in, input_t out[27], const ap_fixed<32,14,AP_RND_CONV,AP_SAT_SYM,2>* w,
                  u_t* u, ap_int<7> s, const ap_uint<512>* wide) {}
""", ["k"])
    args, _ = _args(desc, "k")
    assert args["in"]["type"] == "ap_fixed<16, 6> const *"
    assert args["out"]["type"] == "ap_fixed<16, 6>*" and args["out"]["kind"] == "global"
    # Non-default modes are written as Xilinx's enum values, as Vitis does (AP_RND_CONV=4, AP_SAT_SYM=2).
    assert args["w"]["type"] == "ap_fixed<32, 14, 4, 2, 2> const *"
    assert args["u"]["type"] == "ap_ufixed<8, 2, 0, 0, 0>*"
    assert args["s"]["type"] == "ap_int<7>" and args["s"]["host_size"] == 1
    assert args["wide"]["type"] == "ap_uint<512> const *"


def test_streams_take_no_register(describe):
    desc = describe("""
#include <ap_int.h>
#include <hls_stream.h>
extern "C" void k(hls::stream<ap_uint<32> >& in, int* out, hls::stream<int>& s2, int n, const int* ax) {
#pragma HLS INTERFACE axis port=in
#pragma HLS INTERFACE axis port=ax
  out[0] = in.read() + ax[0];
  s2.write(n);
}
extern "C" void src(hls::stream<int>& o) { o.write(1); }
""", ["k", "src"], ["sc=k_1.s2:k_1.in", "sc=src_1.o:k_1.ax"])
    args, _ = _args(desc, "k")
    assert args["in"]["kind"] == "stream" and args["in"]["type"] == "stream<ap_uint<32>>&"
    assert args["s2"]["kind"] == "stream"
    assert args["ax"]["kind"] == "stream"
    assert args["out"]["offset"] == 0x10
    assert args["n"]["offset"] == 0x1C
    assert args["in"]["offset"] == 0 and args["in"]["size"] == 0


@pytest.mark.parametrize("mode", ["ap_ctrl_chain", "ap_ctrl_hs"])
def test_block_protocol_from_port_return(describe, mode):
    desc = describe(f"""
extern "C" void k(int* p) {{
#pragma HLS INTERFACE {mode} port=return
}}
""", ["k"])
    assert desc["kernels"][0]["instances"][0]["control"] == mode


def test_a_free_running_kernel_takes_streams_only(describe):
    # ap_ctrl_none leaves no control registers to pass a pointer through (tests/python/
    # test_streams_meta.py covers free-running stream kernels).
    with pytest.raises(km.KernelMetaError, match=r"'k' is free-running \(ap_ctrl_none\) but takes host argument\(s\) 'p'"):
        describe("""
extern "C" void k(int* p) {
#pragma HLS INTERFACE ap_ctrl_none port=return
}
""", ["k"])


def test_several_kernels_in_one_source(describe):
    desc = describe("""
extern "C" {
void a(int* x, int n) {}
void b(const float* x, float* y, float f) {}
}
static void helper() {}
""", ["b", "a"])
    assert [k["name"] for k in desc["kernels"]] == ["b", "a"]
    args, _ = _args(desc, "b")
    assert args["f"]["type"] == "float" and args["f"]["offset"] == 0x28
    bases = [k["instances"][0]["base_address"] for k in desc["kernels"]]
    assert bases == [0x1800000, 0x1810000]


# --- errors --------------------------------------------------------------------------------------
def test_unknown_kernel_lists_what_is_defined(describe):
    with pytest.raises(km.KernelMetaError, match=r"'vsub' not defined .*functions defined there: vadd"):
        describe(VADD, ["vsub"])


def test_kernel_must_be_extern_c(describe):
    with pytest.raises(km.KernelMetaError, match='not declared extern "C"'):
        describe("void k(int* p) {}", ["k"])


def test_kernel_in_namespace_is_rejected(describe):
    with pytest.raises(km.KernelMetaError, match="inside a namespace"):
        describe('namespace n { extern "C" void k(int* p) {} }', ["k"])


def test_pragma_for_unknown_port(describe):
    with pytest.raises(km.KernelMetaError, match="names port 'inn', which is not an argument"):
        describe("""
extern "C" void k(int* in) {
#pragma HLS INTERFACE m_axi port=inn
}""", ["k"])


def test_source_that_does_not_compile(describe):
    with pytest.raises(km.KernelMetaError, match="does not compile"):
        describe('extern "C" void k(int* p) { undefined_function(p); }', ["k"])


def test_struct_by_value_is_rejected(describe):
    with pytest.raises(km.KernelMetaError, match="argument 's' has type 'S'"):
        describe('struct S { int a; }; extern "C" void k(S s) {}', ["k"])


def test_pointer_to_pointer_is_rejected(describe):
    with pytest.raises(km.KernelMetaError, match="pointers to pointers"):
        describe('extern "C" void k(int** p) {}', ["k"])


def test_missing_source(tmp_path, hls_include):
    with pytest.raises(km.KernelMetaError, match="does not exist"):
        km.describe([str(tmp_path / "nope.cpp")], ["k"], include_dirs=[hls_include])


# --- connectivity ----------------------------------------------------------------------------------
def test_default_connectivity(describe):
    desc = describe(VADD, ["vadd"])
    inst = desc["kernels"][0]["instances"]
    assert inst == [{"name": "vadd_1", "base_address": 0x1800000, "control": "ap_ctrl_hs",
                     "connections": {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}}]
    mems = desc["memories"]
    assert [m["tag"] for m in mems] == ["bank0", "bank1", "bank2", "bank3"]
    assert [m["used"] for m in mems] == [True, False, False, False]
    assert all(m["type"] == "ddr4" and m["size_bytes"] == 16 << 30 for m in mems)
    assert [m["base_address"] for m in mems] == [0, 16 << 30, 32 << 30, 48 << 30]


def test_nk_and_sp(describe):
    desc = describe(VADD, ["vadd"], ["[connectivity]", "nk=vadd:2", "sp=vadd_1.in1:bank0",
                                     "sp=vadd_2.in1:bank1", "sp=vadd_2.out_r:DDR[2]  # comment"])
    inst = desc["kernels"][0]["instances"]
    assert [i["name"] for i in inst] == ["vadd_1", "vadd_2"]
    assert inst[1]["base_address"] == 0x1810000
    assert inst[0]["connections"] == {"in1": "bank0", "in2": "bank0", "out_r": "bank0"}
    assert inst[1]["connections"] == {"in1": "bank1", "in2": "bank0", "out_r": "bank2"}
    assert [m["used"] for m in desc["memories"]] == [True, True, True, False]


def test_nk_with_cu_names_and_custom_memories(describe):
    desc = describe(VADD, ["vadd"], ["nk=vadd:2:fast.slow", "sp=slow.in1:hbm1"],
                    memories=["hbm0:hbm:256M", "hbm1:hbm:256M"])
    inst = desc["kernels"][0]["instances"]
    assert [i["name"] for i in inst] == ["fast", "slow"]
    assert inst[1]["connections"]["in1"] == "hbm1"
    assert inst[0]["connections"]["in1"] == "hbm0"  # the first memory is the default
    assert desc["memories"][1] == {"tag": "hbm1", "type": "hbm", "used": True,
                                   "base_address": 256 << 20, "size_bytes": 256 << 20}


@pytest.mark.parametrize("line, message", [
    ("nk=vsub:2", "unknown kernel 'vsub'"),
    ("nk=vadd:0", "expected nk=<kernel>:<count>"),
    ("nk=vadd:2:a", "2 compute unit names expected"),
    ("sp=vadd_3.in1:bank0", "unknown compute unit 'vadd_3'"),
    ("sp=vadd_1.in1:bank7", r"unknown memory 'bank7' \(memories: bank0, bank1, bank2, bank3\)"),
    ("sp=vadd_1.in1:DDR[4]", "unknown memory 'DDR\\[4\\]'"),
    ("sp=vadd_1.inx:bank1", "kernel 'vadd' has no argument 'inx'"),
    ("sp=vadd_1.size:bank1", "argument 'size' of kernel 'vadd' is a scalar"),
    ("sp=vadd_1:bank1", "expected sp=<cu>.<arg>:<memory>"),
    ("slr=vadd_1:SLR0", "not supported"),
    ("foo=bar", "unknown directive 'foo'"),
    ("nk vadd 2", "is not 'nk=...' or 'sp=...'"),
])
def test_connectivity_errors(line, message):
    kernels = {"vadd": km.Kernel("vadd", [
        km.Arg("in1", "unsigned int const *", "global", "M_AXI_GMEM"),
        km.Arg("out_r", "unsigned int*", "global", "M_AXI_GMEM"),
        km.Arg("size", "int", "scalar", "S_AXI_CONTROL", bits=32),
    ])}
    mems = km.parse_memories(km.DEFAULT_MEMORIES)
    with pytest.raises(km.KernelMetaError, match=message):
        km.parse_connectivity([line], kernels, mems)


def test_connectivity_duplicates():
    kernels = {"k": km.Kernel("k", [km.Arg("p", "int*", "global", "M_AXI_GMEM")])}
    mems = km.parse_memories(km.DEFAULT_MEMORIES)
    with pytest.raises(km.KernelMetaError, match="two nk= lines"):
        km.parse_connectivity(["nk=k:1", "nk=k:2"], kernels, mems)
    with pytest.raises(km.KernelMetaError, match="connected twice"):
        km.parse_connectivity(["sp=k_1.p:bank0", "sp=k_1.p:bank1"], kernels, mems)
    with pytest.raises(km.KernelMetaError, match="used twice"):
        km.parse_connectivity(["nk=k:2:a.a"], kernels, mems)


@pytest.mark.parametrize("spec, message", [
    ("bank0:ddr4", "is not 'tag:type:size'"),
    ("bank0:sdram:16G", "unknown type 'sdram'"),
    ("bank0:ddr4:lots", "is not a size"),
    ("bank0:ddr4:100", "multiple of 1 KiB"),
    ("a_very_long_memory_tag:ddr4:1G", "1 to 15 characters"),
])
def test_memory_errors(spec, message):
    with pytest.raises(km.KernelMetaError, match=message):
        km.parse_memories([spec])
    with pytest.raises(km.KernelMetaError, match="given twice"):
        km.parse_memories(["a:ddr4:1G", "a:ddr4:1G"])


def test_register_bytes_rule():
    assert km.register_bytes("global", 0) == 12
    assert km.register_bytes("scalar", 1) == 8
    assert km.register_bytes("scalar", 32) == 8
    assert km.register_bytes("scalar", 33) == 12
    assert km.register_bytes("scalar", 64) == 12
    assert km.register_bytes("scalar", 512) == 68
    assert km.register_bytes("stream", 32) == 0


# --- the command -----------------------------------------------------------------------------------
def test_command_writes_description_and_depfile(tmp_path, hls_include):
    src = tmp_path / "v.cpp"
    src.write_text('#include <ap_int.h>\n' + VADD)
    out = tmp_path / "out" / "v.json"
    dep = tmp_path / "v.d"
    rc = km.main([str(src), "--kernel", "vadd", "--connectivity", "nk=vadd:2", "-I", hls_include,
                  "-o", str(out), "--depfile", str(dep)])
    assert rc == 0
    desc = json.loads(out.read_text())
    assert [i["name"] for i in desc["kernels"][0]["instances"]] == ["vadd_1", "vadd_2"]
    deps = dep.read_text()
    assert deps.startswith(str(out.resolve()) + ":")
    assert str(src.resolve()) in deps and "ap_int.h" in deps


def test_command_reports_errors(tmp_path, hls_include, capsys):
    src = tmp_path / "v.cpp"
    src.write_text(VADD)
    out = tmp_path / "v.json"
    rc = km.main([str(src), "--kernel", "vadd", "--connectivity", "sp=vadd_1.in1:bank9",
                  "-I", hls_include, "-o", str(out)])
    assert rc == 1
    assert "kernel_meta: error:" in capsys.readouterr().err
    assert not out.exists()


def test_command_reads_vpp_config_connectivity(tmp_path, hls_include):
    src = tmp_path / "v.cpp"
    src.write_text(VADD)
    cfg = tmp_path / "link.cfg"
    cfg.write_text("platform=xilinx_aws-vu9p-f1\n[connectivity]\nnk=vadd:2  # two CUs\n"
                   "sp=vadd_2.in1:bank3\n[vivado]\nnk=ignored:1\n")
    out = tmp_path / "v.json"
    rc = km.main([str(src), "--kernel", "vadd", "--config", str(cfg),
                  "--connectivity", "sp=vadd_1.out_r:bank1", "-I", hls_include, "-o", str(out)])
    assert rc == 0
    inst = json.loads(out.read_text())["kernels"][0]["instances"]
    assert [i["name"] for i in inst] == ["vadd_1", "vadd_2"]
    assert inst[0]["connections"] == {"in1": "bank0", "in2": "bank0", "out_r": "bank1"}
    assert inst[1]["connections"] == {"in1": "bank3", "in2": "bank0", "out_r": "bank0"}
    with pytest.raises(km.KernelMetaError, match="cannot read v\\+\\+ config file"):
        km.read_config_connectivity(str(tmp_path / "missing.cfg"))
