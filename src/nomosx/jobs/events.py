"""Job events, and their log in a Redis stream (one stream per job).

Both queues send the same events (``JobEvent``); the Redis queue keeps them in a stream so
that any API process can serve any job's events, and resume them by id. Stream entry ids
are ``0-1``, ``0-2``, ... (``XADD key 0-*``, Redis 7): the sequence part is the event's
``id``, so ids keep increasing across retries and worker processes, exactly as in the
in-process queue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nomosx.jobs.base import JobEvent
from nomosx.pipeline.events import StageEvent

if TYPE_CHECKING:
    from redis.asyncio import Redis

FINAL_EVENTS = frozenset({"done", "error", "cancelled"})  # the job is over after these


def stage_data(event: StageEvent) -> dict[str, Any]:
    """The SSE payload of a stage event (start: stage and status; end: counts, duration)."""
    data: dict[str, Any] = {"stage": event.stage, "status": event.status}
    if event.status == "end":
        data.update(counts=event.counts, durationMs=event.duration_ms)
    return data


def encode_data(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), default=str)


def _event(entry_id: str, fields: Mapping[str, str]) -> JobEvent:
    return JobEvent(
        id=int(entry_id.partition("-")[2]), event=fields["e"], data=json.loads(fields["d"])
    )


class EventLog:
    """Append to and read one job's stream; the client must decode responses."""

    def __init__(self, client: Redis, key: str) -> None:
        self.client = client
        self.key = key

    async def append(self, event: str, data: Mapping[str, Any]) -> int:
        entry = await self.client.xadd(self.key, {"e": event, "d": encode_data(data)}, id="0-*")
        return int(str(entry).partition("-")[2])

    async def since(self, after: int) -> list[JobEvent]:
        """Every event with ``id > after`` (no waiting)."""
        entries: Any = await self.client.xrange(self.key, min=f"(0-{after}", max="+")
        return [_event(entry_id, fields) for entry_id, fields in entries]

    async def wait(self, after: int, *, block_ms: int) -> list[JobEvent]:
        """Events with ``id > after``, waiting up to ``block_ms`` for the first one."""
        reply: Any = await self.client.xread({self.key: f"0-{after}"}, block=block_ms, count=100)
        if not reply:
            return []
        # RESP2: [[key, entries]]; RESP3: {key: [entries]}
        entries = next(iter(reply.values()))[0] if isinstance(reply, dict) else reply[0][1]
        return [_event(entry_id, fields) for entry_id, fields in entries]
