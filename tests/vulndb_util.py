"""Helpers for the vulnerability-database tests: small hand-made databases in the documented
layout, and the real snapshot from tests/data unpacked once per session."""

from __future__ import annotations

import json
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT = Path(__file__).resolve().parent / "data" / "go-vulndb-2026-08-21.tar.xz"
SNAPSHOT_MODIFIED = "2026-08-21T20:38:00Z"
SNAPSHOT_ENTRIES = 4291  # tests/data/README.md


def osv(vid: str, module: str, events: list[dict[str, str]], imports: list[dict[str, Any]] | None = None,
        **extra: Any) -> dict[str, Any]:
    """One OSV entry as the Go database writes it."""
    affected: dict[str, Any] = {"package": {"name": module, "ecosystem": "Go"},
                                "ranges": [{"type": "SEMVER", "events": events}],
                                "ecosystem_specific": {"imports": imports} if imports else {}}
    doc = {"schema_version": "1.3.1", "id": vid, "modified": "2026-01-02T00:00:00Z",
           "published": "2026-01-01T00:00:00Z", "aliases": [f"CVE-2026-{vid[-4:]}"],
           "summary": f"summary of {vid}", "details": "details", "affected": [affected]}
    doc.update(extra)
    return doc


def write_db(root: Path, entries: list[dict[str, Any]], modified: str = "2026-01-03T00:00:00Z",
             raw: dict[str, bytes] | None = None) -> Path:
    """A database directory in the documented layout, mode 0755/0644 whatever the umask.

    ``raw`` adds ID files with the given bytes (malformed entries), indexed under module ``bad``.
    """
    (root / "index").mkdir(parents=True, exist_ok=True)
    (root / "ID").mkdir(exist_ok=True)
    modules: dict[str, list[dict[str, str]]] = {}
    for e in entries:
        (root / "ID" / f"{e['id']}.json").write_text(json.dumps(e))
        for a in e["affected"]:
            modules.setdefault(a["package"]["name"], []).append({"id": e["id"], "modified": e["modified"]})
    for vid, data in (raw or {}).items():
        (root / "ID" / f"{vid}.json").write_bytes(data)
        modules.setdefault("example.com/bad", []).append({"id": vid, "modified": modified})
    (root / "index" / "db.json").write_text(json.dumps({"modified": modified}))
    (root / "index" / "modules.json").write_text(
        json.dumps([{"path": p, "vulns": v} for p, v in modules.items()]))
    fix_modes(root)
    return root


def fix_modes(root: Path) -> None:
    os.chmod(root, 0o755)
    for d, dirs, files in os.walk(root):
        for n in dirs:
            os.chmod(os.path.join(d, n), 0o755)
        for n in files:
            os.chmod(os.path.join(d, n), 0o644)


def zip_db(src: Path, out: Path, prefix: str = "", extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for d, _dirs, files in os.walk(src):
            for n in sorted(files):
                p = Path(d) / n
                z.write(p, prefix + str(p.relative_to(src)))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    os.chmod(out, 0o644)
    return out


def raw_zip(out: Path, members: Iterable[tuple[str, bytes]], deflate: bool = True,
            damage: dict[str, tuple[int, bytes | None]] | None = None) -> Path:
    """A zip written record by record, without zipfile: a body is compressed once however often it
    repeats, so a zip of thousands of 1 MB members takes milliseconds. ``damage`` maps a member's
    name to (general-purpose flags, e.g. 1 for encrypted; bytes written in place of its compressed
    data, or None)."""
    packed: dict[bytes, tuple[bytes, int]] = {}
    central = []
    method = 8 if deflate else 0
    with open(out, "wb") as f:
        for name, body in members:
            if body not in packed:
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                packed[body] = (c.compress(body) + c.flush() if deflate else body, zlib.crc32(body))
            data, crc = packed[body]
            flags, replaced = (damage or {}).get(name, (0, None))
            data = data if replaced is None else replaced
            offset, n = f.tell(), name.encode()
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(data),
                                len(body), len(n), 0) + n + data)
            central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc,
                                       len(data), len(body), len(n), 0, 0, 0, 0, 0o644 << 16, offset) + n)
        start, directory = f.tell(), b"".join(central)
        f.write(directory + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central),
                                        len(directory), start, 0))
    os.chmod(out, 0o644)
    return out


def layout_members(entries: Iterable[tuple[str, bytes]], modified: str = "2026-09-01T00:00:00Z"
                   ) -> Iterable[tuple[str, bytes]]:
    """(name, body) of a zip holding ``entries`` (ID, body) and an index naming none of them."""
    yield "index/db.json", json.dumps({"modified": modified}).encode()
    yield "index/modules.json", b"[]"
    for vid, body in entries:
        yield f"ID/{vid}.json", body


def extract_tar(archive: Path, dest: Path) -> None:
    """Unpack a tarball of regular files and directories under ``dest``. Python >= 3.11.4 (and
    3.10.12) has tarfile's "data" filter; Debian 12's 3.11.2 does not, so the same rules are applied
    by hand there: no absolute or ``..`` names, no links, devices or FIFOs."""
    with tarfile.open(archive) as t:
        if hasattr(tarfile, "data_filter"):
            t.extractall(dest, filter="data")
            return
        root = dest.resolve()
        members = []
        for m in t.getmembers():
            target = (dest / m.name).resolve()
            if not (m.isfile() or m.isdir()) or not target.is_relative_to(root):
                raise ValueError(f"{archive}: refusing member {m.name!r}")
            members.append(m)
        t.extractall(dest, members=members)


def unpack_snapshot(dest: Path) -> Path:
    """The real database snapshot, unpacked under ``dest``."""
    out = dest / "vulndb"
    if not (out / "index" / "db.json").exists():
        extract_tar(SNAPSHOT, out)
        fix_modes(out)
    return out


@pytest.fixture(scope="session")
def snapshot_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_snapshot(tmp_path_factory.mktemp("snapshot"))
