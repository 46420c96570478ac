"""The Redis cache backend, on ``redis.asyncio``.

Storage: a value is the string ``nomosx:{namespace}:{key}`` with the namespace's TTL
(``SET ... PX``). Hits and misses are counted in Redis itself, in the hash
``nomosx:stats:{namespace}`` (fields ``hits`` and ``misses``), by the same Lua script that
reads the value: one round trip, and every process sharing the Redis shares the counters.

Stampede protection (``get_or_compute``): callers of one process share one computation
(``SingleFlight``); across processes the computing one holds the short lock
``nomosx:lock:{namespace}:{key}`` (``SET NX PX``, released only by its owner's token) while
the others poll for the value, and compute themselves if it never comes.

Failure semantics (``nomosx.cache.base``): every call is bounded by ``op_timeout``;
connection errors and timeouts answer a miss (reads) or do nothing (writes) and count as
failures of a ``CircuitBreaker``. While the breaker is open the cache does not touch Redis
at all; after the cooldown one call probes it, and its success closes the breaker. Failed
connections are dropped by redis-py and idle ones by ``_forget_connections``, so the pool
reconnects by itself once Redis is back. ``invalidate`` and ``clear`` raise ``CacheError``
instead: an operator must know when an invalidation did not happen.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from functools import partial
from typing import Final, Literal, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from redis.maint_notifications import MaintNotificationsConfig

from nomosx.breaker import BreakerState, CircuitBreaker
from nomosx.cache.base import (
    DEFAULT_TTLS,
    KEY_PREFIX,
    CacheHealth,
    CacheStats,
    Compute,
    NamespaceStats,
    storage_key,
)
from nomosx.cache.singleflight import SingleFlight
from nomosx.config import CacheSettings
from nomosx.errors import CacheError, ConfigError

__all__ = ["RedisCache", "lock_key", "redact_url", "stats_key"]

log = logging.getLogger(__name__)

T = TypeVar("T")

STATS_PREFIX: Final = f"{KEY_PREFIX}:stats"
LOCK_PREFIX: Final = f"{KEY_PREFIX}:lock"
_RESERVED_NAMESPACES: Final = frozenset({"stats", "lock"})
SCAN_COUNT: Final = 1000
BATCH: Final = 500  # keys per MGET script call / SET pipeline
MAX_CONNECTIONS: Final = 64
HEALTH_CHECK_INTERVAL: Final = 30  # seconds idle before a pooled connection is PINGed
POLL_FIRST: Final = 0.005  # seconds; a waiter's first poll for the lock holder's value
POLL_MAX: Final = 0.1

# Redis errors that mean "unreachable or too slow": they count against the breaker.
_UNREACHABLE: Final = (RedisError, OSError, TimeoutError)

# GET + count the hit or miss, atomically and in one round trip. Counting is best effort
# (pcall): a Redis out of memory under ``noeviction`` refuses the HINCRBY, not the read.
_GET_LUA: Final = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.pcall('HINCRBY', KEYS[2], 'hits', 1)
else
  redis.pcall('HINCRBY', KEYS[2], 'misses', 1)
end
return value
"""

# MGET of KEYS[2..] + count the hits and misses in the hash KEYS[1].
_MGET_LUA: Final = """
local values = redis.call('MGET', unpack(KEYS, 2))
local hits = 0
for i = 1, #values do
  if values[i] then hits = hits + 1 end
end
if hits > 0 then redis.pcall('HINCRBY', KEYS[1], 'hits', hits) end
if #values > hits then redis.pcall('HINCRBY', KEYS[1], 'misses', #values - hits) end
return values
"""

# Delete the lock only while it still holds our token.
_RELEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Failed(Enum):
    """The call did not reach Redis (breaker open, error or timeout)."""

    FAILED = "failed"


FAILED: Final = _Failed.FAILED


def stats_key(namespace: str) -> str:
    return f"{STATS_PREFIX}:{namespace}"


