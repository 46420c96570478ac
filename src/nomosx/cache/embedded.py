"""The embedded cache: one SQLite file shared by every NomosX process of the machine.

For a machine without Redis. The file (``{data_dir}/cache.sqlite3`` by default) is opened
in WAL mode with ``synchronous=NORMAL`` and a ``busy_timeout``: processes read while one
writes, and writers wait their turn instead of failing.

Design
    Threading   Each ``EmbeddedCache`` owns one connection and one worker thread that alone
                uses it: SQLite work never runs on the event loop, the connection is never
                shared between threads, and the calls of one process never compete with
                each other for the write lock. Across processes, ``busy_timeout`` (1 s)
                serialises the writers. The thread is a plain thread fed by a queue, which
                hands results back with ``call_soon_threadsafe``: about half the cost of a
                ``run_in_executor`` hop.
    Reads       A ``get`` is one indexed ``SELECT``, never a write, so reads are not held up
                by another process's write. Its bookkeeping — the ``accessed_at`` touch
                (only when the stored one is more than ``TOUCH_AFTER`` = 1 s old), hit and
                miss counters, the removal of an expired row it found — is batched in
                memory and written by the worker thread in one transaction at most every
                ``FLUSH_EVERY`` = 0.1 s, once the caller has its answer, with the next
                write, before ``stats()`` and eviction, and by ``aclose()``. So another
                process sees this one's counters within about 0.1 s; a process killed
                without ``aclose()`` loses at most that much bookkeeping.
    Size        ``max_bytes`` bounds the total size of the stored values, which is what
                ``stats().memory_bytes`` reports; triggers keep that total in ``totals``.
                The file is larger: keys, indexes and free pages (SQLite reuses freed
                pages; it does not shrink the file).
    Eviction    In the transaction of a write that takes the total over ``max_bytes``:
                expired rows first (counted in ``expired``), then the least recently
                accessed (counted in ``evictions``), down to ``EVICT_TO`` = 90 % of
                ``max_bytes``. A value larger than that is not stored. Freed pages are
                not zeroed (``secure_delete = FAST``: distributions build SQLite to zero
                them, which makes eviction four times slower), and the WAL file is cut
                back to 64 MiB after checkpoints.
    Stampedes   ``get_or_compute`` computes a key once per process (``SingleFlight``) and,
                across processes, takes a lock row (``locks``, expiring after ``lock_ttl``)
                after looking for the value again in the same write transaction. A process
                that finds the lock taken polls for the value (every 10 ms, growing to
                200 ms) and computes itself when the lock is released without a value,
                expires, or was waited on for ``lock_ttl``: best effort, never a deadlock.
    Failures    As ``nomosx.cache.base`` says: when the file cannot be created or opened,
                is corrupt or unwritable, or stays locked beyond ``busy_timeout``,
                ``get``/``get_many``/``ttl`` answer a miss and ``set``/``set_many``/
                ``delete`` do nothing (one warning when the cache starts failing, one when
                it recovers); ``stats``/``health`` report ``down``; ``invalidate``,
                ``clear`` and ``open`` raise ``CacheError``. After an error other than a
                busy file, the next call reopens the file.

Schema (``PRAGMA user_version`` 1; a newer version is refused with ``CacheError``)::

    entries(key TEXT PRIMARY KEY  -- nomosx:{namespace}:{key}
            namespace, size, expires_at, accessed_at, value BLOB)
    stats(namespace PRIMARY KEY, hits, misses, evictions, expired)  -- shared counters
    totals(id = 0, bytes)                                           -- sum of entries.size
    locks(key PRIMARY KEY, owner, expires_at)                       -- get_or_compute

``value`` is the last column, so that the small columns stay on the row's own b-tree page
and a touch rewrites that page, not the value's overflow pages.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nomosx.cache.base import (
    DEFAULT_TTLS,
    NAMESPACES,
    CacheHealth,
    CacheStats,
    Compute,
    NamespaceStats,
    storage_key,
)
from nomosx.cache.singleflight import SingleFlight
from nomosx.config import CacheSettings
from nomosx.errors import CacheError

__all__ = ["SCHEMA_VERSION", "EmbeddedCache", "redis_glob_to_sqlite"]

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 1
FILE_NAME = "cache.sqlite3"
EVICT_TO = 0.9  # after an eviction the values take at most this share of max_bytes
TOUCH_AFTER = 1.0  # seconds: a read refreshes accessed_at when it is older than this
FLUSH_EVERY = 0.1  # seconds: the longest the bookkeeping of reads waits to be written
_MAX_PENDING = 1000  # pending touches that force a write
_MiB = 1024 * 1024
_WAL_LIMIT = 64 * _MiB  # the WAL file is truncated to this after a checkpoint
_CHUNK = 500  # bound parameters per statement
_POLL_FIRST = 0.01
_POLL_MAX = 0.2

_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE entries (
        key TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        size INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        accessed_at REAL NOT NULL,
        value BLOB NOT NULL
    )""",
    "CREATE INDEX entries_accessed_at ON entries (accessed_at)",
    "CREATE INDEX entries_namespace_key ON entries (namespace, key)",
    """CREATE TABLE stats (
        namespace TEXT PRIMARY KEY,
        hits INTEGER NOT NULL DEFAULT 0,
        misses INTEGER NOT NULL DEFAULT 0,
        evictions INTEGER NOT NULL DEFAULT 0,
        expired INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE totals (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        bytes INTEGER NOT NULL
    )""",
    "INSERT INTO totals (id, bytes) VALUES (0, 0)",
    """CREATE TABLE locks (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    """CREATE TRIGGER entries_size_insert AFTER INSERT ON entries BEGIN
        UPDATE totals SET bytes = bytes + new.size WHERE id = 0;
    END""",
    """CREATE TRIGGER entries_size_delete AFTER DELETE ON entries BEGIN
        UPDATE totals SET bytes = bytes - old.size WHERE id = 0;
    END""",
    """CREATE TRIGGER entries_size_update AFTER UPDATE OF size ON entries BEGIN
        UPDATE totals SET bytes = bytes - old.size + new.size WHERE id = 0;
    END""",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

_READ = "SELECT value, expires_at, accessed_at FROM entries WHERE key = ?"
_TOUCH = "UPDATE entries SET accessed_at = ? WHERE key = ? AND accessed_at < ?"
_DROP_EXPIRED = "DELETE FROM entries WHERE key = ? AND expires_at <= ? RETURNING namespace"
_UPSERT = """INSERT INTO entries (key, namespace, size, expires_at, accessed_at, value)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
        namespace = excluded.namespace, size = excluded.size,
        expires_at = excluded.expires_at, accessed_at = excluded.accessed_at,
        value = excluded.value"""
_COUNT = """INSERT INTO stats (namespace, hits, misses, evictions, expired)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (namespace) DO UPDATE SET
        hits = hits + excluded.hits, misses = misses + excluded.misses,
        evictions = evictions + excluded.evictions, expired = expired + excluded.expired"""
_LOCK = """INSERT INTO locks (key, owner, expires_at) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE locks.expires_at <= ?"""
_TOTAL = "SELECT bytes FROM totals WHERE id = 0"


# --- glob ---------------------------------------------------------------------------------

_SET_SPECIAL = frozenset("]^-")


def _literal(char: str) -> str:
    return f"[{char}]" if char in "*?[" else char


def _sqlite_set(negated: bool, chars: set[str], ranges: list[tuple[int, int]]) -> str | None:
    """A SQLite GLOB ``[…]`` matching one character of the set; ``None``: matches nothing.

    In SQLite a ``]`` is a member only right after ``[``/``[^``, a ``^`` right after ``[``
    negates, and ``-`` makes a range between its neighbours unless it comes last; so ranges
    ending on one of those three are cut into literals, and the literals are placed where
    they mean themselves.
    """
    kept: list[tuple[int, int]] = []
    for lo, hi in ranges:
        while lo <= hi and chr(lo) in _SET_SPECIAL:
            chars.add(chr(lo))
            lo += 1
        while lo <= hi and chr(hi) in _SET_SPECIAL:
            chars.add(chr(hi))
            hi -= 1
        if lo == hi:
            chars.add(chr(lo))
        elif lo < hi:
            kept.append((lo, hi))
    if not chars and not kept:
        return "?" if negated else None
    if not negated and not kept and len(chars) == 1:
        return _literal(next(iter(chars)))
    body = ["]"] if "]" in chars else []
    body += [f"{chr(lo)}-{chr(hi)}" for lo, hi in kept]
    body += sorted(c for c in chars if c not in _SET_SPECIAL)
    tail = [c for c in "^-" if c in chars]
    if not body and not negated and tail == ["^", "-"]:
        tail = ["-", "^"]  # a leading ^ would negate; a leading - is a member
    return "[" + ("^" if negated else "") + "".join(body + tail) + "]"


def redis_glob_to_sqlite(pattern: str) -> str | None:
    """The SQLite ``GLOB`` pattern matching what the Redis glob ``pattern`` matches.

    Follows Redis's ``stringmatchlen``: ``*``, ``?``, ``[abc]``, ``[^abc]``, ``[a-z]`` (a
    reversed range is swapped), ``\\x`` escapes ``x`` inside and outside sets, ``[]`` matches
    nothing and ``[^]`` any character, an unclosed ``[`` takes the rest of the pattern as its
    set. ``_`` and ``%`` are ordinary characters (they are LIKE's wildcards, not GLOB's).
    ``None`` when the pattern can match no key. ``?`` and sets match one character where
    Redis matches one byte: the same for the ASCII keys NomosX makes.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            if not out or out[-1] != "*":
                out.append("*")
            i += 1
        elif char == "?":
            out.append("?")
            i += 1
        elif char == "\\" and i + 1 < n:
            out.append(_literal(pattern[i + 1]))
            i += 2
        elif char == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            if negated:
                i += 1
            chars: set[str] = set()
            ranges: list[tuple[int, int]] = []
            while i < n:
                if pattern[i] == "\\" and i + 1 < n:
                    chars.add(pattern[i + 1])
                    i += 2
                elif pattern[i] == "]":
                    i += 1
                    break
                elif i + 2 < n and pattern[i + 1] == "-":
                    lo, hi = sorted((ord(pattern[i]), ord(pattern[i + 2])))
                    ranges.append((lo, hi))
                    i += 3
                else:
                    chars.add(pattern[i])
                    i += 1
            member = _sqlite_set(negated, chars, ranges)
            if member is None:
                return None
            out.append(member)
        else:
            out.append(_literal(char))
            i += 1
    return "".join(out)


# --- plumbing -----------------------------------------------------------------------------


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE``: take the write lock up front, so that ``busy_timeout`` applies
    (a read transaction upgraded to a write one fails at once when another process wrote)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_busy(exc: BaseException) -> bool:
    """Another connection holds the lock: the file is fine, the call came at a bad time."""
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF  # primary code
    return isinstance(exc, sqlite3.Error) and code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


_Job = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


@dataclass
class _Pending:
    """Bookkeeping of reads, written in batches by the worker thread."""

    counts: dict[str, list[int]] = field(default_factory=dict)  # ns → [hits, misses]
    touches: dict[str, float] = field(default_factory=dict)  # storage key → accessed_at
    expired: dict[str, float] = field(default_factory=dict)  # storage key → seen at

    def __bool__(self) -> bool:
        return bool(self.counts or self.touches or self.expired)

    def count(self, namespace: str, hits: int, misses: int) -> None:
        entry = self.counts.setdefault(namespace, [0, 0])
        entry[0] += hits
        entry[1] += misses


# --- the cache ----------------------------------------------------------------------------


class EmbeddedCache:
    """The ``Cache`` protocol over one SQLite file shared by the processes of a machine."""

    def __init__(
        self,
        path: Path,
        *,
        ttls: Mapping[str, float] = DEFAULT_TTLS,
        max_bytes: int = 512 * _MiB,
        clock: Callable[[], float] = time.time,
        lock_ttl: float = 30.0,
        busy_timeout: float = 1.0,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self._path = Path(path)
        self._ttls = dict(ttls)
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock_ttl = lock_ttl
        self._busy_timeout = busy_timeout
        self._flights: SingleFlight[bytes] = SingleFlight()
        self._failing: str | None = None  # why the last call failed, until one succeeds
        self._start_lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        self._thread: threading.Thread | None = None
        self._closed_thread: threading.Thread | None = None
        # the worker thread's own state
        self._conn: sqlite3.Connection | None = None
        self._pending = _Pending()
        self._flushed_at = time.monotonic()

    @classmethod
    def from_settings(cls, data_dir: Path, settings: CacheSettings) -> EmbeddedCache:
        return cls(
            settings.embedded_path or Path(data_dir) / FILE_NAME,
            ttls=settings.ttls(),
            max_bytes=settings.embedded_max_bytes,
            lock_ttl=settings.lock_ttl,
        )

    @property
    def backend(self) -> str:
        return "embedded"

    @property
    def path(self) -> Path:
        return self._path

    async def __aenter__(self) -> EmbeddedCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the worker thread ------------------------------------------------------------------

    def _queue(self) -> queue.SimpleQueue[_Job | None]:
        with self._start_lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._serve,
                    args=(self._jobs, self._closed_thread),
                    name="nomosx-cache",
                    daemon=True,
                )
                self._thread.start()
            return self._jobs

    def _serve(
        self, jobs: queue.SimpleQueue[_Job | None], previous: threading.Thread | None
    ) -> None:
        if previous is not None:  # reopened while closing: one thread at a time
            previous.join()
        while True:
            try:
                job = jobs.get(timeout=FLUSH_EVERY if self._pending else None)
            except queue.Empty:
                self._flush()
                continue
            if job is None:
                return
            work, future, loop = job
            result: Any = None
            error: BaseException | None = None
            try:
                result = work()
            except Exception as exc:  # noqa: BLE001 - handed over to the awaiting caller
                error = exc
            with suppress(RuntimeError):  # the event loop is closed: nobody is waiting
                loop.call_soon_threadsafe(_settle, future, result, error)
            if self._pending and (
                time.monotonic() - self._flushed_at >= FLUSH_EVERY
                or len(self._pending.touches) >= _MAX_PENDING
            ):
                self._flush()

    async def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the connection in the worker thread; any failure is a CacheError."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue().put((lambda: self._call(op), future, loop))
        return await future

    def _call(self, op: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return op(self._connection())
        except CacheError:
            self._disconnect()
            raise
        except (sqlite3.Error, OSError) as exc:
            if not _is_busy(exc):
                self._disconnect()
            raise CacheError(f"embedded cache {self._path}: {exc}") from exc

    async def _quietly(self, op: Callable[[sqlite3.Connection], T], default: T) -> T:
        """For the calls that must never fail a request: ``default`` when the file fails."""
        try:
            result = await self._run(op)
        except CacheError as exc:
            if self._failing is None:
                log.warning(
                    "%s; until it recovers, cache reads are misses and writes are dropped",
                    exc,
                )
            self._failing = str(exc)
            return default
        if self._failing is not None:
            log.warning("embedded cache %s recovered", self._path)
            self._failing = None
        return result

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA synchronous = NORMAL")
        # Debian-style builds zero every freed page: 4x slower eviction, for no one
        conn.execute("PRAGMA secure_delete = FAST")
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT}")
        # Switching a new file to WAL answers "locked" at once, without the busy handler,
        # while another process is switching it too: retry up to busy_timeout.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchall()
                self._migrate(conn)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._version(conn) == SCHEMA_VERSION:
            return
        with _transaction(conn):
            if self._version(conn) == 0:
                if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
                    raise CacheError(
                        f"{self._path} is an SQLite file but not a NomosX cache; "
                        "set NOMOSX_CACHE__EMBEDDED_PATH to another file"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)

    def _version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise CacheError(
                f"{self._path} is a cache of schema version {version}, newer than this "
                f"NomosX knows ({SCHEMA_VERSION}); upgrade NomosX, or set "
                "NOMOSX_CACHE__EMBEDDED_PATH to another file"
            )
        return version

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(sqlite3.Error):
                conn.close()

    # --- bookkeeping (worker thread) ----------------------------------------------------------

    def _write_pending(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: the batched bookkeeping of reads. The caller empties
        ``_pending`` once the transaction is committed."""
        pending = self._pending
        if pending.touches:
            conn.executemany(_TOUCH, [(at, key, at) for key, at in pending.touches.items()])
        expired: dict[str, int] = {}
        for key, seen_at in pending.expired.items():
            for (namespace,) in conn.execute(_DROP_EXPIRED, (key, seen_at)).fetchall():
                expired[namespace] = expired.get(namespace, 0) + 1
        for namespace in {*pending.counts, *expired}:
            hits, misses = pending.counts.get(namespace, (0, 0))
            self._count(
                conn, namespace, hits=hits, misses=misses, expired=expired.get(namespace, 0)
            )

    def _written(self) -> None:
        self._pending = _Pending()
        self._flushed_at = time.monotonic()

    def _flush(self) -> None:
        """Write the pending bookkeeping now. When the file is busy it waits for the next
        chance (touches are dropped if they pile up); when it is broken, it is dropped."""
        if not self._pending:
            return
        try:
            conn = self._connection()
            with _transaction(conn):
                self._write_pending(conn)
        except (sqlite3.Error, OSError, CacheError) as exc:
            log.debug("embedded cache %s: bookkeeping not written: %s", self._path, exc)
            self._flushed_at = time.monotonic()
            if not _is_busy(exc):  # broken, not busy: let it go, reopen next time
                self._pending = _Pending()
                self._disconnect()
            elif len(self._pending.touches) > 10 * _MAX_PENDING:
                self._pending.touches.clear()
            return
        self._written()

    @staticmethod
    def _count(
        conn: sqlite3.Connection,
        namespace: str,
        *,
        hits: int = 0,
        misses: int = 0,
        evictions: int = 0,
        expired: int = 0,
    ) -> None:
        if hits or misses or evictions or expired:
            conn.execute(_COUNT, (namespace, hits, misses, evictions, expired))

    def _read(self, conn: sqlite3.Connection, skey: str, now: float) -> bytes | None:
        """The live value under ``skey``, noting the touch or the expired row for later."""
        row = conn.execute(_READ, (skey,)).fetchone()
        if row is None:
            return None
        value, expires_at, accessed_at = row
        if expires_at <= now:
            self._pending.expired[skey] = now
            return None
        if now - accessed_at > TOUCH_AFTER:
            self._pending.touches[skey] = now
        return bytes(value)

    def _ttl_for(self, namespace: str, ttl: float | None) -> float:
        if ttl is not None:
            return ttl
        try:
            return self._ttls[namespace]
        except KeyError:
            raise ValueError(
                f"no TTL for cache namespace {namespace!r}: pass ttl= or add it to ttls"
            ) from None

    # --- reads ------------------------------------------------------------------------------

    async def get(self, namespace: str, key: str) -> bytes | None:
        skey = storage_key(namespace, key)

        def op(conn: sqlite3.Connection) -> bytes | None:
            value = self._read(conn, skey, self._clock())
            hit = value is not None
            self._pending.count(namespace, int(hit), int(not hit))
            return value

        return await self._quietly(op, None)

    async def get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        prefix = storage_key(namespace, "")

        def op(conn: sqlite3.Connection) -> dict[str, bytes]:
            now = self._clock()
            found: dict[str, bytes] = {}
            conn.execute("BEGIN")  # one snapshot
            try:
                for chunk in _chunks(wanted):
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        "SELECT key, value, expires_at, accessed_at FROM entries "  # noqa: S608
                        f"WHERE key IN ({marks})",
                        [prefix + key for key in chunk],
                    ).fetchall()
                    for skey, value, expires_at, accessed_at in rows:
                        if expires_at <= now:
                            self._pending.expired[skey] = now
                            continue
                        if now - accessed_at > TOUCH_AFTER:
                            self._pending.touches[skey] = now
                        found[skey[len(prefix) :]] = bytes(value)
            finally:
                conn.execute("ROLLBACK")
            self._pending.count(namespace, len(found), len(wanted) - len(found))
            return found

        return await self._quietly(op, {})

    async def ttl(self, namespace: str, key: str) -> float | None:
        def op(conn: sqlite3.Connection) -> float | None:
            now = self._clock()
            row = conn.execute(
                "SELECT expires_at FROM entries WHERE key = ? AND expires_at > ?",
                (storage_key(namespace, key), now),
            ).fetchone()
            return None if row is None else float(row[0]) - now

        return await self._quietly(op, None)

    # --- writes -----------------------------------------------------------------------------

    async def set(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.set_many(namespace, {key: value}, ttl)

    async def set_many(
        self, namespace: str, items: Mapping[str, bytes], ttl: float | None = None
    ) -> None:
        seconds = self._ttl_for(namespace, ttl)
        for value in items.values():
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"cache values are bytes, not {type(value).__name__}")
        if not items:
            return
        limit = int(self._max_bytes * EVICT_TO)
        skeys = {key: storage_key(namespace, key) for key in items}

        def op(conn: sqlite3.Connection) -> None:
            now = self._clock()
            with _transaction(conn):
                self._write_pending(conn)
                if seconds <= 0:  # already expired: the key no longer holds a value
                    conn.executemany(
                        "DELETE FROM entries WHERE key = ?", [(s,) for s in skeys.values()]
                    )
                else:
                    rows = [
                        (skeys[key], namespace, len(value), now + seconds, now, value)
                        for key, value in items.items()
                        if len(value) <= limit
                    ]
                    conn.executemany(_UPSERT, rows)
                    self._evict(conn, now)
            self._written()

        await self._quietly(op, None)

    def _evict(self, conn: sqlite3.Connection, now: float) -> None:
        """In a write transaction: when the values outgrow ``max_bytes``, remove the expired
        rows, then the least recently accessed, down to ``EVICT_TO``."""
        if int(conn.execute(_TOTAL).fetchone()[0]) <= self._max_bytes:
            return
        counts: dict[str, list[int]] = {}  # namespace → [evictions, expired]
        for (namespace,) in conn.execute(
            "DELETE FROM entries WHERE expires_at <= ? RETURNING namespace", (now,)
        ).fetchall():
            counts.setdefault(namespace, [0, 0])[1] += 1
        excess = int(conn.execute(_TOTAL).fetchone()[0]) - int(self._max_bytes * EVICT_TO)
        if excess > 0:
            victims: list[tuple[int]] = []
            cursor = conn.execute(
                "SELECT rowid, namespace, size FROM entries ORDER BY accessed_at, rowid"
            )
            try:
                for rowid, namespace, size in cursor:
                    victims.append((rowid,))
                    counts.setdefault(namespace, [0, 0])[0] += 1
                    excess -= size
                    if excess <= 0:
                        break
            finally:
                cursor.close()
            conn.executemany("DELETE FROM entries WHERE rowid = ?", victims)
        for namespace, (evictions, expired) in counts.items():
            self._count(conn, namespace, evictions=evictions, expired=expired)

    async def delete(self, namespace: str, key: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            now = self._clock()
            with _transaction(conn):
                self._write_pending(conn)
                rows = conn.execute(
                    "DELETE FROM entries WHERE key = ? RETURNING expires_at",
                    (storage_key(namespace, key),),
                ).fetchall()
                live = bool(rows) and float(rows[0][0]) > now
                if rows and not live:
                    self._count(conn, namespace, expired=1)
            self._written()
            return live

        return await self._quietly(op, False)

    # --- get_or_compute ---------------------------------------------------------------------

    async def get_or_compute(
        self, namespace: str, key: str, compute: Compute, ttl: float | None = None
    ) -> bytes:
        self._ttl_for(namespace, ttl)  # an unknown namespace fails before any computation
        return await self._flights.run(
            storage_key(namespace, key), lambda: self._fill(namespace, key, compute, ttl)
        )

    def _claim(
        self, namespace: str, key: str, owner: str, first: bool
    ) -> Callable[[sqlite3.Connection], bytes | bool]:
        """The value if it is there, else whether this caller now holds the key's lock.
        Only the first lookup of a call counts as a hit or a miss."""
        skey = storage_key(namespace, key)

        def op(conn: sqlite3.Connection) -> bytes | bool:
            value = self._read(conn, skey, self._clock())
            if first:
                hit = value is not None
                self._pending.count(namespace, int(hit), int(not hit))
            if value is not None:
                return value
            # look again under the write lock: the holder may have stored the value and
            # released the lock since
            with _transaction(conn):
                now = self._clock()
                value = self._read(conn, skey, now)
                if value is not None:
                    return value
                cursor = conn.execute(_LOCK, (skey, owner, now + self._lock_ttl, now))
                return cursor.rowcount == 1

        return op

    async def _fill(self, namespace: str, key: str, compute: Compute, ttl: float | None) -> bytes:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self._lock_ttl
        pause = _POLL_FIRST
        first = True
        while True:
            # a failing cache answers "held": compute, as if there were no cache
            claim: bytes | bool = await self._quietly(
                self._claim(namespace, key, owner, first), default=True
            )
            first = False
            if not isinstance(claim, bool):
                return claim
            held = claim
            if held or time.monotonic() >= deadline:
                break
            await asyncio.sleep(pause)  # another process is computing it
            pause = min(pause * 1.5, _POLL_MAX)
        try:
            value = await compute()
            await self.set(namespace, key, value, ttl)
        finally:
            if held:
                await self._quietly(self._release(storage_key(namespace, key), owner), None)
        return value

    @staticmethod
    def _release(skey: str, owner: str) -> Callable[[sqlite3.Connection], None]:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM locks WHERE key = ? AND owner = ?", (skey, owner))

        return op

    # --- administration ---------------------------------------------------------------------

    async def open(self) -> None:
        """Open (creating if needed) the file now; ``CacheError`` says why it cannot be used.
        Optional: every call opens the file when it needs to."""
        await self._run(lambda conn: None)

    async def invalidate(self, namespace: str, pattern: str = "*") -> int:
        glob = redis_glob_to_sqlite(pattern)

        def op(conn: sqlite3.Connection) -> int:
            now = self._clock()
            with _transaction(conn):
                self._write_pending(conn)
                if glob is None:
                    rows = []
                elif glob == "*":
                    rows = conn.execute(
                        "DELETE FROM entries WHERE namespace = ? RETURNING expires_at",
                        (namespace,),
                    ).fetchall()
                else:
                    rows = conn.execute(
                        "DELETE FROM entries WHERE namespace = ? AND substr(key, ?) GLOB ? "
                        "RETURNING expires_at",
                        (namespace, len(storage_key(namespace, "")) + 1, glob),
                    ).fetchall()
            self._written()
            return sum(1 for (expires_at,) in rows if expires_at > now)

        try:
            return await self._run(op)
        except CacheError as exc:
            raise CacheError(
                f"could not invalidate {namespace}:{pattern} in the cache: {exc}"
            ) from exc

    async def clear(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            now = self._clock()
            with _transaction(conn):
                (live,) = conn.execute(
                    "SELECT count(*) FROM entries WHERE expires_at > ?", (now,)
                ).fetchone()
                conn.execute("DELETE FROM entries")
                conn.execute("UPDATE totals SET bytes = 0 WHERE id = 0")
                conn.execute("DELETE FROM stats")
                conn.execute("DELETE FROM locks")
            self._written()
            return int(live)

        try:
            return await self._run(op)
        except CacheError as exc:
            raise CacheError(f"could not clear the cache: {exc}") from exc

    async def stats(self) -> CacheStats:
        def op(conn: sqlite3.Connection) -> CacheStats:
            self._flush()  # this process's counters too
            now = self._clock()
            conn.execute("BEGIN")  # one snapshot for the three reads
            try:
                counters = conn.execute(
                    "SELECT namespace, hits, misses, evictions, expired FROM stats"
                ).fetchall()
                keys: dict[str, int] = dict(
                    conn.execute(
                        "SELECT namespace, count(*) FROM entries WHERE expires_at > ? "
                        "GROUP BY namespace",
                        (now,),
                    ).fetchall()
                )
                (total,) = conn.execute(_TOTAL).fetchone()
            finally:
                conn.execute("ROLLBACK")
            by_name = {row[0]: row for row in counters}
            names = dict.fromkeys([*NAMESPACES, *self._ttls, *keys, *by_name])
            namespaces = {}
            for name in names:
                _, hits, misses, _, _ = by_name.get(name, (name, 0, 0, 0, 0))
                namespaces[name] = NamespaceStats(
                    name, hits=hits, misses=misses, keys=keys.get(name, 0)
                )
            return CacheStats(
                backend=self.backend,
                status="up",
                namespaces=namespaces,
                evictions=sum(row[3] for row in counters),
                expired=sum(row[4] for row in counters),
                memory_bytes=int(total),
            )

        try:
            return await self._run(op)
        except CacheError as exc:
            return CacheStats(backend=self.backend, status="down", detail=str(exc))

    async def health(self) -> CacheHealth:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")  # the write lock: writable, and not stuck
            try:
                conn.execute(_TOTAL).fetchone()
            finally:
                conn.execute("ROLLBACK")

        started = time.perf_counter()
        try:
            await self._run(op)
        except CacheError as exc:
            return CacheHealth(backend=self.backend, status="down", detail=str(exc))
        latency_ms = (time.perf_counter() - started) * 1000
        return CacheHealth(backend=self.backend, status="up", latency_ms=latency_ms)

    async def aclose(self) -> None:
        """Write the pending bookkeeping, close the file and stop the worker thread; a later
        call starts them again."""
        with self._start_lock:
            jobs, self._jobs = self._jobs, None
            thread, self._thread = self._thread, None
            self._closed_thread = thread
        if jobs is None or thread is None:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def close() -> None:
            self._flush()
            self._disconnect()

        jobs.put((close, future, loop))
        jobs.put(None)
        await future
        thread.join(timeout=1.0)
