"""The in-process queue: cancelling waiting and running jobs, and its counts."""

from __future__ import annotations

import asyncio

from nomosx.jobs.base import BriefJobRequest, JobStatus
from nomosx.jobs.inprocess import InProcessJobQueue

from .conftest import ScriptedRunner, collect, hang, succeed


async def test_cancel_a_running_job() -> None:
    runner = ScriptedRunner(hang)
    jobs = InProcessJobQueue(runner, concurrency=1)
    await jobs.start()
    try:
        await jobs.submit(BriefJobRequest("b1", "Does tea help?", owner_id="u1"))
        await asyncio.wait_for(runner.started.wait(), 10)
        assert await jobs.cancel("b1")
        events = await collect(jobs.events("b1"))
        assert [e.event for e in events] == ["queued", "stage", "cancelled"]
        assert [e.id for e in events] == [1, 2, 3]
        assert runner.cancelled.is_set()
        info = await jobs.info("b1")
        assert info is not None
        assert info.status is JobStatus.CANCELLED
        assert info.owner_id == "u1" and info.attempts == 1
        assert not await jobs.cancel("b1")  # over already
        assert not await jobs.cancel("nope")
        counts = await jobs.counts()
        assert counts.cancelled == 1 and counts.running == 0 and counts.workers == 1
    finally:
        await jobs.stop()


async def test_cancel_a_waiting_job_skips_it_and_the_queue_goes_on() -> None:
    release = asyncio.Event()

    async def blocker(request: BriefJobRequest, on_event: object) -> str:
        await release.wait()
        return request.brief_id

    runner = ScriptedRunner(blocker, succeed)
    jobs = InProcessJobQueue(runner, concurrency=1)
    await jobs.start()
    try:
        await jobs.submit(BriefJobRequest("first", "Does tea help?"))
        await jobs.submit(BriefJobRequest("second", "Does coffee help?"))
        await jobs.submit(BriefJobRequest("third", "Does cocoa help?"))
        await asyncio.wait_for(runner.started.wait(), 10)
        counts = await jobs.counts()
        assert counts.pending == 2 and counts.running == 1
        assert counts.oldest_pending_seconds >= 0

        assert await jobs.cancel("second")
        assert [e.event for e in await collect(jobs.events("second"))] == [
            "queued",
            "cancelled",
        ]
        release.set()
        assert (await collect(jobs.events("third")))[-1].event == "done"
        assert (await collect(jobs.events("first")))[-1].event == "done"
        assert [r.brief_id for r in runner.calls] == ["first", "third"]  # never ran
        second = await jobs.info("second")
        assert second is not None and second.status is JobStatus.CANCELLED
        assert second.attempts == 0
        counts = await jobs.counts()
        assert (counts.succeeded, counts.cancelled, counts.pending) == (2, 1, 0)
        assert counts.oldest_pending_seconds == 0.0
    finally:
        await jobs.stop()


async def test_a_job_cancelled_before_its_first_step_is_cancelled() -> None:
    runner = ScriptedRunner(succeed)
    jobs = InProcessJobQueue(runner, concurrency=1)
    await jobs.start()
    try:
        await jobs.submit(BriefJobRequest("b1", "Does tea help?"))
        job = jobs._jobs["b1"]
        for _ in range(100):  # until the worker takes it; it has not started yet
            if job.task is not None:
                break
            await asyncio.sleep(0)
        assert await jobs.cancel("b1")
        assert (await collect(jobs.events("b1")))[-1].event == "cancelled"
        assert runner.calls == []
        assert job.info.status is JobStatus.CANCELLED
        # the worker is alive: the next job runs
        await jobs.submit(BriefJobRequest("b2", "Does coffee help?"))
        assert (await collect(jobs.events("b2")))[-1].event == "done"
    finally:
        await jobs.stop()
