"""What operators deploy: the single-file go_processes.ext, the Debian package, the RPM, the query
pack and the Fleet YAML (issues 4 and 17).

The artefacts come from `make dist`: CI builds them before the tests; when dist/ lacks them or
they are older than the sources, a session fixture runs `make dist` itself (about a minute).
The single file is run by the osqueryd stand-in the way osqueryd runs it: empty environment, from
its own directory, outside any virtualenv, and (when this machine lets the test make mount
namespaces) with /tmp, /var/tmp and /dev/shm mounted noexec. Its rows must equal the
pip-installed extension's rows for the same live Go process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fixtures
import gobuild
import osqueryd
import pytest
import skips

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "dist"
EXT = DIST / "go_processes.ext"
PACKAGE = "osquery-go-processes"
INSTALLED = Path("/usr/libexec/osquery-go-processes/go_processes.ext")
LOAD = Path("/etc/osquery/extensions.load")
PACK = ROOT / "packaging" / "osquery" / "go_processes.pack.conf"
FLEET = ROOT / "packaging" / "fleet"
OUR_TABLES = ("go_processes", "go_modules", "go_executables", "go_vulnerabilities", "go_vulndb",
              "go_build_settings", "go_libraries", "go_process_events", "go_process_events_status")
SOURCES = ("cli", "buildinfo", "procs", "extension", "tables", "packaging")

# osquery's own tables the queries join, with their columns (osquery 5 specs/*.table).
CORE_TABLES = {
    "processes": ("pid", "name", "path", "cmdline", "state", "cwd", "root", "uid", "gid", "euid",
                  "egid", "suid", "sgid", "on_disk", "wired_size", "resident_size", "total_size",
                  "user_time", "system_time", "disk_bytes_read", "disk_bytes_written", "start_time",
                  "parent", "pgroup", "threads", "nice", "cgroup_path"),
    "listening_ports": ("pid", "port", "protocol", "family", "address", "fd", "socket", "path",
                        "net_namespace"),
    "osquery_extensions": ("uuid", "name", "version", "sdk_version", "path", "type"),
    # specs/posix/docker_containers.table, with its Linux extended schema
    "docker_containers": ("id", "name", "image", "image_id", "command", "created", "state", "status",
                          "pid", "path", "config_entrypoint", "started_at", "finished_at", "privileged",
                          "security_options", "env_variables", "cgroup_namespace", "ipc_namespace",
                          "mnt_namespace", "net_namespace", "pid_namespace", "user_namespace",
                          "uts_namespace"),
}
AFFINITY = {"TEXT": "TEXT", "INTEGER": "INTEGER", "BIGINT": "INTEGER", "UNSIGNED BIGINT": "INTEGER",
            "DOUBLE": "REAL", "BLOB": "BLOB"}
PACK_PLATFORMS = {"linux", "darwin", "windows", "posix", "freebsd", "any", "all"}
FLEET_PLATFORMS = {"linux", "darwin", "windows", "chrome"}
FLEET_LOGGING = {"snapshot", "differential", "differential_ignore_removals"}


# -- artefacts ---------------------------------------------------------------------------------

def _deb() -> Path | None:
    debs = sorted(DIST.glob(f"{PACKAGE}_*_*.deb"), key=lambda p: p.stat().st_mtime)
    return debs[-1] if debs else None


def _rpm() -> Path | None:
    rpms = sorted(DIST.glob(f"{PACKAGE}-*.rpm"), key=lambda p: p.stat().st_mtime)
    return rpms[-1] if rpms else None


def _newest_source_mtime() -> float:
    newest = 0.0
    for top in SOURCES:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


@pytest.fixture(scope="session")
def artefacts() -> tuple[Path, Path]:
    """dist/go_processes.ext and the .deb (and the .rpm, see rpm_pkg), built by `make dist` unless
    present and current."""
    deb, rpm = _deb(), _rpm()
    fresh = (EXT.exists() and deb is not None and rpm is not None
             and min(EXT.stat().st_mtime, deb.stat().st_mtime, rpm.stat().st_mtime) >= _newest_source_mtime())
    if not fresh:
        missing = [t for t in ("make", "gcc", "dpkg-deb", "objcopy", "rpmbuild") if shutil.which(t) is None]
        if missing:
            pytest.skip(f"cannot build the artefacts: {', '.join(missing)} not installed (.ci/deps)")
        r = subprocess.run(["make", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"make dist failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        deb = _deb()
    assert EXT.exists() and deb is not None
    return EXT, deb


@pytest.fixture(scope="session")
def go_sleeper() -> Iterator[int]:
    """A real Go process (the fixture hello program, `sleep`): its pid."""
    exe = gobuild.build(gobuild.Build())
    proc = subprocess.Popen([str(exe), "sleep"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # a watchdog: the exec happens in milliseconds
        while os.readlink(f"/proc/{proc.pid}/exe") != str(exe):
            assert time.monotonic() < deadline, "the Go sleeper never exec'd"
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def reference(go_sleeper: int) -> dict[str, object]:
    """The pip-installed extension's answers: routes of every table and rows for the Go sleeper."""
    with osqueryd.OsqueryD() as osq:
        osq.wait_ready()
        client = osq.client()
        return {
            "routes": {t: osq.routes(t) for t in OUR_TABLES},
            "go_processes": client.generate("go_processes", osq.context("go_processes", pid=[go_sleeper])),
            "go_modules": client.generate("go_modules", osq.context("go_modules", pid=[go_sleeper])),
        }


def _sorted_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _check_served(osq: osqueryd.OsqueryD, reference: dict, pid: int) -> None:
    """It registers, and its routes and rows equal the pip-installed extension's. (How long
    registration takes against osquery's 3 s --extensions_timeout is bench/bench_registration.py's
    question: a wall-clock bound here would fail on a loaded machine and prove nothing.)"""
    status = osq.wait_registered(timeout=60)
    assert status.code == 0, status.message
    osq.wait_ready()
    client = osq.client()
    for table in OUR_TABLES:
        assert osq.routes(table) == reference["routes"][table]
        assert client.columns(table) == reference["routes"][table]
    rows = client.generate("go_processes", osq.context("go_processes", pid=[pid]))
    assert len(rows) == 1 and rows[0]["pid"] == str(pid)
    assert rows == reference["go_processes"]
    modules = client.generate("go_modules", osq.context("go_modules", pid=[pid]))
    assert modules and _sorted_rows(modules) == _sorted_rows(reference["go_modules"])
    everything = client.generate("go_processes", osq.context("go_processes"))
    assert str(pid) in {r["pid"] for r in everything}


NOEXEC_DIRS = ("/tmp", "/var/tmp", "/dev/shm")

# A mount namespace in which /tmp, /var/tmp and /dev/shm are the same directories, remounted
# noexec; then the extension in an empty environment, from /tmp as its working directory.
NOEXEC_LAUNCH = r"""
ext=$1; shift
for d in /tmp /var/tmp /dev/shm; do
    [ -d "$d" ] || continue
    mount --bind "$d" "$d" && mount -o remount,bind,noexec "$d" || exit 97
done
cd /tmp
exec env -i "$ext" "$@"
"""


def _can_make_noexec_namespace() -> str | None:
    if os.geteuid() != 0:
        return f"{skips.NEEDS_ROOT}: mounting a noexec /tmp in a private mount namespace"
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed (util-linux)"
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        "mount --bind /tmp /tmp && mount -o remount,bind,noexec /tmp"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return f"{skips.SANDBOX}: cannot make a noexec mount as root: {r.stderr.strip()}"
    return None


