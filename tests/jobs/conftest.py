"""Job queue fixtures: the real Redis, one fresh queue name per test (its keys deleted
afterwards), and scriptable runners that stand in for the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from nomosx.config import JobsSettings
from nomosx.jobs.base import BriefJobRequest, JobEvent
from nomosx.jobs.redis_queue import RedisJobQueue
from nomosx.pipeline.events import StageEvent
from nomosx.store.db import Database

REDIS_HOST = os.environ.get("NOMOSX_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("NOMOSX_TEST_REDIS_PORT", "6379"))
JOBS_DB = 7  # never flushed: the cache suites flush 8-15; every queue has its own keys

OnEvent = Callable[[StageEvent], Awaitable[None]]
Behaviour = Callable[[BriefJobRequest, OnEvent], Awaitable[str]]


@pytest.fixture
def redis_url() -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{JOBS_DB}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def queue_name(redis: Redis) -> AsyncIterator[str]:
    name = f"nomosx-test:{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        keys = [key async for key in redis.scan_iter(match="{" + name + "}:*")]
        if keys:
            await redis.delete(*keys)


@pytest.fixture
def jobs_settings(queue_name: str) -> JobsSettings:
    return JobsSettings(
        queue=queue_name, retry_delay=0.05, max_tries=3, job_timeout=20, retain_events=600
    )


@pytest.fixture
async def queue(redis_url: str, jobs_settings: JobsSettings) -> AsyncIterator[RedisJobQueue]:
    jobs = RedisJobQueue(redis_url, jobs_settings)
    await jobs.start()
    try:
        yield jobs
    finally:
        await jobs.stop()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await database.migrate()
    try:
        yield database
    finally:
        await database.dispose()


class ScriptedRunner:
    """A runner that plays one behaviour per try (the last one again when they run out)
    and records every request it was given."""

    def __init__(self, *behaviours: Behaviour) -> None:
        self.behaviours = list(behaviours) or [succeed]
        self.calls: list[BriefJobRequest] = []
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, request: BriefJobRequest, on_event: OnEvent) -> str:
        behaviour = self.behaviours[min(len(self.calls), len(self.behaviours) - 1)]
        self.calls.append(request)
        self.started.set()
        try:
            return await behaviour(request, on_event)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def succeed(request: BriefJobRequest, on_event: OnEvent) -> str:
    for stage in ("scout", "rank"):
        await on_event(StageEvent(stage, "start"))
        await on_event(StageEvent(stage, "end", counts={"sources": 3}, duration_ms=1.0))
    return request.brief_id


def fail_with(exc: Exception) -> Behaviour:
    async def behaviour(request: BriefJobRequest, on_event: OnEvent) -> str:
        await on_event(StageEvent("scout", "start"))
        raise exc

    return behaviour


async def hang(request: BriefJobRequest, on_event: OnEvent) -> str:
    await on_event(StageEvent("scout", "start"))
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def collect(
    events: AsyncGenerator[JobEvent, None], *, until: int | None = None, within: float = 30
) -> list[JobEvent]:
    """The events until the job's end (or until ``until`` of them), within ``within`` s."""
    got: list[JobEvent] = []
    async with asyncio.timeout(within), contextlib.aclosing(events):
        async for event in events:
            got.append(event)
            if until is not None and len(got) >= until:
                break
    return got
