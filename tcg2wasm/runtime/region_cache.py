"""A persistent translation cache: compiled region modules on disk, keyed by the guest code they came from.

A second run of a program then lifts, optimizes and compiles nothing for the
regions it had: at a miss on a pc that has cached regions, the guest bytes of
each candidate's blocks are read from guest memory and hashed; a match is
deserialized (wasmtime's own compiled form, no Cranelift) and installed.

- Key: SHA-256 of the translator's fingerprint (``fingerprint()``: the source of
  every module of the package and the versions of Binaryen, wasmtime and
  iced-x86), the stop pcs translation treated as block ends, and each block's
  pc, size and bytes. Changed code bytes, a changed translator, another wasmtime
  simply miss.
- Storage: one SQLite database per fingerprint under the cache directory
  (``TCG2WASM_CACHE_DIR``, else ``$XDG_CACHE_HOME/tcg2wasm``, else
  ``~/.cache/tcg2wasm``; ``TCG2WASM_CACHE=0`` turns it off). SQLite makes
  concurrent runs safe (locking, busy timeout), and a connection is opened per
  operation, so no descriptor is held while the guest runs; each module carries its own
  SHA-256, checked before wasmtime sees it, so a damaged entry is dropped and
  rebuilt, never loaded. A damaged database is moved aside and started afresh.
  Writes are batched and committed at most every ``COMMIT_SECONDS`` and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import os
import re
import sqlite3
import struct
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CachedRegion", "RegionCache", "cache_directory", "fingerprint"]

CACHE_ENV = "TCG2WASM_CACHE"
CACHE_DIR_ENV = "TCG2WASM_CACHE_DIR"
COMMIT_SECONDS = 0.5
_EXTENT = struct.Struct("<QI")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS region (
    digest BLOB PRIMARY KEY,
    entry INTEGER NOT NULL,
    extents BLOB NOT NULL,
    module BLOB NOT NULL,
    module_sha BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS region_entry ON region (entry);
"""
ReadCode = Callable[[int, int], bytes | None]  # (pc, size) -> the guest bytes there, or None


@dataclass(frozen=True)
class CachedRegion:
    digest: bytes
    entry: int
    extents: tuple[tuple[int, int], ...]  # (pc, size) of each block
    module: bytes  # serialized by wasmtime.Module.serialize


def cache_directory() -> Path | None:
    """Where the cache lives, or None when it is turned off."""
    if os.environ.get(CACHE_ENV, "1") == "0":
        return None
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tcg2wasm"


