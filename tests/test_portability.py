"""The single file runs where osquery runs (issue 17): on every x86_64 Linux with glibc >= 2.17.

Two kinds of proof. The floor: what the dynamic loader asks of the host (symbol versions and
DT_NEEDED libraries), read from the bootloader and from every ELF file bundled in
dist/go_processes.ext. And real older userlands: minimal Debian 11 (glibc 2.31, as Ubuntu 20.04)
and Ubuntu 16.04 (glibc 2.23, the oldest release an archive here still serves) roots, made by
debootstrap once per machine (each archive's signature checked) and cached outside the checkout,
in which the single file registers with the osqueryd stand-in through a socket inside that root,
answers for a running Go program, verifies HTTPS against that userland's own CA bundle, and the
.deb installs with that release's dpkg. (The build machine's own userland is test_packaging.py's
test_single_file_empty_env.)

Each test that changes the root does so in an overlay of its own, so the cached root stays as
debootstrap left it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import elfdeps
import gobuild
import osqueryd
import pytest
import skips
from test_packaging import artefacts, go_sleeper
from test_vulndb import https_server

__all__ = ["artefacts", "go_sleeper", "https_server"]  # fixtures, imported for pytest

GLIBC_FLOOR = (2, 17, 0)
# glibc's own libraries (x86-64 names): the only ones the single file may take from the host.
GLIBC_LIBRARIES = frozenset({"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                             "libutil.so.1", "ld-linux-x86-64.so.2"})

# -- the floor ---------------------------------------------------------------------------------


def _bundled_elf_files(ext: Path) -> dict[str, bytes]:
    """name -> contents of every ELF file in the bundle's archive (PyInstaller's own reader)."""
    readers = pytest.importorskip("PyInstaller.archive.readers",
                                  reason="PyInstaller is needed to read the bundle (.ci/deps installs it)")
    archive = readers.CArchiveReader(str(ext))
    out = {}
    for name in archive.toc:
        data = archive.extract(name)
        if isinstance(data, bytes) and data.startswith(b"\x7fELF"):
            out[name] = data
    return out


def floor_violations(name: str, data: bytes, bundled: frozenset[str]) -> list[str]:
    """Why ``data`` would not load on every glibc >= 2.17 host with nothing else installed: symbol
    versions above the floor (or unnumbered GLIBC_ ones) and libraries neither glibc's own nor in
    ``bundled``."""
    reqs = elfdeps.requirements(data)
    out = [f"{name}: needs {lib}, which is neither glibc's nor bundled"
           for lib in reqs.needed if lib not in GLIBC_LIBRARIES | bundled]
    for lib, versions in sorted(reqs.versions.items()):
        above = [v for v in versions if (lib in GLIBC_LIBRARIES or v.startswith("GLIBC_"))
                 and (elfdeps.glibc_version(v) or (99, 0, 0)) > GLIBC_FLOOR]
        if above:
            above.sort(key=lambda v: elfdeps.glibc_version(v) or (99, 0, 0))
            out.append(f"{name}: needs {', '.join(above)} from {lib}")
    return out


def test_glibc_floor_of_every_elf_file(artefacts: tuple[Path, Path]) -> None:
    """The bootloader may need glibc's libraries only (it runs before anything is extracted); a
    bundled file may also need libraries extracted beside it (the top of the archive, where the
    bootloader points the loader). Nothing may need a glibc symbol version above 2.17."""
    ext = artefacts[0]
    files = _bundled_elf_files(ext)
    libpython = [n for n in files if n.startswith("libpython")]
    assert libpython, f"no libpython in the bundle: {sorted(files)}"
    # read, not just absent: libpython needs libc's versioned symbols whatever it was built for
    assert elfdeps.requirements(files[libpython[0]]).versions.get("libc.so.6"), libpython[0]
    top_level = frozenset(n for n in files if "/" not in n)
    problems = floor_violations(f"{ext.name} (bootloader)", ext.read_bytes(), frozenset())
    for name, data in sorted(files.items()):
        problems += floor_violations(name, data, top_level)
    assert not problems, "above the glibc 2.17 floor:\n" + "\n".join(problems)


EXP_PROGRAM = "#include <math.h>\nint main(int argc, char **argv) { return (int)exp(argc); }\n"


def test_floor_check_can_fail(tmp_path: Path) -> None:
    """The check finds what it is for in files built here: exp() bound to the GLIBC_2.29 version
    glibc 2.29 introduced (on any build host with glibc >= 2.29), a library that is not glibc's
    unless bundled, and libc.so.6's own GLIBC_PRIVATE requirement on the loader."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (.ci/deps installs it)")
    (tmp_path / "p.c").write_text(EXP_PROGRAM)
    subprocess.run(["gcc", "-O0", "-o", "p", "p.c", "-Wl,--no-as-needed", "-lm", "-lgcc_s"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=120)
    data = (tmp_path / "p").read_bytes()
    found = "\n".join(floor_violations("p", data, frozenset()))
    assert "p: needs libgcc_s.so.1, which is neither glibc's nor bundled" in found, found
    libc_version = (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 0.0").split()[1]  # "glibc 2.36"
    host_glibc = tuple(int(x) for x in libc_version.split(".")[:2])
    if host_glibc >= (2, 29):
        assert re.search(r"p: needs (\S+, )*GLIBC_2\.29(, \S+)* from libm\.so\.6", found), found
    assert "libgcc_s" not in "".join(floor_violations("p", data, frozenset({"libgcc_s.so.1"})))
    libc = Path(subprocess.run(["gcc", "-print-file-name=libc.so.6"], capture_output=True, text=True,
                               check=True, timeout=60).stdout.strip())
    if not libc.is_absolute():  # gcc echoes the name back when its search path lacks it
        libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    assert "GLIBC_PRIVATE from ld-linux-x86-64.so.2" in "".join(
        floor_violations("libc.so.6", libc.read_bytes(), frozenset())), libc


def test_version_reader_agrees_with_objdump(artefacts: tuple[Path, Path], tmp_path: Path) -> None:
    """The floor test's reader against binutils' `objdump -p` (which reads the section headers,
    where elfdeps reads the dynamic segment as the loader does), on the bootloader and the bundle."""
    if shutil.which("objdump") is None:
        pytest.skip("objdump is not installed (binutils, which .ci/deps installs with gcc)")
    ext = artefacts[0]
    files = {"bootloader": ext.read_bytes(), **_bundled_elf_files(ext)}
    seen_versions = 0
    for name, data in files.items():
        path = tmp_path / "elf"
        path.write_bytes(data)
        out = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True,
                             timeout=60).stdout
        needed = [line.split()[1] for line in out.splitlines() if line.split()[:1] == ["NEEDED"]]
        versions: dict[str, set[str]] = {}
        lib = None
        for line in out.partition("Version References:")[2].splitlines():
            m = re.fullmatch(r"\s*required from (\S+):", line)
            if m:
                lib = m[1]
                versions[lib] = set()
            elif lib and re.match(r"\s+0x[0-9a-f]+ 0x[0-9a-f]+ \d+ \S+$", line):
                versions[lib].add(line.split()[-1])
            elif line.strip():
                lib = None
        reqs = elfdeps.requirements(data)
        assert (reqs.needed, reqs.versions) == (needed, versions), name
        seen_versions += sum(map(len, versions.values()))
    assert seen_versions > 0, "objdump listed no version references at all"


# -- older userlands: Debian 11 and Ubuntu 16.04 ---------------------------------------------------

ROOTS = Path(os.environ.get("GO_PROCESSES_ROOTS", "/var/cache/osquery-go-processes-tests"))
VARIANT, INCLUDE = "minbase", ("ca-certificates",)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
DATA = Path(__file__).resolve().parent / "data"
# The Ubuntu Archive Automatic Signing Key (2012), which signs xenial's Release file; the file holds
# that one public key (tests/data/README.md says where it came from), and its fingerprint is
# checked before debootstrap's gpgv trusts it.
UBUNTU_KEY = DATA / "ubuntu-archive-2012.gpg"
UBUNTU_KEY_FINGERPRINT = "790BC7277767219C42C86F933B4FE6ACC0B21F32"


@dataclasses.dataclass(frozen=True)
class Userland:
    """An older distribution release the single file must run in, as debootstrap makes it."""

    label: str
    distro: str
    suite: str
    glibc: str
    mirror: Callable[[], str]
    keyring: Path | None = None  # None: debootstrap's default (Debian's archive keyring here)
    fingerprint: str = ""  # the one key ``keyring`` must hold


def ubuntu_mirror() -> str:
    """archive.ubuntu.com (still serving 16.04), or UBUNTU_MIRROR from the environment."""
    return os.environ.get("UBUNTU_MIRROR", UBUNTU_MIRROR).rstrip("/")
EXT_IN_ROOT = "/usr/local/libexec/go_processes.ext"
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# In a private mount namespace: the root's own /proc, then the command chrooted, environment empty.
IN_ROOT = r"""
root=$1; shift
mount -t proc proc "$root/proc" || exit 97
exec chroot "$root" /usr/bin/env -i "$@"
"""


def debian_mirror() -> str:
    """The Debian archive this machine's apt sources already name (one-line .list or deb822
    .sources), else deb.debian.org; DEBIAN_MIRROR overrides both."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    apt = Path("/etc/apt")
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list")),
             *sorted((apt / "sources.list.d").glob("*.sources"))]
    for f in files:
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if words[:1] == ["deb"] and len(words) > 1:
                uris = words[1:2]
            elif words[:1] == ["URIs:"]:
                uris = words[1:]
            else:
                continue
            for uri in uris:
                if re.fullmatch(r"(https?|ftp)://[^\s]+/debian/?", uri):
                    return uri.rstrip("/")
    return DEFAULT_MIRROR


def _debootstrap() -> str:
    found = shutil.which("debootstrap", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        pytest.skip("debootstrap is not installed (.ci/deps installs it)")
    return found


def openpgp_fingerprint(data: bytes) -> str:
    """The v4 fingerprint of the first public-key packet of a binary OpenPGP key (RFC 4880 12.2:
    SHA-1 over 0x99, the body's two-byte length and the body)."""
    tag = data[0]
    if not tag & 0x80:
        raise ValueError("not an OpenPGP packet")
    if tag & 0x40:  # new format
        if (tag & 0x3F) != 6 or data[1] >= 192:
            raise ValueError("not a public-key packet with a one-byte length")
        start, length = 2, data[1]
    else:
        if (tag >> 2) & 0x0F != 6:
            raise ValueError("not a public-key packet")
        size = {0: 1, 1: 2, 2: 4}[tag & 3]
        start, length = 1 + size, int.from_bytes(data[1:1 + size], "big")
    body = data[start:start + length]
    if len(body) != length or body[0] != 4:
        raise ValueError("truncated, or not a version 4 key")
    return hashlib.sha1(b"\x99" + length.to_bytes(2, "big") + body).hexdigest().upper()


def _pinned(land: Userland) -> Path:
    """The keyring debootstrap is to trust for ``land``, once it is seen to hold the pinned key."""
    assert land.keyring is not None
    found = openpgp_fingerprint(land.keyring.read_bytes())
    assert found == land.fingerprint, f"{land.keyring} holds key {found}, not {land.fingerprint}"
    return land.keyring


def cached_root(land: Userland, variant: str = VARIANT, include: Sequence[str] = INCLUDE) -> Path:
    """A debootstrapped root, made once per machine under ROOTS and reused: built in a temporary
    directory beside it and renamed into place only when complete, under a lock, so a cached root
    is always a whole one and two sessions never build it twice."""
    suite = land.suite
    key = f"{land.distro}-{suite}-{variant}-amd64-{'+'.join(sorted(include)) or 'none'}"
    ROOTS.mkdir(parents=True, exist_ok=True)
    os.chmod(ROOTS, 0o755)
    final = ROOTS / key
    with open(ROOTS / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        debootstrap = _debootstrap()
        mirror = land.mirror()
        keyring = [f"--keyring={_pinned(land)}"] if land.keyring is not None else []
        for stale in ROOTS.glob(f".{key}.*"):  # a run killed before its rename
            _remove_tree(stale)
        work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=ROOTS))
        try:
            # In a mount namespace of its own: the /proc, /sys and bind-mounted /dev nodes
            # debootstrap mounts in the target vanish with it, even when it is killed, so no
            # host device is ever reachable under the directory removed below.
            env = {**os.environ, "PATH": SBIN_PATH, "DEBIAN_FRONTEND": "noninteractive"}
            proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", debootstrap,
                                     f"--variant={variant}", "--arch=amd64", *keyring,
                                     *([f"--include={','.join(include)}"] if include else []),
                                     suite, str(work / "root"), mirror],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True, env=env)
            try:
                out, _ = proc.communicate(timeout=1800)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            assert proc.returncode == 0, f"debootstrap {suite} from {mirror} failed:\n{out[-4000:]}"
            for deb in (work / "root" / "var" / "cache" / "apt" / "archives").glob("*.deb"):
                deb.unlink()  # the downloaded packages: a sixth of the root, never needed again
            os.rename(work / "root", final)
        finally:
            _remove_tree(work)
        return final


