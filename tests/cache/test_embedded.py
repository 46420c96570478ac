"""The embedded cache on a real SQLite file: expiry, LRU eviction, processes sharing the
file, concurrency, pattern invalidation, and a broken file never failing a request."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nomosx.cache.base import DEFAULT_TTLS
from nomosx.cache.embedded import (
    FILE_NAME,
    SCHEMA_VERSION,
    EmbeddedCache,
    redis_glob_to_sqlite,
)
from nomosx.config import CacheSettings
from nomosx.errors import CacheError


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / FILE_NAME


@pytest.fixture
async def cache(path: Path, clock: Clock) -> AsyncIterator[EmbeddedCache]:
    backend = EmbeddedCache(path, clock=clock)
    try:
        yield backend
    finally:
        await backend.aclose()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "nomosx.cache.embedded" and r.levelno >= logging.WARNING
    ]


# --- basics and expiry ----------------------------------------------------------------------


async def test_creates_its_folder_and_a_versioned_wal_file(path: Path, clock: Clock) -> None:
    async with EmbeddedCache(path, clock=clock) as cache:
        await cache.open()
        await cache.set("llm", "k", b"v")
        assert cache.backend == "embedded" and cache.path == path
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (key, namespace, size) = raw.execute("SELECT key, namespace, size FROM entries").fetchone()
    raw.close()
    assert (key, namespace, size) == ("nomosx:llm:k", "llm", 1)


async def test_set_get_many_and_delete(cache: EmbeddedCache, clock: Clock) -> None:
    items = {f"v1:{i:04d}": os.urandom(64) for i in range(1200)}  # more than one chunk
    await cache.set_many("emb", items)
    await cache.set_many("emb", {})
    wanted = [*items, "absent", "v1:0000"]
    assert await cache.get_many("emb", wanted) == items
    assert await cache.get_many("llm", list(items)[:5]) == {}
    assert await cache.get("emb", "v1:0007") == items["v1:0007"]
    assert await cache.delete("emb", "v1:0007") is True
    assert await cache.delete("emb", "v1:0007") is False
    stats = await cache.stats()
    emb = stats.namespaces["emb"]
    assert (emb.hits, emb.misses, emb.keys) == (1201, 1, 1199)
    assert stats.namespaces["llm"].misses == 5
    assert stats.memory_bytes == 1199 * 64


async def test_values_expire_with_the_clock(cache: EmbeddedCache, clock: Clock) -> None:
    await cache.set("api", "a", b"x" * 100, ttl=100)
    await cache.set("api", "b", b"y", ttl=100)
    await cache.set("api", "c", b"z", ttl=100)
    assert await cache.ttl("api", "a") == pytest.approx(100)
    clock.advance(30)
    assert await cache.ttl("api", "a") == pytest.approx(70)
    assert await cache.get("api", "a") == b"x" * 100
    clock.advance(70)
    assert await cache.ttl("api", "a") is None
    assert await cache.get("api", "a") is None
    assert await cache.get_many("api", ["a", "b"]) == {}
    assert await cache.delete("api", "c") is False  # it was there, but expired
    stats = await cache.stats()  # writes the removal of the expired rows it found
    assert stats.expired == 3
    assert stats.memory_bytes == 0
    assert stats.namespaces["api"].keys == 0
    assert await cache.delete("api", "a") is False


async def test_namespace_ttls_and_explicit_ttls(path: Path, clock: Clock) -> None:
    async with EmbeddedCache(path, clock=clock, ttls={"emb": 50.0}) as cache:
        await cache.set("emb", "k", b"v")
        assert await cache.ttl("emb", "k") == pytest.approx(50)
        with pytest.raises(ValueError, match="no TTL for cache namespace 'llm'"):
            await cache.set("llm", "k", b"v")
        await cache.set("llm", "k", b"v", ttl=5)
        assert await cache.ttl("llm", "k") == pytest.approx(5)
        await cache.set("llm", "k", b"v", ttl=0)  # already expired: gone
        assert await cache.get("llm", "k") is None
        with pytest.raises(TypeError, match="bytes, not str"):
            await cache.set("emb", "k", "text")  # type: ignore[arg-type]


def test_from_settings(tmp_path: Path) -> None:
    default = EmbeddedCache.from_settings(tmp_path, CacheSettings())
    assert default.path == tmp_path / "cache.sqlite3"
    custom = EmbeddedCache.from_settings(
        tmp_path, CacheSettings(embedded_path=tmp_path / "x" / "c.db", ttl_api=7)
    )
    assert custom.path == tmp_path / "x" / "c.db"
    assert custom._ttls["api"] == 7
    with pytest.raises(ValueError, match="positive"):
        EmbeddedCache(tmp_path / "c", max_bytes=0)


async def test_stats_list_every_namespace_and_clear_resets_them(cache: EmbeddedCache) -> None:
    assert set((await cache.stats()).namespaces) == set(DEFAULT_TTLS)
    await cache.set("api", "a", b"1")
    await cache.set("custom", "a", b"12", ttl=10)
    await cache.get("api", "a")
    await cache.get("api", "b")
    stats = await cache.stats()
    assert stats.status == "up" and stats.backend == "embedded"
    assert stats.namespaces["custom"].keys == 1
    assert (stats.hits, stats.misses, stats.keys, stats.memory_bytes) == (1, 1, 2, 3)
    assert await cache.clear() == 2
    stats = await cache.stats()
    assert (stats.hits, stats.misses, stats.keys, stats.memory_bytes) == (0, 0, 0, 0)
    health = await cache.health()
    assert health.status == "up" and health.latency_ms is not None


async def test_closing_and_reopening(path: Path) -> None:
    cache = EmbeddedCache(path)
    await cache.aclose()  # never opened
    await cache.set("llm", "k", b"v")
    await cache.get("llm", "k")
    await cache.aclose()  # writes the pending hit
    await cache.aclose()
    assert await cache.get("llm", "k") == b"v"  # reopens
    assert (await cache.stats()).namespaces["llm"].hits == 2
    await cache.aclose()


async def test_bookkeeping_reaches_the_file_when_idle(path: Path) -> None:
    def counted() -> tuple[int, int] | None:
        raw = sqlite3.connect(path)
        try:
            row = raw.execute("SELECT hits, misses FROM stats WHERE namespace = 'llm'")
            return row.fetchone()  # type: ignore[no-any-return]
        finally:
            raw.close()

    async with EmbeddedCache(path) as cache:
        await cache.set("llm", "k", b"v")
        await cache.get("llm", "k")
        await cache.get("llm", "missing")
        async with asyncio.timeout(10):  # the worker writes it after FLUSH_EVERY of quiet
            while counted() != (1, 1):  # noqa: ASYNC110 - written by the worker thread
                await asyncio.sleep(0.02)


# --- eviction -------------------------------------------------------------------------------


async def test_lru_eviction_keeps_recently_read_keys(path: Path, clock: Clock) -> None:
    async with EmbeddedCache(path, clock=clock, max_bytes=10_000) as cache:
        for i in range(8):
            await cache.set("emb", f"k{i}", bytes(1000))
            clock.advance(10)
        assert await cache.get("emb", "k0") is not None
        assert await cache.get("emb", "k1") is not None
        clock.advance(10)
        await cache.set("emb", "k8", bytes(1000))
        await cache.set("emb", "k9", bytes(1000))  # 10,000 bytes: at the limit, not over
        assert (await cache.stats()).evictions == 0
        await cache.set("emb", "k10", bytes(1000))  # over: down to 9,000
        present = await cache.get_many("emb", [f"k{i}" for i in range(11)])
        assert sorted(present) == sorted(["k0", "k1", *(f"k{i}" for i in range(4, 11))])
        stats = await cache.stats()
        assert stats.evictions == 2
        assert stats.memory_bytes == 9000


async def test_eviction_removes_expired_rows_first(path: Path, clock: Clock) -> None:
    async with EmbeddedCache(path, clock=clock, max_bytes=10_000) as cache:
        await cache.set("api", "short", bytes(1000), ttl=5)
        for i in range(8):
            clock.advance(1)
            await cache.set("llm", f"k{i}", bytes(1000))
        clock.advance(10)
        await cache.set("llm", "k8", bytes(1000))
        await cache.set("llm", "k9", bytes(1000))
        stats = await cache.stats()
        assert (stats.expired, stats.evictions, stats.memory_bytes) == (1, 1, 9000)
        assert await cache.get("llm", "k0") is None
        assert await cache.get("llm", "k1") is not None


async def test_a_value_larger_than_the_cache_is_not_stored(path: Path) -> None:
    async with EmbeddedCache(path, max_bytes=10_000) as cache:
        await cache.set("llm", "small", bytes(10))
        await cache.set("llm", "huge", bytes(9001))
        assert await cache.get("llm", "huge") is None
        assert await cache.get("llm", "small") == bytes(10)


# --- processes and concurrency ----------------------------------------------------------------

CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
from nomosx.cache.embedded import EmbeddedCache

async def main(path: str, run: str, name: str) -> None:
    folder = Path(run)
    async with EmbeddedCache(Path(path)) as cache:
        await cache.set("api", f"{name}-own", name.encode())
        seen = {k: await cache.get("api", k) for k in ("parent", f"{name}-own", "absent")}
        (folder / f"ready-{name}").touch()
        deadline = time.monotonic() + 60
        while not (folder / "go").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

        async def compute() -> bytes:
            with open(folder / "computed", "a") as f:
                f.write(name + "\n")
            await asyncio.sleep(0.5)
            return f"by-{name}".encode()

        shared = await cache.get_or_compute("llm", "shared", compute)
    seen_text = {k: v.decode() if v else None for k, v in seen.items()}
    print(json.dumps({"seen": seen_text, "shared": shared.decode()}))

asyncio.run(main(*sys.argv[1:]))
"""


