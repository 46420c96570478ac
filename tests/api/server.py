"""A real uvicorn server for API tests: the app on a loopback port, in a background thread.

The server runs :func:`nomosx.api.app.create_app` with its lifespan, on its own event loop
in a daemon thread, so tests talk to it over TCP with real HTTP clients (``httpx``, an SSE
client, ``requests`` under schemathesis) exactly as a browser or ``curl`` would::

    with FakeLLMServer().in_thread() as fake, live_server(chat_settings(tmp_path, fake)) as live:
        async with httpx.AsyncClient(base_url=live.url) as client:
            ...

Objects of the application (``live.app.state.nomosx``) belong to the server's event loop:
run coroutines that touch them with :meth:`LiveServer.run` (sync) or
:meth:`LiveServer.arun` (async), never on the test's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from nomosx.api.app import create_app
from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.models import Source
from nomosx.testing.fake_llm import FakeLLMServer
from tests.factories import make_source

T = TypeVar("T")

STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0


@dataclass
class LiveServer:
    """A running server: its base URL, the app, and a way onto its event loop."""

    app: FastAPI
    url: str
    loop: asyncio.AbstractEventLoop
    server: uvicorn.Server

    @property
    def nomosx(self) -> NomosX:
        app: NomosX = self.app.state.nomosx
        return app

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the server's loop and wait for its result (from sync code)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and await its result (from async code)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def ingest(self, sources: Sequence[Source]) -> None:
        self.run(self.nomosx.sources.upsert_many(sources))


@contextlib.contextmanager
def live_server(settings: Settings, *, load_library: bool = False) -> Iterator[LiveServer]:
    """Serve ``create_app(settings)`` on a free loopback port until the block ends."""
    app = create_app(settings, load_library=load_library)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_level="warning",
        log_config=None,  # leave the test process's logging configuration alone
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loops: list[asyncio.AbstractEventLoop] = []
    failures: list[BaseException] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    def target() -> None:
        try:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(main())
        except BaseException as exc:  # reported to the test below
            failures.append(exc)

    thread = threading.Thread(target=target, name=f"uvicorn-{port}", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the API server did not start: {failures!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API server did not start within {STARTUP_TIMEOUT} s")
            time.sleep(0.01)
        yield LiveServer(app=app, url=f"http://127.0.0.1:{port}", loop=loops[0], server=server)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("the API server did not stop")
    if failures and not isinstance(failures[0], SystemExit):
        raise RuntimeError("the API server failed") from failures[0]


def chat_settings(
    data_dir: Path,
    openai: FakeLLMServer | None = None,
    *,
    compatible: dict[str, FakeLLMServer] | None = None,
    chain: str | None = None,
    **overrides: Any,
) -> Settings:
    """Settings for a test server: its own data dir, no bundled library, no cache, no API
    keys (single-user mode), and the OpenAI provider (and any OpenAI-compatible ones) at
    fake loopback servers."""
    llm: dict[str, Any] = {"attempts": 1, "cache_entries": 0, "timeout": 10.0}
    values: dict[str, Any] = {
        "data_dir": data_dir,
        # explicit, so that no DATABASE_URL or REDIS_URL of the environment leaks in
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'nomosx.db'}",
        "redis_url": None,
        "bundled_library": False,
        "cache": {"enabled": False},
        # single-user mode (loopback): these tests are about the API, not about keys
        "auth": {"single_user": True},
    }
    if openai is not None:
        llm["openai_base_url"] = openai.openai_base_url
        values["openai_api_key"] = "sk-test"
    if compatible:
        llm["compatible"] = {
            name: {"base_url": server.openai_base_url} for name, server in compatible.items()
        }
    if chain is not None:
        values["llm_chain"] = chain
    elif openai is not None:
        values["llm_chain"] = "openai:gpt-4o-mini"
    llm.update(overrides.pop("llm", {}))
    values["llm"] = llm
    values.update(overrides)
    return Settings(**values)


LIBRARY_TOPICS = (
    ("carbon", "Carbon taxes and emissions: evidence from British Columbia"),
    ("carbon-eu", "The EU emissions trading system and carbon leakage"),
    ("carbon-se", "Sweden's carbon tax: emissions and growth since 1991"),
    ("wage", "Minimum wages and employment: a meta-analysis"),
    ("vitd", "Vitamin D supplementation and fracture risk in older adults"),
    ("sleep", "Sleep duration and cognitive performance in adolescents"),
)


def small_library() -> list[Source]:
    """A handful of sources, three of them on carbon pricing."""
    sources = []
    for year, (slug, title) in enumerate(LIBRARY_TOPICS, start=2015):
        fields: dict[str, Any] = {"title": title, "year": year}
        if not slug.startswith("carbon"):
            fields["abstract"] = (
                f"{title}. We review the evidence from randomised and observational "
                "studies. The effect is small and varies across settings."
            )
            fields["topics"] = [slug]
        sources.append(make_source(f"doi:10.1000/{slug}", **fields))
    return sources