@functools.cache
def fingerprint() -> str:
    """What a translation depends on besides the guest bytes: our source, and the tools' versions."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    for module, dist in (("binaryen", "binaryen_py"), ("wasmtime", "wasmtime"), ("iced_x86", "iced_x86")):
        h.update(f"{module}={_installed_version(module, dist)}\0".encode())
    return h.hexdigest()


def _installed_version(module: str, dist: str) -> str:
    """The version in the name of the ``.dist-info`` beside an installed package, without importing it.

    (``importlib.metadata`` costs ~30 ms of every start-up to import.) Where there is no such
    directory, the sizes and times of the package's files stand for it.
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return "absent"
    package = Path(next(iter(spec.submodule_search_locations)))
    versions = sorted(version for project, _, version in
                      (info.name.removesuffix(".dist-info").partition("-")
                       for info in package.parent.glob("*.dist-info"))
                      if re.sub(r"[-_.]+", "_", project).lower() == dist)
    if versions:
        return versions[-1]
    stats = sorted((str(f.relative_to(package)), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in package.rglob("*") if f.is_file())
    return hashlib.sha256(repr(stats).encode()).hexdigest()


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _digest(stops: Iterable[int], extents: Iterable[tuple[int, int]], code: Iterable[bytes]) -> bytes:
    h = hashlib.sha256(fingerprint().encode())
    h.update(b"stops:" + b",".join(b"%x" % s for s in sorted(stops)))
    for (pc, size), raw in zip(extents, code, strict=True):
        h.update(_EXTENT.pack(pc, size) + raw)
    return h.digest()


class RegionCache:
    """The regions of one database file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connection() as db:
            self._entries = {row[0] & ((1 << 64) - 1) for row in db.execute("SELECT DISTINCT entry FROM region")}
        self._pending: list[tuple[bytes, int, bytes, bytes, bytes]] = []
        self._last_commit = time.monotonic()
        self.hits = 0
        self.stores = 0
        atexit.register(_flush_at_exit, weakref.ref(self))
        os.register_at_fork(after_in_child=self._forget_pending)

    def _forget_pending(self) -> None:
        """In a forked child: the parent writes what it stored; the child writes its own."""
        self._pending = []

    @classmethod
    def open_default(cls) -> RegionCache | None:
        """The cache of this translator under ``cache_directory()``; None when off or unusable.

        One instance per file and process, shared by its machines (so what one stored and has not
        written yet serves the next).
        """
        directory = cache_directory()
        if directory is None:
            return None
        path = directory / f"regions-{fingerprint()[:16]}.sqlite"
        shared = _OPEN.get((path, os.getpid()))
        if shared is not None:
            return shared
        cache = cls._open(directory, path)
        if cache is not None:
            _OPEN[(path, os.getpid())] = cache
        return cache

    @classmethod
    def _open(cls, directory: Path, path: Path) -> RegionCache | None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            return cls(path)
        except (OSError, sqlite3.DatabaseError):
            with contextlib.suppress(OSError):
                path.replace(path.with_suffix(f".damaged-{os.getpid()}"))
            try:
                return cls(path)
            except (OSError, sqlite3.DatabaseError):
                return None

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        db.execute("SELECT 1 FROM region LIMIT 1").fetchone()  # a damaged file fails here
        return db

    def entries(self) -> frozenset[int]:
        """Every entry pc some cached region has (for any program run with this translator)."""
        return frozenset(self._entries)

    def has_entry(self, pc: int) -> bool:
        return pc in self._entries

    def lookup(self, entry: int, stops: frozenset[int], read_code: ReadCode) -> CachedRegion | None:
        """A cached region at ``entry`` whose blocks hold exactly the bytes guest memory holds now."""
        if entry not in self._entries:
            return None
        rows = [row[:1] + row[2:] for row in self._pending if row[1] == _signed(entry)]
        try:
            with self._connection() as db:
                rows += db.execute("SELECT digest, extents, module, module_sha FROM region WHERE entry = ?",
                                   (_signed(entry),)).fetchall()
        except sqlite3.DatabaseError:
            pass
        for digest, packed, module, module_sha in rows:
            extents = tuple(_EXTENT.iter_unpack(packed))
            code = [read_code(pc, size) for pc, size in extents]
            if any(raw is None or len(raw) != size for raw, (_, size) in zip(code, extents, strict=True)):
                continue
            if _digest(stops, extents, code) != digest:  # type: ignore[arg-type]
                continue
            if hashlib.sha256(module).digest() != module_sha:
                self._forget(digest)
                continue
            self.hits += 1
            return CachedRegion(digest, entry, extents, module)
        return None

    def store(self, entry: int, stops: frozenset[int], extents: list[tuple[int, int]], code: list[bytes],
              module: bytes) -> None:
        packed = b"".join(_EXTENT.pack(pc, size) for pc, size in extents)
        row = (_digest(stops, extents, code), _signed(entry), packed, module, hashlib.sha256(module).digest())
        self._pending.append(row)
        self._entries.add(entry)
        self.stores += 1
        if time.monotonic() - self._last_commit >= COMMIT_SECONDS:
            self.flush()

    def forget(self, region: CachedRegion) -> None:
        """wasmtime refused the module: drop its row so it is rebuilt."""
        self._forget(region.digest)

    def _forget(self, digest: bytes) -> None:
        with contextlib.suppress(sqlite3.DatabaseError), self._connection() as db:
            db.execute("DELETE FROM region WHERE digest = ?", (digest,))

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for one operation, closed after it.

        The guest's file descriptors are the host's (as in qemu-user), so the cache holds none
        while the guest runs: a program that opens a file gets the number it would natively.
        A connection per operation also never crosses a fork.
        """
        db = self._connect(self.path)
        try:
            yield db
        finally:
            db.close()

    def flush(self) -> None:
        """Write the regions stored since the last flush (one transaction)."""
        self._last_commit = time.monotonic()
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        with contextlib.suppress(sqlite3.DatabaseError), self._connection() as db:
            try:
                db.execute("BEGIN")
                db.executemany("INSERT OR REPLACE INTO region VALUES (?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except sqlite3.DatabaseError:
                db.execute("ROLLBACK")


_OPEN: dict[tuple[Path, int], RegionCache] = {}


def _flush_at_exit(ref: weakref.ref[RegionCache]) -> None:
    cache = ref()
    if cache is not None:
        cache.flush()