def _remove_tree(path: Path) -> None:
    """rm -rf ``path``, unless something is mounted at or below it (rmtree would descend into it)."""
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    if any(m == str(path) or m.startswith(f"{path}/") for m in mounts):
        return
    shutil.rmtree(path, ignore_errors=True)


def _can_mount() -> str | None:
    """Why this machine cannot run the tests in a root: not root, or no mount namespaces."""
    if os.geteuid() != 0:
        return f"{skips.NEEDS_ROOT}: debootstrap, chroot and mounts"
    for tool in ("unshare", "chroot", "mount", "umount"):
        if shutil.which(tool, path=SBIN_PATH) is None:
            return f"{tool} is not installed (util-linux, coreutils, mount)"
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "mount", "-t", "proc", "proc", d],
                           capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return f"{skips.SANDBOX}: cannot mount a /proc in a private mount namespace: {r.stderr.strip()}"
    return None


def _skip_unless_mountable() -> None:
    reason = _can_mount()
    if reason is None:
        return
    prefix = next((p for p in skips.ALLOWED_IN_CI if reason.startswith(f"{p}: ")), None)
    if prefix:
        skips.skip(prefix, reason.removeprefix(f"{prefix}: "))
    pytest.skip(reason)


BULLSEYE = Userland("Debian 11", "debian", "bullseye", "2.31", debian_mirror)  # Ubuntu 20.04's glibc too
XENIAL = Userland("Ubuntu 16.04", "ubuntu", "xenial", "2.23", ubuntu_mirror, UBUNTU_KEY,
                  UBUNTU_KEY_FINGERPRINT)


