"""Kernel objects: call, start/wait/waitfor, signature, args, register map, argument checking,
the GIL released while kernels run, several threads on several compute units."""

import inspect
import threading
import time

import numpy as np
import pytest

import fpyga as pynq


@pytest.fixture
def vadd(emu, xclbin_dir):
    return pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)


def buffers(ol, n, *values, dtype="u4"):
    out = []
    for v in values:
        b = pynq.allocate(n, dtype, target=ol.device)
        b[:] = v
        b.sync_to_device()
        out.append(b)
    return out


def test_call_on_every_device(device, overlay_path):
    ol = pynq.Overlay(overlay_path(device, "vadd"), device=device)
    a, b, c = buffers(ol, 64, np.arange(64), 1000, 0)
    ol.vadd.call(a, b, c, 64)
    c.sync_from_device()
    assert np.array_equal(c, np.arange(64) + 1000)


def test_keyword_arguments(vadd):
    a, b, c = buffers(vadd, 8, 3, 4, 0)
    vadd.vadd_1.call(a, b, size=8, out_r=c)
    c.sync_from_device()
    assert list(c) == [7] * 8
    with pytest.raises(TypeError, match="no argument 'bogus'.*in1, in2, out_r, size"):
        vadd.vadd_1.call(a, b, c, bogus=8)
    with pytest.raises(TypeError, match="missing argument.*'size'"):
        vadd.vadd_1.call(a, b, out_r=c)
    with pytest.raises(TypeError, match="'in1' given both"):
        vadd.vadd_1.call(a, b, c, 8, in1=a)


def test_numpy_scalars_are_accepted(vadd):
    a, b, c = buffers(vadd, 8, 1, 2, 0)
    vadd.vadd.call(a, b, c, np.int64(8))
    c.sync_from_device()
    assert list(c) == [3] * 8


def test_start_wait_done(vadd):
    a, b, c = buffers(vadd, 16, 5, 6, 0)
    h = vadd.vadd.start(a, b, c, 16)
    assert isinstance(h, pynq.WaitHandle)
    h.wait()
    assert h.done and h.state == "completed"
    h.wait()                          # waiting again returns at once, as in PYNQ
    c.sync_from_device()
    assert list(c) == [11] * 16


def test_waitfor_orders_runs(emu, xclbin_dir):
    # c = a + b on vadd_1, then d = c + c on vadd_2 only after the first has finished: the
    # device-side result of the first run feeds the second without a host round trip.
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    n = 1 << 18
    a = pynq.allocate(n, "u4", target=ol.bank0)
    b = pynq.allocate(n, "u4", target=ol.bank0)
    c = pynq.allocate(n, "u4", target=ol.bank0)
    d = pynq.allocate(n, "u4", target=ol.bank0)
    a[:] = np.arange(n)
    b[:] = 1
    for x in (a, b, c, d):
        x.sync_to_device()
    for _ in range(5):
        first = ol.vadd_1.start(a, b, c, n)
        second = ol.vadd_1.start(c, c, d, n, waitfor=[first])
        second.wait()
        assert first.done
        d.sync_from_device()
        assert np.array_equal(d, 2 * (np.arange(n) + 1))
        c[:] = 0
        c.sync_to_device()
        d[:] = 0
        d.sync_to_device()
    with pytest.raises(TypeError, match="waitfor"):
        ol.vadd_1.start(a, b, c, n, waitfor=[42])


def test_signature_and_args(vadd):
    k = vadd.vadd_1
    sig = k.signature
    assert isinstance(sig, inspect.Signature)
    assert list(sig.parameters) == ["in1", "in2", "out_r", "size"]
    assert sig.parameters["in1"].annotation == "unsigned int const *"
    assert sig.parameters["size"].annotation == "int"
    assert list(k.args) == ["in1", "in2", "out_r", "size"]
    assert k.args["out_r"].kind == "global" and k.args["size"].kind == "scalar"
    assert k.args["in1"].offset == 0x10 and k.args["size"].offset == 0x34
    assert [m.tag for m in k.args["in1"].memories] == ["bank0"]


def test_keyword_named_argument_gets_an_underscore(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "mlp.xclbin", device=emu)
    assert list(ol.mlp.signature.parameters) == ["in_", "out"]
    inp = pynq.allocate(27, "u2", target=emu)
    out = pynq.allocate(1, "u2", target=emu)
    inp.sync_to_device()
    ol.mlp.call(out=out, in_=inp)     # the keyword spelling of `in`
    ol.mlp.call(inp, out)


def test_register_map_read_and_write(vadd):
    a, b, c = buffers(vadd, 4, 1, 2, 0)
    k = vadd.vadd_1
    k.call(a, b, c, 4)
    rm = k.register_map
    assert rm.CTRL.AP_IDLE == 1
    assert int(rm.size) == 4
    assert int(rm.in1) == a.device_address
    assert int(rm.out_r) == c.device_address
    text = repr(rm)
    assert "CTRL = Register(AP_START=0" in text and "size = Register(value=4)" in text
    rm.size = 3
    assert k.read(0x34) == 3
    k.write(0x34, 2)
    assert int(rm.size) == 2
    with pytest.raises(AttributeError, match="read-only"):
        rm.CTRL.AP_DONE = 1
    with pytest.raises(AttributeError, match="no register"):
        rm.nothing


