"""The Redis backend against real Redis servers.

The shared server at 127.0.0.1:6379 serves the ordinary tests, each pytest-xdist worker on
its own database (``8 + worker index``), emptied before and after every test. Tests that
stop, freeze or reconfigure Redis start a ``redis-server`` of their own on a free port.
What every backend must do is the contract suite's business (``test_contract.py``); this
file covers what only Redis has: counters shared across processes, INFO figures, SCAN and
UNLINK, the cross-process lock, and outages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from nomosx.breaker import BreakerState
from nomosx.cache.base import DEFAULT_TTLS, storage_key
from nomosx.cache.redis import RedisCache, lock_key, redact_url, stats_key
from nomosx.config import CacheSettings
from nomosx.errors import CacheError, ConfigError

REDIS_HOST = os.environ.get("NOMOSX_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("NOMOSX_TEST_REDIS_PORT", "6379"))
REDIS_SERVER = "/usr/bin/redis-server"
OP_TIMEOUT = 0.25


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RedisServer:
    """A ``redis-server`` of the test's own, which it may kill, restart or freeze."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.socket_path = workdir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--unixsocket",
                str(self.socket_path),
                "--enable-debug-command",
                "local",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis_sync.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on {self.port}") from None
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process is not None:
            if self.frozen:
                self.thaw()
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def client(self) -> redis_sync.Redis:
        return redis_sync.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def redis_db(worker_id: str) -> Iterator[int]:
    """This worker's database on the shared server, empty before and after the test."""
    db = 8 + (int(worker_id.removeprefix("gw")) if worker_id.startswith("gw") else 0)
    client = redis_sync.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    try:
        client.flushdb()
        yield db
        client.flushdb()
    finally:
        client.close()


@pytest.fixture
def redis_url(redis_db: int) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}"


@pytest.fixture
def raw(redis_db: int) -> Iterator[redis_sync.Redis]:
    client = redis_sync.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
    yield client
    client.close()


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_url, op_timeout=OP_TIMEOUT)
    yield cache
    await cache.aclose()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def own_cache(server: RedisServer, clock: FakeClock) -> AsyncIterator[RedisCache]:
    cache = RedisCache(
        server.url, op_timeout=OP_TIMEOUT, breaker_threshold=3, breaker_cooldown=5.0, clock=clock
    )
    yield cache
    await cache.aclose()


# -- storage ---------------------------------------------------------------------------


async def test_values_live_under_their_storage_key_with_the_namespace_ttl(
    cache: RedisCache, raw: redis_sync.Redis
) -> None:
    await cache.set("emb", "v1:abc", b"\x00vector")
    await cache.set("api", "v1:abc", b"response", ttl=60)

    assert raw.get("nomosx:emb:v1:abc") == b"\x00vector"
    assert raw.get("nomosx:api:v1:abc") == b"response"
    assert (
        DEFAULT_TTLS["emb"] * 1000 - 5000
        < raw.pttl("nomosx:emb:v1:abc")
        <= (DEFAULT_TTLS["emb"] * 1000)
    )
    assert 59 < (await cache.ttl("api", "v1:abc") or 0) <= 60
    assert await cache.ttl("api", "absent") is None
    raw.set("nomosx:api:forever", b"x")
    assert await cache.ttl("api", "forever") == float("inf")


async def test_many_and_delete(cache: RedisCache, raw: redis_sync.Redis) -> None:
    items = {f"k{i}": bytes([i % 256]) * 4096 for i in range(1200)}  # > one batch
    await cache.set_many("llm", items, ttl=100)

    got = await cache.get_many("llm", [*items, "absent", "k1"])
    assert got == items
    assert 99_000 < raw.pttl("nomosx:llm:k1199") <= 100_000
    assert await cache.get_many("llm", []) == {}

    assert await cache.delete("llm", "k1") is True
    assert await cache.delete("llm", "k1") is False
    assert await cache.get("llm", "k1") is None

    stats = (await cache.stats()).namespaces["llm"]
    assert (stats.hits, stats.misses, stats.keys) == (1200, 2, 1199)