@pytest.fixture(scope="session", params=[BULLSEYE, XENIAL], ids=["debian-11", "ubuntu-16.04"])
def old_root(request: pytest.FixtureRequest) -> tuple[Userland, Path]:
    """A cached minbase root of an older release; checked to carry that release's glibc."""
    land: Userland = request.param
    if land.keyring is not None:
        _pinned(land)  # checked on every run, not only when the root is made
    _skip_unless_mountable()
    root = cached_root(land)
    r = subprocess.run(["chroot", str(root), "/usr/bin/env", "-i", "/usr/bin/ldd", "--version"],
                       capture_output=True, text=True, timeout=60)
    first = r.stdout.splitlines()[0] if r.stdout else r.stderr
    assert r.returncode == 0 and first.endswith(f" {land.glibc}"), f"not {land.label}'s glibc: {first}"
    return land, root


@contextlib.contextmanager
def overlay(lower: Path) -> Iterator[Path]:
    """A writable view of ``lower`` whose changes go to a temporary directory: a test's own root."""
    top = Path(tempfile.mkdtemp(prefix="gpr-", dir="/tmp"))  # short: AF_UNIX paths inside are limited
    for d in ("upper", "work", "m"):
        (top / d).mkdir()
    merged = top / "m"
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={lower},upperdir={top / 'upper'},workdir={top / 'work'}", str(merged)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        _remove_tree(top)
        skips.skip(skips.SANDBOX, f"cannot mount an overlay over the cached root: {r.stderr.strip()}")
    try:
        yield merged
    finally:
        if subprocess.run(["umount", str(merged)], capture_output=True, timeout=60).returncode != 0:
            subprocess.run(["umount", "-l", str(merged)], capture_output=True, timeout=60)
        _remove_tree(top)


