"""The README's claims against Go's own reader, each on real bytes:

- golang/go#53071: Go finds the PE data section only when its ALIGN bits are 0 or 32 bytes;
  we mask every ALIGN bit, so other linkers' alignments still read.
- golang/go#61644: Go <= 1.21 searched only the first 64 KiB of the data segment; we search the
  whole segment (bounded), so a block further in is still found.
- Without section headers, current Go looks for no block at all (it needs `.go.buildinfo`); we
  search the writable segments.
"""

import struct

import fixtures
import pytest
from go_processes.buildinfo import DETECTION_BUILDINFO, read_build_info
from gobuild import GO_OLD, go_version, go_version_m

go_exe = fixtures.go_exe

IMAGE_SCN_ALIGN_MASK = 0x00F00000
IMAGE_SCN_ALIGN_16BYTES = 0x00500000
MAGIC = b"\xff Go buildinf:"


def test_pe_data_section_with_other_align_bits(go_exe, tmp_path):
    pefile = pytest.importorskip("pefile", reason="pefile is a bench/test extra")
    original = go_exe("windows_amd64")
    expected = go_version_m(original)
    data = bytearray(original.read_bytes())
    block = data.find(MAGIC)
    pe = pefile.PE(data=bytes(data), fast_load=True)
    section = next(s for s in pe.sections
                   if s.PointerToRawData <= block < s.PointerToRawData + s.SizeOfRawData)
    flags = (section.Characteristics & ~IMAGE_SCN_ALIGN_MASK) | IMAGE_SCN_ALIGN_16BYTES
    characteristics_at = section.get_file_offset() + 36  # IMAGE_SECTION_HEADER.Characteristics
    struct.pack_into("<I", data, characteristics_at, flags)
    patched = tmp_path / "align16.exe"
    patched.write_bytes(bytes(data))
    reread = pefile.PE(str(patched), fast_load=True)
    assert reread.sections[pe.sections.index(section)].Characteristics == flags

    assert go_version_m(patched) is None, "Go now reads this (golang/go#53071 fixed): update the README"
    info = read_build_info(str(patched))
    assert info.detection == DETECTION_BUILDINFO
    fixtures.assert_equals_oracle(info, expected)


def _minimal_elf(payload_at: int, payload: bytes, segment_size: int) -> bytes:
    """An x86-64 ELF with no section headers: a text PT_LOAD and one RW PT_LOAD of
    ``segment_size`` bytes holding ``payload`` at ``payload_at`` (the layout Go's reader and ours
    must search without section names)."""
    text_off, data_off = 0x1000, 0x2000
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    text = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, text_off, text_off, 0x1000)
    data_seg = struct.pack("<IIQQQQQQ", 1, 6, data_off, 0x600000, 0x600000, segment_size, segment_size,
                           0x1000)
    image = bytearray(data_off + segment_size)
    image[: len(header)] = header
    image[64 : 64 + 56] = text
    image[120 : 120 + 56] = data_seg
    image[text_off : text_off + 4] = b"\xc3\x90\x90\x90"
    image[data_off + payload_at : data_off + payload_at + len(payload)] = payload
    return bytes(image)


def _block(path) -> bytes:
    """The build-info block of a real Go 1.18+ binary: 32-byte header plus its two inline strings."""
    data = path.read_bytes()
    at = data.find(MAGIC)
    assert at >= 0 and data[at + 15] & 2, "expected the inline-string layout"
    end = at + 32
    for _ in range(2):  # the Go version, then the module info: uvarint length + bytes
        n, end = fixtures.uvarint(data, end)
        end += n
    return data[at:end]


def _synthetic(tmp_path, name, offset, source):
    path = tmp_path / name
    path.write_bytes(_minimal_elf(offset, _block(source), segment_size=512 * 1024))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("offset", [0, 64 * 1024 + 16, 300 * 1024])
def test_block_anywhere_in_the_data_segment(go_exe, tmp_path, offset):
    source = go_exe("mods")
    path = _synthetic(tmp_path, f"block-at-{offset}", offset, source)
    info = read_build_info(str(path))
    assert info.detection == DETECTION_BUILDINFO and info.format == "elf" and info.arch == "amd64"
    fixtures.assert_equals_oracle(info, go_version_m(source))
    # Current Go no longer searches segments: without a .go.buildinfo section it finds nothing.
    assert go_version_m(path) is None, "Go reads section-less ELF again: update the README"


def test_go_1_19_misses_a_block_past_64k(go_exe, tmp_path):
    if not GO_OLD:
        pytest.skip("Debian's golang-go (Go 1.19) is not installed")
    source = go_exe("default")
    near = _synthetic(tmp_path, "near", 0, source)
    far = _synthetic(tmp_path, "far", 300 * 1024, source)
    expected = go_version_m(source)["GoVersion"]
    seen = go_version([str(near), str(far)], go=GO_OLD)
    assert seen.get(str(near)) == expected  # Go 1.19 searches the segment and reads the block...
    assert str(far) not in seen  # ...but only its first 64 KiB (golang/go#61644)
    assert read_build_info(str(far)).go_version == read_build_info(str(near)).go_version == expected
