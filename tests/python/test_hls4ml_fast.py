"""The fast path of hls4ml networks on emu (issue 17): bit-exact with hls4ml's C simulation.

Networks: the demo's two (muon, iris), the four of test_hls4ml.py and one with LeakyReLU, ELU and
a saturating, rounding accumulator (the accumulation order matters there).

Every network here is built by ``fpyga.hls4ml.build``, which compiles the fast path beside the
C simulation (kernel ``nn_batch_csim``) and verifies it on the edges and 2e4 random samples. The
tests then run both through the emulated device (``Model`` and ``Model(exact="csim")``, each
over both compute units) on 1e6 samples per network: the edge inputs of
``fpyga.hls4ml.fast.verify.inputs`` (zero, +-1 LSB, extremes, one input at an extreme, a ladder of
magnitudes up to the full range, rounding ties) followed by random ones from another seed than
the build's. The muon network's C simulation is the slow part (~60 us a sample on one core).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import fpyga
import fpyga.hls4ml
from fpyga.hls4ml import fast
from fpyga.hls4ml.fast import verify
from fpyga.hls4ml.project import read_project

import hls4ml_networks as nets

SAMPLES = 1_000_000

def _leaky_net(directory: Path):
    """Dense with a saturating, rounding accumulator -> LeakyReLU -> Dense(elu) -> Dense(softmax):
    the layers beyond the other networks' (the accumulator's order, activations with a parameter)."""
    rng = np.random.default_rng(9)
    layers = [nets._layer("Dense", "fc1", units=12, activation="linear", use_bias=True),
              nets._layer("LeakyReLU", "lrelu1", alpha=0.2),
              nets._layer("Dense", "fc2", units=8, activation="elu", use_bias=True),
              nets._layer("Dense", "fc3", units=4, activation="softmax", use_bias=True)]
    weights = {"fc1": nets._dense(rng, 6, 12), "fc2": nets._dense(rng, 12, 8), "fc3": nets._dense(rng, 8, 4)}
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"},
           "LayerName": {"fc1": {"Precision": {"accum": "ap_fixed<16,6,AP_RND,AP_SAT>"}}}}
    return (*nets._write(directory, "leaky_net", 6, layers, weights), cfg)


TEST_NETWORKS = {
    "leaky": (_leaky_net, "io_parallel"),
    "batchnorm": (nets.batchnorm, "io_parallel"),
    "softmax": (nets.softmax, "io_parallel"),
    "per_layer": (nets.per_layer, "io_parallel"),
    "stream": (nets.stream, "io_stream"),
}
DEMO_NETWORKS = ("muon", "iris")


def _demo_graph(name, out_dir):
    from fpyga.demo.convert import convert
    from fpyga.demo.model import models_dir

    base = models_dir() / name
    if not base.with_suffix(".h5").is_file():
        from conftest import missing_input

        missing_input(f"the demo's {name} model ({base}.json/.h5) is not in the tree")
    return convert(base, out_dir)


class built:
    """One network built with its fast path: graph, xclbin, project, the build's warnings."""

    def __init__(self, name, root: Path):
        if name in DEMO_NETWORKS:
            self.hls_model = _demo_graph(name, root / f"{name}_prj")
        else:
            make, io_type = TEST_NETWORKS[name]
            self.hls_model = nets.convert(make(root / "keras"), root / f"{name}_prj", io_type=io_type)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.xclbin = fpyga.hls4ml.build(self.hls_model, root / f"{name}.xclbin", compute_units=2)
        self.warnings = [str(w.message) for w in caught]
        self.project = read_project(self.hls_model.config.get_output_dir())


