"""fpyga._core.to_fixed / from_fixed: NumPy float arrays <-> ap_fixed raw bits.

The C++ conversion is checked bit-exact against Xilinx's ap_fixed in tests/cpp/test_fixed.cpp;
here the binding is checked against independent NumPy references of the modes' definitions, and
for its array handling and errors.
"""

import numpy as np
import pytest

import fpyga
from fpyga import _core


def test_every_16_bit_pattern_round_trips():
    raw = np.arange(-32768, 32768, dtype=np.int16)
    values = _core.from_fixed(raw, "ap_fixed<16,6>", dtype=np.float64)
    np.testing.assert_array_equal(values, raw.astype(np.float64) / 1024.0)
    np.testing.assert_array_equal(_core.to_fixed(values, "ap_fixed<16,6>"), raw)
    as_float = _core.from_fixed(raw, "ap_fixed<16,6>")
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(_core.to_fixed(as_float), raw)


def test_trn_wrap_matches_floor_and_wraparound():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-40, 40, 200000), rng.normal(0, 1e-3, 10000)]).astype(np.float32)
    want = (np.floor(x.astype(np.float64) * 1024).astype(np.int64) + 32768) % 65536 - 32768
    got = _core.to_fixed(x, "ap_fixed<16,6>")
    assert got.dtype == np.int16 and got.shape == x.shape
    np.testing.assert_array_equal(got, want)


def test_rnd_conv_sat_matches_round_half_even_and_clamp():
    rng = np.random.default_rng(6)
    # Many exact halves (k + 0.5 LSB) so the tie rule matters.
    halves = (rng.integers(-40000, 40000, 50000) + 0.5) / 1024
    x = np.concatenate([halves, rng.uniform(-50, 50, 100000)])
    want = np.clip(np.rint(x * 1024), -32768, 32767).astype(np.int64)
    got = _core.to_fixed(x, "ap_fixed<16,6,AP_RND_CONV,AP_SAT>")
    np.testing.assert_array_equal(got, want)


def test_unsigned_and_wide_formats_use_their_container():
    f = _core.fixed_format("ap_ufixed<8,3,AP_RND,AP_SAT>")
    assert (f.width, f.integer, f.signed, f.storage_bytes) == (8, 3, False, 1)
    got = _core.to_fixed(np.array([-1.0, 0.0, 0.03125, 7.99, 100.0]), f)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [0, 0, 1, 255, 255])
    wide = _core.to_fixed(np.array([1.5, -2.25]), "ap_fixed<32,14>")
    assert wide.dtype == np.int32
    np.testing.assert_array_equal(wide, [int(1.5 * 2**18), int(-2.25 * 2**18)])


def test_writes_into_a_u2_device_buffer(emu, xclbin_dir):
    path = xclbin_dir / "vadd.xclbin"
    ol = fpyga.Overlay(str(path), device=emu)
    buf = fpyga.allocate((4,), "u2", target=ol.device)
    try:
        out = _core.to_fixed(np.array([0.5, -0.5, 1.0, -32.0], np.float32), "ap_fixed<16,6>", buf)
        assert out is buf
        np.testing.assert_array_equal(buf.view(np.int16), [512, -512, 1024, -32768])
        np.testing.assert_array_equal(_core.from_fixed(buf), [0.5, -0.5, 1.0, -32.0])
    finally:
        buf.freebuffer()


def test_bad_input_raises_naming_the_problem():
    with pytest.raises(ValueError, match="element 1"):
        _core.to_fixed(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="ap_fixed<16>"):
        _core.to_fixed(np.zeros(2), "ap_fixed<16>")
    with pytest.raises(ValueError, match="integer array"):
        _core.to_fixed(np.zeros(2), "ap_fixed<16,6>", np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="3 elements for 2 values"):
        _core.to_fixed(np.zeros(2), "ap_fixed<16,6>", np.zeros(3, np.int16))
    with pytest.raises(ValueError, match="cannot hold"):
        _core.to_fixed(np.zeros(2), "ap_fixed<16,6>", np.zeros(2, np.int8))
    with pytest.raises(TypeError):
        _core.to_fixed(np.zeros(2), 16)
    with pytest.raises(ValueError, match="float32 or float64"):
        _core.from_fixed(np.zeros(2, np.int16), "ap_fixed<16,6>", np.int32)