def install_ext(root: Path, ext: Path) -> Path:
    """The single file copied into ``root`` at EXT_IN_ROOT, root-owned, mode 0755."""
    dest = root / EXT_IN_ROOT.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ext, dest)
    os.chmod(dest, 0o755)
    return dest


def in_root(root: Path, *argv: str) -> list[str]:
    """``argv`` run chrooted into ``root``, with that root's own /proc, in an empty environment."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", IN_ROOT, "sh", str(root), *argv]


class RootedOsqueryD(osqueryd.OsqueryD):
    """The stand-in with its manager socket inside ``root``: the extension, chrooted there, is given
    the socket's path inside the root, and its own socket (beside it) is reached from outside."""

    INSIDE = "/run/osqueryd/osquery.em"

    def __init__(self, root: Path, command: Sequence[str]) -> None:
        super().__init__(command, launch=False)
        self.close_manager()  # the one in /tmp, outside the root
        host = root / self.INSIDE.lstrip("/")
        host.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.socket = str(host)  # what the stand-in's client connects to: <socket>.<uuid>
        self.manager = osqueryd.ManagerServer(self.socket, self.handler)
        self.launch()

    def argv(self) -> list[str]:
        args = super().argv()
        args[args.index("--socket") + 1] = self.INSIDE
        return args


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the bootloader and the interpreter it starts)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat_fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat_fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _mapped_files(pid: int) -> set[str]:
    """Paths of the files ``pid`` maps, as seen from here (anonymous mappings left out: shared ones
    show as "/dev/zero (deleted)", memfd ones as "/memfd:...")."""
    out = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if (len(fields) == 6 and fields[5].startswith("/") and not fields[5].startswith("/memfd:")
                and fields[5] != "/dev/zero (deleted)"):
            out.add(fields[5].removesuffix(" (deleted)"))
    return out


