"""Secrets never leave the process: not in logs, Sentry events, HTTP answers, stored rows
or the command line's output.

Known values are set for ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, the password of
``DATABASE_URL`` (the real PostgreSQL, which accepts it under trust auth), the password of
``REDIS_URL`` (a dead port: every Redis use fails), ``SENTRY_DSN`` (a loopback Sentry
server receiving real envelopes) and a user's API key. Then real flows run, on a real
uvicorn server configured exactly as ``nomosx serve`` is (``observability.configure``):
providers that answer 401/500 *with the key in the error body*, a chat that fails over,
a streamed chat, a brief whose model calls fail, health with Redis down, requests
carrying secrets in headers and query strings, a database that cannot be reached; and
the CLI (a real ``nomosx`` process) with a dead database, a dead Redis and a provider
echoing its key.

Every channel is captured and searched for each secret: the log lines (JSON and
console, both runs), the raw Sentry envelopes, every HTTP status line, header and body,
every row of every table, every file of the data directory, and the CLI's stdout and
stderr. The DSN's public key is sent to Sentry in its own auth header and envelope
header by design, so only there is it allowed; everywhere else it counts as a secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from sqlalchemy import text

from nomosx.api.auth import KEY_COOKIE
from nomosx.config import Settings
from nomosx.errors import StoreError
from nomosx.observability.setup import configure
from nomosx.store.db import Database
from nomosx.store.users import UserRepository
from nomosx.testing.fake_llm import Fail, FakeLLMServer, RecordedRequest, Reply, Step, unused_port
from tests.api.server import live_server
from tests.conftest import TABLES
from tests.observability.restore import restored_observability
from tests.observability.test_sentry import SentryServer, sentry_server

__all__ = ["sentry_server"]  # the fixture, imported for the tests below

OPENAI_KEY = "sk-proj-openaiSECRET-1234567890abcdef"
ANTHROPIC_KEY = "sk-ant-api03-anthropicSECRET-0987654321"
DB_PASSWORD = "pgSECRET-pw-4242"
REDIS_PASSWORD = "redisSECRET-pw-9999"
SENTRY_PUBLIC_KEY = "sentrySECRETpublickey0123"
QUESTION = "Does the Swedish carbon tax reduce emissions?"


@pytest.fixture(autouse=True)
def _restore_observability() -> Iterator[None]:
    """``configure`` changes process-wide state; put it back after the test."""
    with restored_observability():
        yield


def _with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def _leaks(channel: str, content: str | bytes, secrets: list[str]) -> list[str]:
    data = content if isinstance(content, str) else content.decode("utf-8", "replace")
    return [f"{channel}: {secret!r}" for secret in secrets if secret in data]


class _Responses:
    """Every HTTP answer, status line, headers and body, as text."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def add(self, response: httpx.Response) -> httpx.Response:
        login = response.request.url.path == "/login"
        headers = "\n".join(
            f"{k}: {v}"
            for k, v in response.headers.multi_items()
            # logging in sets the key as the session cookie: that is where it belongs
            if not (login and k.lower() == "set-cookie")
        )
        self.seen.append(
            f"{response.status_code} {response.request.method} {response.request.url.path}"
            f"\n{headers}\n\n{response.text}"
        )
        return response


def _responder(request: RecordedRequest) -> Step:
    """Once the script is used up, every provider refuses its key, echoing it."""
    key = ANTHROPIC_KEY if request.wire == "anthropic" else OPENAI_KEY
    return Fail(401, message=f"Incorrect API key provided: {key}. Authorization: Bearer {key}")


async def _seed(database_url: str) -> str:
    db = Database(database_url)
    try:
        await db.migrate()
        async with db.engine.begin() as conn:
            await conn.execute(
                text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
            )  # constant table names
            await conn.execute(text("UPDATE library_state SET revision = 0, sources = 0"))
        _, key = await UserRepository(db).create("alice")
        return key
    finally:
        await db.dispose()


async def _all_rows(database_url: str) -> str:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            dumped = []
            for table in (*TABLES, "library_state"):
                rows = await conn.execute(text(f"SELECT * FROM {table}"))  # constant table names
                dumped += [f"{table}: {tuple(row)!r}" for row in rows]
            return "\n".join(dumped)
    finally:
        await db.dispose()