async def wait_for_files(files: list[Path]) -> None:
    async with asyncio.timeout(60):  # the child processes start
        while not all(f.exists() for f in files):  # noqa: ASYNC110 - other processes
            await asyncio.sleep(0.01)


async def test_processes_share_values_counters_and_computations(path: Path, tmp_path: Path) -> None:
    names = ["c1", "c2", "c3"]
    parent_computed = 0

    async def compute() -> bytes:
        nonlocal parent_computed
        parent_computed += 1
        await asyncio.sleep(0.5)
        return b"by-parent"

    async with EmbeddedCache(path) as cache:
        await cache.set("api", "parent", b"from the parent")
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD,
                str(path),
                str(tmp_path),
                name,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for name in names
        ]
        await wait_for_files([tmp_path / f"ready-{name}" for name in names])
        (tmp_path / "go").touch()
        ours, *outputs = await asyncio.gather(
            cache.get_or_compute("llm", "shared", compute),
            *(child.communicate() for child in children),
        )
        for child, (_, err) in zip(children, outputs, strict=True):
            assert child.returncode == 0, err.decode()
        results = [json.loads(out) for out, _ in outputs]
        for name, result in zip(names, results, strict=True):
            assert result["seen"] == {
                "parent": "from the parent",
                f"{name}-own": name,
                "absent": None,
            }
            assert await cache.get("api", f"{name}-own") == name.encode()
        marks = tmp_path / "computed"
        computed = marks.read_text().split() if marks.exists() else []
        errors = [err.decode() for _, err in outputs]
        assert parent_computed + len(computed) == 1, errors  # once for four processes
        assert {r["shared"] for r in results} == {ours.decode()}
        stats = await cache.stats()
        assert (stats.namespaces["api"].hits, stats.namespaces["api"].misses) == (9, 3)
        llm = stats.namespaces["llm"]
        assert llm.hits + llm.misses == 4