def test_registers_and_answers_in_an_older_userland(old_root: tuple[Userland, Path],
                                                    artefacts: tuple[Path, Path], go_sleeper: int) -> None:
    """Chrooted into the older release with its own /proc: registers through a socket inside the
    root and reports the running Go program's version and main module as `go version -m` reads
    them."""
    exe = os.readlink(f"/proc/{go_sleeper}/exe")
    want = gobuild.go_version_m(exe)
    assert want is not None, f"go version -m does not read {exe}"
    with overlay(old_root[1]) as root:
        install_ext(root, artefacts[0])
        with RootedOsqueryD(root, in_root(root, EXT_IN_ROOT)) as osq:
            status = osq.wait_registered(timeout=60)
            assert status.code == 0, status.message
            osq.wait_ready()
            rows = osq.client().generate("go_processes", osq.context("go_processes", pid=[go_sleeper]))
            assert len(rows) == 1, rows
            row = rows[0]
            assert (row["pid"], row["path"]) == (str(go_sleeper), exe)
            assert row["version"] == want["GoVersion"]
            assert (row["module"], row["module_version"]) == (want["Main"]["Path"], want["Main"]["Version"])
            # It really ran there, chrooted, in every process it started; and it mapped nothing from
            # that userland but the files of its C library package (libc6): all else came from the
            # single file or its extraction directory.
            tree = _process_tree(osq.proc.pid)
            assert len(tree) >= 2, "the bootloader started no interpreter"
            glibc_files = {Path(p).name for p in
                           (root / "var" / "lib" / "dpkg" / "info" / "libc6:amd64.list").read_text().split()}
            for pid in tree:
                assert os.readlink(f"/proc/{pid}/root") == str(root)
                mapped = _mapped_files(pid)
                assert all(p.startswith(f"{root}/") for p in mapped), (pid, mapped)
                assert any(re.fullmatch(r"libc[-.].*so.*", Path(p).name) for p in mapped), (pid, mapped)
                foreign = [p for p in mapped if p != str(root / EXT_IN_ROOT.lstrip("/"))
                           and not any(part.startswith("_MEI") for part in Path(p).parts)
                           and Path(p).name not in glibc_files]
                assert not foreign, f"mapped from the host's userland, not glibc's: {foreign}"


DEB_EXT = "/usr/libexec/osquery-go-processes/go_processes.ext"
LOAD = "/etc/osquery/extensions.load"