@pytest.fixture
def ext_copy(artefacts: tuple[Path, Path]) -> Iterator[Path]:
    """The single file alone in a fresh directory (root-owned when run as root) outside the
    temporary directories (the noexec test remounts those) and outside any virtualenv."""
    base = ROOT / "build" / "packaging-test"
    temp_dirs = [os.path.realpath(d) for d in NOEXEC_DIRS]
    if any(os.path.commonpath([os.path.realpath(base), d]) == d for d in temp_dirs):
        base = Path("/var/lib/go-processes-test")  # a checkout under /tmp: stay off the noexec mounts
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True)
    if not os.access(base, os.W_OK):  # another user's checkout: the noexec test needs root anyway
        base = Path(tempfile.gettempdir())
    d = Path(tempfile.mkdtemp(dir=base))
    os.chmod(d, 0o755)
    shutil.copy2(artefacts[0], d / "go_processes.ext")
    try:
        yield d / "go_processes.ext"
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- the single file ---------------------------------------------------------------------------

def test_single_file_is_self_contained(artefacts: tuple[Path, Path]) -> None:
    ext = artefacts[0]
    head = ext.read_bytes()[:4]
    assert head == b"\x7fELF"
    mode = ext.stat().st_mode
    assert mode & stat.S_IXUSR and not mode & stat.S_IWOTH
    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed (binutils)")
    needed = subprocess.run(["readelf", "-d", str(ext)], capture_output=True, text=True, check=True).stdout
    # Only glibc from the host: no libpython, no interpreter, no zlib (linked in).
    libs = set(re.findall(r"Shared library: \[([^\]]+)\]", needed))
    assert "libc.so.6" in libs, f"readelf -d listed no libc: {needed[-2000:]}"
    assert libs <= {"libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "librt.so.1",
                    "ld-linux-x86-64.so.2"}, libs


def test_single_file_empty_env(ext_copy: Path, reference: dict, go_sleeper: int) -> None:
    with osqueryd.OsqueryD(command=["env", "-i", str(ext_copy)]) as osq:
        _check_served(osq, reference, go_sleeper)
        env = Path(f"/proc/{osq.proc.pid}/environ").read_bytes()
        assert env == b"", "the extension did not run with an empty environment"


def test_single_file_noexec_temp_dirs(ext_copy: Path, reference: dict, go_sleeper: int) -> None:
    """With every temporary directory noexec, the bootloader falls back to its own directory."""
    reason = _can_make_noexec_namespace()
    if reason:
        pytest.skip(reason)
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", NOEXEC_LAUNCH, "sh", str(ext_copy)]
    with osqueryd.OsqueryD(command=command) as osq:
        _check_served(osq, reference, go_sleeper)
        pid = osq.proc.pid
        mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        tmp_options = [line.split()[5] for line in mounts if line.split()[4] == "/tmp"]
        assert tmp_options and "noexec" in tmp_options[-1].split(","), "the test's /tmp is not noexec"
        assert Path(f"/proc/{pid}/environ").read_bytes() == b""
        assert os.readlink(f"/proc/{pid}/cwd") == "/tmp"
        # The interpreter runs in the bootloader's child, mapped from an exec-capable directory.
        maps = "".join(Path(f"/proc/{c}/maps").read_text() for c in _children(pid))
        libpython = {line.split()[-1] for line in maps.splitlines() if "/libpython3" in line}
        assert libpython and all(p.startswith(f"{ext_copy.parent}/_MEI") for p in libpython), libpython
    # The bootloader removes its extraction directory when the extension exits.
    deadline = time.monotonic() + 10
    while list(ext_copy.parent.glob("_MEI*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(ext_copy.parent.glob("_MEI*"))


# -- the Debian package ------------------------------------------------------------------------

def _dpkg_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_deb_contents(artefacts: tuple[Path, Path]) -> None:
    deb = artefacts[1]
    assert deb.name == f"{PACKAGE}_{_dpkg_field(deb, 'Version')}_{_dpkg_field(deb, 'Architecture')}.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    entries = {line.split()[-1].lstrip("."): line.split() for line in listing}
    perms, owner = entries[str(INSTALLED)][0:2]
    assert (perms, owner) == ("-rwxr-xr-x", "root/root")
    for parent in INSTALLED.parents:
        if str(parent) != "/":
            assert entries[f"{parent}/"][0:2] == ["drwxr-xr-x", "root/root"]
    assert re.search(r"libc6 \(>= 2\.\d+\)", _dpkg_field(deb, "Depends"))


def test_deb_lintian_clean(artefacts: tuple[Path, Path]) -> None:
    """The README promises lintian reports nothing (--pedantic included, one override)."""
    if shutil.which("lintian") is None:
        pytest.skip("lintian is not installed (.ci/deps installs it)")
    r = subprocess.run(["lintian", "--pedantic", "--fail-on", "error,warning,info,pedantic",
                        str(artefacts[1])], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


@contextlib.contextmanager
def _preserved_etc_osquery() -> Iterator[None]:
    """Put /etc/osquery back exactly as it was, and the package away, whatever the test did."""
    had_dir = LOAD.parent.exists()
    saved = LOAD.read_bytes() if LOAD.exists() else None
    try:
        yield
    finally:
        subprocess.run(["dpkg", "--purge", PACKAGE], capture_output=True, timeout=300)
        if saved is not None:
            LOAD.parent.mkdir(parents=True, exist_ok=True)
            LOAD.write_bytes(saved)
        else:
            with contextlib.suppress(FileNotFoundError):
                LOAD.unlink()
            if not had_dir:
                with contextlib.suppress(OSError):
                    LOAD.parent.rmdir()


def _dpkg(*args: str) -> None:
    r = subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"dpkg {' '.join(args)}:\n{r.stdout}\n{r.stderr}"


def _installed() -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True, text=True)
    return r.returncode == 0 and "installed" in r.stdout.split()


@pytest.fixture
def dpkg_machine() -> None:
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "installing the package")
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not installed: cannot install the package")
    if _installed():
        pytest.skip(f"{PACKAGE} is already installed on this machine; not touching it")


def test_deb_install_run_purge(artefacts: tuple[Path, Path], dpkg_machine: None, reference: dict,
                               go_sleeper: int) -> None:
    deb = artefacts[1]
    # Someone else's extension, on a last line without a newline: kept, and not glued to ours.
    before = b"# extensions loaded by osqueryd\n/opt/other/other.ext"
    with _preserved_etc_osquery():
        LOAD.parent.mkdir(parents=True, exist_ok=True)
        LOAD.write_bytes(before)
        os.chmod(LOAD, 0o640)
        _dpkg("-i", str(deb))
        st = INSTALLED.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755)
        dir_st = INSTALLED.parent.stat()
        assert dir_st.st_uid == 0 and not dir_st.st_mode & (stat.S_ISVTX | stat.S_IWOTH | stat.S_IWGRP)
        expected = before + b"\n" + str(INSTALLED).encode() + b"\n"
        assert LOAD.read_bytes() == expected
        assert stat.S_IMODE(LOAD.stat().st_mode) == 0o640
        _dpkg("-i", str(deb))  # reinstall: still one line
        assert LOAD.read_bytes() == expected

        with osqueryd.OsqueryD(command=["env", "-i", str(INSTALLED)]) as osq:
            _check_served(osq, reference, go_sleeper)

        _dpkg("--purge", PACKAGE)
        assert not INSTALLED.exists()
        assert LOAD.read_bytes() == before
        assert stat.S_IMODE(LOAD.stat().st_mode) == 0o640


