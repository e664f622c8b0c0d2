"""The Go vulnerability database in its documented layout, from a directory or the bulk zip.

Layout (https://go.dev/doc/security/vuln/database): ``index/db.json`` (the database's own
``modified``), ``index/modules.json`` (module path -> entry IDs) and ``ID/<id>.json`` (one OSV
entry each). The indexes are read when the database is opened; an entry is parsed the first time
a program contains its module, so opening costs two files, not four thousand.

Everything here is input: file names are built from IDs that match ``GO-YYYY-NNNN`` only (never
from zip member names or index strings), every file is bounded, and a malformed or oversized
entry is an error for that entry alone (kept in :attr:`Database.errors`), never for the others.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import stat
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

from ._model import Affected, Entry, Malformed, NotInstalled, Package, Untrusted, VulnDBError
from ._trust import check_st, read_trusted
from ._version import Key, key

# Bounds of a database, for the loader and the updater alike (README, "The database"). August
# 2026: 4,291 entries (about 2,700 more a year), 6.6 MB unpacked, a 3.3 MB zip.
MAX_ENTRY = 1 << 20  # one OSV entry (the largest in 2026 is 8 KB)
MAX_INDEX = 8 << 20  # index/modules.json or vulns.json (0.5 MB in 2026, about 6 MB at MAX_ENTRIES)
MAX_ENTRIES = 50_000  # advisories, and items of index/modules.json
MAX_TOTAL = 128 << 20  # every file of the layout, unpacked, together
MAX_ZIP = 64 << 20  # the bulk zip
MAX_ZIP_DIRECTORY = (MAX_ENTRIES + 16) * 256  # its central directory (90 bytes a member in 2026)
MAX_LIST = 10_000  # items of any list inside one entry

ID_RE = re.compile(r"GO-\d{4}-\d{4,7}")
_ZIP_MEMBER = re.compile(r"(?:[^/]{1,255}/)?(index/(?:db|modules|vulns)\.json|ID/(GO-\d{4}-\d{4,7})\.json)")
_GENERATIONS = itertools.count(1)
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class _Dir:
    """Files under a database directory, opened relative to directory fds without following
    symlinks, each checked as trusted (owner, mode) on the descriptor we read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._dirs: dict[str, int] = {}
        self._fd = -1
        self._fd = _open_dir(os.path.realpath(path), None, path)  # a symlink at the top is how updates swap

    def read(self, sub: str, name: str, limit: int) -> bytes:
        where = f"{self.path}/{sub}/{name}"
        dfd = self._subdir(sub)
        try:
            fd = os.open(name, _OPEN, dir_fd=dfd)
        except FileNotFoundError:
            raise Malformed(f"{where} is missing") from None
        except OSError as e:
            raise Malformed(f"{where}: {e.strerror or e}") from None
        try:
            return read_trusted(fd, where, limit)
        finally:
            os.close(fd)

    def _subdir(self, sub: str) -> int:
        """``index``/``ID`` opened once (checked as trusted) and kept while this copy is open."""
        with self._lock:
            fd = self._dirs.get(sub)
            if fd is None:
                fd = _open_dir(sub, self._fd, f"{self.path}/{sub}")
                self._dirs[sub] = fd
            return fd

    def ids(self) -> list[str]:
        out = []
        with os.scandir(self._subdir("ID")) as it:
            for n, e in enumerate(it):
                if n > MAX_ENTRIES + 16:
                    raise Malformed(f"{self.path}/ID holds over {MAX_ENTRIES + 16} files, over the bound")
                if e.name.endswith(".json") and ID_RE.fullmatch(e.name[:-5]):
                    out.append(e.name[:-5])
        return out

    def size(self) -> int:
        """The bytes the layout's files say they hold (lstat, so a symlink counts as itself)."""
        total = 0
        for sub in ("index", "ID"):
            with os.scandir(self._subdir(sub)) as it:
                for e in it:
                    if _ZIP_MEMBER.fullmatch(f"{sub}/{e.name}"):
                        st = e.stat(follow_symlinks=False)
                        total += st.st_size if stat.S_ISREG(st.st_mode) else 0
        return total

    def close(self) -> None:
        with self._lock:
            for fd in (self._fd, *self._dirs.values()):
                if fd >= 0:
                    os.close(fd)
            self._fd = -1
            self._dirs.clear()

    # A reloaded database is dropped, not closed, by the shared store: a query still matching
    # against it keeps it alive, and its descriptors close when the last reference goes.
    __del__ = close