def test_the_deb_installs_answers_and_purges_in_an_older_userland(
        old_root: tuple[Userland, Path], artefacts: tuple[Path, Path], go_sleeper: int) -> None:
    """The older release's own dpkg (1.20 in Debian 11, 1.18 in Ubuntu 16.04) installs the .deb:
    it reads the archive's compression, checks Depends against that release's libc6 and runs the
    postinst under that root's /bin/sh. The extension it installed registers and answers; purging
    it leaves the administrator's extensions.load as it was."""
    deb = artefacts[1]
    exe = os.readlink(f"/proc/{go_sleeper}/exe")
    want = gobuild.go_version_m(exe)
    assert want is not None, f"go version -m does not read {exe}"
    with overlay(old_root[1]) as root:
        shutil.copyfile(deb, root / "tmp" / deb.name)
        (root / "etc" / "osquery").mkdir(parents=True)
        (root / LOAD.lstrip("/")).write_text("/opt/other/ext.ext")  # another's line, no final newline

        def dpkg(*args: str) -> str:
            r = subprocess.run(in_root(root, f"PATH={SBIN_PATH}", "dpkg", *args), capture_output=True,
                               text=True, timeout=300)
            assert r.returncode == 0, f"dpkg {' '.join(args)}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
            return r.stdout

        dpkg("-i", f"/tmp/{deb.name}")
        status = dpkg("-s", "osquery-go-processes")
        assert "Status: install ok installed" in status and "Depends: libc6 (>= 2.17)" in status, status
        installed = root / DEB_EXT.lstrip("/")
        assert installed.read_bytes() == artefacts[0].read_bytes()
        assert (root / LOAD.lstrip("/")).read_text() == f"/opt/other/ext.ext\n{DEB_EXT}\n"
        with RootedOsqueryD(root, in_root(root, DEB_EXT)) as osq:
            registered = osq.wait_registered(timeout=60)
            assert registered.code == 0, registered.message
            osq.wait_ready()
            rows = osq.client().generate("go_processes", osq.context("go_processes", pid=[go_sleeper]))
            assert [(r["path"], r["version"], r["module"]) for r in rows] == [
                (exe, want["GoVersion"], want["Main"]["Path"])]
        dpkg("--purge", "osquery-go-processes")
        assert not installed.exists()
        assert (root / LOAD.lstrip("/")).read_text() == "/opt/other/ext.ext"


DB_URL_PATH = "/good.zip"  # test_vulndb's https_server: two entries, modified 2026-02-01
LOCATION_IN_ROOT = "/var/lib/osquery-go-processes/vulndb"
DEBIAN_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Where other distributions keep the system CA bundle (one file of PEM certificates).
OTHER_BUNDLES = {
    "rhel-fedora-amazon": "/etc/pki/tls/certs/ca-bundle.crt",
    "rhel-ca-trust": "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "suse": "/etc/ssl/ca-bundle.pem",
    "arch-alpine": "/etc/ssl/cert.pem",
}


def _vulndb_update(root: Path, url: str, *env: str) -> subprocess.CompletedProcess[str]:
    """`go_processes.ext vulndb update` chrooted into ``root``, environment empty but ``env``."""
    return subprocess.run(in_root(root, *env, EXT_IN_ROOT, "vulndb", "update", "--source", url + DB_URL_PATH,
                                  "--location", LOCATION_IN_ROOT),
                          capture_output=True, text=True, timeout=120)


