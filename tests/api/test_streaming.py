"""Streaming over a real server: uvicorn on a loopback port, a real SSE client, fake vendors.

Every test talks HTTP/1.1 over TCP to ``create_app`` served by uvicorn, whose OpenAI
provider (and an OpenAI-compatible "ollama") are loopback fake servers; what the fake
vendor saw (requests, disconnects, open streams) is checked alongside what the client got.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from nomosx.api.routes import chat
from nomosx.llm.router import CONTINUE_PROMPT
from nomosx.models import Reading, ScoredSource
from nomosx.pipeline.events import STAGES
from nomosx.pipeline.protocols import Reader
from nomosx.testing.fake_llm import CutStream, Fail, FakeLLMServer, Reply
from tests.api.server import LiveServer, chat_settings, live_server, small_library

ANSWER = "A carbon tax cut emissions in British Columbia by five to fifteen percent."
CHAT = {"messages": [{"role": "user", "content": "Does a carbon tax reduce emissions?"}]}
TIMEOUT = httpx.Timeout(20.0)


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(models=("gpt-4o-mini",)).in_thread() as server:
        yield server


@pytest.fixture
def fallback() -> Iterator[FakeLLMServer]:
    """A second vendor, OpenAI-compatible (an Ollama), for the chain's second place."""
    with FakeLLMServer(models=("llama3",)).in_thread() as server:
        yield server


@pytest.fixture
def live(tmp_path: Path, fake: FakeLLMServer) -> Iterator[LiveServer]:
    with live_server(chat_settings(tmp_path / "data", fake)) as server:
        yield server


@pytest.fixture
def live_chain(
    tmp_path: Path, fake: FakeLLMServer, fallback: FakeLLMServer
) -> Iterator[LiveServer]:
    settings = chat_settings(
        tmp_path / "data",
        fake,
        compatible={"ollama": fallback},
        chain="openai:gpt-4o-mini,ollama:llama3",
    )
    with live_server(settings) as server:
        yield server


async def _events(client: httpx.AsyncClient, body: dict[str, Any]) -> list[ServerSentEvent]:
    async with aconnect_sse(client, "POST", "/api/chat/stream", json=body) as source:
        assert source.response.status_code == 200
        return [event async for event in source.aiter_sse()]


def _text(events: list[ServerSentEvent]) -> str:
    return "".join(e.json()["content"] for e in events if e.event == "token")


async def test_stream_sends_tokens_then_one_done(live: LiveServer, fake: FakeLLMServer) -> None:
    fake.script(Reply(ANSWER, input_tokens=12))
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=TIMEOUT) as client,
        aconnect_sse(client, "POST", "/api/chat/stream", json=CHAT) as source,
    ):
        response = source.response
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        events = [event async for event in source.aiter_sse()]

    names = [e.event for e in events]
    assert names == ["token"] * (len(names) - 1) + ["done"]
    assert len(names) - 1 == len(ANSWER.split())  # one token event per streamed chunk
    assert _text(events) == ANSWER
    done = events[-1].json()
    assert done["provider"] == "openai"
    assert done["model"] == "gpt-4o-mini"
    assert done["usage"] == {
        "inputTokens": 12,
        "outputTokens": len(ANSWER.split()),
        "cachedTokens": 0,
    }
    assert isinstance(done["costUsd"], float) and done["costUsd"] > 0  # genai-prices knows it
    assert done["latencyMs"] > 0
    assert done["cached"] is False
    assert done["attempts"] == 1
    assert "content" not in done  # the text went out as tokens

    (upstream,) = fake.completion_requests
    assert upstream.stream and upstream.completed and not upstream.disconnected
    assert upstream.model == "gpt-4o-mini"
    assert upstream.body is not None
    assert upstream.body["messages"][-1]["content"] == CHAT["messages"][0]["content"]


