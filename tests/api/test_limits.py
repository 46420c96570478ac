"""Per-user limits for real: a per-minute limit shared by two API processes through the
real Redis, concurrent streams (in memory and in Redis), and the daily budget computed
from the costs the ledger recorded."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from nomosx.auth.models import UserLimits
from nomosx.errors import BudgetExceeded
from nomosx.models import LLMCall, utcnow
from nomosx.quota.budget import BudgetGuard
from nomosx.store.db import Database
from nomosx.store.repositories import LLMCallRepository
from nomosx.store.users import UserRepository
from nomosx.testing.fake_llm import FakeLLMServer, Reply
from tests.api.server import chat_settings, live_server

REDIS = os.environ.get("NOMOSX_TEST_REDIS_URL", "redis://127.0.0.1:6379")
CHAT = {"messages": [{"role": "user", "content": "Do carbon taxes work?"}]}
STARTUP = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _user(database_url: str, name: str, limits: UserLimits) -> str:
    db = Database(database_url)
    try:
        await db.migrate()
        users = UserRepository(db)
        await users.create(name)
        await users.set_limits(name, limits)
        return await users.add_key(name)
    finally:
        await db.dispose()


@pytest.fixture
def two_api_processes(tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """Two ``nomosx serve`` processes on one database and one Redis; a user allowed 5
    requests a minute; their key."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    key = asyncio.run(
        _user(database_url, f"u{uuid.uuid4().hex[:8]}", UserLimits(requests_per_minute=5))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMOSX_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=f"{REDIS}/7",
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_JOBS__BACKEND="inprocess",
        NOMOSX_CACHE__ENABLED="false",
        NOMOSX_RETRIEVAL__EMBEDDER="none",
    )
    processes, urls = [], []
    try:
        for i in range(2):
            port = _free_port()
            env_i = {**env, "NOMOSX_DATA_DIR": str(tmp_path / f"data{i}")}
            with (tmp_path / f"api{i}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "nomosx", "serve", "--port", str(port)],
                        env=env_i,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + STARTUP
        for url, process in zip(urls, processes, strict=True):
            while True:
                assert process.poll() is None, (
                    process.stderr.read().decode() if process.stderr else ""
                )
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the API process did not start"
                time.sleep(0.2)
        yield urls, key
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def test_the_per_minute_limit_is_shared_by_every_api_process(
    two_api_processes: tuple[list[str], str],
) -> None:
    (first, second), key = two_api_processes
    headers = {"Authorization": f"Bearer {key}"}
    remaining = []
    with httpx.Client(headers=headers, timeout=10) as client:
        for i in range(5):
            response = client.get(f"{(first, second)[i % 2]}/api/me")
            assert response.status_code == 200, response.text
            remaining.append(int(response.headers["RateLimit-Remaining"]))
        # five requests were made, alternately: both processes counted all five
        assert remaining == [4, 3, 2, 1, 0]
        for url in (first, second):
            refused = client.get(f"{url}/api/briefs")
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.headers["RateLimit-Limit"] == "5"


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_concurrent_streams_are_limited_per_user(backend: str, tmp_path: Path) -> None:
    with FakeLLMServer(models=("gpt-4o-mini",)).in_thread() as fake:
        settings = chat_settings(
            tmp_path / "data",
            fake,
            auth={"single_user": False},
            redis_url=f"{REDIS}/7" if backend == "redis" else None,
            jobs={"backend": "inprocess"},
        )
        with live_server(settings) as live:
            users = live.nomosx.users
            _, key = live.run(users.create(f"s{uuid.uuid4().hex[:8]}"))
            name = live.run(users.authenticate(key))
            assert name is not None
            live.run(users.set_limits(name.name, UserLimits(concurrent_streams=1)))
            fake.script(Reply("one two three four", chunk_delay=0.3), Reply("five six"))
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as client:
                async with client.stream("POST", "/api/chat/stream", json=CHAT) as held:
                    assert held.status_code == 200
                    lines = held.aiter_lines()  # kept: dropping it would close the stream
                    while not (await anext(lines)).startswith("event: token"):
                        pass  # until the stream is open and flowing
                    refused = await client.post("/api/chat/stream", json=CHAT)
                    assert refused.status_code == 429, refused.text
                    assert "open streams" in refused.json()["error"]["message"]
                    assert refused.headers["Retry-After"] == "5"
                    me = (await client.get("/api/me")).json()
                    assert me["openStreams"] == 1
                # the slot is given back when the stream ends: the next one is admitted
                for _ in range(50):
                    if (await client.get("/api/me")).json()["openStreams"] == 0:
                        break
                    await asyncio.sleep(0.05)
                async with client.stream("POST", "/api/chat/stream", json=CHAT) as again:
                    assert again.status_code == 200
                    text = "".join([chunk async for chunk in again.aiter_text()])
                    assert "event: done" in text


async def test_the_daily_budget_comes_from_recorded_costs(tmp_path: Path) -> None:
    with FakeLLMServer(models=("gpt-4o-mini",)).in_thread() as fake:
        settings = chat_settings(tmp_path / "data", fake, auth={"single_user": False})
        with live_server(settings) as live:
            users = live.nomosx.users
            user, key = live.run(users.create("spender"))
            # a budget the first answer's real cost (genai-prices) goes over
            live.run(users.set_limits("spender", UserLimits(daily_budget_usd=1e-7)))
            fake.script(Reply("Yes.", input_tokens=1000, output_tokens=100))
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as client:
                first = await client.post("/api/chat", json=CHAT)
                assert first.status_code == 200, first.text
                cost = first.json()["costUsd"]
                assert cost > 1e-7
                me = (await client.get("/api/me")).json()
                assert me["spentTodayUsd"] == pytest.approx(cost, rel=1e-3)
                for method, path, body in (
                    ("POST", "/api/chat", CHAT),
                    ("POST", "/api/chat/stream", CHAT),
                    ("POST", "/api/briefs", {"question": "Do carbon taxes work?"}),
                ):
                    refused = await client.request(method, path, json=body)
                    assert refused.status_code == 402, (path, refused.text)
                    error = refused.json()["error"]
                    assert error["code"] == "budget_exceeded"
                    assert "$0.00" in error["message"] and "00:00 UTC" in error["message"]
                    assert 1 <= int(refused.headers["Retry-After"]) <= 86400
                # only LLM work is refused; reading is not
                assert (await client.get("/api/briefs")).status_code == 200
            calls = live.run(live.nomosx.ledger.totals("user"))
            assert [(c.group, c.calls) for c in calls] == [(user.id, 1)]


async def test_the_budget_renews_at_midnight_utc(db: Database) -> None:
    ledger = LLMCallRepository(db)
    await ledger.record(
        LLMCall(agent="chat", provider="openai", model="m", cost_usd=2.0, user_id="u1")
    )
    await ledger.record(
        LLMCall(agent="chat", provider="openai", model="m", cost_usd=5.0, user_id="u2")
    )
    guard = BudgetGuard(ledger)
    assert await guard.spent_today("u1") == pytest.approx(2.0)
    await guard.check("u1", 2.5)
    await guard.check("u1", None)
    with pytest.raises(BudgetExceeded) as refused:
        await guard.check("u1", 2.0)
    assert 0 < refused.value.retry_after <= 86400
    tomorrow = utcnow() + timedelta(days=1)
    await guard.check("u1", 2.0, now=tomorrow)  # a new day, nothing spent yet
    assert await guard.spent_today("u2", now=tomorrow) == 0.0