class _Zip:
    """The bulk zip (vuln.go.dev/vulndb.zip), read whole into memory once (it is small) and
    checked as a file we trust (or the bytes an update downloaded); member names are only matched
    against the layout. Its end record is checked before zipfile reads the central directory, so
    a zip of a million tiny members is refused before it costs memory."""

    def __init__(self, path: str, data: bytes | None = None) -> None:
        self.path = path
        if data is None:
            try:
                fd = os.open(path, _OPEN)
            except OSError as e:
                raise NotInstalled(f"{path}: {e.strerror or e}") from None
            try:
                data = read_trusted(fd, path, MAX_ZIP)
            finally:
                os.close(fd)
        elif len(data) > MAX_ZIP:
            raise Malformed(f"{path} is {len(data)} bytes, over the {MAX_ZIP}-byte bound")
        _check_end_record(data, path)
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
            raise Malformed(f"{path} is not a readable zip: {e}") from None
        if len(infos) > MAX_ENTRIES + 16:
            raise Malformed(f"{path} holds {len(infos)} members, over the bound of {MAX_ENTRIES + 16}")
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            m = _ZIP_MEMBER.fullmatch(info.filename)
            if m is not None and not info.is_dir():
                self._members.setdefault(m.group(1), info)
        # zipfile never returns more than a member's declared size, so this bounds what is unpacked.
        self.declared = sum(info.file_size for info in self._members.values())
        if self.declared > MAX_TOTAL:
            raise Malformed(f"{path} unpacks to {self.declared} bytes, over the {MAX_TOTAL}-byte bound")

    def read(self, sub: str, name: str, limit: int) -> bytes:
        where = f"{self.path}:{sub}/{name}"
        info = self._members.get(f"{sub}/{name}")
        if info is None:
            raise Malformed(f"{where} is missing")
        if info.file_size > limit:
            raise Malformed(f"{where} is {info.file_size} bytes, over the {limit}-byte bound")
        if info.flag_bits & 0x1:
            raise Malformed(f"{where} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Malformed(f"{where} uses compression method {info.compress_type} (only stored and deflate)")
        try:
            with self._zip.open(info) as f:
                data = f.read(limit + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError,
                zlib.error) as e:
            raise Malformed(f"{where}: {e}") from None
        if len(data) > limit:
            raise Malformed(f"{where} is over the {limit}-byte bound")
        return data

    def ids(self) -> list[str]:
        return [m[3:-5] for m in self._members if m.startswith("ID/")]

    def size(self) -> int:
        return self.declared

    def close(self) -> None:
        self._zip.close()


def _check_end_record(data: bytes, where: str) -> None:
    """The member count and central directory size a zip declares, within our bounds, before
    zipfile builds an object per member (found as zipfile finds it: the last end record)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if at < 0 or len(data) - at < 22:
        raise Malformed(f"{where} is not a readable zip: no end of central directory")
    count, cd_size = struct.unpack_from("<HL", data, at + 10)
    if at >= 20 and data[at - 20:at - 16] == b"PK\x06\x07":
        raise Malformed(f"{where} is a zip64 archive (a database is far below its sizes)")
    if count > MAX_ENTRIES + 16 or cd_size > MAX_ZIP_DIRECTORY:
        raise Malformed(f"{where} declares {count} members in a {cd_size}-byte directory, over the bound "
                        f"of {MAX_ENTRIES + 16} members")


def _open_dir(path: str, dir_fd: int | None, where: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise (NotInstalled if dir_fd is None else Malformed)(f"{where} does not exist") from None
    except OSError as e:
        raise Malformed(f"{where}: {e.strerror or e}") from None
    try:
        check_st(where, os.fstat(fd))
    except Untrusted:
        os.close(fd)
        raise
    return fd


class Database:
    """An opened database. Thread-safe; entries are parsed on first use and kept."""

    def __init__(self, location: str, *, is_zip: bool | None = None, data: bytes | None = None) -> None:
        """Open ``location``: a zip when its name ends in ``.zip`` (or ``is_zip``), else a directory;
        ``data`` is a zip's content already in memory (a download), ``location`` then only names it."""
        self.location = location
        self.generation = next(_GENERATIONS)  # names this opened copy in callers' caches
        if is_zip is None:
            is_zip = _is_zip(location)
        self._src: _Dir | _Zip = _Zip(location, data) if is_zip or data is not None else _Dir(location)
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self.errors: dict[str, str] = {}  # entry ID -> why it was not loaded
        try:
            meta = _json(self._src.read("index", "db.json", MAX_ENTRY), "index/db.json")
            modified = meta.get("modified") if isinstance(meta, dict) else None
            if not isinstance(modified, str) or not _TIME.fullmatch(modified):
                raise Malformed("index/db.json has no valid \"modified\" time")
            self.modified: str = modified
            self._modules = _module_index(self._src.read("index", "modules.json", MAX_INDEX))
            self._ids = sorted(set(self._src.ids()))
            if len(self._ids) > MAX_ENTRIES:
                raise Malformed(f"{location} holds {len(self._ids)} entries, over the bound of {MAX_ENTRIES}")
        except BaseException:
            self._src.close()
            raise

    def __len__(self) -> int:
        """The number of entries (``ID/*.json`` files) the database holds."""
        return len(self._ids)

    def ids(self) -> list[str]:
        return list(self._ids)

    def modules(self) -> list[str]:
        """Every module path the index names."""
        return list(self._modules)

    def index_ids(self, module: str) -> tuple[str, ...]:
        """The entry IDs the index names for ``module``."""
        return self._modules.get(module, ())

    def for_module(self, module: str) -> list[Entry]:
        """The entries that name ``module`` (by the index), parsed on first use; an entry that
        cannot be read is left out and recorded in :attr:`errors`."""
        out = []
        for vid in self._modules.get(module, ()):
            entry = self.entry(vid)
            if entry is not None:
                out.append(entry)
        return out

    def entry(self, vid: str) -> Entry | None:
        with self._lock:
            found = self._entries.get(vid)
            if found is not None or vid in self.errors:
                return found
        try:
            parsed = parse_entry(self._src.read("ID", f"{vid}.json", MAX_ENTRY), vid)
        except VulnDBError as e:
            with self._lock:
                self.errors[vid] = e.reason
            return None
        with self._lock:
            self._entries[vid] = parsed
        return parsed

    def size(self) -> int:
        """The bytes its layout files declare unpacked (a zip's directory, a directory's lstat)."""
        return self._src.size()

    def check_size(self) -> None:
        """Refuse a database whose files declare more than :data:`MAX_TOTAL` bytes (an update's check
        before it writes anything; :meth:`files` also counts what it reads)."""
        declared = self.size()
        if declared > MAX_TOTAL:
            raise Malformed(f"{self.location} unpacks to {declared} bytes, over the {MAX_TOTAL}-byte bound")

    def files(self) -> Iterator[tuple[str, bytes]]:
        """Every layout file as (``index/db.json``-like name, bytes), each read bounded and checked
        as trusted, in all at most :data:`MAX_TOTAL` bytes (also if files grow while read)."""
        total = 0
        for sub, name, limit in (("index", "db.json", MAX_ENTRY), ("index", "modules.json", MAX_INDEX),
                                 ("index", "vulns.json", MAX_INDEX),
                                 *(("ID", f"{vid}.json", MAX_ENTRY) for vid in self._ids)):
            budget = MAX_TOTAL - total
            try:
                data = self._src.read(sub, name, min(limit, budget))
            except Malformed as e:
                if name == "vulns.json" and e.reason.endswith(" is missing"):
                    continue  # not used by us; installed when the source has it
                if budget < limit and "bound" in e.reason:
                    raise Malformed(f"{self.location} holds over {MAX_TOTAL} bytes, over the bound") from None
                raise
            total += len(data)
            yield f"{sub}/{name}", data

    def check_all(self) -> dict[str, str]:
        """Parse every entry without keeping it (an update's check: memory stays one entry);
        returns entry ID -> why it cannot be read."""
        errors = {}
        for vid in self._ids:
            try:
                parse_entry(self._src.read("ID", f"{vid}.json", MAX_ENTRY), vid)
            except VulnDBError as e:
                errors[vid] = e.reason
        return errors

    def load_all(self) -> int:
        """Parse every entry now (validation, benchmarks); returns how many failed."""
        for vid in self._ids:
            self.entry(vid)
        return len(self.errors)

    def close(self) -> None:
        """Release the files and the index (an update holds two copies in turn, never at once)."""
        self._src.close()
        self._modules = {}


_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)")