async def test_mid_stream_failure_switches_provider_and_continues(
    live_chain: LiveServer, fake: FakeLLMServer, fallback: FakeLLMServer
) -> None:
    fake.script(CutStream(after_chunks=3, text=ANSWER))
    rest = "by five to fifteen percent."
    fallback.script(Reply(rest))
    async with httpx.AsyncClient(base_url=live_chain.url, timeout=TIMEOUT) as client:
        events = await _events(client, CHAT)

    names = [e.event for e in events]
    switch = names.index("provider_switched")
    assert names == ["token"] * switch + ["provider_switched"] + ["token"] * (
        len(names) - switch - 2
    ) + ["done"]
    first = "".join(e.json()["content"] for e in events[:switch])
    assert first == "A carbon tax "  # the three chunks sent before the reset
    assert _text(events) == first + rest  # one answer, continued, nothing repeated
    switched = events[switch].json()
    assert switched["fromProvider"] == "openai"
    assert switched["fromModel"] == "gpt-4o-mini"
    assert switched["toProvider"] == "ollama"
    assert switched["toModel"] == "llama3"
    assert switched["reason"]
    done = events[-1].json()
    assert (done["provider"], done["model"]) == ("ollama", "llama3")
    assert done["attempts"] == 2
    assert done["costUsd"] is None  # a local model has no known price: unknown, not $0

    # the fallback was asked to continue from exactly what the client already has
    (continued,) = fallback.completion_requests
    assert continued.body is not None
    messages = continued.body["messages"]
    assert messages[-2] == {"role": "assistant", "content": first}
    assert messages[-1]["content"] == CONTINUE_PROMPT


async def test_stream_ends_with_an_error_event_when_every_provider_fails(
    live_chain: LiveServer, fake: FakeLLMServer, fallback: FakeLLMServer
) -> None:
    fake.script(Fail(503, message="openai is overloaded"))
    fallback.script(Fail(500, message="ollama crashed"))
    async with httpx.AsyncClient(base_url=live_chain.url, timeout=TIMEOUT) as client:
        events = await _events(client, CHAT)

    assert [e.event for e in events] == ["error"]
    error = events[0].json()
    assert error["code"] == "all_providers_failed"
    assert error["message"]
    assert len(fake.completion_requests) == 1
    assert len(fallback.completion_requests) == 1


async def test_an_unknown_model_is_an_error_event(live: LiveServer, fake: FakeLLMServer) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=TIMEOUT) as client:
        events = await _events(client, {**CHAT, "model": "openai:gpt-9"})
    assert [e.event for e in events] == ["error"]
    assert events[0].json()["code"] == "bad_request"
    assert "openai:gpt-9" in events[0].json()["message"]
    assert fake.completion_requests == []


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> float:
    # The server thread shares this module: patched before the server starts.
    monkeypatch.setattr(chat, "HEARTBEAT_SECONDS", 0.05)
    return 0.05


async def test_heartbeats_during_a_long_silence(
    fast_heartbeat: float, tmp_path: Path, fake: FakeLLMServer
) -> None:
    fake.script(Reply(ANSWER, delay=0.4))
    lines: list[str] = []
    with live_server(chat_settings(tmp_path / "data", fake)) as live:
        async with (
            httpx.AsyncClient(base_url=live.url, timeout=TIMEOUT) as client,
            client.stream("POST", "/api/chat/stream", json=CHAT) as response,
        ):
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines()]

    first_event = lines.index("event: token")
    pings = [line for line in lines[:first_event] if line.startswith(":")]
    assert len(pings) >= 3, lines[:first_event]  # 0.4 s of silence, one every 0.05 s
    assert set(pings) == {": ping"}
    # comments are invisible to an SSE client: the events are intact
    events = _parse(lines)
    assert [name for name, _ in events] == ["token"] * len(ANSWER.split()) + ["done"]
    assert "".join(data["content"] for name, data in events if name == "token") == ANSWER


def _parse(lines: list[str]) -> list[tuple[str, Any]]:
    """Events of an SSE body, as an SSE client reads them (comments ignored)."""
    events: list[tuple[str, Any]] = []
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", list[str]()
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))
    return events


async def test_client_disconnect_cancels_the_upstream_request(
    live: LiveServer, fake: FakeLLMServer
) -> None:
    words = " ".join(f"word{i}" for i in range(30))
    fake.script(Reply(words, chunk_delay=0.1))  # 30 chunks, 3 s if read to the end
    tokens: list[str] = []
    async with httpx.AsyncClient(base_url=live.url, timeout=TIMEOUT) as client:
        async with aconnect_sse(client, "POST", "/api/chat/stream", json=CHAT) as source:
            async for event in source.aiter_sse():
                assert event.event == "token"
                tokens.append(event.json()["content"])
                if len(tokens) == 2:
                    break
            assert fake.active_streams == 1
            closed = time.monotonic()
        # leaving the block closed the response, and with it the connection

        upstream = await fake.wait_for_disconnect(timeout=2.0)
        assert time.monotonic() - closed < 1.0  # well before the next chunks would come
        assert upstream.disconnected and not upstream.completed
        assert upstream.stream and upstream.model == "gpt-4o-mini"
        for _ in range(200):  # 2 s at most
            if not fake.active_streams:
                break
            await asyncio.sleep(0.01)
        assert fake.active_streams == 0
        assert tokens == ["word0 ", "word1 "]

        # the server is fine afterwards: the next stream runs to its end
        fake.script(Reply(ANSWER))
        events = await _events(client, CHAT)
        assert _text(events) == ANSWER and events[-1].event == "done"


