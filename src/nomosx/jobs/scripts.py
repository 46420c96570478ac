"""The job queue's state changes, each one Lua script, so each is atomic.

A job's status moves only inside these scripts, together with the structures that hold
it (waiting, running, its lease owner) and the event that announces it; so a job can never
be both waiting and held, an event never says what the state does not, and a worker
whose lease was taken over (it was thought dead) cannot finish a job it no longer holds.
Time is the Redis server's (``TIME``): workers on machines whose clocks disagree still
agree on leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from nomosx.jobs.keys import QueueKeys

_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function close_job(job, events, stats, status, event, data, retain)
  redis.call('HSET', job, 'status', status, 'finished', now_ms())
  redis.call('HDEL', job, 'cancel', 'lost')
  redis.call('XADD', events, '0-*', 'e', event, 'd', data)
  redis.call('EXPIRE', job, retain)
  redis.call('EXPIRE', events, retain)
  redis.call('HINCRBY', stats, status, 1)
end
"""

# KEYS: queue, job, events. ARGV: id, question, sources, owner, request id, created (ISO),
# queued event data. 1: queued; 0: the job exists already (nothing changes).
_SUBMIT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local now = now_ms()
redis.call('HSET', KEYS[2], 'status', 'pending', 'question', ARGV[2], 'sources', ARGV[3],
  'owner', ARGV[4], 'request', ARGV[5], 'created', ARGV[6], 'enqueued', now, 'attempts', 0)
redis.call('XADD', KEYS[3], '0-*', 'e', 'queued', 'd', ARGV[7])
redis.call('ZADD', KEYS[1], now, ARGV[1])
return 1
"""

# KEYS: queue, running, owners, stats. ARGV: token, lease ms, key prefix, worker, retain s.
# First the leases that ran out (their worker died) go back to the queue (or are cancelled,
# if that was asked meanwhile); then the first job due is taken: {id, job fields} or nil.
_CLAIM = """
local now = now_ms()
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  local job = ARGV[3] .. 'job:' .. id
  if redis.call('HGET', job, 'cancel') == '1' then
    close_job(job, ARGV[3] .. 'events:' .. id, KEYS[4], 'cancelled', 'cancelled',
      cjson.encode({briefId = id, status = 'cancelled'}), ARGV[5])
  elseif redis.call('EXISTS', job) == 1 then
    redis.call('HSET', job, 'status', 'pending', 'lost', '1')
    redis.call('ZADD', KEYS[1], redis.call('HGET', job, 'enqueued') or now, id)
  end
end
while true do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
  if #ids == 0 then return false end
  local id = ids[1]
  redis.call('ZREM', KEYS[1], id)
  local job = ARGV[3] .. 'job:' .. id
  if redis.call('HGET', job, 'status') == 'pending' then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    redis.call('HSET', KEYS[3], id, ARGV[1])
    redis.call('HINCRBY', job, 'attempts', 1)
    redis.call('HSET', job, 'status', 'running', 'worker', ARGV[4], 'started', now)
    local fields = redis.call('HGETALL', job)
    redis.call('HDEL', job, 'lost')
    return {id, fields}
  end
end
"""

# KEYS: running, owners, workers. ARGV: token, lease ms, key prefix, worker, worker ttl ms,
# then the ids the worker runs. A heartbeat, and each lease held extended; returns
# {ids whose lease is lost, ids whose cancellation was asked}.
_RENEW = """
local now = now_ms()
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]))
local lost, cancel = {}, {}
for i = 6, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[2], id) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), id)
    if redis.call('HGET', ARGV[3] .. 'job:' .. id, 'cancel') == '1' then
      table.insert(cancel, id)
    end
  else
    table.insert(lost, id)
  end
end
return {lost, cancel}
"""

# KEYS: queue, running, owners, stats, job, events. ARGV: id, token, outcome, event, event
# data, error code, error, retain s, defer ms. Outcomes: succeeded, failed, cancelled (the
# end), retry (again after the delay; cancelled instead if that was asked), release (the
# worker stops: again at once, the try not counted). 0 if the lease is not the caller's.
_FINISH = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local outcome = ARGV[3]
if outcome == 'retry' or outcome == 'release' then
  if redis.call('HGET', KEYS[5], 'cancel') == '1' then
    close_job(KEYS[5], KEYS[6], KEYS[4], 'cancelled', 'cancelled',
      cjson.encode({briefId = ARGV[1], status = 'cancelled'}), ARGV[8])
    return 1
  end
  redis.call('HSET', KEYS[5], 'status', 'pending')
  local score = now_ms() + tonumber(ARGV[9])
  if outcome == 'release' then
    redis.call('HINCRBY', KEYS[5], 'attempts', -1)
    score = redis.call('HGET', KEYS[5], 'enqueued') or score
  end
  redis.call('XADD', KEYS[6], '0-*', 'e', ARGV[4], 'd', ARGV[5])
  redis.call('ZADD', KEYS[1], score, ARGV[1])
  return 1
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[5], 'error_code', ARGV[6], 'error', ARGV[7])
end
close_job(KEYS[5], KEYS[6], KEYS[4], outcome, ARGV[4], ARGV[5], ARGV[8])
return 1
"""