def vadd_registers(vadd, a, b, c, n):
    """vadd_1's register map with the arguments written into it, as PYNQ's low-level flow does."""
    rm = vadd.vadd_1.register_map
    rm.in1 = a.device_address
    rm.in2 = b.device_address
    rm.out_r = c.device_address
    rm.size = n
    return rm


def test_register_driven_run(vadd):
    # PYNQ's low-level flow: write the argument registers, set AP_START, poll AP_DONE/AP_IDLE.
    a, b, c = buffers(vadd, 4, 10, 20, 0)
    rm = vadd_registers(vadd, a, b, c, 4)
    rm.CTRL.AP_START = 1
    while not rm.CTRL.AP_IDLE:
        pass
    c.sync_from_device()
    assert list(c) == [30] * 4


def test_register_driven_auto_restart(vadd):
    # AUTO_RESTART makes the kernel rerun by itself until the host clears it; AP_DONE is sticky
    # until read, so each time it reads 1, at least one more pass has ended.
    a, b, c = buffers(vadd, 4, 1, 2, 0)
    rm = vadd_registers(vadd, a, b, c, 4)
    rm.CTRL.AUTO_RESTART = 1
    rm.CTRL.AP_START = 1
    seen, deadline = 0, time.monotonic() + 20
    while seen < 3 and time.monotonic() < deadline:
        ctrl = int(rm.CTRL)
        assert ctrl & 0x5 == 0x1, f"CTRL {ctrl:#x} while restarting"
        seen += bool(ctrl & 0x2)
    assert seen == 3
    rm.CTRL.AUTO_RESTART = 0
    while not rm.CTRL.AP_IDLE and time.monotonic() < deadline:
        pass
    assert rm.CTRL.AP_IDLE == 1 and rm.CTRL.AP_START == 0
    c.sync_from_device()
    assert list(c) == [3] * 4


def test_argument_errors_name_the_argument(vadd):
    a, b, c = buffers(vadd, 4, 1, 1, 0)
    k = vadd.vadd_1
    with pytest.raises(TypeError, match="vadd"):
        k.call(a, b, c)                                   # wrong count
    with pytest.raises(TypeError, match="vadd"):
        k.call(a, b, c, 4, 5)
    with pytest.raises(TypeError, match="in2"):
        k.call(a, 7, c, 4)                                # number for a pointer
    with pytest.raises(TypeError, match="'in2'.*buffer.*list"):
        k.call(a, [1, 2, 3, 4], c, 4)                     # not a buffer at all
    with pytest.raises(TypeError, match="'in2'.*not backed by device memory"):
        k.call(a, np.ones(4, "u4"), c, 4)                 # an ordinary NumPy array
    with pytest.raises(TypeError, match="'size'"):
        k.call(a, b, c, "4")                              # not a number
    with pytest.raises(ValueError, match="size"):
        k.call(a, b, c, 2**40)                            # out of range for int
    with pytest.raises(ValueError, match="size"):
        k.call(a, b, c, 2**70)                            # does not fit in 64 bits
    with pytest.raises(TypeError, match="size"):
        k.call(a, b, c, a)                                # buffer for a scalar
    # The device stays usable after every error.
    k.call(a, b, c, 4)
    c.sync_from_device()
    assert list(c) == [2] * 4


def test_gil_is_released_while_a_kernel_runs(vadd):
    n = 1 << 23
    a, b, c = buffers(vadd, n, 1, 2, 0)
    stamps = []
    running = threading.Event()
    stop = threading.Event()

    def ticker():
        running.set()
        while not stop.is_set():
            stamps.append(time.perf_counter())

    def ticks_in_the_middle_of_a_call():
        stamps.clear()
        begin = time.perf_counter()
        vadd.vadd.call(a, b, c, n)
        end = time.perf_counter()
        quarter = (end - begin) / 4
        return [s for s in stamps if begin + quarter < s < end - quarter]

    t = threading.Thread(target=ticker)
    t.start()
    running.wait()
    try:
        # With the GIL held for the whole call, the ticker could only run at its very edges, never
        # in its middle half. Released, it runs all along, unless the machine gives it no CPU
        # for the whole call: a few tries take care of that.
        middles = [len(ticks_in_the_middle_of_a_call()) for _ in range(5)]
    finally:
        stop.set()
        t.join()
    assert max(middles) > 0, middles
    c.sync_from_device()
    assert np.all(c == 3)


def test_threads_drive_several_compute_units(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    n = 4096
    errors = []

    def worker(cu, bank, value):
        try:
            a = pynq.allocate(n, "u4", target=bank)
            c = pynq.allocate(n, "u4", target=bank)
            a[:] = value
            a.sync_to_device()
            for _ in range(50):
                cu.call(a, a, c, n)
                c.sync_from_device()
                assert np.all(c == 2 * value)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(ol.vadd_1, ol.bank0, 3)),
               threading.Thread(target=worker, args=(ol.vadd_2, ol.bank1, 5)),
               threading.Thread(target=worker, args=(ol.vadd, ol.bank1, 7))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_vmult_and_scalar_ap_fixed_argument(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "scale.xclbin", device=emu)
    inp = pynq.allocate(4, "i4", target=emu)
    out = pynq.allocate(4, "i4", target=emu)
    inp[:] = [10, -10, 3, 0]
    inp.sync_to_device()
    ol.scale.call(inp, out, 4, 1.5)
    out.sync_from_device()
    assert list(out) == [15, -15, 4, 0]
    with pytest.raises(ValueError, match="factor"):
        ol.scale.call(inp, out, 4, 1e6)                   # beyond ap_fixed<16,6>
