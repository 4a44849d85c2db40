"""Device: discovery, the active device, names, default memory; exception mapping."""

import pytest

import fpyga as pynq
from fpyga import _core


def test_devices_list_the_active_device_first():
    devices = pynq.Device.devices
    assert devices and devices[0] == pynq.Device.active_device
    assert any(d.backend == "emu" for d in devices)
    assert all(isinstance(d, pynq.Device) for d in devices)
    assert pynq.Device.devices[0] is devices[0]          # the same objects each time
    assert len({d.spec for d in devices}) == len(devices)


def test_device_properties(device):
    assert isinstance(device.name, str) and device.name
    assert device.spec == f"{device.backend}:{device.index}"
    assert pynq.Device.open(device.spec) is device
    assert repr(device).startswith("<fpyga.Device " + device.spec)


def test_active_device_is_settable():
    previous = pynq.Device.active_device
    assert previous in pynq.Device.devices
    try:
        for d in pynq.Device.devices:
            pynq.Device.active_device = d
            assert pynq.Device.active_device is d
        with pytest.raises(TypeError, match="Device"):
            pynq.Device.active_device = "emu"
    finally:
        pynq.Device.active_device = previous


def test_default_memory_without_overlay_is_actionable(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    assert emu.default_memory.tag == "bank0"
    ol.free()
    assert emu.memories == []
    with pytest.raises(RuntimeError, match="No active memories.*Overlay"):
        emu.default_memory
    with pytest.raises(RuntimeError, match="No active memories"):
        pynq.allocate(4, target=emu)


def test_bad_device_spec_is_value_error():
    with pytest.raises(ValueError):
        pynq.Device.open("emu:99")
    with pytest.raises(ValueError):
        pynq.Device.open("nonsense")


def test_core_exception_mapping(tmp_path):
    bad = tmp_path / "truncated.xclbin"
    bad.write_bytes(b"xclbin2\0\0")
    with pytest.raises(ValueError, match="truncated.xclbin"):
        _core.xclbin.read(str(bad))
    with pytest.raises(RuntimeError):
        _core.xclbin.read(str(tmp_path / "absent.xclbin"))
