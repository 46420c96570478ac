"""The in-process job queue on its own: idempotent submit, resumable events, context."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from nomosx.errors import NoSourcesError
from nomosx.jobs.base import BriefJobRequest, JobStatus
from nomosx.jobs.inprocess import InProcessJobQueue
from nomosx.observability.context import bind, current_request_id
from nomosx.pipeline.events import StageEvent


async def test_jobs_run_in_the_submitters_context_and_replay_events() -> None:
    seen: list[str | None] = []
    release = asyncio.Event()

    async def runner(
        request: BriefJobRequest, emit: Callable[[StageEvent], Awaitable[None]]
    ) -> str:
        seen.append(current_request_id())
        await emit(StageEvent(stage="scout", status="start"))
        await release.wait()
        if request.question == "fail":
            raise NoSourcesError("nothing relates")
        await emit(StageEvent(stage="scout", status="end", counts={"found": 3}, duration_ms=1.5))
        return request.brief_id

    queue = InProcessJobQueue(runner, concurrency=2)
    await queue.start()
    try:
        with bind(request_id="req-123"):
            first = await queue.submit(BriefJobRequest(brief_id="b1", question="ok"))
        again = await queue.submit(BriefJobRequest(brief_id="b1", question="ok"))
        assert again is first  # idempotent by brief id
        await queue.submit(BriefJobRequest(brief_id="b2", question="fail"))
        await asyncio.sleep(0.05)
        assert (await queue.counts()).running == 2
        release.set()
        events = [e async for e in queue.events("b1")]
        assert [e.event for e in events] == ["queued", "stage", "stage", "done"]
        assert events[2].data == {
            "stage": "scout",
            "status": "end",
            "counts": {"found": 3},
            "durationMs": 1.5,
        }
        assert [e.id for e in [x async for x in queue.events("b1", after=2)]] == [3, 4]
        failed = [e async for e in queue.events("b2")]
        assert failed[-1].event == "error" and failed[-1].data["code"] == "NoSourcesError"
        assert (await queue.info("b2")).status is JobStatus.FAILED  # type: ignore[union-attr]
        assert seen[0] == "req-123"
        counts = await queue.counts()
        assert (counts.succeeded, counts.failed, counts.pending) == (1, 1, 0)
        assert [e async for e in queue.events("unknown")] == []
    finally:
        await queue.stop()


async def test_finished_jobs_are_forgotten_beyond_retain() -> None:
    async def runner(
        request: BriefJobRequest, emit: Callable[[StageEvent], Awaitable[None]]
    ) -> str:
        return request.brief_id

    queue = InProcessJobQueue(runner, concurrency=1, retain=2)
    await queue.start()
    try:
        for i in range(5):
            await queue.submit(BriefJobRequest(brief_id=f"b{i}", question="q"))
            await asyncio.sleep(0.01)
        await queue.submit(BriefJobRequest(brief_id="last", question="q"))
        assert await queue.info("b0") is None
        assert await queue.info("last") is not None
    finally:
        await queue.stop()