async def test_50_concurrent_get_or_compute_compute_once(path: Path) -> None:
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return b"value"

    # two instances on one file stand for two processes: the lock row, not SingleFlight
    async with EmbeddedCache(path) as one, EmbeddedCache(path) as two:
        results = await asyncio.gather(
            *(c.get_or_compute("llm", "hot", compute) for c in [one, two] * 25)
        )
    assert results == [b"value"] * 50
    assert calls == 1


async def test_a_failed_computation_releases_the_lock(path: Path) -> None:
    async def broken() -> bytes:
        await asyncio.sleep(0.05)
        raise RuntimeError("upstream failed")

    async def fine() -> bytes:
        return b"ok"

    async with EmbeddedCache(path) as one, EmbeddedCache(path) as two:
        outcomes = await asyncio.gather(
            *(c.get_or_compute("api", "k", broken) for c in [one, two] * 5),
            return_exceptions=True,
        )
        assert outcomes and all(isinstance(o, RuntimeError) for o in outcomes)
        assert await two.get_or_compute("api", "k", fine) == b"ok"
        with pytest.raises(ValueError, match="no TTL"):
            await one.get_or_compute("nope", "k", fine)


async def test_a_stale_lock_delays_but_does_not_block(path: Path) -> None:
    async def compute() -> bytes:
        return b"mine"

    async with EmbeddedCache(path, lock_ttl=0.3) as cache:
        await cache.open()
        raw = sqlite3.connect(path, isolation_level=None)
        try:  # a process holding the lock died; its lock's clock says it never expires
            raw.execute("INSERT INTO locks VALUES ('nomosx:llm:k', 'ghost', 1e300)")
        finally:
            raw.close()
        started = time.monotonic()
        assert await cache.get_or_compute("llm", "k", compute) == b"mine"
        assert 0.25 <= time.monotonic() - started < 5