async def test_arguments_are_checked(cache: RedisCache) -> None:
    with pytest.raises(ValueError, match="unknown cache namespace 'nope'"):
        await cache.get("nope", "k")
    with pytest.raises(ValueError, match="ttl must be positive"):
        await cache.set("emb", "k", b"v", ttl=0)
    with pytest.raises(ValueError, match="unknown cache namespace"):
        await cache.set("nope", "k", b"v", ttl=10)
    with pytest.raises(ValueError, match="invalid cache namespace"):
        RedisCache("redis://localhost", ttls={"stats": 1.0})
    with pytest.raises(ValueError, match="must be positive"):
        RedisCache("redis://localhost", ttls={"emb": 0.0})
    with pytest.raises(ValueError, match="op_timeout"):
        RedisCache("redis://localhost", op_timeout=0)
    with pytest.raises(ValueError, match="lock_ttl"):
        RedisCache("redis://localhost", lock_ttl=0)


# -- URLs ------------------------------------------------------------------------------


async def test_url_forms_and_password_redaction() -> None:
    tls = RedisCache("rediss://alice:s3cr%40t@cache.example.com:6380/2")
    try:
        kwargs = tls._pool.connection_kwargs
        assert tls._pool.connection_class is SSLConnection
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example.com", 6380, 2)
        assert (kwargs["username"], kwargs["password"]) == ("alice", "s3cr@t")
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.25
        assert repr(tls) == (
            "RedisCache(url='rediss://alice:***@cache.example.com:6380/2', breaker='closed')"
        )
        assert "s3cr" not in repr(tls) and "s3cr" not in tls.url
    finally:
        await tls.aclose()

    unix = RedisCache("unix:///run/redis.sock?db=3&password=hunter2")
    try:
        assert unix._pool.connection_class is UnixDomainSocketConnection
        assert unix._pool.connection_kwargs["path"] == "/run/redis.sock"
        assert "hunter2" not in repr(unix)
        assert unix.url == "unix:///run/redis.sock?db=3&password=***"
    finally:
        await unix.aclose()

    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://user@h:1/0") == "redis://user@h:1/0"
    assert redact_url("redis://[::1") == "<unparsable redis url>"
    with pytest.raises(ConfigError, match=r"invalid Redis URL http://u:\*\*\*@h/"):
        RedisCache("http://u:pw@h/")
    with pytest.raises(ConfigError, match="invalid Redis URL redis://h/0\\?colour=blue"):
        RedisCache("redis://h/0?colour=blue")


async def test_from_settings() -> None:
    settings = CacheSettings(ttl_api=10, op_timeout=0.5, breaker_threshold=7, lock_ttl=3)
    cache = RedisCache.from_settings("redis://localhost:6379/0", settings)
    try:
        assert cache.namespaces == ("emb", "llm", "api", "brief")
        assert cache._ttls["api"] == 10
        assert cache._op_timeout == 0.5
        assert cache._lock_ttl == 3
        assert cache.breaker.threshold == 7
        assert cache.backend == "redis"
    finally:
        await cache.aclose()


async def test_over_a_unix_socket(server: RedisServer) -> None:
    cache = RedisCache(f"unix://{server.socket_path}?db=1")
    try:
        await cache.set("emb", "k", b"v")
        assert await cache.get("emb", "k") == b"v"
        assert (await cache.health()).status == "up"
    finally:
        await cache.aclose()


# -- counters shared through Redis ---------------------------------------------------


async def test_counters_are_shared_by_two_instances(redis_url: str, raw: redis_sync.Redis) -> None:
    one = RedisCache(redis_url)
    two = RedisCache(redis_url)
    try:
        await one.set("emb", "a", b"1")
        assert await one.get("emb", "a") == b"1"
        assert await two.get("emb", "a") == b"1"
        assert await two.get("emb", "b") is None
        assert await two.get_many("emb", ["a", "b", "c"]) == {"a": b"1"}

        for cache in (one, two):
            emb = (await cache.stats()).namespaces["emb"]
            assert (emb.hits, emb.misses, emb.keys) == (3, 3, 1)
        assert raw.hgetall(stats_key("emb")) == {b"hits": b"3", b"misses": b"3"}
    finally:
        await one.aclose()
        await two.aclose()


SNIPPET_GETS = """
import asyncio, sys
from nomosx.cache.redis import RedisCache

async def main() -> None:
    cache = RedisCache(sys.argv[1])
    for i in range(int(sys.argv[2])):
        await cache.get("llm", f"k{i}")
    await cache.aclose()

asyncio.run(main())
"""


