"""Redis killed (SIGKILL) and restarted under a load of chat streams, chats and briefs.

The API keeps its cache, its per-user rate counters and its stream slots in Redis; the
briefs run in the API process (``NOMOSX_JOBS__BACKEND=inprocess``: a queue on the dead
Redis could not take them, see ``test_worker_faults.py`` for the queue). While Redis is
down no user request may fail (the cache misses, the limits admit), the health route says
``degraded`` within a second, and ``healthy`` again once Redis is back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest

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

ANSWER = "Carbon taxes reduced emissions in most of the studies we read."
KILL_AT = 1.5  # seconds into the load
DOWN_FOR = 3.0
LOAD_SECONDS = 14.0


def _message() -> dict[str, object]:
    return {"messages": [{"role": "user", "content": f"Carbon taxes? {uuid.uuid4().hex[:6]}"}]}


async def stream_chat(client: httpx.AsyncClient) -> tuple[Outcome, str]:
    async with client.stream("POST", "/api/chat/stream", json=_message()) as response:
        if response.status_code != 200:
            await response.aread()
            return "failed", problem_of(response)
        events = await sse_events(response)
    if events and events[-1][0] == "done":
        return "ok", ""
    if events and events[-1][0] == "error":
        return "failed", f"error event {events[-1][1]}"
    return "lost", f"no done or error event: {[e for e, _ in events]}"


async def chat(client: httpx.AsyncClient) -> tuple[Outcome, str]:
    response = await client.post("/api/chat", json=_message())
    return ("ok", "") if response.status_code == 200 else ("failed", problem_of(response))


async def brief(client: httpx.AsyncClient) -> tuple[Outcome, str]:
    """Ask for a brief, follow its events to the end, read it."""
    # fresh: written again, not answered from the brief cache
    created = await client.post("/api/briefs?fresh=true", json={"question": CARBON})
    if created.status_code not in (200, 202):
        return "failed", problem_of(created)
    brief_id = created.json()["id"]
    async with client.stream("GET", f"/api/briefs/{brief_id}/events") as response:
        if response.status_code != 200:
            await response.aread()
            return "failed", problem_of(response)
        events = await sse_events(response)
    if not events or events[-1][0] not in ("done", "error"):
        return "lost", f"brief {brief_id}: no done or error event: {[e for e, _ in events]}"
    if events[-1][0] == "error":
        return "failed", f"brief {brief_id}: {events[-1][1]}"
    stored = await client.get(f"/api/briefs/{brief_id}")
    if stored.status_code != 200 or stored.json()["status"] != "succeeded":
        return "failed", f"brief {brief_id}: {problem_of(stored)}"
    return "ok", ""


async def health(client: httpx.AsyncClient) -> str:
    try:
        response = await client.get("/api/system/health", timeout=5)
    except httpx.TransportError:
        return "no answer"
    status: str = response.json()["status"]
    return status


async def until_health(client: httpx.AsyncClient, wanted: str, seconds: float) -> float:
    """Seconds until the health route reports ``wanted`` (polled every 50 ms)."""
    started = time.monotonic()
    while await health(client) != wanted:
        assert time.monotonic() - started < seconds, f"health never {wanted!r} in {seconds} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.timeout(240)
async def test_redis_killed_and_restarted_under_load(
    postgres: PostgresCluster,
    redis_server: RedisServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    database_url = await postgres.create_database()
    key = await prepare_database(tmp_path / "setup", database_url)

    def answer(_: RecordedRequest) -> Step:
        return Reply(ANSWER, chunk_delay=0.01)

    with FakeLLMServer(models=("gpt-4o-mini",), responder=answer).in_thread() as fake:
        env = base_env(
            tmp_path / "api",
            database_url,
            REDIS_URL=redis_server.url(1),
            OPENAI_API_KEY="sk-faults",
            NOMOSX_LLM__OPENAI_BASE_URL=fake.openai_base_url,
            NOMOSX_LLM_CHAIN="openai:gpt-4o-mini",
            NOMOSX_JOBS__BACKEND="inprocess",
            NOMOSX_JOBS__CONCURRENCY="4",
        )
        api = Api(env, tmp_path / "api.log")
        headers = {"Authorization": f"Bearer {key}"}
        with running(api):
            async with (
                httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as client,
                httpx.AsyncClient(base_url=api.url, timeout=10) as monitor,
            ):
                assert await health(monitor) == "healthy"
                kinds = {"stream": stream_chat, "chat": chat, "brief": brief}
                work = asyncio.create_task(
                    load(client, kinds, total=600, concurrency=6, seconds=LOAD_SECONDS, pace=0.05)
                )
                try:
                    await asyncio.sleep(KILL_AT)
                    redis_server.kill()
                    degraded = await until_health(monitor, "degraded", 10)
                    await asyncio.sleep(DOWN_FOR)
                    redis_server.start()
                    recovery = await until_health(monitor, "healthy", 30)
                finally:
                    if redis_server.process is None or redis_server.process.poll() is not None:
                        redis_server.start()  # the next scenario needs it
                    tally = await work
        report(
            request,
            "redis-kill",
            tally,
            recovery,
            f"degraded after {degraded:.2f} s",
        )
        assert degraded <= 1.0
        down = [o for o in tally.outcomes if KILL_AT <= o[0] <= KILL_AT + DOWN_FOR]
        assert len(down) >= 10, "too few requests while Redis was down"
        assert tally.count("failed") == 0, tally.details("failed")
        assert tally.count("lost") == 0, tally.details("lost")
        assert {kind for _, kind, o, _ in tally.outcomes if o == "ok"} == set(kinds)


@pytest.mark.timeout(120)
async def test_the_redis_job_queue_down_refuses_briefs_clearly(
    postgres: PostgresCluster,
    redis_server: RedisServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """With the brief queue on the dead Redis, a brief cannot be queued: its submission
    gets a clear 503 (and nothing half-made), chat goes on; after the restart briefs are
    queued again (a worker runs them)."""
    database_url = await postgres.create_database()
    key = await prepare_database(tmp_path / "setup", database_url)
    with FakeLLMServer(models=("gpt-4o-mini",), default=Reply(ANSWER)).in_thread() as fake:
        env = base_env(
            tmp_path / "api",
            database_url,
            REDIS_URL=redis_server.url(5),
            OPENAI_API_KEY="sk-faults",
            NOMOSX_LLM__OPENAI_BASE_URL=fake.openai_base_url,
            NOMOSX_LLM_CHAIN="openai:gpt-4o-mini",
            NOMOSX_JOBS__BACKEND="redis",
            NOMOSX_JOBS__QUEUE=f"faults-down:{uuid.uuid4().hex[:8]}",
        )
        api = Api(env, tmp_path / "api.log")
        worker = NomosXProcess(
            ["worker", "--concurrency", "2"],
            {**env, "NOMOSX_DATA_DIR": str(tmp_path / "worker")},
            tmp_path / "worker.log",
        )
        headers = {"Authorization": f"Bearer {key}"}
        with running(api, worker):
            async with (
                httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as client,
                httpx.AsyncClient(base_url=api.url, timeout=10) as monitor,
            ):
                assert (await brief(client))[0] == "ok"
                redis_server.kill()
                try:
                    degraded = await until_health(monitor, "degraded", 10)
                    kinds = {"brief": brief, "chat": chat, "stream": stream_chat}
                    tally = await load(client, kinds, total=30, concurrency=3, seconds=20)
                finally:
                    redis_server.start()
                back = time.monotonic()
                while (await brief(client))[0] != "ok":
                    assert time.monotonic() - back < 60, "briefs were never queued again"
                    await asyncio.sleep(0.2)
                recovery = time.monotonic() - back
                await until_health(monitor, "healthy", 30)
    briefs = [d for _, kind, _, d in tally.outcomes if kind == "brief"]
    report(
        request,
        "redis-kill, job queue on it",
        tally,
        recovery,
        f"degraded after {degraded:.2f} s; brief submissions refused while down: expected",
    )
    assert briefs and all(d.startswith("503 cache_unavailable") for d in briefs), briefs
    assert tally.count("lost") == 0, tally.details("lost")
    assert tally.count("failed") == len(briefs), tally.details("failed")  # chat never