def test_deb_creates_and_removes_extensions_load(artefacts: tuple[Path, Path], dpkg_machine: None) -> None:
    deb = artefacts[1]
    with _preserved_etc_osquery():
        with contextlib.suppress(FileNotFoundError):
            LOAD.unlink()
        had_dir = LOAD.parent.exists() and any(LOAD.parent.iterdir())
        if not had_dir:
            with contextlib.suppress(OSError):
                LOAD.parent.rmdir()
        _dpkg("-i", str(deb))
        assert LOAD.read_bytes() == str(INSTALLED).encode() + b"\n"
        assert stat.S_IMODE(LOAD.stat().st_mode) == 0o644
        _dpkg("-r", PACKAGE)  # remove (not purge) takes the line away too
        assert not LOAD.exists()
        assert LOAD.parent.exists() == had_dir


# -- the RPM -----------------------------------------------------------------------------------

RPM_SPEC_DIR = ROOT / "packaging" / "rpm"
RPMLINT_CONFIG = RPM_SPEC_DIR / "rpmlint.toml"
DEBIAN = ROOT / "packaging" / "debian"
# In the .deb only: lintian's override (lintian is Debian's) and the compressed changelog (the
# RPM carries it in its header, `rpm -q --changelog`).
DEB_ONLY = {f"/usr/share/lintian/overrides/{PACKAGE}", f"/usr/share/doc/{PACKAGE}/changelog.gz"}
# The directories the RPM owns; /usr, /usr/lib/systemd/system and the like belong to the system.
RPM_DIRS = {str(INSTALLED.parent), f"/usr/share/doc/{PACKAGE}"}
# glibc's own libraries (libc6 on Debian, glibc on RPM distributions provide all of them).
GLIBC_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
              "libresolv.so.2", "libanl.so.1", "ld-linux-x86-64.so.2"}
# What rpm 4.11 (RHEL/CentOS 7, the glibc 2.17 hosts) can install: no zstd payload, for one.
RPM_411_FEATURES = {"rpmlib(CompressedFileNames)", "rpmlib(FileDigests)", "rpmlib(PayloadFilesHavePrefix)",
                    "rpmlib(PayloadIsXz)", "rpmlib(PayloadIsBzip2)"}


@pytest.fixture(scope="session")
def rpm_pkg(artefacts: tuple[Path, Path]) -> Path:
    """dist/osquery-go-processes-<version>-1.<arch>.rpm, from the same `make dist` as the .deb."""
    rpm = _rpm()
    assert rpm is not None
    return rpm


def _rpmq(rpm: Path, *args: str) -> str:
    return subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True,
                          check=True).stdout


def _deb_listing(deb: Path) -> dict[str, tuple[str, str]]:
    """path -> (permissions, owner/group), as dpkg-deb -c prints them."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in out.splitlines():
        fields = line.split()
        entries[fields[-1].lstrip(".").rstrip("/") or "/"] = (fields[0], fields[1])
    return entries


def test_rpm_contents_match_the_deb(artefacts: tuple[Path, Path], rpm_pkg: Path, tmp_path: Path) -> None:
    """Same files with the same bytes, owners and modes as the .deb (read with dpkg-deb, not from
    the build scripts), less the two Debian-only files."""
    deb = artefacts[1]
    version, arch = _rpmq(rpm_pkg, "--qf", "%{VERSION} %{RELEASE} %{ARCH}").split()[0::2]
    assert version == _dpkg_field(deb, "Version")
    assert rpm_pkg.name == f"{PACKAGE}-{version}-1.{arch}.rpm" and arch == os.uname().machine
    deb_entries = _deb_listing(deb)
    deb_files = {p for p, (perms, _) in deb_entries.items() if perms.startswith("-")}

    listed = set(_rpmq(rpm_pkg, "-l").split())
    rows = _rpmq(rpm_pkg, "--qf", "[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}/%{FILEGROUPNAME}"
                                  "\t%{FILEDIGESTS}\n]").splitlines()
    rpm_entries = {path: (perms, owner, digest)
                   for path, perms, owner, digest in (r.split("\t") for r in rows)}
    assert set(rpm_entries) == listed
    rpm_files = {p for p, (perms, _, _) in rpm_entries.items() if perms.startswith("-")}
    assert deb_files >= DEB_ONLY
    assert rpm_files == deb_files - DEB_ONLY
    assert set(rpm_entries) - rpm_files == RPM_DIRS
    for path, (perms, owner, _) in rpm_entries.items():
        assert (perms, owner) == deb_entries[path], path
    assert rpm_entries[str(INSTALLED)][:2] == ("-rwxr-xr-x", "root/root")

    assert _rpmq(rpm_pkg, "--qf", "%{FILEDIGESTALGO}") == "8"  # SHA-256
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    for path in rpm_files:
        data = (tmp_path / path.lstrip("/")).read_bytes()
        assert rpm_entries[path][2] == hashlib.sha256(data).hexdigest(), path
    assert f"- {version}-1" in _rpmq(rpm_pkg, "--changelog").splitlines()[0]


def _readelf(args: list[str], path: Path) -> str:
    return subprocess.run(["readelf", "--wide", *args, str(path)], capture_output=True, text=True,
                          check=True).stdout


def _bundle_needs(ext: Path, work: Path) -> tuple[str, set[str]]:
    """An oracle apart from packaging/host_deps.py: readelf over the bootloader and every ELF file
    PyInstaller's archive reader extracts. Returns the highest GLIBC_ version any of them needs
    and the libraries the host must provide (the bootloader's, and those the bundle lacks)."""
    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(ext))
    members, bundled = [], set()
    for i, name in enumerate(archive.toc):
        bundled.add(Path(name).name)
        data = archive.extract(name)
        if isinstance(data, bytes) and data.startswith(b"\x7fELF"):
            member = work / f"{i}-{Path(name).name}"
            member.write_bytes(data)
            members.append(member)
    assert len(members) > 10, "the bundle holds no libraries?"

    def needed(path: Path) -> set[str]:
        return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf(["-d"], path)))

    versions = set()
    for path in [ext, *members]:
        version_needs = _readelf(["-V"], path).partition("Version needs section")[2]
        version_needs = version_needs.split("Version definition section")[0]
        versions |= {tuple(int(n) for n in v.split(".")) for v in
                     re.findall(r"Name: GLIBC_(\d+\.\d+(?:\.\d+)?)\s", version_needs)}
    host = needed(ext) | (set().union(*(needed(m) for m in members)) - bundled)
    return ".".join(map(str, max(versions))), host - GLIBC_LIBS


def _host_deps_with(monkeypatch: pytest.MonkeyPatch, bootloader: Path, members: dict[str, Path | None],
                    kind: str) -> list[str]:
    """packaging/host_deps.py's answer for a bundle of these real ELF files (None: a member that
    is no ELF file, such as a bundled library's name only)."""
    pytest.importorskip("PyInstaller", reason="host_deps.py imports PyInstaller (.ci/deps installs it)")
    import host_deps

    def files(_: str) -> tuple[bytes, dict[str, bytes]]:
        return bootloader.read_bytes(), {n: p.read_bytes() if p else b"" for n, p in members.items()}

    monkeypatch.setattr(host_deps, "_elf_files", files)
    return host_deps.dependencies("bundle", kind)


