"""Input limits the API tests do not already prove (``tests/api/test_api.py`` covers a
declared body over 1 MiB; ``tests/api/test_limits.py`` the per-minute limit, chat streams
per user and the budget):

- a body over 1 MiB sent *chunked*, with no ``Content-Length``, is refused with 413 by a
  real server (the limit counts what arrives, not what is declared);
- a chat of more than ``MAX_MESSAGES`` messages, a message over ``MAX_MESSAGE_CHARS``
  characters, a question over 1,000 characters or under 3 are refused with 422 naming
  the field, and the limits themselves are accepted; a question holding a NUL (which
  PostgreSQL cannot store, so the job would fail later) is refused at once with 400;
- a brief's event stream takes one of the user's stream slots like a chat stream: with
  the limit at 1 and a chat stream open, ``GET /api/briefs/{id}/events`` answers 429.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from nomosx.api.schemas import MAX_MESSAGE_CHARS, MAX_MESSAGES
from nomosx.auth.models import UserLimits
from nomosx.testing.fake_llm import FakeLLMServer, Reply
from tests.api.server import chat_settings, live_server, small_library

CHAT = {"messages": [{"role": "user", "content": "Do carbon taxes work?"}]}


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


async def test_limits_on_body_size_messages_and_question(tmp_path: Path) -> None:
    with FakeLLMServer(models=("gpt-4o-mini",)).in_thread() as fake:
        settings = chat_settings(tmp_path / "data", fake, jobs={"backend": "inprocess"})
        fake.script(*[Reply("ok")] * 4)
        with live_server(settings) as live:
            live.ingest(small_library())
            async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
                chunked = await client.post(
                    "/api/chat",
                    content=_chunks(2 * 1024 * 1024),
                    headers={"content-type": "application/json"},
                )
                assert chunked.status_code == 413, chunked.text
                assert chunked.json()["error"]["code"] == "payload_too_large"

                message = {"role": "user", "content": "hi"}
                at_limit = await client.post(
                    "/api/chat", json={"messages": [message] * MAX_MESSAGES}
                )
                assert at_limit.status_code == 200, at_limit.text
                too_many = await client.post(
                    "/api/chat", json={"messages": [message] * (MAX_MESSAGES + 1)}
                )
                assert too_many.status_code == 422
                assert {f["path"] for f in too_many.json()["error"]["fields"]} == {"messages"}

                longest = {"role": "user", "content": "y" * MAX_MESSAGE_CHARS}
                assert (
                    await client.post("/api/chat", json={"messages": [longest]})
                ).status_code == 200
                too_long = {"role": "user", "content": "y" * (MAX_MESSAGE_CHARS + 1)}
                refused = await client.post("/api/chat/stream", json={"messages": [too_long]})
                assert refused.status_code == 422
                assert refused.json()["error"]["fields"][0]["path"] == "messages.0.content"

                for question, status in (
                    ("Do carbon taxes reduce emissions? " + "z" * 966, (200, 202)),
                    ("Do carbon taxes reduce emissions? " + "z" * 967, (422,)),
                    ("ab", (422,)),
                    ("Do carbon taxes reduce emissions?\x00", (400,)),
                ):
                    answer = await client.post("/api/briefs", json={"question": question})
                    assert answer.status_code in status, (len(question), answer.text)
                    if answer.status_code == 422:
                        paths = {f["path"] for f in answer.json()["error"]["fields"]}
                        assert paths == {"question"}
                    if answer.status_code == 400:  # a NUL, which PostgreSQL cannot store
                        assert "NUL" in answer.json()["error"]["message"]


async def test_brief_event_streams_count_against_the_stream_limit(tmp_path: Path) -> None:
    with FakeLLMServer(models=("gpt-4o-mini",)).in_thread() as fake:
        settings = chat_settings(
            tmp_path / "data",
            fake,
            auth={"single_user": False},
            jobs={"backend": "inprocess"},
            llm={"cache_entries": 0},
        )
        with live_server(settings) as live:
            live.ingest(small_library())
            users = live.nomosx.users
            user, key = live.run(users.create(f"s{uuid.uuid4().hex[:8]}"))
            live.run(users.set_limits(user.name, UserLimits(concurrent_streams=1)))
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as client:
                # a brief, written extractively (the fake's default answer is not JSON)
                asked = await client.post(
                    "/api/briefs", json={"question": "Do carbon taxes reduce emissions?"}
                )
                assert asked.status_code in (200, 202), asked.text
                brief_id = asked.json()["id"]
                for _ in range(200):
                    state = (await client.get(f"/api/briefs/{brief_id}")).json()
                    if state["status"] in ("succeeded", "failed"):
                        break
                    await asyncio.sleep(0.05)
                assert state["status"] == "succeeded", state
                fake.script(Reply("one two three four five", chunk_delay=0.3))
                async with client.stream("POST", "/api/chat/stream", json=CHAT) as held:
                    assert held.status_code == 200
                    lines = held.aiter_lines()
                    while not (await anext(lines)).startswith("event: token"):
                        pass
                    events = await client.get(f"/api/briefs/{brief_id}/events")
                    assert events.status_code == 429, events.text
                    assert "Retry-After" in events.headers
                for _ in range(50):
                    if (await client.get("/api/me")).json()["openStreams"] == 0:
                        break
                    await asyncio.sleep(0.05)
                events = await client.get(f"/api/briefs/{brief_id}/events")
                assert events.status_code == 200
                assert "event: done" in events.text or "event: error" in events.text