@pytest.fixture(scope="session")
def network(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = built(name, tmp_path_factory.mktemp(f"fast_{name}"))
        return cache[name]

    return get


def _raw_inputs(project, n):
    t = fast.fixed_type.parse(project.inputs[0].type)
    edges = verify.inputs(t, project.n_in, n_random=0)
    rest = verify.inputs(t, project.n_in, n_random=max(0, n - len(edges)), seed=12345)[len(edges):]
    return np.concatenate([edges, rest])[:max(n, len(edges))]


@pytest.mark.parametrize("name", sorted(TEST_NETWORKS) + list(DEMO_NETWORKS))
def test_fast_path_is_bit_exact_with_the_c_simulation(network, emu, name):
    net = network(name)
    assert net.warnings == [], net.warnings
    x = _raw_inputs(net.project, SAMPLES)
    assert len(x) >= SAMPLES
    # a device holds one xclbin (as a card does): one model after the other
    fast_model = fpyga.hls4ml.Model(net.xclbin, device=emu)
    assert fast_model.info["kernels"]["batch_csim"] == "nn_batch_csim"
    got = fast_model.predict_raw(x)
    want = fpyga.hls4ml.Model(net.xclbin, device=emu, exact="csim").predict_raw(x)
    assert got.shape == want.shape == (len(x), net.project.n_out)
    bad = np.flatnonzero(np.any(got != want, axis=1))
    assert bad.size == 0, (f"{name}: {bad.size} samples differ, first {bad[0]}: inputs {x[bad[0]].tolist()}, "
                           f"fast {got[bad[0]].tolist()}, C simulation {want[bad[0]].tolist()}")
    # and the outputs are not degenerate: the inputs reach many output values
    assert len(np.unique(got[:, 0])) > 10


def test_fast_path_agrees_with_hls4ml_predict(network, emu):
    """The fast path against hls4ml's own predict (its C simulation through its bridge), floats in."""
    net = network("per_layer")
    net.hls_model.compile()
    x = nets.inputs(net.project.n_in, n=400)
    want = np.asarray(net.hls_model.predict(x)).reshape(len(x), -1)
    np.testing.assert_array_equal(fpyga.hls4ml.Model(net.xclbin, device=emu).predict(x), want)


def _prelu_net(directory: Path):
    """Dense -> PReLU (per-unit alpha: nnet::prelu, a layer the fast path does not cover) -> Dense."""
    rng = np.random.default_rng(7)
    layers = [nets._layer("Dense", "fc1", units=6, activation="linear", use_bias=True),
              nets._layer("PReLU", "prelu1", shared_axes=None),
              nets._layer("Dense", "fc2", units=3, activation="linear", use_bias=True)]
    weights = {"fc1": nets._dense(rng, 5, 6), "prelu1": {"alpha": rng.uniform(0.05, 0.3, 6)},
               "fc2": nets._dense(rng, 6, 3)}
    cfg = {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"}}
    return (*nets._write(directory, "prelu_net", 5, layers, weights), cfg)


def test_an_uncovered_layer_falls_back_to_the_c_simulation(tmp_path, emu):
    hls_model = nets.convert(_prelu_net(tmp_path / "keras"), tmp_path / "prelu_prj")
    with pytest.warns(UserWarning, match=r"no fast path: layer prelu1 \(prelu\): .*C simulation"):
        xclbin = fpyga.hls4ml.build(hls_model, tmp_path / "prelu.xclbin")
    model = fpyga.hls4ml.Model(xclbin, device=emu)
    assert "batch_csim" not in model.info["kernels"]
    hls_model.compile()
    x = nets.inputs(5, n=200)
    np.testing.assert_array_equal(model.predict(x), np.asarray(hls_model.predict(x)).reshape(len(x), -1))
    with pytest.raises(ValueError, match="no C-simulation kernel"):
        fpyga.hls4ml.Model(xclbin, device=emu, exact="csim")


def test_a_fast_path_that_differs_is_dropped(network, tmp_path, monkeypatch, emu):
    """A fast path with a wrong rounding (AP_RND_CONV's ties rounded up) fails the build's
    verification: the build says which sample differs and keeps only the C simulation."""
    net = network("per_layer")
    real = fast.generate

    def wrong(project, firmware):
        source, why = real(project, firmware)
        bug = source.replace("else if (t::Q == AP_RND_CONV) inc = qb && ((q & 1) || r);",
                             "else if (t::Q == AP_RND_CONV) inc = qb;")
        assert bug != source
        return bug, why

    monkeypatch.setattr(fast, "generate", wrong)
    # relu1's result type is ap_ufixed<10,4,AP_RND_CONV,AP_SAT>: the difference starts there
    with pytest.warns(UserWarning, match=r"differs from the C simulation on sample \d+ \(raw inputs \[.*\]\): output "
                                         r".*, first in layer relu1 \(relu\); the network runs"):
        xclbin = fpyga.hls4ml.build(net.hls_model, tmp_path / "wrong.xclbin", cache_dir=tmp_path / "cache")
    model = fpyga.hls4ml.Model(xclbin, device=emu)
    assert "batch_csim" not in model.info["kernels"]
    x = _raw_inputs(net.project, 5000)
    got = model.predict_raw(x)
    np.testing.assert_array_equal(got, fpyga.hls4ml.Model(net.xclbin, device=emu, exact="csim").predict_raw(x))


def test_a_fast_path_that_does_not_compile_is_dropped(network, tmp_path, monkeypatch, emu):
    net = network("batchnorm")
    real = fast.generate

    def broken(project, firmware):
        source, why = real(project, firmware)
        return source + "\nstatic_assert(false, \"a generator bug\");\n", why

    monkeypatch.setattr(fast, "generate", broken)
    with pytest.warns(UserWarning, match=r"the fast path did not compile \(compiling .*fpyga_fast.*\); the network runs"):
        xclbin = fpyga.hls4ml.build(net.hls_model, tmp_path / "broken.xclbin", cache_dir=tmp_path / "cache")
    model = fpyga.hls4ml.Model(xclbin, device=emu)
    assert "batch_csim" not in model.info["kernels"]
    x = _raw_inputs(net.project, 2000)
    got = model.predict_raw(x)
    np.testing.assert_array_equal(got, fpyga.hls4ml.Model(net.xclbin, device=emu, exact="csim").predict_raw(x))


def test_model_refuses_an_unknown_exact(network, emu):
    with pytest.raises(ValueError, match="exact must be None or 'csim'"):
        fpyga.hls4ml.Model(network("batchnorm").xclbin, device=emu, exact="fast")


def test_generator_names_the_layer_it_does_not_cover(network, tmp_path):
    """generate() reads the written project; a saturating accumulator under a reuse factor whose
    partial sums it does not reproduce is refused with the layer's name."""
    import shutil

    net = network("batchnorm")
    firmware = tmp_path / "firmware"
    shutil.copytree(net.project.firmware, firmware, ignore=shutil.ignore_patterns("*.so", "*.o"))
    params = firmware / "parameters.h"
    text = params.read_text()
    text = text.replace("nnet::DenseLatency<data_T, res_T, CONFIG_T>", "nnet::DenseResource_rf_gt_nin<data_T, res_T, CONFIG_T>", 1)
    text = text.replace("typedef model_default_t accum_t;", "typedef ap_fixed<16,6,AP_TRN,AP_SAT> accum_t;", 1)
    params.write_text(text)
    source, why = fast.generate(net.project, firmware)
    assert source is None
    assert why.startswith("no fast path: layer fc1 (dense): a saturating accumulator")


CONVERSION_CHECK = r"""
#include "runtime.h"
#include <cstdio>
#include <random>
using namespace fpyga_fast;

template <class S, class D>
long check(const char* s_name, const char* d_name) {
  std::mt19937_64 rng(1);
  long bad = 0;
  const int64_t lo = fx<S>::min, hi = fx<S>::max;
  for (long k = 0; k < 20000; ++k) {
    int64_t raw;
    if (k < 64) raw = k < 32 ? lo + k : hi - (k - 32);  // the extremes
    else if (k < 2048) raw = int64_t(k % 2 ? 1 : -1) * (k / 2 - 32);  // around zero
    else raw = lo + int64_t(rng() % uint64_t(hi - lo + 1));
    if (raw < lo || raw > hi) continue;
    const S x = value_of<S>(raw);
    const D y = x;  // ap_fixed's own conversion
    const int64_t want = raw_of<D>(y), got = convert<fx<S>::F, D>(raw);
    if (want != got && bad++ < 3)
      std::printf("%s -> %s: raw %lld gives %lld, ap_fixed %lld\n", s_name, d_name, (long long)raw,
                  (long long)got, (long long)want);
  }
  return bad;
}

int main() {
  long bad = 0;
#define ONE(S, D) bad += check<S, D>(#S, #D);
%(pairs)s
  std::printf("%ld mismatches\n", bad);
  return bad != 0;
}
"""

QUANTIZATION_MODES = ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV")
OVERFLOW_MODES = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")


def test_conversions_follow_ap_fixed_in_every_mode(tmp_path):
    """The runtime's conversion (fpyga_fast::convert) against ap_fixed's constructor, for every
    quantization and overflow mode the fast path accepts, signed and unsigned targets, from
    sources with more fraction bits (rounding), fewer (shifts) and wider ranges (overflow)."""
    import subprocess

    from fpyga import toolchain

    sources = ["ap_fixed<16,6>", "ap_ufixed<12,4>", "ap_fixed<30,12>", "ap_fixed<6,4>"]
    targets = [f"ap_{u}fixed<8,3,{q},{o}>" for u in ("", "u") for q in QUANTIZATION_MODES for o in OVERFLOW_MODES]
    targets += ["ap_fixed<20,4,AP_RND_CONV,AP_SAT>", "ap_int<6>", "ap_uint<5>"]
    pairs = "\n".join(f"  ONE(P({s}), P({d}))" for s in sources for d in targets)
    src = tmp_path / "conv.cpp"
    src.write_text("#define P(...) __VA_ARGS__\n" + CONVERSION_CHECK.replace("%(pairs)s", pairs))
    runtime = Path(fast.__file__).parent / "templates" / "runtime.h.in"
    (tmp_path / "runtime.h").write_text(runtime.read_text())
    hls = toolchain.hls_include_dir()
    exe = tmp_path / "conv"
    # the runtime names nnet:: types and functions: hls4ml's own nnet_utils (its package's copy)
    nnet_dir = hls.parent
    if not (nnet_dir / "nnet_utils" / "nnet_activation.h").is_file():
        from conftest import missing_input

        missing_input(f"hls4ml's nnet_utils beside {hls}")
    includes = [a for h in ("ap_fixed.h", "nnet_utils/nnet_dense.h", "nnet_utils/nnet_activation.h",
                            "nnet_utils/nnet_types.h") for a in ("-include", h)]
    p = subprocess.run([toolchain.compiler(), "-O1", "-std=c++14", "-w", "-isystem", str(hls), "-I", str(nnet_dir),
                        *includes, str(src), "-o", str(exe)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().endswith("0 mismatches"), run.stdout[-3000:]
