"""Server-sent events: the wire encoding, and heartbeats during long silences."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from nomosx.auth.models import User
    from nomosx.quota.service import Quota

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and friends: do not buffer the stream
}
HEARTBEAT = b": ping\n\n"
RELEASE_TIMEOUT = 5.0  # seconds to give a stream slot back when the stream ends


def encode(event: str, data: Any, *, event_id: int | str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    lines.extend(f"data: {line}" for line in payload.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


async def with_heartbeat(frames: AsyncIterator[bytes], interval: float) -> AsyncIterator[bytes]:
    """``frames``, with a comment line whenever nothing was sent for ``interval`` seconds.

    The source is consumed by one task; closing this generator cancels that task (and so
    whatever it awaits upstream).
    """
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)

    async def pump() -> None:
        try:
            async for frame in frames:
                await queue.put(frame)
        finally:
            with contextlib.suppress(asyncio.QueueFull):  # else seen by task.done() below
                queue.put_nowait(None)

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                if queue.empty():
                    async with asyncio.timeout(interval):  # no task per frame, unlike wait_for
                        frame = await queue.get()
                else:
                    frame = queue.get_nowait()
            except TimeoutError:
                if task.done() and queue.empty():
                    break
                yield HEARTBEAT
                continue
            if frame is None:
                break
            yield frame
        await task  # re-raise a failure of the source
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()


async def leased(frames: AsyncIterator[bytes], quota: Quota, user: User) -> AsyncIterator[bytes]:
    """Take one of the user's stream slots now (429 if none is free), hold it while
    ``frames`` flow (renewing its lease) and give it back when the stream ends."""
    lease = await quota.open_stream(user)
    if lease is None:
        return frames

    async def held() -> AsyncIterator[bytes]:
        try:
            async for frame in frames:
                await lease.keep_alive()
                yield frame
        finally:
            # When the client goes away Starlette cancels the response's scope, and every
            # await here would be cancelled too: the slot would stay taken until its lease
            # ran out. Shielded, and bounded in case Redis hangs.
            with anyio.move_on_after(RELEASE_TIMEOUT, shield=True):
                await lease.release()
                aclose = getattr(frames, "aclose", None)
                if aclose is not None:
                    await aclose()

    return held()