def test_host_deps_decides_from_the_files_not_from_a_list(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """The dependency logic on programs built here: a library the bundle lacks stops the build,
    naming it; the same library bundled is none of the host's business; the bootloader's own
    libz is the host's even when a libz is bundled (it runs before anything is unpacked); the
    floor is the newest GLIBC_ version readelf lists among them."""
    if shutil.which("gcc") is None or shutil.which("readelf") is None:
        pytest.skip("gcc and binutils are not installed (.ci/deps installs them)")
    libz = Path("/lib/x86_64-linux-gnu/libz.so.1")
    (tmp_path / "p.c").write_text("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n")
    built = {}
    for name, extra in (("plain", []), ("gcc_s", ["-Wl,--no-as-needed", "-lgcc_s"]),
                        ("z", ["-Wl,--no-as-needed", str(libz)])):
        subprocess.run(["gcc", "-o", name, "p.c", *extra], cwd=tmp_path, check=True, capture_output=True,
                       timeout=120)
        built[name] = tmp_path / name
    with pytest.raises(ValueError, match=r"needs libgcc_s\.so\.1 from the host"):
        _host_deps_with(monkeypatch, built["plain"], {"prog": built["gcc_s"]}, "deb")
    versions = set()
    for path in built.values():
        needs = _readelf(["-V"], path).partition("Version needs section")[2]
        versions |= {tuple(int(n) for n in v.split(".")) for v in
                     re.findall(r"Name: GLIBC_(\d+\.\d+(?:\.\d+)?)\s", needs.split("Version definition")[0])}
    floor = ".".join(map(str, max(versions)))
    bundled_gcc_s = {"prog": built["gcc_s"], "lib/libgcc_s.so.1": None}
    assert _host_deps_with(monkeypatch, built["plain"], bundled_gcc_s, "deb") == [
        f"libc6 (>= {max(floor, '2.17', key=lambda v: tuple(map(int, v.split('.'))))})"]
    members = {**bundled_gcc_s, "z": built["z"], "libz.so.1": None}
    assert _host_deps_with(monkeypatch, built["z"], members, "deb")[1:] == ["zlib1g (>= 1:1.2.0)"]
    assert _host_deps_with(monkeypatch, built["z"], members, "rpm")[1:] == ["libz.so.1()(64bit)"]
    assert _host_deps_with(monkeypatch, built["plain"], members, "rpm")[1:] == []


def test_package_dependencies_follow_the_bundle(artefacts: tuple[Path, Path], rpm_pkg: Path,
                                                tmp_path: Path) -> None:
    """Depends and Requires name glibc at the floor of every ELF file in the bundle and nothing
    else: the bundle carries everything but glibc (zlib is linked into the bootloader), so on the
    portable build that is exactly glibc 2.17 (issue 17)."""
    floor, host_libs = _bundle_needs(artefacts[0], tmp_path)
    assert host_libs == set(), f"the bundle needs host libraries beyond glibc: {host_libs}"
    assert floor == "2.17"
    assert _dpkg_field(artefacts[1], "Depends") == f"libc6 (>= {floor})"
    requires = set(_rpmq(rpm_pkg, "-R").splitlines())
    rpmlib = {r.split()[0] for r in requires if r.startswith("rpmlib(")}
    assert rpmlib <= RPM_411_FEATURES, rpmlib
    expected = {f"glibc >= {floor}"}
    assert {r for r in requires if not r.startswith("rpmlib(")} == expected | {"/bin/sh"}
    # /bin/sh only as the scriptlets' interpreter; nothing from rpmbuild's generator ("auto").
    rows = [line.split("|") for line in
            _rpmq(rpm_pkg, "--qf", "[%{REQUIRENAME}|%{REQUIREFLAGS:deptype}\n]").splitlines()]
    assert sorted(kind for name, kind in rows if name == "/bin/sh") == ["post,interp", "postun,interp"]
    assert not [name for name, kind in rows if "auto" in kind]
    version = _rpmq(rpm_pkg, "--qf", "%{VERSION}-%{RELEASE}")
    assert set(_rpmq(rpm_pkg, "--provides").splitlines()) == {
        f"{PACKAGE} = {version}", f"{PACKAGE}(x86-64) = {version}"}


def _scriptlets(rpm: Path) -> dict[str, tuple[str, str]]:
    """`rpm -qp --scripts` read back: scriptlet name -> (interpreter, body)."""
    parts = re.split(r"^(\w+) scriptlet \(using ([^)]+)\):\n", _rpmq(rpm, "--scripts"), flags=re.M)
    assert parts[0] == ""
    return {parts[i]: (parts[i + 1], parts[i + 2]) for i in range(1, len(parts), 3)}


def test_rpm_scriptlets_are_the_deb_maintainer_scripts(rpm_pkg: Path) -> None:
    """%post runs debian/postinst as "configure" (install and upgrade), %postun runs
    debian/postrm as "remove" on erase ($1 = 0) and as "upgrade" (a no-op) when a newer package
    replaced it; every byte of both scripts, its % signs included, arrives unchanged."""
    scripts = _scriptlets(rpm_pkg)
    assert set(scripts) == {"postinstall", "postuninstall"}
    post_sh, post = scripts["postinstall"]
    postun_sh, postun = scripts["postuninstall"]
    assert post_sh == postun_sh == "/bin/sh"

    def code(body: str) -> str:  # the scriptlet after its leading comment lines
        lines = body.splitlines(keepends=True)
        return "".join(lines[next(i for i, line in enumerate(lines) if not line.startswith("#")):])

    assert code(post) == "set -- configure\n" + (DEBIAN / "postinst").read_text()
    assert code(postun) == ('if [ "$1" -eq 0 ]; then set -- remove; else set -- upgrade; fi\n'
                            + (DEBIAN / "postrm").read_text())
    assert '"${LOAD%/*}"' in post and '"${LOAD%/*}"' in postun
    # The vulndb timer ships disabled: nothing enables or starts it.
    assert "systemctl" not in post + postun
    assert not [f for f in _rpmq(rpm_pkg, "-l").split() if f.startswith("/etc/")]


def _rpmlint_findings(rpm: Path, config: Path) -> tuple[int, list[str]]:
    rpmlint = Path(sys.executable).with_name("rpmlint")
    assert rpmlint.exists(), "rpmlint is not installed in the virtualenv (test extras, `make deps`)"
    r = subprocess.run([str(rpmlint), "--strict", "-c", str(config), str(rpm)], capture_output=True,
                       text=True, timeout=600)
    findings = re.findall(rf"^{PACKAGE}\.\S+: [EW]: (.*)$", r.stdout, re.M)
    return r.returncode, findings


def test_rpm_lint_clean(rpm_pkg: Path, tmp_path: Path) -> None:
    """rpmlint --strict (warnings are errors) passes with packaging/rpm/rpmlint.toml, and each of
    its filters (justified there) hides a finding that rpmlint reports without them: none is stale."""
    code, findings = _rpmlint_findings(rpm_pkg, RPMLINT_CONFIG)
    assert code == 0 and findings == [], findings
    text = RPMLINT_CONFIG.read_text()
    block = re.search(r"^Filters = \[\n(.*?)^\]", text, re.S | re.M)
    assert block is not None
    filters = re.findall(r'^\s*"([^"]+)",', block[1], re.M)
    assert filters
    unfiltered = tmp_path / "rpmlint.toml"
    unfiltered.write_text(text.replace(block[0], ""))
    code, findings = _rpmlint_findings(rpm_pkg, unfiltered)
    assert code != 0
    for f in filters:
        assert any(re.search(f, finding) for finding in findings), f"filter {f!r} hides nothing"
    for finding in findings:
        assert any(re.search(f, finding) for f in filters), finding


# What the scriptlets run (debian/postinst, debian/postrm): the host's own tools, with the
# libraries ldd names, are copied into the throw-away root that rpm --root chroots into.
SCRIPTLET_TOOLS = ("sh", "grep", "sed", "tail", "truncate", "mkdir", "chmod", "rm", "rmdir")
RPM_EPOCH = "1700000000"  # SOURCE_DATE_EPOCH of the test builds


def _build_rpm(dist: Path, release: str, **env: str) -> Path:
    """packaging/build-rpm.sh for dist/go_processes.ext into ``dist`` with another release."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ.update(EXT_FILE=str(EXT), DIST_DIR=str(dist), RPM_RELEASE=release, RPMLINT="0",
                   SOURCE_DATE_EPOCH=RPM_EPOCH, **env)
    r = subprocess.run(["sh", str(ROOT / "packaging" / "build-rpm.sh")], capture_output=True, text=True,
                       env=environ, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (built,) = dist.glob(f"{PACKAGE}-*-{release}.*.rpm")
    return built


_RELEASE_2_STARTED: list[float] = []  # when the rpm_release_2 build started


@pytest.fixture(scope="module")
def rpm_release_2(artefacts: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same package with release 2: what an upgrade installs."""
    if shutil.which("rpmbuild") is None:
        pytest.skip("rpmbuild is not installed (.ci/deps installs the rpm package)")
    _RELEASE_2_STARTED.append(time.time())
    time.sleep(0.01)
    return _build_rpm(tmp_path_factory.mktemp("rpm-release-2"), "2")


def test_rpm_build_reproducible_and_only_in_build_and_dist(rpm_release_2: Path, tmp_path: Path) -> None:
    """The same tree and SOURCE_DATE_EPOCH give the same bytes, and the two builds wrote nothing
    in the checkout outside build/ and dist/ (Python's bytecode cache included)."""
    marker = _RELEASE_2_STARTED[0]
    again = _build_rpm(tmp_path, "2")
    assert again.read_bytes() == rpm_release_2.read_bytes()
    assert _rpmq(again, "--qf", "%{BUILDTIME} %{BUILDHOST}") == f"{RPM_EPOCH} reproducible"
    written = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = Path(dirpath).relative_to(ROOT)
        if rel.parts[:1] in (("build",), ("dist",), (".git",), (".venv",)):
            dirnames.clear()
            continue
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.lstat().st_mtime > marker:
                written.append(str(path.relative_to(ROOT)))
    assert written == []


def _throwaway_root(root: Path) -> None:
    """A directory rpm --root can chroot into and run the scriptlets in."""
    for tool in SCRIPTLET_TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} not found"
        binary = Path(os.path.realpath(found))
        (root / "usr/bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, root / "usr/bin" / tool)
        ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
        for lib in re.findall(r"(/\S+)", ldd):
            target = root / lib.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(lib), target)
    (root / "bin").symlink_to("usr/bin")
    for d in ("dev", "var/tmp", "var/lib/rpm"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for sub in root.rglob("*"):
        if sub.is_dir() and not sub.is_symlink():
            os.chmod(sub, 0o755)
    os.chmod(root, 0o755)
    try:  # the scriptlets write to /dev/null
        os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(root / "dev/null", 0o666)
    except PermissionError as e:
        skips.skip(skips.SANDBOX, f"cannot make /dev/null in the throw-away root: {e}")
    _rpm_root(root, "--initdb")


def _rpm_root(root: Path, *args: str) -> str:
    r = subprocess.run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", *args], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"rpm {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    assert "scriptlet failed" not in r.stderr and "warning" not in r.stderr.lower(), r.stderr
    return r.stdout


@pytest.fixture
def rpm_root(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "rpm --root chroots into the throw-away root to run the scriptlets")
    if shutil.which("rpm") is None:
        pytest.skip("rpm is not installed (.ci/deps installs it)")
    root = tmp_path / "root"
    root.mkdir()
    _throwaway_root(root)
    return root


def _check_safe_for_osquery(root: Path) -> None:
    """What osqueryd checks before it runs an autoloaded extension: the file owned by root,
    executable, not writable by group or others; its directory and every one above it owned by
    root, neither group- nor world-writable, not sticky."""
    ext = root / str(INSTALLED).lstrip("/")
    st = ext.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755)
    d = ext.parent
    while d != root.parent:
        st = d.stat()
        assert st.st_uid == 0 and not st.st_mode & (stat.S_ISVTX | stat.S_IWOTH | stat.S_IWGRP), d
        d = d.parent


def test_rpm_install_upgrade_erase(rpm_pkg: Path, rpm_release_2: Path, rpm_root: Path) -> None:
    """Into a throw-away root: install adds the line once after someone else's (whose last line
    had no newline), an upgrade to release 2 (new %post, then old %postun with $1 = 1) and a
    reinstall keep exactly one, the erase leaves the file byte for byte as before, with its mode."""
    load = rpm_root / str(LOAD).lstrip("/")
    before = b"# extensions loaded by osqueryd\n/opt/other/other.ext"
    load.parent.mkdir(parents=True)
    load.write_bytes(before)
    os.chmod(load, 0o640)
    expected = before + b"\n" + str(INSTALLED).encode() + b"\n"

    _rpm_root(rpm_root, "-i", "--nodeps", str(rpm_pkg))
    assert load.read_bytes() == expected
    assert stat.S_IMODE(load.stat().st_mode) == 0o640
    _check_safe_for_osquery(rpm_root)
    assert not (rpm_root / "etc/systemd").exists()  # the vulndb timer is not enabled
    assert (rpm_root / "usr/lib/systemd/system/osquery-go-processes-vulndb.timer").exists()

    _rpm_root(rpm_root, "-U", "--nodeps", str(rpm_release_2))
    assert _rpm_root(rpm_root, "-q", PACKAGE).split() == [rpm_release_2.name.removesuffix(".rpm")]
    assert load.read_bytes() == expected
    _check_safe_for_osquery(rpm_root)
    # A reinstall of the same package (dnf reinstall) is an upgrade to itself: still one line.
    _rpm_root(rpm_root, "-U", "--replacepkgs", "--nodeps", str(rpm_release_2))
    assert load.read_bytes() == expected

    _rpm_root(rpm_root, "-e", PACKAGE)
    assert load.read_bytes() == before
    assert stat.S_IMODE(load.stat().st_mode) == 0o640
    assert not (rpm_root / str(INSTALLED.parent).lstrip("/")).exists()
    assert not (rpm_root / "var/lib/osquery-go-processes").exists()


def test_rpm_creates_and_removes_extensions_load(rpm_pkg: Path, rpm_release_2: Path, rpm_root: Path) -> None:
    """No /etc/osquery before: install creates the directory and the file (0644) with our line,
    the upgrade keeps it single, the erase removes both again."""
    load = rpm_root / str(LOAD).lstrip("/")
    _rpm_root(rpm_root, "-i", "--nodeps", str(rpm_pkg))
    assert load.read_bytes() == str(INSTALLED).encode() + b"\n"
    assert stat.S_IMODE(load.stat().st_mode) == 0o644
    _rpm_root(rpm_root, "-U", "--nodeps", str(rpm_release_2))
    assert load.read_bytes() == str(INSTALLED).encode() + b"\n"
    _rpm_root(rpm_root, "-e", PACKAGE)
    assert not load.exists() and not load.parent.exists()


# -- the query pack and the Fleet YAML ---------------------------------------------------------

def _normal_sql(sql: str) -> str:
    return " ".join(sql.split())


def _pack() -> dict:
    return json.loads(PACK.read_text())


def _yaml_docs(path: Path) -> list:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the Fleet files (pip install pyyaml)")
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _gitops_reports() -> list[dict]:
    return _yaml_docs(FLEET / "go_processes.reports.yml")[0]


def _gitops_policies() -> list[dict]:
    return _yaml_docs(FLEET / "go_processes.policies.yml")[0]


def _applied(kind: str) -> list[dict]:
    docs = _yaml_docs(FLEET / "fleetctl-apply.yml")
    assert all(d["apiVersion"] == "v1" and d["kind"] in {"report", "policy"} for d in docs)
    return [d["spec"] for d in docs if d["kind"] == kind]


@pytest.fixture(scope="module")
def schema() -> sqlite3.Connection:
    """SQLite with our tables as the stand-in registers them and osquery's tables as stubs."""
    with osqueryd.OsqueryD() as osq:
        osq.wait_ready()
        columns = {t: osq.columns(t) for t in OUR_TABLES}
    db = sqlite3.connect(":memory:")
    for table, cols in columns.items():
        db.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {AFFINITY[t]}' for n, t in cols)})")
    for table, names in CORE_TABLES.items():
        db.execute(f"CREATE TABLE {table} ({', '.join(names)})")
    return db


def _all_queries() -> list[tuple[str, str]]:
    out = [(f"pack:{n}", q["query"]) for n, q in _pack()["queries"].items()]
    out += [(f"gitops-report:{q['name']}", q["query"]) for q in _gitops_reports()]
    out += [(f"gitops-policy:{p['name']}", p["query"]) for p in _gitops_policies()]
    out += [(f"apply-{kind}:{s['name']}", s["query"])
            for kind in ("report", "policy") for s in _applied(kind)]
    # What operators copy from the docs: the README's SQL blocks and every table's examples.
    for block in re.findall(r"```sql\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        out += [("README", q) for q in _statements(block)]
    from go_processes.tables import all_tables

    out += [(f"examples:{t.name}", q) for t in all_tables() for q in t.examples]
    return out


def _statements(block: str) -> list[str]:
    """SQL statements of a README block (comments dropped, split on ';' or blank lines)."""
    text = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [q.strip() for q in re.split(r";|\n\s*\n", text) if q.strip()]


def test_pack_fields() -> None:
    pack = _pack()
    queries = pack["queries"]
    assert {"go_processes_inventory", "go_outdated_toolchain", "gops_agent_exposed",
            "go_network_services", "go_vulnerable_dependency"} <= set(queries)
    for name, q in queries.items():
        assert set(q) <= {"query", "interval", "platform", "snapshot", "removed", "description",
                          "version", "shard", "denylist"}, name
        assert isinstance(q["query"], str) and q["query"].strip(), name
        assert isinstance(q["interval"], int) and 60 <= q["interval"] <= 604800, name
        assert q["platform"] in PACK_PLATFORMS, name
        assert isinstance(q["snapshot"], bool) and q["description"].strip(), name
        assert "--" not in q["query"], f"{name}: a -- comment would swallow the rest of a one-line query"
    assert queries["go_processes_inventory"]["snapshot"] is True
    assert "listening_ports" in queries["go_network_services"]["query"]
    assert "go_modules" in queries["go_vulnerable_dependency"]["query"]


def test_fleet_fields_and_same_sql_as_pack() -> None:
    pack = {n: _normal_sql(q["query"]) for n, q in _pack()["queries"].items()}
    for queries in (_gitops_reports(), _applied("report")):
        assert {q["name"]: _normal_sql(q["query"]) for q in queries} == pack
        for q in queries:
            assert q["description"].strip() and q["logging"] in FLEET_LOGGING
            assert set(q["platform"].split(",")) <= FLEET_PLATFORMS
            assert isinstance(q["interval"], int) and q["interval"] > 0
            packed = _pack()["queries"][q["name"]]
            # osquery logs removals unless the pack says "removed": false; Fleet spells that
            # differential_ignore_removals
            assert q["logging"] == ("snapshot" if packed["snapshot"] else
                                    "differential" if packed.get("removed", True) else
                                    "differential_ignore_removals")
    policies = {p["name"]: _normal_sql(p["query"]) for p in _gitops_policies()}
    assert policies == {p["name"]: _normal_sql(p["query"]) for p in _applied("policy")}
    for p in _gitops_policies():
        assert p["description"].strip() and p["resolution"].strip()
        assert set(p["platform"].split(",")) <= FLEET_PLATFORMS
    options = _yaml_docs(FLEET / "agent-options.yml")[0]
    assert options["extensions"]["go_processes"] == {"channel": "stable", "platform": "linux"}


def test_fleet_files_use_current_fleet_terms() -> None:
    """Fleet 4.82 renamed saved queries to reports: GitOps reads the top-level key `reports:`
    (pkg/spec/gitops.go maps the old `queries:` to it with a warning) and `fleetctl apply` warns
    that `kind: query` is deprecated in favour of `kind: report` (pkg/spec/spec.go)."""
    kinds = [d["kind"] for d in _yaml_docs(FLEET / "fleetctl-apply.yml")]
    assert "query" not in kinds and kinds.count("report") == len(_pack()["queries"])
    header = (FLEET / "go_processes.reports.yml").read_text().split("\n- name:", 1)[0]
    assert "#   reports:\n#     - path: ../lib/go_processes.reports.yml" in header
    assert not (FLEET / "go_processes.queries.yml").exists()
    fleet_section = (ROOT / "README.md").read_text().split("### Fleet", 1)[1].split("\n### ", 1)[0]
    assert "reports: [{path: ../lib/go_processes.reports.yml}]" in fleet_section
    assert "before 4.82" in fleet_section  # which Fleet versions need the old names


def test_readme_lists_every_pack_query() -> None:
    """The README's table of the pack's queries leaves none out."""
    section = (ROOT / "README.md").read_text().split("### Query pack", 1)[1].split("\n### ", 1)[0]
    listed = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert sorted(listed) == sorted(_pack()["queries"])


def test_every_query_names_existing_columns(schema: sqlite3.Connection) -> None:
    queries = _all_queries()
    assert len(queries) >= 15
    for where, sql in queries:
        try:
            schema.execute("EXPLAIN " + sql).fetchall()
        except sqlite3.Error as e:
            pytest.fail(f"{where}: {e}")


def test_a_missing_column_is_caught(schema: sqlite3.Connection) -> None:
    """The check above can fail: a query naming a column our table lacks does not compile."""
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        schema.execute("EXPLAIN SELECT go_version FROM go_processes")


# Rows for the semantic checks: (version, expected finding with the shipped threshold).
VERSIONS = [
    ("go1.21.4 X:arenas", "unsupported"), ("go1.9.2", "unsupported"), ("go1.25.9", "unsupported"),
    ("go1.26.0", None), ("go1.26.3", None), ("go1.27.1", None), ("go1.28rc1", None),
    ("devel go1.28-abcdef", None), ("", None),
]


def _fresh(schema: sqlite3.Connection) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    for (sql,) in schema.execute("SELECT sql FROM sqlite_master WHERE type = 'table'"):
        db.execute(sql)
    return db


def _policy(name_part: str) -> str:
    return next(p["query"] for p in _gitops_policies() if name_part in p["name"])


def test_toolchain_threshold(schema: sqlite3.Connection) -> None:
    db = _fresh(schema)
    for pid, (version, _) in enumerate(VERSIONS, start=100):
        db.execute("INSERT INTO go_processes (pid, exe, path, version) VALUES (?, 'x', '/x', ?)",
                   (pid, version))
    sql = _pack()["queries"]["go_outdated_toolchain"]["query"]
    found = {r[3]: r[6] for r in db.execute(sql)}
    assert found == {v: f for v, f in VERSIONS if f}
    # The threshold is the acceptable(...) rows at the top: raise 1.26's patch to 5.
    assert sql.count("VALUES (26, 0), (27, 0)") == 1
    stricter = sql.replace("VALUES (26, 0), (27, 0)", "VALUES (26, 5), (27, 0)")
    found = {r[3]: r[6] for r in db.execute(stricter)}
    assert found == {**{v: f for v, f in VERSIONS if f}, "go1.26.0": "vulnerable", "go1.26.3": "vulnerable"}
    policy = _policy("supported, patched")
    assert db.execute(policy).fetchall() == []  # failing: outdated processes exist
    db.execute("DELETE FROM go_processes WHERE version IN ('go1.21.4 X:arenas', 'go1.9.2', 'go1.25.9')")
    assert db.execute(policy).fetchall() == [(1,)]


def test_gops_exposure(schema: sqlite3.Connection) -> None:
    db = _fresh(schema)
    addresses = {"127.0.0.1": False, "127.0.1.1": False, "::1": False, "::ffff:127.0.0.1": False,
                 "0.0.0.0": True, "::": True, "10.1.2.3": True, "fe80::1": True}
    for pid, address in enumerate(addresses, start=100):
        db.execute("INSERT INTO go_processes (pid, agent, agent_port, agent_address) VALUES (?, 1, 4321, ?)",
                   (pid, address))
    db.execute("INSERT INTO go_processes (pid, agent, agent_address) VALUES (99, 0, '')")
    found = {r[6] for r in db.execute(_pack()["queries"]["gops_agent_exposed"]["query"])}
    assert found == {a for a, exposed in addresses.items() if exposed}
    assert db.execute(_policy("gops")).fetchall() == []
    db.execute("DELETE FROM go_processes WHERE agent_address NOT LIKE '127.%' AND agent_address != '::1'"
               " AND agent_address NOT LIKE '::ffff:127.%'")
    assert db.execute(_policy("gops")).fetchall() == [(1,)]


def _insert_oracle_rows(db: sqlite3.Connection, pid: int, exe: Path, library: bool = False) -> None:
    """go_processes and go_modules rows for a process running ``exe``, as `go version -m` reads it;
    with ``library``, the go_modules rows (library = 1) of a Go library ``exe`` the process maps."""
    info = gobuild.go_version_m(exe)
    assert info is not None, f"go version -m does not read {exe}"
    if not library:
        db.execute("INSERT INTO go_processes (pid, exe, path, version) VALUES (?, ?, ?, ?)",
                   (pid, exe.name, str(exe), info["GoVersion"]))
    for module, version, sum_, rmod, rver, rsum, main in fixtures.go_modules_rows(info):
        db.execute("INSERT INTO go_modules (pid, path, module, version, sum, replace_module, replace_version,"
                   " replace_sum, main, library) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (pid, str(exe), module, version, sum_, rmod, rver, rsum, int(main), int(library)))


def _named(db: sqlite3.Connection, sql: str) -> list[dict]:
    cur = db.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def test_vulnerable_dependency(schema: sqlite3.Connection) -> None:
    """The shipped hunt over rows of real programs: golang.org/x/net v0.16.0 replaced by v0.17.0 is
    fixed (vulndeps), golang.org/x/net v0.17.0-rc.1 is not (vulnrc, a pre-release precedes its
    release). Then the same query with fixed(...) rows for vulndeps's other modules, one per way
    go.mod can spell a version."""
    db = _fresh(schema)
    _insert_oracle_rows(db, 100, fixtures.build_fixture("vulndeps"))
    _insert_oracle_rows(db, 200, fixtures.build_fixture("vulnrc"))
    assert db.execute("SELECT count(*) FROM go_modules WHERE module = 'golang.org/x/net'").fetchone() == (2,)
    sql = _pack()["queries"]["go_vulnerable_dependency"]["query"]
    rows = _named(db, sql)
    assert [(r["pid"], r["module"], r["version"]) for r in rows] == [
        (200, "golang.org/x/net", "v0.17.0-rc.1")]
    assert (rows[0]["used_version"], rows[0]["fixed_in"]) == ("v0.17.0-rc.1", "v0.17.0")
    policy = _policy("golang.org/x/net")
    assert db.execute(policy).fetchall() == []  # failing: vulnrc runs
    db.execute("DELETE FROM go_modules WHERE pid = 200")
    assert db.execute(policy).fetchall() == [(1,)]  # vulndeps's replaced x/net passes

    shipped = "VALUES ('golang.org/x/net', 0, 17, 0)"
    assert sql.count(shipped) == 1
    hunted = ("example.com/vn/old", "example.com/vn/ok", "example.com/vn/pre", "example.com/vn/down",
              "example.com/vn/local", "example.com/vn/pseudo")
    wider = sql.replace(shipped, "VALUES " + ", ".join(f"('{m}', 0, 17, 0)" for m in hunted))
    found = {r["module"]: r["used_version"] for r in _named(db, wider)}
    assert found == {
        "example.com/vn/old": "v0.16.0",
        "example.com/vn/pre": "v0.17.0-rc.1",  # pre-release of the fixed version
        "example.com/vn/down": "v0.16.0",  # v0.17.0 replaced by v0.16.0: the replacement is what runs
        "example.com/vn/local": "(devel)",  # directory replacement: no version says it is fixed
    }  # not: ok v0.17.0, pseudo v0.17.1-0.2023... (after v0.17.0)
    # a release after the fixed one, +incompatible build metadata, and a lower major are compared
    # as semver, not as text
    for version, vulnerable in (("v0.17.10", False), ("v0.9.0", True), ("v2.0.0+incompatible", False),
                                ("v0.16.0+incompatible", True), ("v1.0.0", False)):
        db.execute("DELETE FROM go_modules WHERE module = 'example.com/vn/ok'")
        db.execute("INSERT INTO go_modules (pid, path, module, version, replace_module, replace_version,"
                   " main) VALUES (100, 'p', 'example.com/vn/ok', ?, '', '', 0)", (version,))
        listed = {r["module"] for r in _named(db, wider)}
        assert ("example.com/vn/ok" in listed) is vulnerable, version


VULNRC_LIB = """package main

import "C"

import "golang.org/x/net"

//export NetName
func NetName() *C.char { return C.CString(net.Name()) }

func main() {}
"""


def test_vulnerable_dependency_in_a_go_library_of_a_non_go_program(schema: sqlite3.Connection) -> None:
    """go_modules has library rows (library = 1) for a Go c-shared library a process maps, and
    that process need not be Go: the hunt lists it too, named as processes names it, beside the
    same library in a Go process and a vulnerable Go executable."""
    fixtures.ensure_proxy()
    lib = gobuild.build(gobuild.Build(
        program=dataclasses.replace(fixtures.VULNRC_PROG, module="example.com/vulnrclib",
                                    files=(("lib.go", VULNRC_LIB),)),
        flags=("-buildmode=c-shared",), name="libvulnrc.so",
        env=(("GOPROXY", f"file://{fixtures.PROXY_DIR}"), ("GOFLAGS", "-mod=mod"), ("CGO_ENABLED", "1"))))
    db = _fresh(schema)
    _insert_oracle_rows(db, 300, lib, library=True)  # a C program (python3) that dlopen'ed it
    db.execute("INSERT INTO processes (pid, name, path) VALUES (300, 'python3', '/usr/bin/python3')")
    _insert_oracle_rows(db, 400, fixtures.build_fixture("vulndeps"))  # a Go program, fixed x/net ...
    _insert_oracle_rows(db, 400, lib, library=True)  # ... that maps the vulnerable library
    _insert_oracle_rows(db, 200, fixtures.build_fixture("vulnrc"))
    for pid, name in ((400, "vulndeps"), (200, "vulnrc")):
        db.execute("INSERT INTO processes (pid, name, path) VALUES (?, ?, '')", (pid, name))
    rows = _named(db, _pack()["queries"]["go_vulnerable_dependency"]["query"])
    found = sorted((r["pid"], r["exe"], r["path"], r["library"], r["used_version"], r["fixed_in"])
                   for r in rows)
    assert found == [
        (200, "prog", str(fixtures.build_fixture("vulnrc")), 0, "v0.17.0-rc.1", "v0.17.0"),
        (300, "python3", str(lib), 1, "v0.17.0-rc.1", "v0.17.0"),
        (400, "prog", str(lib), 1, "v0.17.0-rc.1", "v0.17.0"),
    ]
    policy = _policy("golang.org/x/net")
    db.execute("DELETE FROM go_modules WHERE pid IN (200, 400)")
    assert db.execute(policy).fetchall() == []  # the library in python3 alone fails it
    db.execute("DELETE FROM go_modules WHERE pid = 300")
    assert db.execute(policy).fetchall() == [(1,)]


def test_network_join(schema: sqlite3.Connection) -> None:
    db = _fresh(schema)
    db.execute("INSERT INTO go_processes (pid, exe) VALUES (100, 'svc')")
    for port, address in ((8080, "0.0.0.0"), (9090, "127.0.0.1"), (0, ""), (443, "::")):
        db.execute("INSERT INTO listening_ports (pid, port, protocol, family, address)"
                   " VALUES (100, ?, 6, 2, ?)", (port, address))
    served = {(r[0], r[1]) for r in db.execute(_pack()["queries"]["go_network_services"]["query"])}
    assert served == {("0.0.0.0", 8080), ("::", 443)}



def test_vulnerability_queries_and_policies(schema: sqlite3.Connection) -> None:
    db = _fresh(schema)
    for pid, level, withdrawn in ((100, "symbol", ""), (101, "package", ""), (102, "symbol", "2026-01-01")):
        db.execute("INSERT INTO go_vulnerabilities (pid, path, osv_id, level, withdrawn)"
                   " VALUES (?, 'p', 'GO-2026-0001', ?, ?)", (pid, level, withdrawn))
    for pid in (100, 101, 102):
        db.execute("INSERT INTO listening_ports (pid, port, protocol, family, address)"
                   " VALUES (?, 8080, 6, 2, '0.0.0.0')", (pid,))
    db.execute("INSERT INTO listening_ports (pid, port, protocol, family, address)"
               " VALUES (100, 9, 6, 2, '127.0.0.1')")
    queries = _pack()["queries"]
    assert [r[0] for r in db.execute(queries["go_vulnerable_symbols"]["query"])] == [100]
    exposed = [(r[0], r[9]) for r in db.execute(queries["go_vulnerable_network_services"]["query"])]
    assert exposed == [(100, 8080)]
    policies = {p["name"]: p["query"] for p in _gitops_policies()}
    clean = policies["No running Go program links known-vulnerable code"]
    fresh = policies["Go vulnerability database is present and fresh"]
    db.execute("INSERT INTO go_vulndb (location, error) VALUES ('/var/lib/x', 'refused: ...')")
    assert list(db.execute(clean)) == [] and list(db.execute(fresh)) == []  # no usable database: fail
    db.execute("UPDATE go_vulndb SET error = '', age_days = 3")
    assert list(db.execute(clean)) == [] and list(db.execute(fresh)) == [(1,)]  # finding at pid 100
    db.execute("DELETE FROM go_vulnerabilities WHERE level = 'symbol' AND withdrawn = ''")
    assert list(db.execute(clean)) == [(1,)]
    db.execute("UPDATE go_vulndb SET age_days = 8")
    assert list(db.execute(fresh)) == []


def _load(db: sqlite3.Connection, table: str, rows: list[dict[str, str]]) -> None:
    """Replace ``table``'s rows with the extension's answer (text; the columns' affinity converts,
    as osquery's virtual table types them)."""
    db.execute(f"DELETE FROM {table}")
    for r in rows:
        marks = ", ".join("?" * len(r))
        db.execute(f"INSERT INTO {table} ({', '.join(r)}) VALUES ({marks})", list(r.values()))


def _wait(what: str, pred: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout  # a watchdog for something that never happens
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_exec_events_report_logs_each_new_exec_once(schema: sqlite3.Connection) -> None:
    """The scheduled go_process_events query over the real extension's rows, run twice the way a
    differential osquery query is: the second run adds the exec that happened in between and
    nothing the first run logged; an exec older than the window is left out. Other programs
    exec on this host too, so the assertions are about this test's own pids."""
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "subscribing to the kernel's process connector needs CAP_NET_ADMIN")
    queries = _pack()["queries"]
    q = queries["go_exec_events"]
    assert (q["snapshot"], q["removed"]) == (False, False)  # differential, additions only
    exe = gobuild.build(gobuild.Build())  # the hello program; `sleep`: sleeps an hour
    oracle = gobuild.go_version_m(exe)
    assert oracle is not None
    db = _fresh(schema)
    with osqueryd.OsqueryD() as osq:
        osq.wait_ready()
        client = osq.client()
        _wait("the exec source", functools.partial(_in_state, client, "running"))
        first_pids = _run_hello(client, exe, 2)
        _load(db, "go_process_events", client.generate("go_process_events"))
        first = _named(db, q["query"])
        ours = [r for r in first if r["pid"] in first_pids]
        assert len(ours) == 2, first
        assert {(r["path"], r["version"], r["module"], r["cmdline"]) for r in ours} == {
            (str(exe), oracle["GoVersion"], oracle["Main"]["Path"], f"{exe} sleep")}
        [third] = _run_hello(client, exe, 1)
        _load(db, "go_process_events", client.generate("go_process_events"))
        db.execute("UPDATE go_process_events SET time = time - 901 WHERE pid = ?", (min(first_pids),))
        second = _named(db, q["query"])
        added = [r for r in second if r not in first]  # what a differential run logs
        assert {r["pid"] for r in second if r["pid"] in first_pids | {third}} == {max(first_pids), third}
        assert {r["pid"] for r in added if r["pid"] in first_pids | {third}} == {third}


def _in_state(client: osqueryd.ExtensionClient, state: str) -> bool:
    return client.generate("go_process_events_status")[0]["state"] == state


def _run_hello(client: osqueryd.ExtensionClient, exe: Path, n: int) -> set[int]:
    """Run ``exe sleep`` ``n`` times; their pids once go_process_events has every one. They are
    killed then: alive until read, none is lost as gone before its executable could be read."""
    procs = [subprocess.Popen([str(exe), "sleep"], stdout=subprocess.DEVNULL) for _ in range(n)]
    pids = {p.pid for p in procs}

    def recorded() -> bool:
        return pids <= {int(r["pid"]) for r in client.generate("go_process_events")}

    try:
        _wait("the execs' rows", recorded)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return pids


def test_exec_source_report_and_policy_over_the_real_status(schema: sqlite3.Connection) -> None:
    """The status report and the policy over go_process_events_status as the real extension
    answers it: with CAP_NET_ADMIN the source runs and the policy passes; without it the status
    says no privilege and the policy fails."""
    if os.geteuid() != 0:
        skips.skip(skips.NEEDS_ROOT, "subscribing to the kernel's process connector needs CAP_NET_ADMIN")
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is part of the test set-up"
    report = _pack()["queries"]["go_process_events_source"]["query"]
    policy = _policy("go_process_events")
    db = _fresh(schema)
    drop = [setpriv, "--inh-caps=-net_admin", "--bounding-set=-net_admin"]
    for command, state, passes in ((osqueryd.default_command(), "running", True),
                                   ([*drop, *osqueryd.default_command()], "no privilege", False)):
        with osqueryd.OsqueryD(command) as osq:
            osq.wait_ready()
            client = osq.client()
            _wait(state, functools.partial(_in_state, client, state))
            _load(db, "go_process_events_status", client.generate("go_process_events_status"))
        [row] = _named(db, report)
        assert (row["running"], row["state"]) == (int(passes), state), row
        assert ("CAP_NET_ADMIN" in row["error"]) is not passes
        assert db.execute(policy).fetchall() == ([(1,)] if passes else [])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
