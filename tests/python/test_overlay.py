"""Overlay: loading, attributes, PYNQ's description dictionaries, lifecycle, help."""

import pydoc

import numpy as np
import pytest

import fpyga
import fpyga as pynq


# --- ip_dict / mem_dict / clock_dict of the real F1 awsxclbin (values read off the file's
# metadata: see the `strings` of its EMBEDDED_METADATA and FACTS.md) ---------------------------

def test_real_awsxclbin_ip_dict(real_xclbin):
    desc = fpyga.XclBin(real_xclbin)
    assert list(desc.ip_dict) == ["vector_add_1"]
    ip = desc.ip_dict["vector_add_1"]
    assert ip["cu_name"] == "vector_add:vector_add_1"
    assert ip["fullpath"] == "vector_add_1"
    assert ip["type"] == "xilinx.com:hls:vector_add:1.0"
    assert ip["phys_addr"] == 0
    assert ip["index"] == 0 and ip["cu_index"] == 0
    assert ip["xclbin_uuid"] == "c1087066d39e48c8917a719a3e2e28aa"
    assert ip["addr_range"] == 4096
    for key in ("hw_control_protocol", "streams", "mem_id", "state", "interrupts", "gpio"):
        assert key in ip
    regs = ip["registers"]
    assert list(regs) == ["CTRL", "c", "a", "b", "n_elements"]
    ctrl = regs["CTRL"]
    assert ctrl["address_offset"] == 0 and ctrl["size"] == 4
    assert {n: f["bit_offset"] for n, f in ctrl["fields"].items()} == {
        "AP_START": 0, "AP_DONE": 1, "AP_IDLE": 2, "AP_READY": 3, "AUTO_RESTART": 7}
    assert [regs[n]["address_offset"] for n in ("c", "a", "b", "n_elements")] == [0x10, 0x1C, 0x28, 0x34]
    assert regs["c"]["size"] == 64 and regs["c"]["host_size"] == 8 and regs["c"]["type"] == "int*"
    assert regs["n_elements"]["size"] == 32 and regs["n_elements"]["type"] == "int"
    assert [regs[n]["id"] for n in ("c", "a", "b", "n_elements")] == [0, 1, 2, 3]
    assert regs["a"]["memory"] == "bank0"
    assert "memory" not in regs["n_elements"]


def test_real_awsxclbin_mem_and_clock_dict(real_xclbin):
    desc = fpyga.XclBin(real_xclbin)
    assert list(desc.mem_dict) == ["bank0", "bank1", "bank2", "bank3"]
    for i, (tag, m) in enumerate(desc.mem_dict.items()):
        assert m == {"raw_type": 1, "used": int(i == 0), "base_address": i * 16 * 2**30,
                     "size": 16 * 2**30, "type": "DDR4", "streaming": False, "idx": i, "tag": tag}
    assert desc.clock_dict == {
        "clock0": {"name": "DATA_CLK", "frequency": 250, "type": "DATA"},
        "clock1": {"name": "KERNEL_CLK", "frequency": 500, "type": "KERNEL"},
        "clock2": {"name": "clk_main_a0", "frequency": 250, "type": "SYSTEM"},
    }
    assert desc.xclbin.agfi == "agfi-046565baf5ce48c86"


def test_real_awsxclbin_without_download(real_xclbin, emu):
    ol = pynq.Overlay(real_xclbin, download=False, device=emu)
    assert not ol.is_loaded()
    assert "vector_add_1" in ol.ip_dict and ol.mem_dict["bank0"]["used"] == 1
    with pytest.raises(AttributeError, match="not loaded"):
        ol.vector_add_1


# --- Overlays of the project's kernels on every device ------------------------------------------

def test_attributes_by_instance_kernel_and_memory(device, overlay_path):
    ol = pynq.Overlay(overlay_path(device, "vadd"), device=device)
    assert ol.is_loaded()
    assert isinstance(ol.vadd_1, pynq.Kernel)
    assert isinstance(ol.vadd, pynq.Kernel)          # kernel name, unambiguous
    assert ol.vadd_1.compute_units == ["vadd_1"]
    assert isinstance(ol.bank0, pynq.Memory) and ol.bank0.tag == "bank0"
    assert "vadd_1" in dir(ol) and "bank0" in dir(ol)
    with pytest.raises(AttributeError):
        ol.no_such_kernel


