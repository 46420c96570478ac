"""Two real ``nomosx worker`` processes; the one running a brief is killed (SIGKILL) in the
middle of it; the other one finishes it: one stored brief, the dead try's run failed.

The brief is slowed by a loopback language model that answers each request after a
delay; the store is shared by the workers (an SQLite file, or PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from nomosx.app import NomosX
from nomosx.config import JobsSettings, Settings
from nomosx.jobs.base import BriefJobRequest, JobEvent, JobStatus
from nomosx.jobs.redis_queue import RedisJobQueue
from nomosx.jobs.runner import LOST
from nomosx.store.db import Database
from nomosx.testing.fake_llm import FakeLLMServer, Reply

from .conftest import collect

QUESTION = "Does vitamin D supplementation reduce the risk of fractures in older adults?"
JOB_TIMEOUT = 8.0  # the dead worker's job is taken again after min(this, 30) + 5 s
LLM_DELAY = 0.4  # per model request: a brief makes five (queries, three readings, brief)
DOCS = [
    {
        "_id": f"vd{n}",
        "title": title,
        "text": text_,
    }
    for n, (title, text_) in enumerate(
        [
            (
                "Vitamin D supplementation and fracture risk in older adults",
                "Vitamin D supplementation reduced the risk of hip fractures in older adults. "
                "The effect was larger with calcium.",
            ),
            (
                "Vitamin D and falls and fractures: a randomised trial",
                "Annual high-dose vitamin D increased the risk of falls and fractures. "
                "Older women were enrolled.",
            ),
            (
                "Calcium, vitamin D and fracture prevention: meta-analysis",
                "Supplementation with vitamin D alone did not reduce fracture risk. "
                "Combined calcium and vitamin D reduced hip fractures.",
            ),
            (
                "Vitamin D status and bone mineral density in adults",
                "Low vitamin D status was associated with lower bone density and more "
                "fractures in adults.",
            ),
        ]
    )
]


def _settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        bundled_library=False,
        retrieval={"embedder": "none"},
        cache={"enabled": False},
    )


async def _load_library(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "library.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    app = await NomosX.open(_settings(tmp_path / "loader", database_url))
    try:
        report = await app.ingest(path)
        assert report.inserted == len(DOCS)
    finally:
        await app.close()


@contextlib.contextmanager
def _workers(
    tmp_path: Path, env: dict[str, str], count: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for n in range(count):
            log = (tmp_path / f"worker-{n}.log").open("wb")
            logs.append(log)
            worker_env = {**env, "NOMOSX_DATA_DIR": str(tmp_path / f"worker-{n}")}
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "nomosx", "worker", "--concurrency", "1"],
                    env=worker_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)
        for log in logs:
            log.close()


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.1)


async def _next(events: AsyncIterator[JobEvent], wanted: str) -> list[JobEvent]:
    got = []
    async for event in events:
        got.append(event)
        if event.event == "stage" and event.data == {"stage": wanted, "status": "start"}:
            return got
    raise AssertionError(f"the job ended before stage {wanted!r}: {got}")


async def _kill_mid_brief(tmp_path: Path, database_url: str, redis_url: str) -> None:
    await _load_library(tmp_path, database_url)
    queue_name = f"nomosx-test:{uuid.uuid4().hex[:12]}"
    jobs = RedisJobQueue(redis_url, JobsSettings(queue=queue_name))
    server = FakeLLMServer(models=("gpt-4o-mini",), default=Reply("No JSON.", delay=LLM_DELAY))
    await server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMOSX_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        OPENAI_API_KEY="sk-test-workers",
        NOMOSX_LLM_CHAIN="openai:gpt-4o-mini",
        NOMOSX_LLM__OPENAI_BASE_URL=server.openai_base_url,
        NOMOSX_LLM__READ_CONCURRENCY="1",
        NOMOSX_PIPELINE__SOURCES="3",
        NOMOSX_RETRIEVAL__EMBEDDER="none",
        NOMOSX_CACHE__ENABLED="false",
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_JOBS__QUEUE=queue_name,
        NOMOSX_JOBS__JOB_TIMEOUT=str(JOB_TIMEOUT),
        NOMOSX_JOBS__RETRY_DELAY="0.1",
    )
    brief_id = str(uuid.uuid4())
    try:
        with _workers(tmp_path, env, 2) as procs:

            async def both_alive() -> bool:
                assert all(p.poll() is None for p in procs), "a worker exited at start"
                return (await jobs.counts()).workers == 2

            await _until(both_alive, 120)
            await jobs.submit(BriefJobRequest(brief_id, QUESTION, sources=3))
            events = jobs.events(brief_id)
            seen = await asyncio.wait_for(_next(events, "read"), 60)  # mid-brief
            info = await jobs.info(brief_id)
            assert info is not None and info.status is JobStatus.RUNNING
            fields = await jobs.client.hgetall(jobs.keys.job(brief_id))
            pid = int(fields["worker"].split(":")[1])
            victim = next(p for p in procs if p.pid == pid)
            survivor = next(p for p in procs if p.pid != pid)
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(30) == -signal.SIGKILL

            rest = await collect(events, within=90)  # taken again when the lease ran out
            assert rest[0].event in ("stage", "retry")
            retry = next(e for e in rest if e.event == "retry")
            assert retry.data == {"attempt": 2, "maxTries": 3, "reason": "worker lost"}
            assert rest[-1].event == "done"
            assert rest[-1].data == {"briefId": brief_id, "status": "succeeded"}
            ids = [e.id for e in seen + rest]
            assert ids == list(range(1, len(ids) + 1))  # one stream across both workers

            info = await jobs.info(brief_id)
            assert info is not None
            assert (info.status, info.attempts) == (JobStatus.SUCCEEDED, 2)
            counts = await jobs.counts()
            assert (counts.pending, counts.running, counts.succeeded) == (0, 0, 1)

            survivor.send_signal(signal.SIGTERM)  # graceful: nothing to wait for
            assert survivor.wait(60) == 0
    except BaseException:
        for n in range(2):
            log = tmp_path / f"worker-{n}.log"
            if log.exists():
                print(f"--- worker {n} ---\n{log.read_text(errors='replace')[-6000:]}")
        raise
    finally:
        keys = [k async for k in jobs.client.scan_iter(match="{" + queue_name + "}:*")]
        if keys:
            await jobs.client.delete(*keys)
        await jobs.stop()
        await server.stop()

    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            briefs = await conn.scalar(
                text("SELECT count(*) FROM briefs WHERE id = :id"), {"id": brief_id}
            )
            runs = (
                await conn.execute(
                    text(
                        "SELECT status, error FROM pipeline_runs WHERE brief_id = :id "
                        "ORDER BY created_at"
                    ),
                    {"id": brief_id},
                )
            ).all()
    finally:
        await db.dispose()
    assert briefs == 1
    assert [(r.status, r.error) for r in runs] == [("failed", LOST), ("succeeded", None)]


@pytest.mark.timeout(300)
async def test_a_worker_killed_mid_brief_on_sqlite(tmp_path: Path, redis_url: str) -> None:
    await _kill_mid_brief(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}", redis_url)


@pytest.mark.postgres
@pytest.mark.timeout(300)
async def test_a_worker_killed_mid_brief_on_postgres(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    await _kill_mid_brief(tmp_path, postgres_url, redis_url)


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NOMOSX_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    clean.update(
        NOMOSX_DATA_DIR=str(tmp_path / "data"),
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_RETRIEVAL__EMBEDDER="none",
        COLUMNS="200",
        NO_COLOR="1",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "nomosx", "worker", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=120,
        check=False,
    )


def test_the_worker_refuses_to_start_without_redis(tmp_path: Path, redis_url: str) -> None:
    result = _cli(tmp_path)
    assert result.returncode == 1
    assert "set REDIS_URL" in result.stderr and "Traceback" not in result.stderr

    result = _cli(tmp_path, REDIS_URL=redis_url, NOMOSX_JOBS__BACKEND="inprocess")
    assert result.returncode == 1
    assert "NOMOSX_JOBS__BACKEND=inprocess" in result.stderr

    result = _cli(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert "the job queue at redis://127.0.0.1:1/0 failed" in result.stderr


async def test_a_burst_worker_on_an_empty_queue_exits(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    result = await asyncio.to_thread(
        _cli, tmp_path, "--burst", REDIS_URL=redis_url, NOMOSX_JOBS__QUEUE=queue_name
    )
    assert result.returncode == 0, result.stderr
    assert f"NomosX worker on queue {queue_name!r} (2 at a time)" in result.stderr
