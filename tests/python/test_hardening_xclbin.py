"""Damaged xclbins and odd paths from Python (issue 18 items 4, 15, 17, 19): the reader's refusals
reach Python as ValueError naming the file and the section, the same policy as C++ and the CLI
(tests/cpp/test_xclbin_hardening.cpp, tests/cpp/test_cli.cpp)."""

import struct

import pytest

import fpyga
from fpyga.xclbin import XclBin

SECTION_TABLE = 456
MEM_TOPOLOGY, CONNECTIVITY = 6, 7


def section_offset(data, kind):
    (count,) = struct.unpack_from("<I", data, 448)
    for i in range(count):
        k, = struct.unpack_from("<I", data, SECTION_TABLE + 40 * i)
        if k == kind:
            return struct.unpack_from("<Q", data, SECTION_TABLE + 40 * i + 24)[0]
    raise AssertionError(f"no section of kind {kind}")


@pytest.fixture
def aws_bytes(real_xclbin):
    return bytearray(real_xclbin.read_bytes())


def test_a_tag_that_is_not_utf8_is_a_value_error_naming_file_and_section(aws_bytes, tmp_path):
    # It used to load, and ip_dict/mem_dict raised UnicodeDecodeError.
    mem = section_offset(aws_bytes, MEM_TOPOLOGY)
    aws_bytes[mem + 8 + 24] = 0xFF  # entry 0 tag "bank0" -> "\xffank0"
    path = tmp_path / "latin1_tag.awsxclbin"
    path.write_bytes(bytes(aws_bytes))
    for load in (lambda: XclBin(str(path)), lambda: fpyga.Overlay(str(path))):
        with pytest.raises(ValueError) as err:
            load()
        assert not isinstance(err.value, UnicodeDecodeError)
        message = str(err.value)
        assert "latin1_tag.awsxclbin" in message
        assert "MEM_TOPOLOGY" in message
        assert "tag is not valid UTF-8 (byte 0xff at position 0)" in message
    with pytest.raises(ValueError, match="<memory>: section .*MEM_TOPOLOGY.* not valid UTF-8"):
        XclBin(xclbin_data=bytes(aws_bytes))


def test_connectivity_past_the_arguments_and_wrapping_banks(aws_bytes, tmp_path):
    conn = section_offset(aws_bytes, CONNECTIVITY)
    bad = bytearray(aws_bytes)
    struct.pack_into("<i", bad, conn + 4, 9999)
    with pytest.raises(ValueError, match="entry 0 names argument 9999 of 'vector_add"):
        XclBin(xclbin_data=bytes(bad))
    mem = section_offset(aws_bytes, MEM_TOPOLOGY)
    bad = bytearray(aws_bytes)
    struct.pack_into("<QQ", bad, mem + 8 + 8, (16 << 30) // 1024, 0xFFFFFFFFFFFFF000)
    with pytest.raises(ValueError, match="runs past the end of the 64-bit address space"):
        XclBin(xclbin_data=bytes(bad))


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_by_type(path):
    with pytest.raises(ValueError, match=f"xclbin '{path}': it is a character device"):
        XclBin(path)


def test_directories_and_huge_sparse_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="it is a directory, not a regular file"):
        XclBin(str(tmp_path))
    huge = tmp_path / "huge.xclbin"
    with open(huge, "wb") as f:
        f.truncate(50_000_000_000)
    with pytest.raises(ValueError, match="huge.xclbin'?: it is 50000000000 bytes, more than the"):
        fpyga.Overlay(str(huge))
