"""The API through its ASGI interface: jobs, errors, chat, health, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from nomosx.api.app import create_app
from nomosx.config import Settings
from nomosx.testing.fake_llm import FakeLLMServer, Reply
from tests.api.tcp_proxy import TcpProxy
from tests.factories import make_source

QUESTION = "Does a carbon tax reduce greenhouse gas emissions?"


def _library() -> list[Any]:
    return [
        make_source(
            f"doi:10.1/tax{i}",
            title=f"Carbon tax and greenhouse gas emissions in region {i}",
            abstract=(
                f"We study the carbon tax in region {i}. "
                "The carbon tax reduced greenhouse gas emissions by 5 percent. "
                "Employment was not significantly affected by the tax."
            ),
            year=2010 + i,
            venue=f"Journal {i}",
        )
        for i in range(6)
    ]


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nomosx")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(
        Settings(data_dir=tmp_path / "data", bundled_library=False, auth={"single_user": True}),
        load_library=False,
    )
    async with app.router.lifespan_context(app):
        await app.state.nomosx.sources.upsert_many(_library())
        async with await _client(app) as client:
            yield app, client


async def _wait_done(client: httpx.AsyncClient, brief_id: str) -> dict[str, Any]:
    for _ in range(200):
        state = (await client.get(f"/api/briefs/{brief_id}")).json()
        if state["status"] in ("succeeded", "failed"):
            return state
        await asyncio.sleep(0.02)
    raise AssertionError("the job did not finish")


def _sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


async def test_brief_job_lifecycle(api: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = api
    created = await client.post("/api/briefs", json={"question": QUESTION, "sources": 4})
    assert created.status_code == 202, created.text
    body = created.json()
    brief_id = body["id"]
    assert body["links"]["events"] == f"/api/briefs/{brief_id}/events"

    state = await _wait_done(client, brief_id)
    assert state["status"] == "succeeded"
    assert state["result"]["id"] == brief_id
    assert len(state["result"]["sources"]) == 4

    events = _sse((await client.get(f"/api/briefs/{brief_id}/events")).text)
    assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event"] == "queued" and events[-1]["event"] == "done"
    stages = [
        e["data"]["stage"] for e in events if e["event"] == "stage" and e["data"]["status"] == "end"
    ]
    assert stages == ["scout", "index", "rank", "read", "analyse", "guard", "edit"]
    resumed = _sse(
        (await client.get(f"/api/briefs/{brief_id}/events", headers={"Last-Event-ID": "5"})).text
    )
    assert [int(e["id"]) for e in resumed] == list(range(6, len(events) + 1))

    md = await client.get(f"/api/briefs/{brief_id}?format=md")
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith("# ") and "[SRC-1]" in md.text
    html = await client.get(f"/api/briefs/{brief_id}", headers={"Accept": "text/html"})
    assert html.headers["content-type"].startswith("text/html")
    assert 'href="#src-1"' in html.text

    again = await client.post("/api/briefs", json={"question": QUESTION, "sources": 4})
    assert again.status_code == 200
    assert again.json() == {**again.json(), "id": brief_id, "cached": True, "status": "succeeded"}
    fresh = await client.post("/api/briefs?fresh=true", json={"question": QUESTION, "sources": 4})
    assert fresh.status_code == 202 and fresh.json()["id"] != brief_id
    await _wait_done(client, fresh.json()["id"])

    listed = (await client.get("/api/briefs?limit=1")).json()
    assert listed["total"] == 2 and listed["limit"] == 1 and len(listed["items"]) == 1
    assert listed["items"][0]["id"] == fresh.json()["id"]


async def test_a_failing_job_reports_its_error(api: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = api
    created = await client.post("/api/briefs", json={"question": "zxqv blorptastic frumious?"})
    state = await _wait_done(client, created.json()["id"])
    assert state["status"] == "failed"
    assert state["error"]["code"] == "NoSourcesError"
    events = _sse((await client.get(created.json()["links"]["events"])).text)
    assert events[-1]["event"] == "error"
    assert "no source in the library relates" in events[-1]["data"]["message"]
    not_ready = await client.get(f"/api/briefs/{created.json()['id']}?format=md")
    assert not_ready.status_code == 409


async def test_errors_are_problem_json(api: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _, client = api
    missing = await client.get("/api/briefs/no-such-brief")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert (await client.get("/api/briefs/no-such-brief/events")).status_code == 404

    invalid = await client.post("/api/briefs", json={"question": "x", "sources": 99, "extra": 1})
    assert invalid.status_code == 422
    paths = {f["path"] for f in invalid.json()["error"]["fields"]}
    assert paths == {"question", "sources", "extra"}

    bad_json = await client.post(
        "/api/briefs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 422

    huge = await client.post(
        "/api/chat", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"

    unknown = await client.get("/nowhere")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    wrong_method = await client.delete("/api/briefs")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/json"

    no_llm = await client.post("/api/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert no_llm.status_code == 503
    assert no_llm.json()["error"]["code"] == "llm_unavailable"
    assert "OPENAI_API_KEY" in no_llm.json()["error"]["message"]


async def test_chat_through_the_gateway(tmp_path: Path) -> None:
    async with FakeLLMServer(models=("gpt-4o-mini",)) as fake:
        settings = Settings(
            data_dir=tmp_path / "data",
            bundled_library=False,
            openai_api_key="sk-api-test",
            llm_chain="openai:gpt-4o-mini",
            llm={"openai_base_url": fake.openai_base_url, "attempts": 1},
            auth={"single_user": True},
        )
        app = create_app(settings, load_library=False)
        async with app.router.lifespan_context(app), await _client(app) as client:
            fake.script(Reply("Carbon taxes work.", input_tokens=20, output_tokens=4))
            ok = await client.post(
                "/api/chat", json={"messages": [{"role": "user", "content": "Do they?"}]}
            )
            assert ok.status_code == 200, ok.text
            body = ok.json()
            assert body["content"] == "Carbon taxes work."
            assert body["usage"] == {"inputTokens": 20, "outputTokens": 4, "cachedTokens": 0}
            assert body["costUsd"] > 0 and body["provider"] == "openai"

            wrong = await client.post(
                "/api/chat",
                json={"messages": [{"role": "user", "content": "x"}], "model": "openai:gpt-9"},
            )
            assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "bad_request"
            bad_role = await client.post(
                "/api/chat", json={"messages": [{"role": "tool", "content": "x"}]}
            )
            assert bad_role.status_code == 422

            fake.script(Reply("Yes indeed.", chunks=2))
            stream = await client.post(
                "/api/chat/stream",
                json={"messages": [{"role": "user", "content": "Stream it"}], "temperature": 0.5},
            )
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-cache"
            events = _sse(stream.text)
            assert (
                "".join(e["data"]["content"] for e in events if e["event"] == "token")
                == "Yes indeed."
            )
            assert events[-1]["event"] == "done" and events[-1]["data"]["provider"] == "openai"

            metrics = (await client.get("/metrics")).text
            assert (
                'nomosx_llm_calls_total{agent="chat",model="gpt-4o-mini",outcome="ok",provider="openai"}'
                in metrics
            )
            assert 'route="/api/chat"' in metrics
            health = (await client.get("/api/system/health")).json()
            assert health["services"]["llm"]["openai"]["status"] == "healthy"
            assert health["services"]["jobs"] == {
                "status": "healthy",
                "pending": 0,
                "running": 0,
                "failed": 0,
                "cancelled": 0,
                "oldestPendingSeconds": 0.0,
                "workers": 1,  # in-process: this API process runs the jobs
            }


async def test_health_states(tmp_path: Path, postgres_url: str) -> None:
    """Cache unreachable → degraded (200); database unreachable → unhealthy (503)."""
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    database = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    settings = Settings(
        data_dir=tmp_path / "data",
        bundled_library=False,
        database_url=database,
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there
        cache={"op_timeout": 0.05},
        auth={"single_user": True},
    )
    app = create_app(settings, load_library=False)
    try:
        async with app.router.lifespan_context(app), await _client(app) as client:
            first = await client.get("/api/system/health")
            assert first.status_code == 200
            body = first.json()
            assert body["status"] == "degraded"
            assert body["services"]["database"]["status"] == "healthy"
            assert body["services"]["cache"]["status"] == "degraded"
            assert body["services"]["cache"]["backend"] == "redis"
            jobs = body["services"]["jobs"]  # REDIS_URL is set: the queue is on that Redis
            assert jobs["status"] == "unhealthy" and "the job queue at redis:" in jobs["error"]
            assert body["version"] and body["responseTime"] >= 0
            assert (await client.get("/readyz")).status_code == 200  # no bundled library asked

            await proxy.cut()
            down = await client.get("/api/system/health")
            assert down.status_code == 503
            assert down.json()["status"] == "unhealthy"
            assert down.json()["services"]["database"]["status"] == "unhealthy"
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            failing = await client.get("/api/briefs")
            assert failing.status_code == 503
            assert failing.json()["error"]["code"] == "database_unavailable"

            await proxy.restore()
            for _ in range(50):
                if (await client.get("/api/system/health")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await client.get("/api/system/health")).json()["services"]["database"][
                "status"
            ] == "healthy"
    finally:
        await proxy.cut()
