"""Language-model provider faults under load, through a real ``nomosx serve``.

The chain is two providers at fake loopback servers: OpenAI, then an OpenAI-compatible
one named ``backup``. While the first answers every request with a fault in turn (500,
429 with Retry-After, no answer until the timeout, a reset, a stream cut after two
tokens, a malformed body), the second answers: no request may fail or be lost. With both
down, every request ends cleanly: a 503 problem, or a stream's ``error`` event.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from pathlib import Path

import httpx
import pytest

from nomosx.testing.fake_llm import (
    CutStream,
    Fail,
    FakeLLMServer,
    Hang,
    Malformed,
    RecordedRequest,
    Reply,
    Reset,
    Step,
)

from .conftest import (
    Api,
    Outcome,
    PostgresCluster,
    base_env,
    load,
    prepare_database,
    problem_of,
    report,
    running,
    sse_events,
)

FAULTS: tuple[Step, ...] = (
    Fail(500),
    Fail(429, retry_after=1),
    Hang(5),  # longer than the 1 s attempt timeout below
    Reset(),
    CutStream(after_chunks=2, text="The carbon tax reduced emissions by five percent."),
    Malformed(),
)
ANSWER = "Carbon taxes reduced emissions in most studies."


def _message() -> dict[str, object]:
    # each request its own question: no cache may answer it
    return {"messages": [{"role": "user", "content": f"Carbon taxes? {uuid.uuid4().hex}"}]}


async def _stream(client: httpx.AsyncClient) -> tuple[Outcome, str]:
    async with client.stream("POST", "/api/chat/stream", json=_message()) as response:
        if response.status_code != 200:
            await response.aread()
            return "failed", problem_of(response)
        events = await sse_events(response)
    names = [name for name, _ in events]
    if names and names[-1] == "done":
        return "ok", ",".join(dict.fromkeys(names))
    if names and names[-1] == "error":
        return "failed", f"error event {events[-1][1]}"
    return "lost", f"the stream ended without done or error: {names}"


async def _whole(client: httpx.AsyncClient) -> tuple[Outcome, str]:
    response = await client.post("/api/chat", json=_message())
    if response.status_code == 200 and response.json()["content"]:
        return "ok", response.json()["provider"]
    return "failed", problem_of(response)


@pytest.mark.timeout(240)
async def test_llm_provider_faults(
    postgres: PostgresCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = await postgres.create_database()
    key = await prepare_database(tmp_path / "setup", database_url)
    faults = itertools.cycle(FAULTS)
    primary_down = False
    backup_down = False

    def primary(_: RecordedRequest) -> Step:
        return Fail(503) if primary_down else next(faults)

    def backup(_: RecordedRequest) -> Step:
        return Reset() if backup_down else Reply(ANSWER)

    with (
        FakeLLMServer(models=("gpt-4o-mini",), responder=primary).in_thread() as first,
        FakeLLMServer(models=("backup-model",), responder=backup).in_thread() as second,
    ):
        env = base_env(
            tmp_path / "api",
            database_url,
            OPENAI_API_KEY="sk-faults",
            NOMOSX_LLM__OPENAI_BASE_URL=first.openai_base_url,
            NOMOSX_LLM__COMPATIBLE__BACKUP__BASE_URL=second.openai_base_url,
            NOMOSX_LLM__COMPATIBLE__BACKUP__API_KEY="sk-backup",
            NOMOSX_LLM_CHAIN="openai:gpt-4o-mini,backup:backup-model",
            NOMOSX_LLM__TIMEOUT="1",
            NOMOSX_LLM__ATTEMPTS="1",
            NOMOSX_LLM__BREAKER_THRESHOLD="1000",  # every request meets its fault
            NOMOSX_LLM__CACHE_ENTRIES="0",
            NOMOSX_CACHE__ENABLED="false",
            NOMOSX_JOBS__BACKEND="inprocess",
        )
        api = Api(env, tmp_path / "api.log")
        headers = {"Authorization": f"Bearer {key}"}
        with running(api):
            async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as client:
                # one provider faulty, the other up: nothing fails, nothing is lost
                kinds = {"stream": _stream, "chat": _whole}
                tally = await load(client, kinds, total=48, concurrency=6, seconds=60)
                report(request, "llm-faults, one provider up", tally, 0.0, "no outage a user saw")
                assert tally.count("failed") == 0, tally.details("failed")
                assert tally.count("lost") == 0, tally.details("lost")
                met = {type(r.step).__name__ for r in first.requests if r.wire == "openai"}
                assert met >= {type(f).__name__ for f in FAULTS}, met
                assert any("provider_switched" in d for _, k, _, d in tally.outcomes)

                # every provider down: clean errors, a 503 or a stream's error event
                primary_down = backup_down = True
                down = await load(client, kinds, total=12, concurrency=4, seconds=60)
                problems = [d for _, _, o, d in down.outcomes]
                assert down.count("lost") == 0, down.details("lost")
                assert down.count("ok") == 0, problems
                for _, kind, _, detail in down.outcomes:
                    if kind == "chat":
                        assert detail.startswith("503 llm_unavailable"), detail
                    else:
                        assert detail.startswith("error event {'code':"), detail

                # and back up: the first request after answers
                primary_down = backup_down = False
                back = time.monotonic()
                while (await _whole(client))[0] != "ok":
                    assert time.monotonic() - back < 30, "the providers never came back"
                    await asyncio.sleep(0.1)
                report(
                    request,
                    "llm-faults, all providers down",
                    down,
                    time.monotonic() - back,
                    "failures expected: clean 503s and error events",
                )