# -- brief jobs ------------------------------------------------------------------------


@pytest.fixture
def live_library(tmp_path: Path) -> Iterator[LiveServer]:
    """No language model: briefs are extractive, over a small ingested library."""
    with live_server(chat_settings(tmp_path / "data")) as server:
        server.ingest(small_library())
        yield server


async def _follow(
    client: httpx.AsyncClient, url: str, *, limit: int | None = None, **kwargs: Any
) -> list[ServerSentEvent]:
    events: list[ServerSentEvent] = []
    async with aconnect_sse(client, "GET", url, **kwargs) as source:
        assert source.response.status_code == 200
        assert source.response.headers["cache-control"] == "no-cache"
        async for event in source.aiter_sse():
            events.append(event)
            if limit is not None and len(events) == limit:
                break
    return events


class GatedReader:
    """The READ stage, held until the test opens the gate (so the job is still running)."""

    def __init__(self, inner: Reader, gate: threading.Event) -> None:
        self.inner = inner
        self.gate = gate

    async def read(self, question: str, ranked: Sequence[ScoredSource]) -> list[Reading]:
        await asyncio.to_thread(self.gate.wait, 30)
        return await self.inner.read(question, ranked)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a job waiting on a failed test


async def test_brief_events_resume_with_last_event_id(
    live_library: LiveServer, gate: threading.Event
) -> None:  # the gate opens at teardown before the server stops
    pipeline = live_library.nomosx.pipeline
    pipeline.reader = GatedReader(pipeline.reader, gate)
    question = "Do carbon taxes reduce emissions?"
    async with httpx.AsyncClient(base_url=live_library.url, timeout=TIMEOUT) as client:
        created = await client.post("/api/briefs", json={"question": question})
        assert created.status_code == 202, created.text
        accepted = created.json()
        brief_id = accepted["id"]
        events_url = accepted["links"]["events"]
        assert events_url == f"/api/briefs/{brief_id}/events"

        head = await _follow(client, events_url, limit=3)  # then hang up mid-job
        running = await client.get(f"/api/briefs/{brief_id}")
        assert running.json()["status"] == "running"

        tail: list[ServerSentEvent] = []
        headers = {"Last-Event-ID": head[-1].id}
        async with aconnect_sse(client, "GET", events_url, headers=headers) as source:
            assert source.response.status_code == 200
            async for event in source.aiter_sse():
                tail.append(event)
                if event.event == "stage" and event.json() == {"stage": "read", "status": "start"}:
                    gate.set()  # the rest arrives live on this connection
        assert gate.is_set()

        # the query form of the same resume point, for clients that cannot set headers
        again = await _follow(client, f"{events_url}?lastEventId={head[-1].id}")
        state = await client.get(f"/api/briefs/{brief_id}")

    events = head + tail
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))  # no loss, no dup
    assert [(e.id, e.event, e.data) for e in again] == [(e.id, e.event, e.data) for e in tail]
    assert events[0].event == "queued"
    assert events[0].json() == {"briefId": brief_id, "status": "pending"}
    stages = [e.json() for e in events if e.event == "stage"]
    assert [(s["stage"], s["status"]) for s in stages] == [
        (stage, status) for stage in STAGES for status in ("start", "end")
    ]
    assert all(s["durationMs"] is not None for s in stages if s["status"] == "end")
    assert events[-1].event == "done"
    assert events[-1].json() == {"briefId": brief_id, "status": "succeeded"}

    assert state.status_code == 200
    body = state.json()
    assert body["status"] == "succeeded"
    assert body["id"] == brief_id
    assert body["result"]["question"] == question
    assert body["result"]["sources"]