def _is_zip(location: str) -> bool:
    return location.endswith(".zip")


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise Malformed(f"{where} is not valid JSON: {e}") from None


def _module_index(data: bytes) -> dict[str, tuple[str, ...]]:
    doc = _json(data, "index/modules.json")
    if not isinstance(doc, list) or len(doc) > MAX_ENTRIES:
        raise Malformed("index/modules.json is not a list of modules")
    # A module path may come back in later items: its IDs are gathered in one ordered dict (linear;
    # rebuilding the tuple per item was quadratic in the repeats).
    out: dict[str, dict[str, None]] = {}
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise Malformed("index/modules.json has an item without a module path")
        vulns = item.get("vulns")
        if not isinstance(vulns, list):
            raise Malformed(f"index/modules.json: {item['path'][:200]!r} has no vulns list")
        ids = out.setdefault(item["path"], {})
        for v in vulns:
            vid = v.get("id") if isinstance(v, dict) else None
            if not isinstance(vid, str) or not ID_RE.fullmatch(vid):
                raise Malformed(f"index/modules.json: {item['path'][:200]!r} names an invalid ID")
            ids[vid] = None
    return {path: tuple(ids) for path, ids in out.items()}


def _text(s: str) -> str:
    """JSON may carry a lone surrogate ("\\ud800"), which no UTF-8 output can: it becomes U+FFFD
    here, once, rather than failing every row, line or reply that would show it."""
    return s if s.isascii() else _SURROGATE.sub("\ufffd", s)