def _files(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _cli(env_extra: dict[str, str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NOMOSX_") and k not in ("DATABASE_URL", "REDIS_URL", "SENTRY_DSN")
    }
    env.update(
        NOMOSX_DATA_DIR=str(data_dir),
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_RETRIEVAL__EMBEDDER="none",
        COLUMNS="200",
        NO_COLOR="1",
        TERM="dumb",
        **env_extra,
    )
    return subprocess.run(
        [sys.executable, "-m", "nomosx", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def _api_flows(url: str, user_key: str, responses: _Responses) -> None:
    auth = {"Authorization": f"Bearer {user_key}"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
            return responses.add(await client.request(method, path, **kwargs))

        chat = {"messages": [{"role": "user", "content": "Do carbon taxes work?"}]}
        failed = await call("POST", "/api/chat", json=chat, headers=auth)
        assert failed.status_code in (401, 502, 503), failed.text
        ok = await call("POST", "/api/chat", json=chat, headers=auth)
        assert ok.status_code == 200, ok.text
        streamed = await call("POST", "/api/chat/stream", json=chat, headers=auth)
        assert streamed.status_code == 200 and "event: done" in streamed.text, streamed.text
        refused = await call("POST", "/api/chat/stream", json=chat, headers=auth)
        assert refused.status_code == 200 and "event: error" in refused.text, refused.text

        asked = await call("POST", "/api/briefs", json={"question": QUESTION}, headers=auth)
        assert asked.status_code in (200, 202), asked.text
        brief_id = asked.json()["id"]
        await call("GET", f"/api/briefs/{brief_id}/events", headers=auth)
        state = await call("GET", f"/api/briefs/{brief_id}", headers=auth)
        assert state.json()["status"] == "succeeded", state.text
        for fmt in ("md", "html", "json"):
            await call("GET", f"/api/briefs/{brief_id}", params={"format": fmt}, headers=auth)
        page = await call(
            "GET", f"/briefs/{brief_id}", headers={"Cookie": f"{KEY_COOKIE}={user_key}"}
        )
        assert page.status_code == 200, page.text[:300]
        login = await call("POST", "/login", data={"key": user_key, "next": "/"})
        assert login.status_code in (303, 200), login.text[:300]

        health = await call("GET", "/api/system/health")
        assert health.json()["services"]["cache"]["status"] != "healthy", health.text
        me = await call("GET", "/api/me", headers=auth)
        assert me.status_code == 200, me.text  # Redis down: open streams unknown, not a 500
        await call("GET", "/metrics")
        # secrets sent *to* the server, where they do not belong
        wrong = await call("GET", "/api/me", headers={"Authorization": f"Bearer {OPENAI_KEY}"})
        assert wrong.status_code == 401
        await call("GET", f"/api/briefs?api_key={ANTHROPIC_KEY}&token={OPENAI_KEY}", headers=auth)
        await call("GET", f"/nowhere?password={DB_PASSWORD}", headers={"X-Api-Key": OPENAI_KEY})
        await call(
            "POST", "/api/briefs", json={"question": f"leak {REDIS_PASSWORD}", "x": 1}, headers=auth
        )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("json_logs", [True, False], ids=["json-logs", "console-logs"])
def test_no_secret_reaches_any_output_channel(
    json_logs: bool,
    tmp_path: Path,
    postgres_url: str,
    sentry_server: SentryServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database_url = _with_password(postgres_url, DB_PASSWORD)
    user_key = asyncio.run(_seed(database_url))
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{unused_port()}/0"
    dsn = f"http://{SENTRY_PUBLIC_KEY}@127.0.0.1:{sentry_server.port}/1"
    secrets = [OPENAI_KEY, ANTHROPIC_KEY, DB_PASSWORD, REDIS_PASSWORD, dsn, user_key]
    everywhere_but_sentry = [*secrets, SENTRY_PUBLIC_KEY]
    responses = _Responses()
    data_dir = tmp_path / "data"

    with FakeLLMServer(
        models=("gpt-4o-mini", "claude-3-5-haiku-latest"), responder=_responder
    ).in_thread() as fake:
        fake.script(
            # chat 1: both providers refuse their key, echoing it in the error body
            Fail(401, message=f"Incorrect API key provided: {OPENAI_KEY}"),
            Fail(401, message=f"invalid x-api-key {ANTHROPIC_KEY}"),
            # chat 2: a 500 quoting the key, then the fallback answers
            Fail(500, message=f"upstream failed for key {OPENAI_KEY}"),
            Reply("Carbon taxes reduce emissions."),
            # chat 3 (streamed): the first provider answers
            Reply("Carbon taxes reduce emissions, streamed."),
            # then the responder: every call refused with the key echoed
        )
        settings = Settings(
            env="test",
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            openai_api_key=OPENAI_KEY,
            anthropic_api_key=ANTHROPIC_KEY,
            sentry_dsn=dsn,
            sentry_traces_sample_rate=1.0,
            llm_chain="openai:gpt-4o-mini,anthropic:claude-3-5-haiku-latest",
            llm={
                "openai_base_url": fake.openai_base_url,
                "anthropic_base_url": fake.base_url,
                "attempts": 1,
                "cache_entries": 0,
                "timeout": 10.0,
                "breaker_threshold": 100,
            },
            bundled_library=False,
            jobs={"backend": "inprocess"},
            cache={"op_timeout": 0.1},
            retrieval={"embedder": "none"},
            log_json=json_logs,
        )
        assert configure(settings)
        capsys.readouterr()  # start the log capture here
        with live_server(settings) as live:
            from tests.factories import make_source

            live.ingest(
                [
                    make_source(
                        f"doi:10.1/swe{i}",
                        title=f"The Swedish carbon tax and emissions in sector {i}",
                        abstract=f"The Swedish carbon tax reduced emissions in sector {i}.",
                    )
                    for i in range(3)
                ]
            )
            asyncio.run(_api_flows(live.url, user_key, responses))

            # an unreachable database, and a logged exception on its error (Sentry event)
            messages: list[str] = []

            async def dead_database() -> None:
                dead = _with_password(
                    f"postgresql+asyncpg://postgres@127.0.0.1:{unused_port()}/nomosx",
                    DB_PASSWORD,
                )
                db = Database(dead)
                try:
                    with pytest.raises(StoreError) as failed:
                        await db.ping()
                    logging.getLogger("nomosx.test").error(
                        "the database is down: %s", failed.value, exc_info=failed.value
                    )
                    messages.append(str(failed.value))
                finally:
                    await db.dispose()

            live.run(dead_database())
        sentry_sdk.flush(timeout=10.0)
        logs = capsys.readouterr()

        cli_runs = [
            _cli(
                {
                    "DATABASE_URL": _with_password(
                        f"postgresql://postgres@127.0.0.1:{unused_port()}/x", DB_PASSWORD
                    )
                },
                tmp_path / "cli1",
                "briefs",
                "list",
            ),
            _cli({"REDIS_URL": redis_url}, tmp_path / "cli2", "cache", "stats"),
            _cli(
                {
                    "OPENAI_API_KEY": OPENAI_KEY,
                    "NOMOSX_LLM__OPENAI_BASE_URL": fake.openai_base_url,
                    "NOMOSX_LLM_CHAIN": "openai:gpt-4o-mini",
                    "NOMOSX_LLM__ATTEMPTS": "1",
                    "SENTRY_DSN": dsn,
                },
                tmp_path / "cli3",
                "llm",
                "ask",
                "Do carbon taxes work?",
            ),
        ]
    assert cli_runs[0].returncode != 0 and cli_runs[2].returncode != 0

    leaks: list[str] = []
    leaks += _leaks("log lines", logs.err + logs.out, everywhere_but_sentry)
    for answer in responses.seen:
        leaks += _leaks(f"HTTP answer {answer.splitlines()[0]}", answer, everywhere_but_sentry)
    leaks += _leaks("database rows", asyncio.run(_all_rows(database_url)), everywhere_but_sentry)
    leaks += _leaks("data directory", _files(data_dir), everywhere_but_sentry)
    for run in cli_runs:
        leaks += _leaks(f"CLI {run.args[3:]}", run.stdout + run.stderr, everywhere_but_sentry)
    raw = sentry_server.raw()
    leaks += _leaks("Sentry envelopes", raw, secrets)
    assert not leaks, "\n".join(leaks)

    # the channels were really exercised
    assert sentry_server.payloads("event"), "no Sentry event was sent"
    assert sentry_server.payloads("transaction")
    assert "the database is down" in logs.err
    (message,) = messages
    assert "database postgresql+asyncpg://" in message
    leaks += _leaks("StoreError message", message, everywhere_but_sentry)
    assert not leaks, "\n".join(leaks)
    assert "[redacted]" in logs.err or "[redacted]" in raw.decode("utf-8", "replace")
    assert len(responses.seen) >= 15
    assert any("401" in r for r in responses.seen)
    assert fake.completion_requests
