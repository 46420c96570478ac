"""Requests per minute per user, counted by the ``limits`` library.

With Redis the counters live there (every API process shares them); without, in memory.
A sliding-window counter: two integers per user, no list of timestamps. If Redis fails,
requests are admitted (and logged): an outage of the counter must not lock users out.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from nomosx.errors import QuotaExceeded

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RateState:
    """What the ``RateLimit-*`` headers tell the client."""

    limit: int
    remaining: int
    reset: int  # seconds until the window is whole again


def rate_storage(pool: aioredis.ConnectionPool | None, prefix: str) -> Storage:
    """Redis storage on our own connection pool (closed with it), else memory."""
    if pool is None:
        return MemoryStorage()
    # the URI only picks the client library; connections come from ``pool``
    return RedisStorage(
        "async+redis://localhost:6379",
        implementation="redispy",
        key_prefix=prefix,
        wrap_exceptions=True,
        connection_pool=pool,  # type: ignore[arg-type]
    )


class RequestLimiter:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, user_id: str, per_minute: int) -> RateState | None:
        """Count one request; ``QuotaExceeded`` (with the wait) when over the limit;
        ``None`` when the counter could not be reached (the request is admitted)."""
        item = RateLimitItemPerMinute(per_minute)
        try:
            admitted = await self._limiter.hit(item, "requests", user_id)
            stats = await self._limiter.get_window_stats(item, "requests", user_id)
        except (StorageError, RedisError, OSError) as exc:  # an outage admits everyone
            log.warning("rate limit counter unavailable, request admitted: %s", exc)
            return None
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        if not admitted:
            raise QuotaExceeded(
                f"too many requests: the limit is {per_minute} a minute; retry in {reset} s",
                retry_after=reset,
                limit=per_minute,
                remaining=0,
                reset=reset,
            )
        return RateState(limit=per_minute, remaining=max(0, stats.remaining), reset=reset)