async def _python(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_counters_are_shared_with_another_process(cache: RedisCache, redis_url: str) -> None:
    await cache.set_many("llm", {f"k{i}": b"v" for i in range(4)})
    await cache.get("llm", "k0")

    proc = await _python(SNIPPET_GETS, redis_url, "10")  # 4 hits, 6 misses
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()

    stats = await cache.stats()
    assert (stats.namespaces["llm"].hits, stats.namespaces["llm"].misses) == (5, 6)
    assert stats.hit_rate == 5 / 11


# -- INFO figures ----------------------------------------------------------------------


async def test_stats_report_evictions_expiries_and_memory(
    own_cache: RedisCache, server: RedisServer
) -> None:
    with server.client() as admin:
        admin.config_set("maxmemory", "4mb")
        admin.config_set("maxmemory-policy", "allkeys-lru")
    value = b"x" * 16384
    for start in range(0, 1000, 100):
        await own_cache.set_many("emb", {f"k{i}": value for i in range(start, start + 100)})
    await own_cache.set("api", "short", b"x", ttl=0.01)
    await asyncio.sleep(0.05)
    assert await own_cache.get("api", "short") is None  # expired on access

    stats = await own_cache.stats()
    assert stats.status == "up"
    assert stats.evictions > 0
    assert stats.expired >= 1
    assert stats.memory_bytes is not None and 0 < stats.memory_bytes <= 5 * 1024 * 1024
    assert 0 < stats.namespaces["emb"].keys < 1000
    assert stats.namespaces["api"].misses == 1


async def test_refused_writes_do_not_open_the_breaker(
    own_cache: RedisCache, server: RedisServer
) -> None:
    await own_cache.set("emb", "k", b"stored")
    with server.client() as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")  # out of memory: every write is refused
    for i in range(5):
        await own_cache.set("emb", f"k{i}", b"x")  # OOM: dropped
    assert await own_cache.get("emb", "k1") is None
    assert await own_cache.get("emb", "k") == b"stored"  # reads still work, uncounted
    assert await own_cache.get_many("emb", ["k", "k1"]) == {"k": b"stored"}
    assert own_cache.breaker.state is BreakerState.CLOSED
    assert (await own_cache.health()).status == "up"
    with server.client() as admin:
        admin.config_set("maxmemory", "0")
    assert (await own_cache.stats()).namespaces["emb"].hits == 0


# -- invalidate and clear -------------------------------------------------------------


async def test_invalidate_removes_exactly_the_matching_keys(
    cache: RedisCache, raw: redis_sync.Redis
) -> None:
    for ns in ("emb", "llm"):
        await cache.set_many(ns, {f"a:{i}": b"v" for i in range(500)})
        await cache.set_many(ns, {f"b:{i}": b"v" for i in range(500)})
    raw.set("nomosx:embx:a:1", b"other")  # a namespace whose name starts like "emb"
    raw.set("other:emb:a:1", b"not ours")
    await cache.get("emb", "a:1")

    assert await cache.invalidate("emb", "a:1?") == 10  # a:10 … a:19
    assert await cache.invalidate("emb", "a:*") == 490
    assert await cache.invalidate("emb", "a:*") == 0

    remaining = {k.decode() for k in raw.scan_iter(match="*", count=1000)}
    assert sum(k.startswith("nomosx:emb:b:") for k in remaining) == 500
    assert not any(k.startswith("nomosx:emb:a:") for k in remaining)
    assert sum(k.startswith("nomosx:llm:") for k in remaining) == 1000
    assert {"nomosx:embx:a:1", "other:emb:a:1", stats_key("emb")} <= remaining

    assert await cache.invalidate("llm") == 1000
    assert await cache.invalidate("emb", "*") == 500


async def test_invalidate_and_clear_scan_and_unlink(
    own_cache: RedisCache, server: RedisServer
) -> None:
    await own_cache.set_many("emb", {f"k{i}": b"v" for i in range(2500)})
    await own_cache.set_many("brief", {f"k{i}": b"v" for i in range(10)})
    await own_cache.get("brief", "k1")
    with server.client() as admin:
        admin.config_resetstat()
        assert await own_cache.invalidate("emb", "k1*") == 1111
        assert await own_cache.clear() == 1399
        commands = admin.info("commandstats")
        assert admin.dbsize() == 0  # data and counters gone
    assert "cmdstat_keys" not in commands
    assert commands["cmdstat_scan"]["calls"] >= 3
    assert commands["cmdstat_unlink"]["calls"] >= 2
    assert (await own_cache.stats()).namespaces["brief"].hits == 0


async def test_clear_leaves_other_keys_and_resets_counters(
    cache: RedisCache, raw: redis_sync.Redis
) -> None:
    await cache.set("emb", "a", b"1")
    await cache.set("brief", "b", b"2")
    await cache.get("emb", "a")
    raw.set("unrelated", b"x")
    assert await cache.clear() == 2
    assert raw.keys("*") == [b"unrelated"]
    stats = await cache.stats()
    assert (stats.hits, stats.misses, stats.keys) == (0, 0, 0)


# -- stampede protection ---------------------------------------------------------------


async def test_one_computation_across_two_instances(redis_url: str, raw: redis_sync.Redis) -> None:
    one = RedisCache(redis_url)
    two = RedisCache(redis_url)
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return b"answer"

    try:
        results = await asyncio.gather(
            *(c.get_or_compute("llm", "q", compute) for _ in range(50) for c in (one, two))
        )
        assert results == [b"answer"] * 100
        assert calls == 1
        assert raw.get(storage_key("llm", "q")) == b"answer"
        assert raw.exists(lock_key("llm", "q")) == 0  # released
        assert await one.get_or_compute("llm", "q", compute) == b"answer"
        assert calls == 1
    finally:
        await one.aclose()
        await two.aclose()


SNIPPET_COMPUTE = """
import asyncio, sys
from nomosx.cache.redis import RedisCache

async def main() -> None:
    cache = RedisCache(sys.argv[1])
    computed = 0

    async def compute() -> bytes:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.3)
        return b"from-child"

    await cache.health()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    values = await asyncio.gather(*(cache.get_or_compute("llm", "q", compute) for _ in range(50)))
    print(computed, len(set(values)), values[0].decode(), flush=True)
    await cache.aclose()

asyncio.run(main())
"""


async def test_one_computation_across_two_processes(cache: RedisCache, redis_url: str) -> None:
    proc = await _python(SNIPPET_COMPUTE, redis_url)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        computed = 0

        async def compute() -> bytes:
            nonlocal computed
            computed += 1
            await asyncio.sleep(0.3)
            return b"from-parent"

        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        values = await asyncio.gather(
            *(cache.get_or_compute("llm", "q", compute) for _ in range(50))
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    child_computed, child_distinct, child_value = out.decode().split()
    assert computed + int(child_computed) == 1
    assert int(child_distinct) == 1 and len(set(values)) == 1
    assert child_value.encode() == values[0]


async def test_a_failed_holder_lets_a_waiter_compute(redis_url: str) -> None:
    one = RedisCache(redis_url)
    two = RedisCache(redis_url)
    started = asyncio.Event()

    async def failing() -> bytes:
        started.set()
        await asyncio.sleep(0.1)
        raise RuntimeError("upstream down")

    async def working() -> bytes:
        return b"second try"

    try:
        first = asyncio.create_task(one.get_or_compute("api", "x", failing))
        await started.wait()
        second = asyncio.create_task(two.get_or_compute("api", "x", working))
        with pytest.raises(RuntimeError, match="upstream down"):
            await first
        assert await asyncio.wait_for(second, 2) == b"second try"
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_waiter_computes_when_the_lock_is_never_released(
    redis_url: str, raw: redis_sync.Redis
) -> None:
    cache = RedisCache(redis_url, lock_ttl=0.3)
    raw.set(lock_key("api", "x"), b"someone else's token", px=60_000)  # a crashed holder

    async def compute() -> bytes:
        return b"mine"

    try:
        started = time.perf_counter()
        assert await cache.get_or_compute("api", "x", compute) == b"mine"
        assert 0.25 < time.perf_counter() - started < 1.5
        assert raw.get(lock_key("api", "x")) == b"someone else's token"  # not ours to delete
    finally:
        await cache.aclose()


async def test_the_holder_reuses_a_value_stored_meanwhile(
    cache: RedisCache, raw: redis_sync.Redis
) -> None:
    """Between a miss and taking the lock, another process may have finished."""
    original_get = cache.get

    async def get_then_finish(namespace: str, key: str) -> bytes | None:
        value = await original_get(namespace, key)
        raw.set(storage_key(namespace, key), b"stored meanwhile")
        return value

    cache.get = get_then_finish  # type: ignore[method-assign]

    async def compute() -> bytes:
        raise AssertionError("must not compute")

    assert await cache.get_or_compute("emb", "k", compute) == b"stored meanwhile"
    assert raw.exists(lock_key("emb", "k")) == 0


async def test_get_or_compute_without_redis_still_single_flights(
    own_cache: RedisCache, server: RedisServer
) -> None:
    server.kill()
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"v"

    results = await asyncio.gather(
        *(own_cache.get_or_compute("llm", "q", compute) for _ in range(20))
    )
    assert results == [b"v"] * 20
    assert calls == 1


async def test_a_waiter_computes_when_redis_goes_away_while_it_waits(
    own_cache: RedisCache, server: RedisServer
) -> None:
    with server.client() as admin:
        admin.set(lock_key("llm", "q"), b"other", px=60_000)

    async def compute() -> bytes:
        return b"computed here"

    task = asyncio.create_task(own_cache.get_or_compute("llm", "q", compute))
    await asyncio.sleep(0.1)
    server.kill()
    assert await asyncio.wait_for(task, 2) == b"computed here"


# -- outages ---------------------------------------------------------------------------


async def test_redis_stopped_and_restarted(
    own_cache: RedisCache, server: RedisServer, clock: FakeClock
) -> None:
    await own_cache.set("emb", "k", b"before")
    assert await own_cache.get("emb", "k") == b"before"

    server.kill()
    started = time.perf_counter()
    assert await own_cache.get("emb", "k") is None
    assert time.perf_counter() - started < OP_TIMEOUT + 0.75  # bounded, with room for load
    await own_cache.set("emb", "dropped", b"x")  # no exception
    assert own_cache.breaker.state is BreakerState.CLOSED  # 2 failures of 3
    health = await own_cache.health()  # the PING is the third
    assert (health.status, health.detail) == ("down", f"PING to {server.url} failed")
    assert own_cache.breaker.state is BreakerState.OPEN
    await own_cache.set_many("emb", {"a": b"1"})
    assert await own_cache.delete("emb", "k") is False
    assert (await own_cache.health()).detail is not None

    started = time.perf_counter()
    for _ in range(100):
        assert await own_cache.get("emb", "k") is None
    # no network wait: 100 calls through a dead socket would take 100 x OP_TIMEOUT
    assert time.perf_counter() - started < 0.5
    assert await own_cache.get_many("emb", ["k", "j"]) == {}
    assert await own_cache.ttl("emb", "k") is None
    stats = await own_cache.stats()
    assert (stats.status, stats.namespaces) == ("down", {})
    assert "circuit open" in (stats.detail or "")
    with pytest.raises(CacheError, match="unreachable during invalidate"):
        await own_cache.invalidate("emb")
    with pytest.raises(CacheError, match="unreachable"):
        await own_cache.clear()

    server.start()  # same port, empty: --save ""
    assert await own_cache.get("emb", "k") is None  # still open: Redis is not asked
    clock.advance(5.0)
    assert own_cache.breaker.state is BreakerState.HALF_OPEN
    await own_cache.set("emb", "k", b"after")  # the probe
    assert own_cache.breaker.state is BreakerState.CLOSED
    assert await own_cache.get("emb", "k") == b"after"
    assert (await own_cache.health()).status == "up"
    assert (await own_cache.stats()).status == "up"


async def test_stale_pooled_connections_do_not_fail_after_a_restart(
    own_cache: RedisCache, server: RedisServer
) -> None:
    """A restart while the cache is idle: the pooled connections are dead, yet the next
    calls succeed (redis-py checks a pooled connection before handing it out)."""
    await asyncio.gather(*(own_cache.set("emb", f"k{i}", b"v") for i in range(10)))
    server.kill()
    server.start()
    assert await own_cache.get("emb", "k1") is None  # a fresh, empty server
    await own_cache.set("emb", "k1", b"again")
    assert await asyncio.gather(*(own_cache.get("emb", "k1") for _ in range(10))) == [b"again"] * 10
    assert own_cache.breaker.consecutive_failures == 0


async def test_a_hung_redis_is_a_miss_within_the_timeout(
    own_cache: RedisCache, server: RedisServer
) -> None:
    await own_cache.set("emb", "k", b"v")
    server.freeze()
    started = time.perf_counter()
    assert await own_cache.get("emb", "k") is None
    assert time.perf_counter() - started < OP_TIMEOUT + 0.75  # bounded, with room for load
    await own_cache.set("emb", "k", b"w")
    assert await own_cache.get_many("emb", ["k"]) == {}
    assert time.perf_counter() - started < 3 * OP_TIMEOUT + 1.0
    assert own_cache.breaker.state is BreakerState.OPEN
    server.thaw()


async def test_a_busy_redis_is_a_miss_and_health_sees_slowness(
    server: RedisServer, clock: FakeClock
) -> None:
    cache = RedisCache(server.url, op_timeout=1.0, breaker_threshold=1, clock=clock)
    slow = redis_sync.Redis(host="127.0.0.1", port=server.port)
    try:
        await cache.set("emb", "k", b"v")
        blocker = asyncio.get_running_loop().run_in_executor(
            None, lambda: slow.execute_command("DEBUG", "SLEEP", "0.7")
        )
        await asyncio.sleep(0.05)
        health = await cache.health()
        assert health.status == "degraded"
        assert health.latency_ms is not None and 500 < health.latency_ms < 1000
        await blocker

        blocker = asyncio.get_running_loop().run_in_executor(
            None, lambda: slow.execute_command("DEBUG", "SLEEP", "1.5")
        )
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        assert await cache.get("emb", "k") is None
        assert time.perf_counter() - started < 1.2
        await blocker
        assert (await cache.health()).status == "down"  # breaker open (threshold 1)
        clock.advance(5.0)
        assert (await cache.health()).status == "up"
        assert await cache.get("emb", "k") == b"v"
    finally:
        slow.close()
        await cache.aclose()


async def test_health_while_a_probe_is_under_way(
    own_cache: RedisCache, server: RedisServer, clock: FakeClock
) -> None:
    server.kill()
    for _ in range(3):
        await own_cache.get("emb", "k")
    clock.advance(5.0)
    assert own_cache.breaker.allow()  # someone else's probe
    health = await own_cache.health()
    assert (health.status, health.detail) == ("degraded", "recovering: a probe is under way")
    stats = await own_cache.stats()
    assert stats.status == "down"
    own_cache.breaker.release()


async def test_stats_when_redis_is_down(own_cache: RedisCache, server: RedisServer) -> None:
    server.kill()
    stats = await own_cache.stats()
    assert (stats.backend, stats.status, stats.namespaces) == ("redis", "down", {})
    assert stats.detail == "redis unreachable"


async def test_stats_when_redis_fails_while_counting_keys(
    cache: RedisCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def lost(namespace: str, client: object) -> int:
        raise redis_sync.ConnectionError("connection lost")

    monkeypatch.setattr(cache, "_count_keys", lost)
    stats = await cache.stats()
    assert (stats.status, stats.namespaces) == ("down", {})


async def test_administration_refused_by_redis_is_an_error(server: RedisServer) -> None:
    with server.client() as admin:
        admin.acl_setuser(
            "reader", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all", "-unlink"]
        )
    cache = RedisCache(f"redis://reader:s3cret@127.0.0.1:{server.port}/0")
    try:
        await cache.set("emb", "k", b"v")
        assert await cache.get("emb", "k") == b"v"
        with pytest.raises(CacheError, match=r"invalidate refused: .*unlink") as caught:
            await cache.invalidate("emb")
        assert "s3cret" not in str(caught.value)
        assert cache.breaker.state is BreakerState.CLOSED
    finally:
        await cache.aclose()


async def test_cancellation_does_not_wedge_the_breaker(
    own_cache: RedisCache, server: RedisServer, clock: FakeClock
) -> None:
    server.kill()
    for _ in range(3):
        await own_cache.get("emb", "k")
    clock.advance(5.0)
    server.start()
    server.freeze()
    task = asyncio.create_task(own_cache.get("emb", "k"))  # the probe
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    server.thaw()
    assert own_cache.breaker.state is BreakerState.HALF_OPEN
    await own_cache.set("emb", "k", b"v")  # a new probe is allowed
    assert await own_cache.get("emb", "k") == b"v"


async def test_waiting_for_a_busy_pool_is_a_miss_not_an_outage(worker_id: str) -> None:
    """Every connection busy: a call that cannot start within op_timeout is a miss, and
    the breaker does not count it against Redis (it is this process's saturation)."""
    index = int(worker_id.removeprefix("gw")) if worker_id.startswith("gw") else 0
    cache = RedisCache(f"redis://127.0.0.1:6379/{8 + index}", op_timeout=0.05)
    try:
        await cache.set("llm", "hot", b"x" * 4096)
        slots = cache._slots
        held = 0
        while not slots.locked():  # take every slot, as a burst of calls would
            await slots.acquire()
            held += 1
        started = time.perf_counter()
        assert await cache.get("llm", "hot") is None
        assert time.perf_counter() - started < 0.5
        assert cache.saturated == 1
        assert cache.breaker.state is BreakerState.CLOSED
        for _ in range(held):
            slots.release()
        assert await cache.get("llm", "hot") == b"x" * 4096
    finally:
        await cache.clear()
        await cache.aclose()
