"""Concurrent streams per user: leased slots, in Redis (shared) or in memory.

A slot is a lease that expires unless renewed: a process that dies with streams open
frees its slots by itself after ``lease`` seconds. Streams renew their lease as they send
(heartbeats included), and release it when they end.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

from nomosx.errors import QuotaExceeded

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds: when a stream will end is unknown; a short, honest hint

# KEYS[1]: the user's zset of leases (member: lease id, score: expiry in ms)
# ARGV: now_ms, expiry_ms, max, lease id, key ttl ms
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local open = redis.call('ZCARD', KEYS[1])
if open >= tonumber(ARGV[3]) then
  return {0, open}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, open + 1}
"""


class StreamSlots(Protocol):
    async def acquire(self, user_id: str, limit: int) -> StreamLease:
        """A slot, or ``QuotaExceeded`` when ``limit`` streams are open."""
        ...

    async def open_count(self, user_id: str) -> int: ...

    async def _renew(self, lease: StreamLease) -> None: ...

    async def _release(self, lease: StreamLease) -> None: ...


@dataclass(slots=True)
class StreamLease:
    slots: StreamSlots
    user_id: str
    lease_id: str
    seconds: float
    renewed: float = field(default_factory=time.monotonic)
    released: bool = False

    async def keep_alive(self) -> None:
        """Renew when a third of the lease has gone (cheap to call on every frame)."""
        if not self.released and time.monotonic() - self.renewed > self.seconds / 3:
            self.renewed = time.monotonic()
            await self.slots._renew(self)

    async def release(self) -> None:
        if not self.released:
            self.released = True
            await self.slots._release(self)


def _refused(limit: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"too many open streams: the limit is {limit} at once; close one or retry "
        f"in {RETRY_AFTER} s",
        retry_after=RETRY_AFTER,
        limit=limit,
        remaining=0,
        reset=RETRY_AFTER,
    )


class MemoryStreamSlots:
    """One process's slots (no Redis): leases with deadlines on the monotonic clock."""

    def __init__(self, lease: float) -> None:
        self.lease = lease
        self._open: dict[str, dict[str, float]] = {}

    def _live(self, user_id: str) -> dict[str, float]:
        now = time.monotonic()
        leases = self._open.setdefault(user_id, {})
        for lease_id in [k for k, deadline in leases.items() if deadline <= now]:
            del leases[lease_id]
        return leases

    async def acquire(self, user_id: str, limit: int) -> StreamLease:
        leases = self._live(user_id)
        if len(leases) >= limit:
            raise _refused(limit)
        lease_id = uuid.uuid4().hex
        leases[lease_id] = time.monotonic() + self.lease
        return StreamLease(self, user_id, lease_id, self.lease)

    async def open_count(self, user_id: str) -> int:
        return len(self._live(user_id))

    async def _renew(self, lease: StreamLease) -> None:
        leases = self._open.get(lease.user_id, {})
        if lease.lease_id in leases:
            leases[lease.lease_id] = time.monotonic() + self.lease

    async def _release(self, lease: StreamLease) -> None:
        self._open.get(lease.user_id, {}).pop(lease.lease_id, None)


class RedisStreamSlots:
    """Slots shared by every API process: a sorted set of leases per user, updated by
    one Lua script (no race between counting and adding). Redis down: admitted."""

    def __init__(self, client: aioredis.Redis, lease: float, prefix: str) -> None:
        self.client = client
        self.lease = lease
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)

    def _key(self, user_id: str) -> str:
        return f"{self.prefix}:streams:{user_id}"

    async def acquire(self, user_id: str, limit: int) -> StreamLease:
        lease_id = uuid.uuid4().hex
        now_ms = int(time.time() * 1000)
        lease_ms = int(self.lease * 1000)
        try:
            admitted, _ = await self._acquire(
                keys=[self._key(user_id)],
                args=[now_ms, now_ms + lease_ms, limit, lease_id, lease_ms],
            )
        except (RedisError, OSError) as exc:  # an outage admits: never locks users out
            log.warning("stream slots unavailable, stream admitted: %s", exc)
            return StreamLease(self, user_id, lease_id, self.lease)
        if not admitted:
            raise _refused(limit)
        return StreamLease(self, user_id, lease_id, self.lease)

    async def open_count(self, user_id: str) -> int:
        now_ms = int(time.time() * 1000)
        try:
            return int(await self.client.zcount(self._key(user_id), now_ms + 1, "+inf"))
        except (RedisError, OSError) as exc:  # an outage must not fail GET /api/me
            log.warning("open streams unknown, counted as 0: %s", exc)
            return 0

    async def _renew(self, lease: StreamLease) -> None:
        expiry = int((time.time() + self.lease) * 1000)
        try:
            key = self._key(lease.user_id)
            await self.client.zadd(key, {lease.lease_id: expiry}, xx=True)
            await self.client.pexpire(key, int(self.lease * 1000))
        except (RedisError, OSError) as exc:
            log.warning("stream lease not renewed: %s", exc)

    async def _release(self, lease: StreamLease) -> None:
        try:
            await self.client.zrem(self._key(lease.user_id), lease.lease_id)
        except (RedisError, OSError) as exc:  # the lease expires by itself
            log.warning("stream lease not released (it will expire): %s", exc)
