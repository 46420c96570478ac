"""One object the API asks before doing work for a user: may this request, this stream,
this LLM work go ahead? Each user's own limits override the server's defaults."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from nomosx.auth.models import LOCAL_USER, User
from nomosx.config import LimitsSettings
from nomosx.quota.budget import BudgetGuard
from nomosx.quota.rates import RateState, RequestLimiter, rate_storage
from nomosx.quota.streams import MemoryStreamSlots, RedisStreamSlots, StreamLease, StreamSlots
from nomosx.store.repositories import LLMCallRepository

PREFIX = "nomosx:quota"
OP_TIMEOUT = 0.5  # seconds: a limit check must not hold a request up for long


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    requests_per_minute: int
    concurrent_streams: int
    daily_budget_usd: float | None


class Quota:
    def __init__(
        self,
        settings: LimitsSettings,
        *,
        requests: RequestLimiter,
        streams: StreamSlots,
        budget: BudgetGuard,
        pool: aioredis.ConnectionPool | None = None,
    ) -> None:
        self.settings = settings
        self.requests = requests
        self.streams = streams
        self.budget = budget
        self._pool = pool

    @classmethod
    def build(
        cls, settings: LimitsSettings, redis_url: str | None, ledger: LLMCallRepository
    ) -> Quota:
        """Counters in Redis when ``redis_url`` is set (shared by every API process)."""
        pool = (
            None
            if redis_url is None
            else aioredis.ConnectionPool.from_url(
                redis_url, socket_timeout=OP_TIMEOUT, socket_connect_timeout=OP_TIMEOUT
            )
        )
        streams: StreamSlots
        if pool is None:
            streams = MemoryStreamSlots(settings.stream_lease_seconds)
        else:
            client = aioredis.Redis(connection_pool=pool)
            streams = RedisStreamSlots(client, settings.stream_lease_seconds, PREFIX)
        return cls(
            settings,
            requests=RequestLimiter(rate_storage(pool, PREFIX)),
            streams=streams,
            budget=BudgetGuard(ledger),
            pool=pool,
        )

    def effective(self, user: User) -> EffectiveLimits:
        own = user.limits
        return EffectiveLimits(
            requests_per_minute=own.requests_per_minute or self.settings.requests_per_minute,
            concurrent_streams=own.concurrent_streams or self.settings.concurrent_streams,
            daily_budget_usd=(
                own.daily_budget_usd
                if own.daily_budget_usd is not None
                else self.settings.daily_budget_usd
            ),
        )

    def _limited(self, user: User) -> bool:
        """Limits apply to users with keys; single-user mode's local user has none."""
        return self.settings.enabled and user.id != LOCAL_USER.id

    async def admit(self, user: User) -> RateState | None:
        """Count a request (``QuotaExceeded`` over the limit)."""
        if not self._limited(user):
            return None
        return await self.requests.hit(user.id, self.effective(user).requests_per_minute)

    async def open_stream(self, user: User) -> StreamLease | None:
        """A stream slot (``QuotaExceeded`` when all are taken); release it when done."""
        if not self._limited(user):
            return None
        return await self.streams.acquire(user.id, self.effective(user).concurrent_streams)

    async def check_budget(self, user: User) -> None:
        """``BudgetExceeded`` when the user's LLM spend today reached their budget."""
        if self._limited(user):
            await self.budget.check(user.id, self.effective(user).daily_budget_usd)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
