"""The Redis queue and its worker, in this process, against the real Redis server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from nomosx.config import JobsSettings
from nomosx.errors import CacheError, NoSourcesError, ProviderUnavailable, StoreError
from nomosx.jobs.base import BriefJobRequest, JobStatus
from nomosx.jobs.factory import build_job_queue
from nomosx.jobs.inprocess import InProcessJobQueue
from nomosx.jobs.redis_queue import RedisJobQueue
from nomosx.jobs.retry import backoff
from nomosx.jobs.scripts import Scripts
from nomosx.jobs.worker import BriefWorker, lease_seconds
from nomosx.observability.metrics import Metrics
from nomosx.pipeline.events import StageEvent
from nomosx.store.db import Database
from nomosx.store.dead_letters import DeadLetterRepository

from .conftest import ScriptedRunner, collect, fail_with, hang, succeed

QUESTION = "Does vitamin D reduce fractures?"


@asynccontextmanager
async def running(
    redis_url: str, settings: JobsSettings, runner: ScriptedRunner, db: Database, **options: object
) -> AsyncIterator[BriefWorker]:
    """A worker on its own connection, as in another process, stopped at the end."""
    client = Redis.from_url(redis_url, decode_responses=True)
    worker = BriefWorker(
        client, settings, runner, DeadLetterRepository(db), poll_interval=0.05, **options
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        await client.aclose()


async def test_submitting_a_brief_id_twice_changes_nothing(
    queue: RedisJobQueue, redis: Redis
) -> None:
    first = await queue.submit(BriefJobRequest("b1", QUESTION, sources=5, owner_id="u1"))
    again = await queue.submit(BriefJobRequest("b1", "Another question?", owner_id="u2"))
    assert first.status is JobStatus.PENDING and first.attempts == 0
    assert (again.question, again.owner_id, again.created_at) == (
        QUESTION,
        "u1",
        first.created_at,
    )
    assert await redis.zcard(queue.keys.queue) == 1
    events = await collect(queue.events("b1"), until=1)
    assert [(e.id, e.event, e.data) for e in events] == [
        (1, "queued", {"briefId": "b1", "status": "pending"})
    ]
    assert await redis.xlen(queue.keys.events("b1")) == 1
    assert await queue.info("unknown") is None
    assert await collect(queue.events("unknown")) == []


async def test_events_resume_by_id_from_another_api_process(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    other = RedisJobQueue(redis_url, jobs_settings)  # another API process
    try:
        await queue.submit(BriefJobRequest("b1", QUESTION, owner_id="u1"))
        live = asyncio.create_task(collect(other.events("b1")))  # waits for the worker
        runner = ScriptedRunner(succeed)
        async with running(redis_url, jobs_settings, runner, sqlite_db):
            events = await live
        assert [e.event for e in events] == ["queued", *["stage"] * 4, "done"]
        assert [e.id for e in events] == [1, 2, 3, 4, 5, 6]
        assert events[2].data == {
            "stage": "scout",
            "status": "end",
            "counts": {"sources": 3},
            "durationMs": 1.0,
        }
        assert events[-1].data == {"briefId": "b1", "status": "succeeded"}
        assert runner.calls == [BriefJobRequest("b1", QUESTION, owner_id="u1")]

        resumed = await collect(other.events("b1", after=3))
        assert [e.id for e in resumed] == [4, 5, 6]
        assert await collect(queue.events("b1", after=6)) == []  # nothing after the end
        info = await other.info("b1")
        assert info is not None
        assert (info.status, info.attempts, info.error) == (JobStatus.SUCCEEDED, 1, None)
        counts = await other.counts()
        assert (counts.pending, counts.running, counts.succeeded) == (0, 0, 1)
        assert counts.oldest_pending_seconds == 0.0
    finally:
        await other.stop()


async def test_a_failing_try_is_retried_with_backoff_then_succeeds(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    runner = ScriptedRunner(
        fail_with(ProviderUnavailable("openai: 503")),
        fail_with(RuntimeError("a bug, once")),
        succeed,
    )
    await queue.submit(BriefJobRequest("b1", QUESTION))
    async with running(redis_url, jobs_settings, runner, sqlite_db):
        events = await collect(queue.events("b1"))
    retries = [e.data for e in events if e.event == "retry"]
    assert retries == [
        {
            "attempt": 2,
            "maxTries": 3,
            "reason": "error",
            "delaySeconds": 0.05,
            "code": "ProviderUnavailable",
            "message": "openai: 503",
        },
        {
            "attempt": 3,
            "maxTries": 3,
            "reason": "error",
            "delaySeconds": 0.1,  # doubled
            "code": "InternalError",
            "message": "RuntimeError",  # no internals for callers
        },
    ]
    assert events[-1].event == "done"
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    info = await queue.info("b1")
    assert info is not None and (info.status, info.attempts) == (JobStatus.SUCCEEDED, 3)
    assert len(runner.calls) == 3
    assert await DeadLetterRepository(sqlite_db).recent() == []
    assert backoff(5.0, 1) == 5.0 and backoff(5.0, 3) == 20.0 and backoff(5.0, 30) == 3600.0


async def test_after_max_tries_the_job_fails_with_a_dead_letter(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, db: Database
) -> None:
    settings = jobs_settings.model_copy(update={"max_tries": 2})
    runner = ScriptedRunner(fail_with(StoreError("database sqlite:///x failed: disk I/O")))
    await queue.submit(BriefJobRequest("dead-1", QUESTION, sources=4, owner_id="u9"))
    async with running(redis_url, settings, runner, db):
        events = await collect(queue.events("dead-1"))
    assert [e.event for e in events if e.event != "stage"] == ["queued", "retry", "error"]
    assert events[-1].data == {
        "code": "StoreError",
        "message": "database sqlite:///x failed: disk I/O",
    }
    info = await queue.info("dead-1")
    assert info is not None
    assert (info.status, info.attempts, info.error_code) == (JobStatus.FAILED, 2, "StoreError")
    assert info.error == "database sqlite:///x failed: disk I/O"
    letters = [d for d in await DeadLetterRepository(db).recent(50) if d.brief_id == "dead-1"]
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.question, letter.owner_id, letter.attempts) == (QUESTION, "u9", 2)
    assert (letter.error_code, letter.error) == (
        "StoreError",
        "database sqlite:///x failed: disk I/O",
    )
    assert (await queue.counts()).failed == 1


async def test_a_brief_over_its_time_fails_after_its_tries(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    settings = jobs_settings.model_copy(update={"job_timeout": 0.2, "max_tries": 1})
    runner = ScriptedRunner(hang)
    await queue.submit(BriefJobRequest("b1", QUESTION))
    async with running(redis_url, settings, runner, sqlite_db):
        events = await collect(queue.events("b1"))
    assert events[-1].data == {"code": "JobTimeout", "message": "the brief took longer than 0.2 s"}
    assert runner.cancelled.is_set()
    (letter,) = await DeadLetterRepository(sqlite_db).recent()
    assert (letter.error_code, letter.attempts) == ("JobTimeout", 1)


async def test_the_question_s_own_failure_is_not_retried(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    runner = ScriptedRunner(fail_with(NoSourcesError("nothing in the library about it")))
    await queue.submit(BriefJobRequest("b1", QUESTION))
    async with running(redis_url, jobs_settings, runner, sqlite_db):
        events = await collect(queue.events("b1"))
    assert [e.event for e in events] == ["queued", "stage", "error"]
    assert events[-1].data["code"] == "NoSourcesError"
    assert len(runner.calls) == 1
    assert await DeadLetterRepository(sqlite_db).recent() == []


async def test_cancel_a_waiting_job(queue: RedisJobQueue, redis: Redis) -> None:
    await queue.submit(BriefJobRequest("b1", QUESTION))
    assert (await queue.counts()).pending == 1
    assert await queue.cancel("b1")
    events = await collect(queue.events("b1"))
    assert [(e.id, e.event) for e in events] == [(1, "queued"), (2, "cancelled")]
    info = await queue.info("b1")
    assert info is not None and info.status is JobStatus.CANCELLED
    assert not await queue.cancel("b1")  # over already
    assert not await queue.cancel("unknown")
    assert await redis.zcard(queue.keys.queue) == 0
    assert 0 < await redis.ttl(queue.keys.job("b1")) <= 600  # kept retain_events
    assert 0 < await redis.ttl(queue.keys.events("b1")) <= 600
    counts = await queue.counts()
    assert (counts.pending, counts.cancelled) == (0, 1)


async def test_cancel_a_running_job(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    runner = ScriptedRunner(hang, succeed)
    await queue.submit(BriefJobRequest("b1", QUESTION))
    async with running(redis_url, jobs_settings, runner, sqlite_db):
        await collect(queue.events("b1"), until=2)  # queued, and scout started
        assert (await queue.counts()).running == 1
        assert await queue.cancel("b1")
        events = await collect(queue.events("b1", after=2))
        assert [e.event for e in events] == ["cancelled"]
        assert runner.cancelled.is_set()
        # the worker goes on with other jobs
        await queue.submit(BriefJobRequest("b2", QUESTION))
        assert (await collect(queue.events("b2")))[-1].event == "done"
    info = await queue.info("b1")
    assert info is not None and info.status is JobStatus.CANCELLED
    assert len(runner.calls) == 2


async def test_a_job_busy_with_redis_is_cancelled_all_the_same(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    """Python 3.11's wait_for (in every redis-py command) loses most cancellations that
    arrive during a command: the worker repeats them and the job checks at each event."""
    client = Redis.from_url(redis_url, decode_responses=True)
    key = queue.keys.prefix + "scratch"

    async def busy(request: BriefJobRequest, on_event: object) -> str:
        for n in range(1_000_000):
            await client.incr(key)
            if n % 50 == 0:
                await on_event(StageEvent("read", "start"))  # type: ignore[operator]
        return request.brief_id

    runner = ScriptedRunner(busy)
    settings = jobs_settings.model_copy(update={"job_timeout": 600})  # not what stops it
    try:
        await queue.submit(BriefJobRequest("b1", QUESTION))
        async with running(redis_url, settings, runner, sqlite_db):
            await collect(queue.events("b1"), until=2)
            assert await queue.cancel("b1")
            assert (await collect(queue.events("b1", after=2)))[-1].event == "cancelled"
    finally:
        await client.aclose()
    info = await queue.info("b1")
    assert info is not None and info.status is JobStatus.CANCELLED


async def test_a_dead_worker_s_job_is_taken_again_once_its_lease_runs_out(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    await queue.submit(BriefJobRequest("b1", QUESTION))
    # a worker takes it and dies at once: it never renews its short lease
    dead = await Scripts(queue.client, queue.keys).claim(
        token="dead", lease_ms=300, worker="ghost:1", retain=600
    )
    assert dead is not None and dead.fields["attempts"] == "1"
    info = await queue.info("b1")
    assert info is not None and info.status is JobStatus.RUNNING
    runner = ScriptedRunner(succeed)
    async with running(redis_url, jobs_settings, runner, sqlite_db):
        events = await collect(queue.events("b1"))
    assert [e.event for e in events][:2] == ["queued", "retry"]
    assert events[1].data == {"attempt": 2, "maxTries": 3, "reason": "worker lost"}
    assert events[-1].event == "done"
    info = await queue.info("b1")
    assert info is not None and (info.status, info.attempts) == (JobStatus.SUCCEEDED, 2)
    assert len(runner.calls) == 1
    # the dead worker, were it a zombie, cannot record an end: the job is not its own
    scripts = Scripts(queue.client, queue.keys)
    assert not await scripts.finish(
        "b1", token="dead", outcome="failed", event="error", data="{}", retain=600
    )


async def test_a_job_lost_on_every_try_fails_with_a_dead_letter(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    settings = jobs_settings.model_copy(update={"max_tries": 1})
    await queue.submit(BriefJobRequest("b1", QUESTION))
    scripts = Scripts(queue.client, queue.keys)
    assert await scripts.claim(token="dead", lease_ms=100, worker="ghost:1", retain=600)
    runner = ScriptedRunner(succeed)
    async with running(redis_url, settings, runner, sqlite_db):
        events = await collect(queue.events("b1"))
    assert [e.event for e in events] == ["queued", "retry", "error"]
    assert events[-1].data["code"] == "WorkerLost"
    assert runner.calls == []
    (letter,) = await DeadLetterRepository(sqlite_db).recent()
    assert (letter.brief_id, letter.error_code, letter.attempts) == ("b1", "WorkerLost", 2)


async def test_a_stopping_worker_gives_its_jobs_back(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    runner = ScriptedRunner(hang)
    await queue.submit(BriefJobRequest("b1", QUESTION))
    async with running(redis_url, jobs_settings, runner, sqlite_db, grace=0.1) as worker:
        await collect(queue.events("b1"), until=2)
        counts = await queue.counts()
        assert (counts.running, counts.workers) == (1, 1)
        worker.stop()
    events = await collect(queue.events("b1", after=2), until=1)
    assert [(e.event, e.data) for e in events] == [
        ("retry", {"reason": "worker stopped", "delaySeconds": 0})
    ]
    info = await queue.info("b1")
    assert info is not None
    assert (info.status, info.attempts) == (JobStatus.PENDING, 0)  # that try is not counted
    counts = await queue.counts()
    assert (counts.pending, counts.running, counts.workers) == (1, 0, 0)
    # the next worker runs it from the start
    async with running(redis_url, jobs_settings, ScriptedRunner(succeed), sqlite_db):
        assert (await collect(queue.events("b1", after=3)))[-1].event == "done"


async def test_a_burst_worker_stops_when_the_queue_is_empty(
    queue: RedisJobQueue, redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database
) -> None:
    for n in range(3):
        await queue.submit(BriefJobRequest(f"b{n}", QUESTION))
    runner = ScriptedRunner(succeed)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        worker = BriefWorker(
            client,
            jobs_settings,
            runner,
            DeadLetterRepository(sqlite_db),
            burst=True,
            poll_interval=0.05,
        )
        await asyncio.wait_for(worker.run(), 30)
    finally:
        await client.aclose()
    assert sorted(r.brief_id for r in runner.calls) == ["b0", "b1", "b2"]
    assert (await queue.counts()).succeeded == 3


async def test_queue_counts_feed_the_metrics(queue: RedisJobQueue) -> None:
    await queue.submit(BriefJobRequest("b1", QUESTION))
    await queue.submit(BriefJobRequest("b2", QUESTION))
    counts = await queue.counts()
    assert (counts.pending, counts.running, counts.workers) == (2, 0, 0)
    assert counts.oldest_pending_seconds >= 0
    metrics = Metrics()
    metrics.set_queue(counts)
    text = metrics.render().decode()
    assert "nomosx_jobs_queue_depth 2.0" in text
    assert "nomosx_jobs_workers 0.0" in text
    assert 'nomosx_jobs{state="cancelled"} 0.0' in text
    assert "nomosx_jobs_oldest_pending_seconds" in text


async def test_an_unreachable_redis_is_a_cache_error(jobs_settings: JobsSettings) -> None:
    jobs = RedisJobQueue("redis://127.0.0.1:1/0", jobs_settings)
    try:
        with pytest.raises(CacheError, match=r"the job queue at redis://127\.0\.0\.1:1/0 failed"):
            await jobs.submit(BriefJobRequest("b1", QUESTION))
    finally:
        await jobs.stop()


async def test_the_factory_chooses_by_settings(tmp_path: object, redis_url: str) -> None:
    from pathlib import Path

    from nomosx.config import Settings

    data = Path(str(tmp_path)) / "data"
    runner = ScriptedRunner()
    assert isinstance(build_job_queue(Settings(data_dir=data), runner), InProcessJobQueue)
    with_redis = Settings(data_dir=data, redis_url=redis_url)
    jobs = build_job_queue(with_redis, runner)
    assert isinstance(jobs, RedisJobQueue) and jobs.worker is None
    await jobs.stop()
    forced = Settings(data_dir=data, redis_url=redis_url, jobs={"backend": "inprocess"})
    assert isinstance(build_job_queue(forced, runner), InProcessJobQueue)
    with pytest.raises(ValueError, match="dead_letters"):
        build_job_queue(with_redis, runner, run_jobs=True)
    assert lease_seconds(900) == 35.0 and lease_seconds(4) == 9.0


async def test_an_api_process_may_run_jobs_itself(
    redis_url: str, jobs_settings: JobsSettings, sqlite_db: Database, tmp_path: object
) -> None:
    from pathlib import Path

    from nomosx.config import Settings

    settings = Settings(
        data_dir=Path(str(tmp_path)) / "data",
        redis_url=redis_url,
        jobs=jobs_settings.model_dump(),
    )
    runner = ScriptedRunner(succeed)
    jobs = build_job_queue(
        settings, runner, run_jobs=True, dead_letters=DeadLetterRepository(sqlite_db)
    )
    await jobs.start()
    try:
        await jobs.submit(BriefJobRequest("b1", QUESTION))
        assert (await collect(jobs.events("b1")))[-1].event == "done"
    finally:
        await jobs.stop()
    assert len(runner.calls) == 1