def _assert_installed(root: Path, r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "installed 2 entries modified 2026-02-01T00:00:00Z" in r.stdout, r.stdout
    location = root / LOCATION_IN_ROOT.lstrip("/")
    target = os.readlink(location)
    db = (root / target.lstrip("/")) if target.startswith("/") else location.parent / target
    assert json.loads((db / "index" / "db.json").read_text())["modified"] == "2026-02-01T00:00:00Z"
    assert sorted(p.name for p in (db / "ID").iterdir()) == ["GO-2026-0201.json", "GO-2026-0202.json"]


def _assert_refused(root: Path, r: subprocess.CompletedProcess[str]) -> None:
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "failed, nothing changed" in r.stderr and "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr
    location = root / LOCATION_IN_ROOT.lstrip("/")
    assert not location.is_symlink() and not location.exists()
    left = sorted(p.name for p in location.parent.iterdir()) if location.parent.exists() else []
    assert left in ([], [".vulndb.lock"]), left


@pytest.fixture
def old_root_with_ext(old_root: tuple[Userland, Path], artefacts: tuple[Path, Path]) -> Iterator[Path]:
    """A test's own overlay of an older release's root, the single file installed in it."""
    with overlay(old_root[1]) as root:
        install_ext(root, artefacts[0])
        bundle = root / DEBIAN_BUNDLE.lstrip("/")
        assert bundle.is_file() and "BEGIN CERTIFICATE" in bundle.read_text(), "the CA bundle is missing"
        yield root


def test_vulndb_update_trusts_a_ca_added_the_distributions_way(old_root_with_ext: Path,
                                                      https_server: tuple[str, str]) -> None:
    """The test CA added the Debian/Ubuntu way (update-ca-certificates, run in the root, puts it in
    /etc/ssl/certs/ca-certificates.crt): the update over HTTPS verifies and installs."""
    root, (url, ca) = old_root_with_ext, https_server
    dest = root / "usr" / "local" / "share" / "ca-certificates" / "go-processes-test-ca.crt"
    shutil.copyfile(ca, dest)
    os.chmod(dest, 0o644)
    r = subprocess.run(["chroot", str(root), "/usr/bin/env", "-i", f"PATH={SBIN_PATH}",
                        "update-ca-certificates"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert Path(ca).read_text().strip() in (root / DEBIAN_BUNDLE.lstrip("/")).read_text()
    _assert_installed(root, _vulndb_update(root, url))


def test_vulndb_update_refuses_an_unknown_ca(old_root_with_ext: Path,
                                                          https_server: tuple[str, str]) -> None:
    """The distribution's own CAs only: the test server's certificate is refused and nothing is
    installed."""
    root, (url, ca) = old_root_with_ext, https_server
    assert Path(ca).read_text().strip() not in (root / DEBIAN_BUNDLE.lstrip("/")).read_text()
    _assert_refused(root, _vulndb_update(root, url))


def test_vulndb_update_honours_ssl_cert_file(old_root_with_ext: Path, https_server: tuple[str, str]) -> None:
    """SSL_CERT_FILE names the CA file to trust instead of the system bundle (OpenSSL's variable)."""
    root, (url, ca) = old_root_with_ext, https_server
    shutil.copyfile(ca, root / "etc" / "go-processes-test-ca.pem")
    _assert_installed(root, _vulndb_update(root, url, "SSL_CERT_FILE=/etc/go-processes-test-ca.pem"))


def test_vulndb_update_honours_ssl_cert_dir(old_root_with_ext: Path, https_server: tuple[str, str]) -> None:
    """SSL_CERT_DIR names a directory of CAs by subject hash (OpenSSL's other variable), the hash
    computed by that userland's own openssl (1.0.2 in Ubuntu 16.04 has no `openssl rehash`); the
    system bundle is not used then."""
    root, (url, ca) = old_root_with_ext, https_server
    cas = root / "etc" / "go-processes-cas"
    cas.mkdir()
    shutil.copyfile(ca, cas / "test-ca.pem")
    # Without the hash link OpenSSL looks the CA up by: nothing to trust, nothing installed.
    _assert_refused(root, _vulndb_update(root, url, "SSL_CERT_DIR=/etc/go-processes-cas"))
    r = subprocess.run(["chroot", str(root), "/usr/bin/env", "-i", f"PATH={SBIN_PATH}", "openssl", "x509",
                        "-hash", "-noout", "-in", "/etc/go-processes-cas/test-ca.pem"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and re.fullmatch(r"[0-9a-f]{8}\n", r.stdout), r.stdout + r.stderr
    (cas / f"{r.stdout.strip()}.0").symlink_to("test-ca.pem")
    _assert_installed(root, _vulndb_update(root, url, "SSL_CERT_DIR=/etc/go-processes-cas"))


@pytest.mark.parametrize("bundle", list(OTHER_BUNDLES.values()), ids=list(OTHER_BUNDLES))
def test_vulndb_update_finds_other_distributions_ca_bundle(old_root_with_ext: Path,
                                                           https_server: tuple[str, str],
                                                           bundle: str) -> None:
    """Another distribution's layout in the same userland: Debian's /etc/ssl/certs gone, its CAs and
    the test CA only in ``bundle``. A self-built OpenSSL knows no system store by itself; the single
    file must find the host's."""
    root, (url, ca) = old_root_with_ext, https_server
    debian_cas = (root / DEBIAN_BUNDLE.lstrip("/")).read_text()
    shutil.rmtree(root / "etc" / "ssl" / "certs")
    dest = root / bundle.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(debian_cas + Path(ca).read_text())
    os.chmod(dest, 0o644)
    _assert_installed(root, _vulndb_update(root, url))
