"""A worker SIGKILLed mid-brief, under load: every brief still completes, and once.

``tests/jobs/test_worker_process.py`` checks one brief on two bare workers, event by
event; this is the same check through the API while briefs and chats keep coming: two
``nomosx worker`` processes (two briefs at a time each) on a Redis queue, one killed
while it runs briefs; the other takes them when their leases run out
(``min(NOMOSX_JOBS__JOB_TIMEOUT, 30) + 5`` s).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from nomosx.config import JobsSettings
from nomosx.jobs.base import JobStatus
from nomosx.jobs.redis_queue import RedisJobQueue
from nomosx.jobs.runner import LOST
from nomosx.store.db import Database
from nomosx.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, Step

from .conftest import (
    CARBON,
    Api,
    NomosXProcess,
    Outcome,
    PostgresCluster,
    RedisServer,
    base_env,
    load,
    prepare_database,
    problem_of,
    report,
    running,
    sse_events,
)

JOB_TIMEOUT = 6.0  # a dead worker's jobs are taken again after min(this, 30) + 5 s
BRIEFS = 8


@pytest.mark.timeout(240)
async def test_a_worker_killed_mid_brief_under_load(
    postgres: PostgresCluster,
    redis_server: RedisServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    database_url = await postgres.create_database()
    key = await prepare_database(tmp_path / "setup", database_url)
    queue = f"faults-worker:{uuid.uuid4().hex[:8]}"
    redis_url = redis_server.url(4)
    submitted: list[str] = []
    succeeded: list[str] = []
    done_at: dict[str, float] = {}

    def answer(_: RecordedRequest) -> Step:
        return Reply("No JSON.", delay=0.3)  # five model requests: a brief takes 2 s or so

    async def brief(client: httpx.AsyncClient) -> tuple[Outcome, str]:
        created = await client.post("/api/briefs?fresh=true", json={"question": CARBON})
        if created.status_code != 202:
            return "failed", problem_of(created)
        brief_id = created.json()["id"]
        submitted.append(brief_id)
        async with client.stream("GET", f"/api/briefs/{brief_id}/events") as response:
            if response.status_code != 200:
                await response.aread()
                return "failed", problem_of(response)
            events = await sse_events(response)
        if not events or events[-1][0] not in ("done", "error"):
            return "lost", f"brief {brief_id}: {[e for e, _ in events]}"
        if events[-1][0] == "error":
            return "failed", f"brief {brief_id}: {events[-1][1]}"
        succeeded.append(brief_id)
        done_at[brief_id] = time.monotonic()
        return "ok", ""

    async def chat(client: httpx.AsyncClient) -> tuple[Outcome, str]:
        body = {"messages": [{"role": "user", "content": f"Taxes? {uuid.uuid4().hex}"}]}
        response = await client.post("/api/chat", json=body)
        return ("ok", "") if response.status_code == 200 else ("failed", problem_of(response))

    jobs = RedisJobQueue(redis_url, JobsSettings(queue=queue))
    with FakeLLMServer(models=("gpt-4o-mini",), responder=answer).in_thread() as fake:
        env = base_env(
            tmp_path / "api",
            database_url,
            REDIS_URL=redis_url,
            OPENAI_API_KEY="sk-faults",
            NOMOSX_LLM__OPENAI_BASE_URL=fake.openai_base_url,
            NOMOSX_LLM_CHAIN="openai:gpt-4o-mini",
            NOMOSX_LLM__CACHE_ENTRIES="0",
            NOMOSX_CACHE__ENABLED="false",
            NOMOSX_JOBS__BACKEND="redis",
            NOMOSX_JOBS__QUEUE=queue,
            NOMOSX_JOBS__JOB_TIMEOUT=str(JOB_TIMEOUT),
            NOMOSX_JOBS__RETRY_DELAY="0.1",
        )
        api = Api(env, tmp_path / "api.log")
        workers = [
            NomosXProcess(
                ["worker", "--concurrency", "2"],
                {**env, "NOMOSX_DATA_DIR": str(tmp_path / f"worker{n}")},
                tmp_path / f"worker{n}.log",
            )
            for n in range(2)
        ]
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with running(api, *workers):
                async with asyncio.timeout(60):
                    while (await jobs.counts()).workers < 2:
                        assert all(w.alive() for w in workers), "a worker exited at start"
                        await asyncio.sleep(0.1)
                async with httpx.AsyncClient(
                    base_url=api.url, headers=headers, timeout=60
                ) as client:
                    briefs = asyncio.create_task(
                        load(
                            client,
                            {"brief": brief},
                            total=BRIEFS,
                            concurrency=4,
                            seconds=60,
                            per_request=90,
                        )
                    )
                    chats = asyncio.create_task(
                        load(client, {"chat": chat}, total=60, concurrency=2, seconds=20, pace=0.2)
                    )
                    # a worker running a brief for a second already: killed
                    victim_jobs: list[str] = []
                    async with asyncio.timeout(60):
                        while not victim_jobs:
                            await asyncio.sleep(0.2)
                            for brief_id in list(submitted):
                                info = await jobs.info(brief_id)
                                if info is None or info.status is not JobStatus.RUNNING:
                                    continue
                                await asyncio.sleep(1.0)
                                fields = await jobs.client.hgetall(jobs.keys.job(brief_id))
                                if fields.get("status") != "running":
                                    continue
                                pid = int(fields["worker"].split(":")[1])
                                victim = next(w for w in workers if w.pid == pid)
                                assert victim.process is not None
                                victim.process.send_signal(signal.SIGKILL)
                                killed = time.monotonic()
                                assert victim.process.wait(30) == -signal.SIGKILL
                                victim_jobs = [brief_id]
                                break
                    brief_tally = await briefs
                    chat_tally = await chats
                    recovery = done_at[victim_jobs[0]] - killed
        finally:
            keys = [k async for k in jobs.client.scan_iter(match="{" + queue + "}:*")]
            if keys:
                await jobs.client.delete(*keys)
            await jobs.stop()
    tally = brief_tally
    tally.outcomes.extend(chat_tally.outcomes)
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT id FROM briefs"))).scalars().all()
            runs = (
                await conn.execute(
                    text(
                        "SELECT status, error FROM pipeline_runs WHERE brief_id = :id "
                        "ORDER BY created_at"
                    ),
                    {"id": victim_jobs[0]},
                )
            ).all()
    finally:
        await db.dispose()
    report(
        request,
        "worker-sigkill",
        tally,
        recovery,
        f"{len(succeeded)} of {len(submitted)} briefs done, each stored once; recovery: "
        "from the kill to the killed brief done",
    )
    assert tally.count("failed") == 0, tally.details("failed")
    assert tally.count("lost") == 0, tally.details("lost")
    assert sorted(succeeded) == sorted(submitted) and len(submitted) == BRIEFS
    assert sorted(stored) == sorted(submitted)  # every brief stored, and once
    assert [(r.status, r.error) for r in runs] == [("failed", LOST), ("succeeded", None)]