def test_connections_opening_a_new_file_at_once(tmp_path: Path) -> None:
    """SQLite answers "locked" at once to a second connection switching a new file to WAL."""
    errors: list[BaseException] = []

    def open_it(path: Path, barrier: threading.Barrier) -> None:
        async def main() -> None:
            async with EmbeddedCache(path) as cache:
                barrier.wait()
                await cache.open()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    for attempt in range(10):
        barrier = threading.Barrier(6)
        path = tmp_path / f"{attempt}.sqlite3"
        threads = [threading.Thread(target=open_it, args=(path, barrier)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


async def test_20_writer_threads_with_their_own_connections(path: Path) -> None:
    errors: list[BaseException] = []
    found: dict[int, dict[str, bytes]] = {}

    async def writer(n: int) -> None:
        async with EmbeddedCache(path) as cache:
            for i in range(25):
                await cache.set("emb", f"w{n}:{i}", f"{n}:{i}".encode())
                await cache.get("emb", f"w{n}:{i}")
            await cache.set_many("emb", {f"w{n}:many{i}": b"m" for i in range(20)})
            found[n] = await cache.get_many("emb", [f"w{n}:{i}" for i in range(25)])

    def run(n: int) -> None:
        try:
            asyncio.run(writer(n))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    assert errors == []
    for n in range(20):
        assert found[n] == {f"w{n}:{i}": f"{n}:{i}".encode() for i in range(25)}
    async with EmbeddedCache(path) as cache:
        stats = await cache.stats()
    assert stats.namespaces["emb"].keys == 20 * 45
    assert stats.namespaces["emb"].hits == 20 * 50


async def test_20_writer_tasks_on_one_cache(
    cache: EmbeddedCache, caplog: pytest.LogCaptureFixture
) -> None:
    async def writer(n: int) -> None:
        for i in range(25):
            await cache.set("api", f"t{n}:{i}", b"v")

    await asyncio.gather(*(writer(n) for n in range(20)))
    assert (await cache.stats()).namespaces["api"].keys == 500
    assert warnings_of(caplog) == []


# --- invalidation ---------------------------------------------------------------------------

KEYS = ["v1:abc", "v1:abd", "v2:abc", "a_b", "axb", "a%b", "a[b", "a*b", "a?b", "a\\b", "plain"]


@pytest.mark.parametrize(
    ("pattern", "removed"),
    [
        ("*", set(KEYS)),
        ("a_b", {"a_b"}),
        ("a%b", {"a%b"}),
        ("a?b", {"a_b", "axb", "a%b", "a[b", "a*b", "a?b", "a\\b"}),
        ("a*b", {"a_b", "axb", "a%b", "a[b", "a*b", "a?b", "a\\b"}),
        ("a\\*b", {"a*b"}),
        ("a\\?b", {"a?b"}),
        ("a\\[b", {"a[b"}),
        ("a\\\\b", {"a\\b"}),
        ("a[_%]b", {"a_b", "a%b"}),
        ("a[^_%]b", {"axb", "a[b", "a*b", "a?b", "a\\b"}),
        ("v[12]:ab?", {"v1:abc", "v1:abd", "v2:abc"}),
        ("v1:ab[c-d]", {"v1:abc", "v1:abd"}),
        ("v?:*c", {"v1:abc", "v2:abc"}),
        ("%", set()),
        ("_*", set()),
        ("[]*", set()),
        ("plai", set()),
    ],
)
async def test_invalidate_removes_exactly_the_matching_keys(
    cache: EmbeddedCache, pattern: str, removed: set[str]
) -> None:
    await cache.set_many("api", dict.fromkeys(KEYS, b"x"))
    await cache.set_many("llm", dict.fromkeys(KEYS, b"x"))
    assert await cache.invalidate("api", pattern) == len(removed)
    left = await cache.get_many("api", KEYS)
    assert set(left) == set(KEYS) - removed
    assert len(await cache.get_many("llm", KEYS)) == len(KEYS)


async def test_invalidate_counts_only_live_keys(cache: EmbeddedCache, clock: Clock) -> None:
    await cache.set("api", "old", b"x", ttl=1)
    await cache.set("api", "new", b"x", ttl=100)
    clock.advance(10)
    assert await cache.invalidate("api", "*") == 1
    assert (await cache.stats()).memory_bytes == 0


def redis_match(pattern: str, string: str) -> bool:
    """Redis's ``stringmatchlen`` (util.c) without ``nocase``: the reference."""
    p_len, s_len = len(pattern), len(string)

    def match(p: int, s: int) -> bool:
        while p < p_len and s < s_len:
            char = pattern[p]
            if char == "*":
                while p + 1 < p_len and pattern[p + 1] == "*":
                    p += 1
                if p + 1 == p_len:
                    return True
                return any(match(p + 1, i) for i in range(s, s_len))
            if char == "?":
                s += 1
            elif char == "[":
                p += 1
                negate = p < p_len and pattern[p] == "^"
                if negate:
                    p += 1
                hit = False
                while True:
                    if p < p_len and pattern[p] == "\\" and p_len - p >= 2:
                        p += 1
                        hit = hit or pattern[p] == string[s]
                    elif p < p_len and pattern[p] == "]":
                        break
                    elif p >= p_len:
                        p -= 1
                        break
                    elif p_len - p >= 3 and pattern[p + 1] == "-":
                        lo, hi = sorted((pattern[p], pattern[p + 2]))
                        p += 2
                        hit = hit or lo <= string[s] <= hi
                    else:
                        hit = hit or pattern[p] == string[s]
                    p += 1
                if hit == negate:
                    return False
                s += 1
            else:
                if char == "\\" and p_len - p >= 2:
                    p += 1
                if pattern[p] != string[s]:
                    return False
                s += 1
            p += 1
            if s == s_len:
                while p < p_len and pattern[p] == "*":
                    p += 1
                break
        return p == p_len and s == s_len

    return match(0, 0)


ALPHABET = "ab-]^[\\*?_%!"


@settings(max_examples=2000, database=None, deadline=None, derandomize=True)
@given(st.text(ALPHABET, max_size=8), st.text(ALPHABET, max_size=6))
def test_glob_translation_matches_redis(pattern: str, key: str) -> None:
    glob = redis_glob_to_sqlite(pattern)
    conn = sqlite3.connect(":memory:")
    try:
        ours = glob is not None and bool(conn.execute("SELECT ? GLOB ?", (key, glob)).fetchone()[0])
    finally:
        conn.close()
    prefix = "nomosx:api:"  # SCAN MATCH sees the whole key
    assert ours == redis_match(prefix + pattern, prefix + key), (pattern, key, glob)


def test_glob_translation_examples() -> None:
    assert redis_glob_to_sqlite("v1:**") == "v1:*"
    assert redis_glob_to_sqlite("a\\*[*]") == "a[*][*]"
    assert redis_glob_to_sqlite("[]") is None
    assert redis_glob_to_sqlite("[^]") == "?"
    assert redis_glob_to_sqlite("[z-a]") == "[a-z]"
    assert redis_glob_to_sqlite("[-^]") == "[-^]"
    assert redis_glob_to_sqlite("[\\]x]") == "[]x]"


# --- failures -------------------------------------------------------------------------------


async def assert_degrades_quietly(cache: EmbeddedCache, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="nomosx.cache.embedded")
    for _ in range(3):
        assert await cache.get("llm", "k") is None
        await cache.set("llm", "k", b"v")
        await cache.set_many("llm", {"a": b"1"})
        assert await cache.get_many("llm", ["k", "a"]) == {}
        assert await cache.ttl("llm", "k") is None
        assert await cache.delete("llm", "k") is False

    async def compute() -> bytes:
        return b"computed"

    assert await cache.get_or_compute("llm", "k", compute) == b"computed"
    assert len(warnings_of(caplog)) == 1  # once, not per call
    health = await cache.health()
    assert health.status == "down" and health.detail
    stats = await cache.stats()
    assert stats.status == "down" and stats.detail
    with pytest.raises(CacheError, match="could not invalidate llm:\\*"):
        await cache.invalidate("llm")
    with pytest.raises(CacheError, match="could not clear"):
        await cache.clear()
    with pytest.raises(CacheError):
        await cache.open()


def write_garbage(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 500)


async def test_a_corrupt_file_never_fails_a_request(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_garbage(path)
    async with EmbeddedCache(path) as cache:
        await assert_degrades_quietly(cache, caplog)
        assert "not a database" in ((await cache.health()).detail or "")
        os.remove(path)  # repaired: the next call reopens
        await cache.set("llm", "k", b"v")
        assert await cache.get("llm", "k") == b"v"
        assert "recovered" in warnings_of(caplog)[-1]


async def test_a_folder_that_cannot_be_created(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    async with EmbeddedCache(tmp_path / "file" / FILE_NAME) as cache:
        await assert_degrades_quietly(cache, caplog)


async def test_a_locked_file_serves_reads_and_drops_writes(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with EmbeddedCache(path, busy_timeout=0.05) as cache:
        await cache.set("llm", "k", b"old")
        raw = sqlite3.connect(path, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            assert await cache.get("llm", "k") == b"old"  # WAL: reads go on
            await cache.set("llm", "k", b"new")  # dropped after busy_timeout
            assert len(warnings_of(caplog)) == 1
            health = await cache.health()
            assert health.status == "down" and "locked" in (health.detail or "")
            raw.execute("ROLLBACK")
        finally:
            raw.close()
        assert await cache.get("llm", "k") == b"old"
        await cache.set("llm", "k", b"new")
        assert await cache.get("llm", "k") == b"new"
        assert (await cache.health()).status == "up"


async def test_a_newer_schema_is_refused(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path.parent.mkdir(parents=True)
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    async with EmbeddedCache(path) as cache:
        with pytest.raises(CacheError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
            await cache.open()
        await assert_degrades_quietly(cache, caplog)


async def test_another_sqlite_file_is_not_taken_over(path: Path) -> None:
    path.parent.mkdir(parents=True)
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE briefs (id INTEGER)")
    raw.close()
    async with EmbeddedCache(path) as cache:
        with pytest.raises(CacheError, match="not a NomosX cache"):
            await cache.open()
        assert (await cache.health()).status == "down"