def test_two_compute_units(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    assert sorted(ol.ip_dict) == ["vadd_1", "vadd_2"]
    assert sorted(ol.vadd.compute_units) == ["vadd_1", "vadd_2"]
    assert ol.ip_dict["vadd_1"]["registers"]["in1"]["memory"] == "bank0"
    assert ol.ip_dict["vadd_2"]["registers"]["in1"]["memory"] == "bank1"
    assert {ol.ip_dict[n]["cu_index"] for n in ("vadd_1", "vadd_2")} == {0, 1}
    # Only used banks become attributes.
    assert isinstance(ol.bank0, pynq.Memory) and isinstance(ol.bank1, pynq.Memory)
    assert not hasattr(ol, "bank2")
    assert ol.mem_dict["bank2"]["used"] == 0


def test_dicts_of_built_xclbin_match_its_parsed_content(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    x = ol.xclbin
    assert x.target == "sw_emu" and x.bitstream_is_elf
    (ip,) = ol.ip_dict.values()
    assert ip["xclbin_uuid"] == x.uuid.replace("-", "")
    regs = ip["registers"]
    for a in x.kernels[0].args:
        assert regs[a.name]["address_offset"] == a.offset
        assert regs[a.name]["type"] == a.type
    assert ol.clock_dict == fpyga.XclBin(xclbin_dir / "vadd.xclbin").clock_dict


def test_lifecycle_free_download_reset(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    assert ol.is_loaded()
    ol.ip_dict["vadd_1"]["state"] = "changed by the user"
    ol.reset()
    assert ol.ip_dict["vadd_1"]["state"] is None
    ol.free()
    assert not ol.is_loaded()
    assert not hasattr(ol, "vadd_1")
    ol.download()
    assert ol.is_loaded()
    a = pynq.allocate(4, "u4", target=ol.bank0)
    a[:] = [1, 2, 3, 4]
    a.sync_to_device()
    c = pynq.allocate(4, "u4", target=ol.bank0)
    ol.vadd_1.call(a, a, c, 4)
    c.sync_from_device()
    assert list(c) == [2, 4, 6, 8]


def test_loading_another_overlay_replaces_the_first(emu, xclbin_dir):
    first = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    second = pynq.Overlay(xclbin_dir / "vmult.xclbin", device=emu)
    assert second.is_loaded()
    assert not first.is_loaded()


def test_a_failed_load_keeps_the_loaded_overlay(emu, xclbin_dir, real_xclbin, tmp_path):
    ol = pynq.Overlay(xclbin_dir / "vadd.xclbin", device=emu)
    a = pynq.allocate(4, "u4", target=emu)
    c = pynq.allocate(4, "u4", target=emu)
    a[:] = [1, 2, 3, 4]
    a.sync_to_device()
    # An F1 image cannot run on emu; a malformed file fails before any load.
    with pytest.raises(NotImplementedError, match="F1"):
        pynq.Overlay(real_xclbin, device=emu)
    bad = tmp_path / "bad.xclbin"
    bad.write_bytes(b"xclbin2\0" + b"\xff" * 100)
    with pytest.raises(ValueError):
        pynq.Overlay(bad, device=emu)
    assert ol.is_loaded()
    ol.vadd.call(a, a, c, 4)          # the buffer synced before the failed loads is still there
    c.sync_from_device()
    assert list(c) == [2, 4, 6, 8]


def test_help_and_docstring_list_kernels_and_memories(emu, xclbin_dir):
    ol = pynq.Overlay(xclbin_dir / "vadd_2cu.xclbin", device=emu)
    text = pydoc.render_doc(ol)
    for name in ("vadd_1", "vadd_2", "bank0", "bank1"):
        assert name in text
    assert "vadd_1" in ol.__doc__      # what IPython's `ol?` shows


def test_missing_and_malformed_files(emu, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pynq.Overlay(tmp_path / "nope.xclbin", device=emu)
    bad = tmp_path / "bad.xclbin"
    bad.write_bytes(b"xclbin2\0" + b"\xff" * 100)
    with pytest.raises(ValueError, match="bad.xclbin"):
        pynq.Overlay(bad, device=emu)
    # The device stays usable.
    assert emu.name


def test_device_argument_is_checked(xclbin_dir):
    with pytest.raises(TypeError, match="Device"):
        pynq.Overlay(xclbin_dir / "vadd.xclbin", device="emu")


def test_overlay_on_every_device_runs_vadd(device, overlay_path):
    ol = pynq.Overlay(overlay_path(device, "vadd"), device=device)
    n = 100
    a = pynq.allocate(n, "u4", target=device)
    b = pynq.allocate(n, "u4", target=device)
    c = pynq.allocate(n, "u4", target=device)
    a[:] = np.arange(n)
    b[:] = 7
    a.sync_to_device()
    b.sync_to_device()
    ol.vadd.call(a, b, c, n)
    c.sync_from_device()
    assert np.array_equal(c, np.arange(n) + 7)