def lock_key(namespace: str, key: str) -> str:
    return f"{LOCK_PREFIX}:{namespace}:{key}"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def redact_url(url: str) -> str:
    """``url`` with its password (userinfo or ``?password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        redacted = url
        userinfo, at, hostport = parts.netloc.rpartition("@")
        if at and ":" in userinfo:
            user = userinfo.partition(":")[0]
            redacted = redacted.replace(parts.netloc, f"{user}:***@{hostport}", 1)
        if parts.query:
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in pairs],
                safe="*/",
                quote_via=quote,
            )
            redacted = redacted.replace("?" + parts.query, "?" + query, 1)
        return redacted
    except ValueError:
        return "<unparsable redis url>"


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisCache:
    """The ``Cache`` protocol on Redis (``redis://``, ``rediss://`` or ``unix://``)."""

    def __init__(
        self,
        url: str,
        *,
        ttls: Mapping[str, float] = DEFAULT_TTLS,
        op_timeout: float = 0.25,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 5.0,
        lock_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if op_timeout <= 0:
            raise ValueError("op_timeout must be positive")
        if lock_ttl <= 0:
            raise ValueError("lock_ttl must be positive")
        for namespace, ttl in ttls.items():
            if not namespace or ":" in namespace or namespace in _RESERVED_NAMESPACES:
                raise ValueError(f"invalid cache namespace {namespace!r}")
            if ttl <= 0:
                raise ValueError(f"the TTL of namespace {namespace!r} must be positive")
        self._url = redact_url(url)
        self._ttls = {str(ns): float(ttl) for ns, ttl in ttls.items()}
        self._op_timeout = op_timeout
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self.saturated = 0  # calls answered as misses because every connection was busy
        self._lock_ttl = lock_ttl
        self._breaker = CircuitBreaker(
            threshold=breaker_threshold, cooldown=breaker_cooldown, clock=clock
        )
        try:
            self._pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
                url,
                max_connections=MAX_CONNECTIONS,
                timeout=op_timeout,
                socket_timeout=op_timeout,
                socket_connect_timeout=op_timeout,
                health_check_interval=HEALTH_CHECK_INTERVAL,
                # The breaker alone decides when to try again: no retries in redis-py.
                retry=Retry(NoBackoff(), 0),
                decode_responses=False,
                client_name="nomosx-cache",
                # Maintenance notifications (Redis Cloud) would relax our timeouts.
                maint_notifications_config=MaintNotificationsConfig(enabled=False),
            )
            # No I/O: instantiating a connection checks the URL's query options now.
            self._pool.make_connection()  # type: ignore[no-untyped-call]
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"invalid Redis URL {self._url}: {exc} "
                "(expected redis://[user:password@]host:port/db, rediss://… or unix://…)"
            ) from None
        self._client = Redis(connection_pool=self._pool)
        self._get_script = self._client.register_script(_GET_LUA)
        self._mget_script = self._client.register_script(_MGET_LUA)
        self._release_script = self._client.register_script(_RELEASE_LUA)
        self._flights: SingleFlight[bytes] = SingleFlight()

    @classmethod
    def from_settings(cls, url: str, settings: CacheSettings) -> RedisCache:
        return cls(
            url,
            ttls=settings.ttls(),
            op_timeout=settings.op_timeout,
            breaker_threshold=settings.breaker_threshold,
            breaker_cooldown=settings.breaker_cooldown,
            lock_ttl=settings.lock_ttl,
        )

    def __repr__(self) -> str:
        return f"RedisCache(url={self._url!r}, breaker={self._breaker.state.value!r})"

    @property
    def backend(self) -> str:
        return "redis"

    @property
    def url(self) -> str:
        """The URL, password redacted."""
        return self._url

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(self._ttls)

    # -- the calls -------------------------------------------------------------------

    def _ttl_ms(self, namespace: str, ttl: float | None) -> int:
        default = self._namespace_ttl(namespace)
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive")
        return _ms(default if ttl is None else ttl)

    def _namespace_ttl(self, namespace: str) -> float:
        try:
            return self._ttls[namespace]
        except KeyError:
            known = ", ".join(self._ttls)
            raise ValueError(f"unknown cache namespace {namespace!r} (known: {known})") from None

    async def _call(
        self, op: str, fn: Callable[[Redis], Awaitable[T]]
    ) -> T | Literal[_Failed.FAILED]:
        """``fn(client)`` within ``op_timeout``, through the breaker; ``FAILED`` when it
        did not answer or the breaker refused it. Never raises Redis errors."""
        if not self._breaker.allow():
            return FAILED
        return await self._attempt(op, fn)

    async def _attempt(
        self, op: str, fn: Callable[[Redis], Awaitable[T]]
    ) -> T | Literal[_Failed.FAILED]:
        """``fn(client)`` once the breaker allowed it; the outcome is recorded.

        At most ``MAX_CONNECTIONS`` calls are in flight: a call that cannot get a slot
        within ``op_timeout`` is a miss, but not a failure of Redis (the breaker ignores
        this process's own saturation)."""
        try:
            async with asyncio.timeout(self._op_timeout):
                await self._slots.acquire()
        except TimeoutError:
            self._breaker.release()
            self.saturated += 1
            return FAILED
        try:
            return await self._attempt_in_slot(op, fn)
        finally:
            self._slots.release()

    async def _attempt_in_slot(
        self, op: str, fn: Callable[[Redis], Awaitable[T]]
    ) -> T | Literal[_Failed.FAILED]:
        try:
            async with asyncio.timeout(self._op_timeout):
                result = await fn(self._client)
        except ResponseError as exc:
            # Redis answered (OOM, READONLY, WRONGTYPE…): reachable, so no breaker failure.
            self._breaker.record_success()
            log.warning("redis cache: %s refused: %s", op, exc)
            return FAILED
        except _UNREACHABLE as exc:
            await self._failed(op, exc)
            return FAILED
        except BaseException:
            self._breaker.release()
            raise
        self._breaker.record_success()
        return result

    async def _failed(self, op: str, exc: BaseException) -> None:
        was_open = self._breaker.state is not BreakerState.CLOSED
        self._breaker.record_failure()
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._breaker.state is BreakerState.OPEN and not was_open:
            log.warning(
                "redis cache at %s unreachable (%s during %s): serving misses for %.1f s",
                self._url,
                reason,
                op,
                self._breaker.retry_in(),
            )
        else:
            log.debug("redis cache: %s failed (%s)", op, reason)
        await self._forget_connections()

    async def _forget_connections(self) -> None:
        """Close the idle pooled connections, so that none stale survives an outage."""
        try:
            async with asyncio.timeout(self._op_timeout):
                await self._pool.disconnect(inuse_connections=False)
        except (*_UNREACHABLE, ValueError) as exc:  # pragma: no cover - best effort
            log.debug("redis cache: disconnecting the pool failed (%s)", exc)

    async def get(self, namespace: str, key: str) -> bytes | None:
        self._namespace_ttl(namespace)
        keys = [storage_key(namespace, key), stats_key(namespace)]
        value = await self._call("get", lambda c: self._get_script(keys=keys, client=c))
        return None if value is FAILED or value is None else bytes(value)

    async def get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, bytes]:
        self._namespace_ttl(namespace)
        unique = list(dict.fromkeys(keys))
        found: dict[str, bytes] = {}
        for start in range(0, len(unique), BATCH):
            chunk = unique[start : start + BATCH]
            script_keys = [stats_key(namespace), *(storage_key(namespace, k) for k in chunk)]
            values = await self._call("get_many", partial(self._mget, script_keys))
            if values is FAILED:
                break
            found.update({k: bytes(v) for k, v in zip(chunk, values, strict=True) if v})
        return found

    async def _mget(self, keys: list[str], client: Redis) -> list[bytes | None]:
        values: list[bytes | None] = await self._mget_script(keys=keys, client=client)
        return values

    async def set(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        px = self._ttl_ms(namespace, ttl)
        sk = storage_key(namespace, key)
        await self._call("set", lambda c: c.set(sk, value, px=px))

    async def set_many(
        self, namespace: str, items: Mapping[str, bytes], ttl: float | None = None
    ) -> None:
        px = self._ttl_ms(namespace, ttl)
        pairs = list(items.items())

        async def write(chunk: list[tuple[str, bytes]], client: Redis) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for key, value in chunk:
                    pipe.set(storage_key(namespace, key), value, px=px)
                await pipe.execute()

        for start in range(0, len(pairs), BATCH):
            chunk = pairs[start : start + BATCH]
            if await self._call("set_many", partial(write, chunk)) is FAILED:
                return

    async def delete(self, namespace: str, key: str) -> bool:
        self._namespace_ttl(namespace)
        sk = storage_key(namespace, key)
        removed = await self._call("delete", lambda c: c.unlink(sk))
        return removed is not FAILED and int(removed) > 0

    async def ttl(self, namespace: str, key: str) -> float | None:
        self._namespace_ttl(namespace)
        sk = storage_key(namespace, key)
        pttl = await self._call("ttl", lambda c: c.pttl(sk))
        if pttl is FAILED or pttl == -2:
            return None
        if pttl == -1:  # no expiry: never set by this cache
            return math.inf
        return int(pttl) / 1000.0

    # -- stampede protection ---------------------------------------------------------

    async def get_or_compute(
        self, namespace: str, key: str, compute: Compute, ttl: float | None = None
    ) -> bytes:
        self._ttl_ms(namespace, ttl)
        return await self._flights.run(
            storage_key(namespace, key), lambda: self._get_or_compute(namespace, key, compute, ttl)
        )

    async def _get_or_compute(
        self, namespace: str, key: str, compute: Compute, ttl: float | None
    ) -> bytes:
        value = await self.get(namespace, key)
        if value is not None:
            return value
        lock = lock_key(namespace, key)
        token = secrets.token_hex(16).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lock_ttl
        while True:
            acquired = await self._call(
                "lock", lambda c: c.set(lock, token, nx=True, px=_ms(self._lock_ttl))
            )
            if acquired is FAILED:  # Redis is away: compute without it
                return await self._compute_and_store(namespace, key, compute, ttl)
            if acquired:
                return await self._compute_locked(namespace, key, compute, ttl, lock, token)
            # Another process computes: wait for its value, or for its lock to go away.
            delay = POLL_FIRST
            while True:
                if loop.time() >= deadline:
                    log.warning(
                        "redis cache: no value for %s:%s after %.1f s; computing it here",
                        namespace,
                        key,
                        self._lock_ttl,
                    )
                    return await self._compute_and_store(namespace, key, compute, ttl)
                await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
                delay = min(delay * 2, POLL_MAX)
                peek = await self._peek(namespace, key, lock)
                if peek is FAILED:
                    return await self._compute_and_store(namespace, key, compute, ttl)
                value, locked = peek
                if value is not None:
                    return value
                if not locked:  # the holder gave up (its compute failed): try ourselves
                    break

    async def _peek(
        self, namespace: str, key: str, lock: str
    ) -> tuple[bytes | None, bool] | Literal[_Failed.FAILED]:
        """The value (not counted as a hit or miss) and whether the lock is still held."""
        sk = storage_key(namespace, key)

        async def peek(client: Redis) -> tuple[bytes | None, bool]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(sk)
                pipe.exists(lock)
                value, exists = await pipe.execute()
            return (None if value is None else bytes(value)), bool(exists)

        return await self._call("poll", peek)

    async def _compute_locked(
        self,
        namespace: str,
        key: str,
        compute: Compute,
        ttl: float | None,
        lock: str,
        token: bytes,
    ) -> bytes:
        try:
            # A holder may have stored the value and released its lock since our miss.
            peek = await self._peek(namespace, key, lock)
            if peek is not FAILED and peek[0] is not None:
                return peek[0]
            return await self._compute_and_store(namespace, key, compute, ttl)
        finally:
            await self._call(
                "unlock", lambda c: self._release_script(keys=[lock], args=[token], client=c)
            )

    async def _compute_and_store(
        self, namespace: str, key: str, compute: Compute, ttl: float | None
    ) -> bytes:
        value = await compute()
        await self.set(namespace, key, value, ttl)
        return value

    # -- administration --------------------------------------------------------------

    async def _admin(self, op: str, fn: Callable[[Redis], Awaitable[T]]) -> T:
        """``fn(client)`` within ``op_timeout`` even while the breaker is open (an operator
        wants a real attempt); failures raise ``CacheError``."""
        try:
            async with asyncio.timeout(self._op_timeout):
                result = await fn(self._client)
        except ResponseError as exc:
            raise CacheError(f"redis cache at {self._url}: {op} refused: {exc}") from None
        except _UNREACHABLE as exc:
            await self._failed(op, exc)
            raise CacheError(
                f"redis cache at {self._url} unreachable during {op} "
                f"({type(exc).__name__}: {exc}); nothing was {op}d past this point"
            ) from None
        self._breaker.record_success()
        return result

    async def _scan_unlink(self, match: str) -> int:
        removed = 0
        cursor = 0
        while True:
            cursor, keys = await self._admin("invalidate", partial(_scan, cursor, match))
            if keys:
                removed += int(await self._admin("invalidate", partial(_unlink, keys)))
            if cursor == 0:
                return removed

    async def invalidate(self, namespace: str, pattern: str = "*") -> int:
        self._namespace_ttl(namespace)
        return await self._scan_unlink(f"{_glob_escape(storage_key(namespace, ''))}{pattern}")

    async def clear(self) -> int:
        removed = 0
        for namespace in self._ttls:
            removed += await self._scan_unlink(_glob_escape(storage_key(namespace, "")) + "*")
        stats = [stats_key(ns) for ns in self._ttls]
        if stats:
            await self._admin("clear", lambda c: c.unlink(*stats))
        return removed

    async def _count_keys(self, namespace: str, client: Redis) -> int:
        match = _glob_escape(storage_key(namespace, "")) + "*"
        count = 0
        cursor = 0
        while True:
            cursor, keys = await client.scan(cursor, match=match, count=SCAN_COUNT)
            count += len(keys)
            if cursor == 0:
                return count

    async def stats(self) -> CacheStats:
        if self._breaker.state is BreakerState.OPEN:
            return self._down_stats(f"circuit open; retry in {self._breaker.retry_in():.1f} s")

        async def counters(client: Redis) -> tuple[list[list[bytes | None]], dict[str, object]]:
            async with client.pipeline(transaction=False) as pipe:
                for namespace in self._ttls:
                    pipe.hmget(stats_key(namespace), ["hits", "misses"])
                pipe.info("stats")
                pipe.info("memory")
                *hashes, info_stats, info_memory = await pipe.execute()
            return hashes, {**info_stats, **info_memory}

        result = await self._call("stats", counters)
        if result is FAILED:
            return self._down_stats("redis unreachable")
        hashes, info = result
        namespaces: dict[str, NamespaceStats] = {}
        for namespace, (hits, misses) in zip(self._ttls, hashes, strict=True):
            keys = await self._call("stats", partial(self._count_keys, namespace))
            if keys is FAILED:
                return self._down_stats("redis unreachable")
            namespaces[namespace] = NamespaceStats(
                namespace, hits=int(hits or 0), misses=int(misses or 0), keys=keys
            )
        return CacheStats(
            backend=self.backend,
            status="up",
            namespaces=namespaces,
            evictions=_int(info.get("evicted_keys")),
            expired=_int(info.get("expired_keys")),
            memory_bytes=_int(info.get("used_memory")),
        )

    def _down_stats(self, detail: str) -> CacheStats:
        return CacheStats(backend=self.backend, status="down", detail=detail)

    async def health(self) -> CacheHealth:
        if not self._breaker.allow():
            if self._breaker.state is BreakerState.OPEN:
                return CacheHealth(
                    self.backend,
                    "down",
                    detail="circuit open after repeated failures; "
                    f"retry in {self._breaker.retry_in():.1f} s",
                )
            return CacheHealth(self.backend, "degraded", detail="recovering: a probe is under way")
        started = time.perf_counter()
        pong = await self._attempt("ping", lambda c: c.ping())
        latency_ms = (time.perf_counter() - started) * 1000
        if pong is FAILED:
            return CacheHealth(self.backend, "down", detail=f"PING to {self._url} failed")
        if latency_ms > self._op_timeout * 1000 / 2:
            return CacheHealth(
                self.backend,
                "degraded",
                latency_ms=latency_ms,
                detail=f"slow: PING took {latency_ms:.0f} ms",
            )
        return CacheHealth(self.backend, "up", latency_ms=latency_ms)

    async def aclose(self) -> None:
        await self._client.aclose()
        await self._pool.aclose()


async def _scan(cursor: int, match: str, client: Redis) -> tuple[int, list[bytes | str]]:
    next_cursor, keys = await client.scan(cursor, match=match, count=SCAN_COUNT)
    return int(next_cursor), list(keys)


async def _unlink(keys: Sequence[bytes | str], client: Redis) -> int:
    return int(await client.unlink(*keys))


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float | str) else 0