# KEYS: queue, running, stats, job, events. ARGV: id, cancelled event data, retain s.
# 0: unknown or over; 1: cancelled (it was waiting); 2: asked (its worker will stop it).
_CANCEL = """
local status = redis.call('HGET', KEYS[4], 'status')
if status ~= 'pending' and status ~= 'running' then return 0 end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HSET', KEYS[4], 'cancel', '1')
  return 2
end
redis.call('ZREM', KEYS[1], ARGV[1])
close_job(KEYS[4], KEYS[5], KEYS[3], 'cancelled', 'cancelled', ARGV[2], ARGV[3])
return 1
"""

# KEYS: queue, running, stats, workers. ARGV: worker ttl ms. Read only.
_STATS = """
local now = now_ms()
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local done = redis.call('HMGET', KEYS[3], 'succeeded', 'failed', 'cancelled')
return {
  now,
  redis.call('ZCARD', KEYS[1]),
  oldest[2] or '',
  redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf'),
  redis.call('ZCOUNT', KEYS[2], '-inf', now),
  redis.call('ZCOUNT', KEYS[4], now - tonumber(ARGV[1]), '+inf'),
  done[1] or '0', done[2] or '0', done[3] or '0',
}
"""

Outcome = Literal["succeeded", "failed", "cancelled", "retry", "release"]


@dataclass(frozen=True, slots=True)
class Claim:
    brief_id: str
    fields: dict[str, str]  # the job's hash as it was when taken


@dataclass(frozen=True, slots=True)
class Renewal:
    lost: list[str]  # another worker holds these now: stop them, say nothing
    cancel: list[str]  # cancellation asked: stop them and say so


@dataclass(frozen=True, slots=True)
class Stats:
    now_ms: int
    waiting: int  # in the queue, due or deferred (a retry's backoff)
    oldest_score_ms: float | None
    running: int  # held under a live lease
    stale: int  # held under a lease that ran out: the worker died; waiting again soon
    workers: int  # heartbeats within the worker TTL
    succeeded: int
    failed: int
    cancelled: int


class Scripts:
    """The scripts, registered on one client (``decode_responses=True``)."""

    def __init__(self, client: Redis, keys: QueueKeys) -> None:
        self.keys = keys
        self._submit = client.register_script(_COMMON + _SUBMIT)
        self._claim = client.register_script(_COMMON + _CLAIM)
        self._renew = client.register_script(_COMMON + _RENEW)
        self._finish = client.register_script(_COMMON + _FINISH)
        self._cancel = client.register_script(_COMMON + _CANCEL)
        self._stats = client.register_script(_COMMON + _STATS)

    async def submit(
        self,
        brief_id: str,
        *,
        question: str,
        sources: int | None,
        owner_id: str | None,
        request_id: str | None,
        created: str,
        queued: str,
    ) -> bool:
        k = self.keys
        created_now = await self._submit(
            keys=[k.queue, k.job(brief_id), k.events(brief_id)],
            args=[
                brief_id,
                question,
                "" if sources is None else str(sources),
                owner_id or "",
                request_id or "",
                created,
                queued,
            ],
        )
        return bool(created_now)

    async def claim(self, *, token: str, lease_ms: int, worker: str, retain: int) -> Claim | None:
        k = self.keys
        reply: Any = await self._claim(
            keys=[k.queue, k.running, k.owners, k.stats],
            args=[token, lease_ms, k.prefix, worker, retain],
        )
        if not reply:
            return None
        brief_id, flat = reply
        return Claim(brief_id=brief_id, fields=dict(zip(flat[::2], flat[1::2], strict=True)))

    async def renew(
        self, *, token: str, lease_ms: int, worker: str, worker_ttl_ms: int, ids: list[str]
    ) -> Renewal:
        k = self.keys
        lost, cancel = await self._renew(
            keys=[k.running, k.owners, k.workers],
            args=[token, lease_ms, k.prefix, worker, worker_ttl_ms, *ids],
        )
        return Renewal(lost=list(lost), cancel=list(cancel))

    async def finish(
        self,
        brief_id: str,
        *,
        token: str,
        outcome: Outcome,
        event: str,
        data: str,
        retain: int,
        error_code: str = "",
        error: str = "",
        defer_ms: int = 0,
    ) -> bool:
        k = self.keys
        done = await self._finish(
            keys=[k.queue, k.running, k.owners, k.stats, k.job(brief_id), k.events(brief_id)],
            args=[brief_id, token, outcome, event, data, error_code, error, retain, defer_ms],
        )
        return bool(done)

    async def cancel(self, brief_id: str, *, data: str, retain: int) -> int:
        k = self.keys
        result = await self._cancel(
            keys=[k.queue, k.running, k.stats, k.job(brief_id), k.events(brief_id)],
            args=[brief_id, data, retain],
        )
        return int(result)

    async def stats(self, *, worker_ttl_ms: int) -> Stats:
        k = self.keys
        reply = await self._stats(
            keys=[k.queue, k.running, k.stats, k.workers], args=[worker_ttl_ms]
        )
        now, waiting, oldest, running, stale, workers, ok, failed, cancelled = reply
        return Stats(
            now_ms=int(now),
            waiting=int(waiting),
            oldest_score_ms=float(oldest) if oldest else None,
            running=int(running),
            stale=int(stale),
            workers=int(workers),
            succeeded=int(ok),
            failed=int(failed),
            cancelled=int(cancelled),
        )
