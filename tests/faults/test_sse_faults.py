"""Slow clients and abrupt disconnects on the SSE routes leak nothing.

Against a real ``nomosx serve`` whose model answers slowly (a long stream, a chunk every
50 ms): 50 chat streams dropped after their first token (half of them with a TCP reset),
slow readers that read a few bytes at a time and then vanish, and brief event streams
dropped mid-brief. Counted before and after, in the API process (psutil): open file
descriptors, TCP connections of clients and to the model, threads; and over HTTP: the
user's open stream slots, and streams still running at the model.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from nomosx.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, Step

from .conftest import (
    CARBON,
    Api,
    PostgresCluster,
    RedisServer,
    Tally,
    base_env,
    prepare_database,
    report,
    running,
)

LONG = " ".join(f"word{n}" for n in range(200))  # 200 chunks, 50 ms apart: 10 s
CHAT = b'{"messages": [{"role": "user", "content": "Carbon taxes?"}]}'
MESSAGE = {"messages": [{"role": "user", "content": "Carbon taxes?"}]}
BRIEF = {"question": CARBON}
DISCONNECTS = 50
SLOW_READERS = 10


@dataclass(frozen=True)
class Counts:
    fds: int  # every open file descriptor
    clients: int  # TCP connections of clients to the API's port
    upstream: int  # TCP connections to the model
    pools: int  # TCP connections to PostgreSQL and Redis (pooled: they may grow)
    threads: int
    streams: int  # the user's open stream slots
    model_streams: int  # streams the model is still sending

    @property
    def other_fds(self) -> int:
        """Descriptors that are no pooled database or Redis connection."""
        return self.fds - self.pools

    def __str__(self) -> str:
        return (
            f"fds {self.fds} (pools {self.pools}), client conns {self.clients}, "
            f"model conns {self.upstream}, threads {self.threads}, "
            f"stream slots {self.streams}, model streams {self.model_streams}"
        )


async def _counts(
    process: psutil.Process,
    api_port: int,
    fake: FakeLLMServer,
    client: httpx.AsyncClient,
    pool_ports: tuple[int, ...],
) -> Counts:
    connections = process.net_connections(kind="tcp")
    me = (await client.get("/api/me")).json()
    return Counts(
        fds=process.num_fds(),
        clients=sum(1 for c in connections if c.laddr and c.laddr.port == api_port and c.raddr),
        upstream=sum(1 for c in connections if c.raddr and c.raddr.port == fake.port),
        pools=sum(1 for c in connections if c.raddr and c.raddr.port in pool_ports),
        threads=process.num_threads(),
        streams=me["openStreams"],
        model_streams=fake.active_streams,
    )


def _request(port: int, key: str, method: str, path: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n"
    )
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def _drop_after(
    port: int, payload: bytes, marker: bytes, *, reset: bool, read: Callable[[], float]
) -> tuple[str, str]:
    """Send ``payload`` on a raw socket, read until ``marker`` (at the pace ``read`` gives
    between 64-byte reads, if it gives one), then go away: a FIN, or a RST if ``reset``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    try:
        writer.write(payload)
        await writer.drain()
        seen = b""
        async with asyncio.timeout(30):
            while marker not in seen:
                pause = read()
                chunk = await reader.read(64 if pause else 65536)
                if not chunk:
                    return "failed", f"the server closed the stream first: {seen[:200]!r}"
                seen += chunk
                if pause:
                    await asyncio.sleep(pause)
        if not seen.startswith(b"HTTP/1.1 200"):
            return "failed", seen[:200].decode(errors="replace")
        return "ok", ""
    except TimeoutError:
        return "lost", "no first event within 30 s"
    finally:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()