_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins valid pairs, so these are lone


def _str(d: dict[str, Any], k: str, where: str, required: bool = False) -> str:
    v = d.get(k, "")
    if v is None:
        v = ""
    if not isinstance(v, str) or (required and not v):
        raise Malformed(f"{where}: \"{k}\" is {'missing' if required and not v else 'not a string'}")
    return _text(v)


def _list(v: Any, where: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list) or len(v) > MAX_LIST:
        raise Malformed(f"{where} is not a list (or too long)")
    return v


def _strs(v: Any, where: str) -> tuple[str, ...]:
    items = _list(v, where)
    if not all(isinstance(s, str) for s in items):
        raise Malformed(f"{where} holds a non-string")
    return tuple(_text(s) for s in items)


def parse_entry(data: bytes, vid: str) -> Entry:
    """One ``ID/<vid>.json`` file, validated against the OSV shape we use."""
    where = f"ID/{vid}.json"
    doc = _json(data, where)
    if not isinstance(doc, dict):
        raise Malformed(f"{where} is not an object")
    if doc.get("id") != vid:
        raise Malformed(f"{where} holds id {str(doc.get('id'))[:40]!r}")
    summary = _str(doc, "summary", where)
    if not summary:
        summary = _str(doc, "details", where).strip().split("\n\n", 1)[0].replace("\n", " ")[:300]
    affected = []
    for i, a in enumerate(_list(doc.get("affected"), f"{where}: affected")):
        affected.append(_affected(a, f"{where}: affected[{i}]"))
    return Entry(
        id=vid,
        aliases=_strs(doc.get("aliases"), f"{where}: aliases"),
        summary=summary,
        published=_str(doc, "published", where),
        modified=_str(doc, "modified", where, required=True),
        withdrawn=_str(doc, "withdrawn", where),
        affected=tuple(affected),
    )


def _affected(a: Any, where: str) -> Affected:
    if not isinstance(a, dict) or not isinstance(a.get("package"), dict):
        raise Malformed(f"{where} has no package")
    module = _str(a["package"], "name", where, required=True)
    ranges = []
    fixed: dict[Key, str] = {}
    for j, r in enumerate(_list(a.get("ranges"), f"{where}.ranges")):
        if not isinstance(r, dict):
            raise Malformed(f"{where}.ranges[{j}] is not an object")
        if r.get("type") != "SEMVER":
            continue  # as govulncheck: only SEMVER ranges are understood
        events: list[tuple[str, Key | None]] = []
        for e in _list(r.get("events"), f"{where}.ranges[{j}].events"):
            if not isinstance(e, dict) or len(e) != 1:
                raise Malformed(f"{where}.ranges[{j}] has an event that is not one key")
            (kind, value), = e.items()
            if kind not in ("introduced", "fixed") or not isinstance(value, str):
                continue  # last_affected/limit: not used by the Go database
            if kind == "introduced" and value == "0":
                events.append((kind, None))
                continue
            k = key(value.removesuffix("+incompatible"))
            if k is None:
                raise Malformed(f"{where}: {value[:40]!r} is not a semver version")
            events.append((kind, k))
            if kind == "fixed":
                fixed[k] = value
        ranges.append(tuple(events))
    packages = []
    eco = a.get("ecosystem_specific") or {}
    if not isinstance(eco, dict):
        raise Malformed(f"{where}.ecosystem_specific is not an object")
    for j, imp in enumerate(_list(eco.get("imports"), f"{where}.imports")):
        w = f"{where}.imports[{j}]"
        if not isinstance(imp, dict):
            raise Malformed(f"{w} is not an object")
        packages.append(Package(
            path=_str(imp, "path", w, required=True),
            symbols=frozenset(_strs(imp.get("symbols"), f"{w}.symbols")),
            goos=_strs(imp.get("goos"), f"{w}.goos"),
            goarch=_strs(imp.get("goarch"), f"{w}.goarch"),
        ))
    return Affected(module, tuple(ranges), tuple(sorted(fixed.items())), tuple(packages))