@pytest.mark.timeout(240)
async def test_slow_clients_and_abrupt_disconnects_leak_nothing(
    postgres: PostgresCluster,
    redis_server: RedisServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    database_url = await postgres.create_database()
    key = await prepare_database(tmp_path / "setup", database_url)

    def answer(_: RecordedRequest) -> Step:
        return Reply(LONG, chunk_delay=0.05)

    with FakeLLMServer(models=("gpt-4o-mini",), responder=answer).in_thread() as fake:
        env = base_env(
            tmp_path / "api",
            database_url,
            REDIS_URL=redis_server.url(2),  # stream slots are leases in Redis
            OPENAI_API_KEY="sk-faults",
            NOMOSX_LLM__OPENAI_BASE_URL=fake.openai_base_url,
            NOMOSX_LLM_CHAIN="openai:gpt-4o-mini",
            NOMOSX_LLM__CACHE_ENTRIES="0",
            NOMOSX_CACHE__ENABLED="false",
            NOMOSX_JOBS__BACKEND="inprocess",
        )
        api = Api(env, tmp_path / "api.log")
        headers = {"Authorization": f"Bearer {key}"}
        with running(api):
            process = psutil.Process(api.pid)
            pools = (postgres.port, redis_server.port)
            async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as client:
                # warm up, as many at once as below: whole (short) streams, whole briefs
                fake.script(*[Reply("A short answer.")] * 10)

                async def whole_stream() -> None:
                    async with client.stream("POST", "/api/chat/stream", json=MESSAGE) as done:
                        assert done.status_code == 200
                        assert "event: done" in (await done.aread()).decode()

                async def whole_brief() -> None:
                    created = await client.post("/api/briefs?fresh=true", json=BRIEF)
                    assert created.status_code == 202, created.text
                    brief_id = created.json()["id"]
                    async with client.stream("GET", f"/api/briefs/{brief_id}/events") as events:
                        assert "event: done" in (await events.aread()).decode()

                await asyncio.gather(*(whole_stream() for _ in range(10)), whole_brief())
                await asyncio.gather(*(whole_brief() for _ in range(4)))
                before = await _counts(process, api.port, fake, client, pools)

                tally = Tally()
                started = time.monotonic()
                chat = _request(api.port, key, "POST", "/api/chat/stream", CHAT)

                async def dropped(n: int) -> None:
                    outcome, detail = await _drop_after(
                        api.port, chat, b"event: token", reset=n % 2 == 0, read=lambda: 0.0
                    )
                    tally.add(time.monotonic() - started, "dropped", outcome, detail)

                async def slow(n: int) -> None:
                    # a slow reader: 64 bytes every 100 ms, past several tokens, then gone
                    marker = b"word5 "
                    outcome, detail = await _drop_after(
                        api.port, chat, marker, reset=n % 2 == 0, read=lambda: 0.1
                    )
                    tally.add(time.monotonic() - started, "slow", outcome, detail)

                async def brief_dropped(n: int) -> None:
                    created = await client.post("/api/briefs?fresh=true", json={"question": CARBON})
                    brief_id = created.json()["id"]
                    outcome, detail = await _drop_after(
                        api.port,
                        _request(api.port, key, "GET", f"/api/briefs/{brief_id}/events"),
                        b"\n\n",  # the first event, whichever it is
                        reset=n % 2 == 0,
                        read=lambda: 0.0,
                    )
                    tally.add(time.monotonic() - started, "brief events", outcome, detail)

                gate = asyncio.Semaphore(10)

                async def bounded(job: Callable[[int], Awaitable[None]], n: int) -> None:
                    async with gate:
                        await job(n)

                await asyncio.gather(
                    *(bounded(dropped, n) for n in range(DISCONNECTS)),
                    *(bounded(slow, n) for n in range(SLOW_READERS)),
                    *(bounded(brief_dropped, n) for n in range(4)),
                )
                during = await _counts(process, api.port, fake, client, pools)

                # everything given back: poll (bounded) until the counts are down again
                settle = time.monotonic()
                after = during
                while time.monotonic() - settle < 30:
                    after = await _counts(process, api.port, fake, client, pools)
                    if (
                        after.streams == 0
                        and after.model_streams == 0
                        and after.clients <= before.clients
                        and after.upstream <= before.upstream
                        and after.other_fds <= before.other_fds
                    ):
                        break
                    await asyncio.sleep(0.2)
                recovery = time.monotonic() - settle
        print(f"sse leaks: before {before}", flush=True)
        print(f"sse leaks: during {during}", flush=True)
        print(f"sse leaks: after  {after}", flush=True)
        report(
            request,
            "sse-disconnects",
            tally,
            recovery,
            f"fds {before.fds}->{after.fds} (pooled db/redis {before.pools}->{after.pools}), "
            f"client conns {before.clients}->{after.clients}, "
            f"model conns {before.upstream}->{after.upstream}, "
            f"threads {before.threads}->{after.threads}",
        )
        assert tally.count("failed") == 0, tally.details("failed")
        assert tally.count("lost") == 0, tally.details("lost")
        assert after.streams == 0 and after.model_streams == 0, after
        assert after.clients <= before.clients, (before, after)
        assert after.upstream <= before.upstream, (before, after)
        assert after.other_fds <= before.other_fds, (before, after)
        assert after.pools <= before.pools + 10, (before, after)  # pool growth, bounded
        # threads start lazily (asyncio's default executor for DNS and to_thread, one per
        # pooled aiosqlite connection): a few more is growth, one per disconnect would be a
        # leak (seen 15 -> 18 under CI load)
        assert after.threads <= before.threads + 8, (before, after)
