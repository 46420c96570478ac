"""Benchmark: the HTTP API under load, over loopback, as separate processes.

    .venv/bin/python bench/api.py [--ttft-requests 300] [--streams 1000] [--health-seconds 5]

Three kinds of processes, all on 127.0.0.1:

- two fake vendors (``nomosx.testing.fake_llm``), each in its own process: ``fast`` answers
  at once (for time to first token and health), ``slow`` streams ``--tokens`` chunks with
  ``--chunk-delay`` seconds before each (for the concurrent streams);
- the API: ``python -m uvicorn --factory nomosx.api.main:app_factory``, configured by
  environment as a deployment is (chain ``openai:gpt-4o-mini`` at ``fast`` then
  ``ollama:llama3`` at ``slow``; requests pick the model with ``"model"``; no caches, so
  every request goes upstream);
- this process: the clients (``httpx`` + ``httpx-sse``, the ``openai`` SDK for the floor).

Measures:

1. time to first token through ``POST /api/chat/stream`` minus the fake vendor's own,
   measured with the ``openai`` SDK straight at it in the same run, request by request
   interleaved (p50/p99);
2. ``--streams`` concurrent streams: how many completed (every token and a ``done``), the
   time to first token under that load, and the inter-token gap seen by the client minus
   the configured ``--chunk-delay`` (p50/p99);
3. ``GET /api/system/health`` requests per second from ``--health-clients`` concurrent
   clients for ``--health-seconds`` seconds.

Every phase is bounded in count and in time (``--phase-timeout``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import httpx
import openai
from openai.types.chat import ChatCompletionUserMessageParam

from nomosx.testing.fake_llm import FakeLLMServer, Reply

T = TypeVar("T")

HOST = "127.0.0.1"
FAST_MODEL = "gpt-4o-mini"
SLOW_MODEL = "llama3"
QUESTION = "Does a carbon tax reduce emissions?"
MESSAGES = [{"role": "user", "content": QUESTION}]
SDK_MESSAGES: list[ChatCompletionUserMessageParam] = [{"role": "user", "content": QUESTION}]
TEXT = "Carbon taxes reduced emissions by five to fifteen percent in British Columbia."


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


# -- the fake vendor, in its own process ------------------------------------------------


def serve_fake(words: int, chunk_delay: float, model: str) -> None:
    """Run one fake vendor until stdin closes; print its port first."""
    text = TEXT if words <= 0 else " ".join(f"tok{i}" for i in range(words))

    async def main() -> None:
        server = FakeLLMServer(default=Reply(text, chunk_delay=chunk_delay), models=(model,))
        await server.start()
        print(server.port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes it
        await server.stop()

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())


@dataclass
class Child:
    """A process this benchmark started; stopped by closing its stdin (a fake vendor) or
    by SIGTERM (uvicorn's graceful shutdown), killed if it does not stop."""

    name: str
    process: subprocess.Popen[str]
    by_stdin: bool
    stop_signal: int = signal.SIGTERM

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.by_stdin and self.process.stdin is not None:
                with contextlib.suppress(OSError):
                    self.process.stdin.close()
            else:
                self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def start_fake(words: int, chunk_delay: float, model: str) -> tuple[Child, str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "fake", str(words), str(chunk_delay), model],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        raise RuntimeError(f"the fake vendor did not start: {line!r}")
    return Child(f"fake-{model}", process, by_stdin=True), f"http://{HOST}:{line}/v1"


def start_api(
    fast_url: str,
    slow_url: str,
    data_dir: str,
    log: TextIO,
    *,
    workers: int = 1,
    profile: str | None = None,
) -> tuple[Child, str]:
    port = free_port()
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        NOMOSX_DATA_DIR=data_dir,
        NOMOSX_LOG_JSON="true",  # as in production; the log goes to a file
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_CACHE__ENABLED="false",  # every request goes upstream
        NOMOSX_LLM__CACHE_ENTRIES="0",
        NOMOSX_LLM__ATTEMPTS="1",
        NOMOSX_LLM__TIMEOUT="120",
        NOMOSX_LLM__DEADLINE="300",
        OPENAI_API_KEY="sk-bench",
        NOMOSX_LLM__OPENAI_BASE_URL=fast_url,
        NOMOSX_LLM__COMPATIBLE__OLLAMA__BASE_URL=slow_url,
        NOMOSX_LLM_CHAIN=f"openai:{FAST_MODEL},ollama:{SLOW_MODEL}",
    )
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    process = subprocess.Popen(
        [
            sys.executable,
            *profiler,
            "-m",
            "uvicorn",
            "--factory",
            "nomosx.api.main:app_factory",
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--backlog",
            "4096",
            "--workers",
            str(workers),
        ],
        stdin=subprocess.DEVNULL,
        stderr=log,
        env=env,
        text=True,
    )
    # uvicorn re-raises the signal after its graceful shutdown: SIGINT lets cProfile write
    child = Child(
        "api", process, by_stdin=False, stop_signal=signal.SIGINT if profile else signal.SIGTERM
    )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            child.stop()
            raise RuntimeError("the API was not ready within 60 s")
        time.sleep(0.1)
    return child, url


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """User + system CPU time so far of a process (and with ``tree``, of its live
    descendants: uvicorn's workers), from Linux ``/proc``; NaN elsewhere."""
    if (own := _stat(pid)) is None:
        return float("nan")
    if not tree:
        return (int(own[11]) + int(own[12])) / os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = _stat(current)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
        todo.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class CPU:
    """CPU seconds each process spent during a phase: where the time went."""

    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {n: cpu_seconds(p, tree=n == "api") for n, p in self.pids.items()}

    def __post_init__(self) -> None:
        self.start = self._now()

    def report(self, wall: float) -> str:
        now = self._now()
        used = {n: now[n] - self.start[n] for n in self.pids}
        return ", ".join(f"{n} {s:.1f} s ({s / wall:.0%})" for n, s in used.items())


# -- the load client ---------------------------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load generator.

    httpx is the client of the tests, but at a thousand concurrent requests its pool costs
    the client process more CPU than the server under test spends (1,000 concurrent
    ``GET /healthz`` on a bare FastAPI app: ≈6 s with httpx, ≈0.3 s with this), which would
    measure the client. This speaks just enough HTTP/1.1 (Content-Length and chunked
    responses) and SSE.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def _request(
        self, method: str, path: str, body: bytes | None, accept: str
    ) -> tuple[int, dict[str, str], asyncio.StreamReader]:
        reader, writer = await self._connect()
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Accept: {accept}",
        ]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        return status, headers, reader

    async def _body(self, headers: dict[str, str], reader: asyncio.StreamReader) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        parts = [chunk async for chunk in self._chunks(reader)]
        return b"".join(parts)

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            size = int((await reader.readline()).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readline()
                return
            yield (await reader.readexactly(size + 2))[:-2]

    async def get(self, path: str) -> tuple[int, bytes]:
        status, headers, reader = await self._request("GET", path, None, "application/json")
        body = await self._body(headers, reader)
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def sse(self, path: str, payload: dict[str, Any]) -> AsyncIterator[tuple[str, str]]:
        """POST ``payload``; the response's events as ``(event, data)``, comments skipped."""
        body = json.dumps(payload).encode()
        status, headers, reader = await self._request("POST", path, body, "text/event-stream")
        if status != 200 or "chunked" not in headers.get("transfer-encoding", ""):
            await self._body(headers, reader)
            raise RuntimeError(f"HTTP {status}")
        buffer = ""
        async for chunk in self._chunks(reader):
            buffer += chunk.decode()
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                name, data = "message", []
                for line in block.split("\n"):
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                if data:
                    yield name, "\n".join(data)


def split_url(url: str) -> tuple[str, int, str]:
    """``http://host:port/prefix`` → host, port, prefix."""
    rest = url.removeprefix("http://")
    address, _, prefix = rest.partition("/")
    host, _, port = address.partition(":")
    return host, int(port), "/" + prefix if prefix else ""


# -- 1. time to first token -------------------------------------------------------------


async def ttft_sdk(client: openai.AsyncOpenAI) -> float:
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model=FAST_MODEL,
        messages=SDK_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    first = float("nan")
    async with stream:
        async for chunk in stream:
            if first != first and chunk.choices and chunk.choices[0].delta.content:
                first = (time.perf_counter() - started) * 1000
    return first


async def ttft_fake_raw(conn: Conn, prefix: str) -> float:
    """The fake vendor's own TTFT through the same client as the API's."""
    started = time.perf_counter()
    first = float("nan")
    body = {"model": FAST_MODEL, "messages": MESSAGES, "stream": True}
    async for _, data in conn.sse(f"{prefix}/chat/completions", body):
        if first != first and data != "[DONE]":
            choices = json.loads(data)["choices"]
            if choices and choices[0]["delta"].get("content"):
                first = (time.perf_counter() - started) * 1000
    return first


async def ttft_api(conn: Conn, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    first = float("nan")
    done = False
    async for event, data in conn.sse("/api/chat/stream", body):
        if event == "token" and first != first:
            first = (time.perf_counter() - started) * 1000
        elif event == "done":
            done = True
        elif event == "error":
            raise RuntimeError(f"stream error: {data}")
    if not done:
        raise RuntimeError("the stream ended without done")
    return first


@dataclass
class TTFT:
    sdk: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    api: list[float] = field(default_factory=list)


async def bench_ttft(url: str, fast_url: str, requests: int, warmup: int = 20) -> TTFT:
    """Interleaved, request by request: the fake through the openai SDK, the fake through
    the load client, the API through the load client (each on a keep-alive connection)."""
    body = {"messages": MESSAGES, "model": f"openai:{FAST_MODEL}"}
    result = TTFT()
    sdk = openai.AsyncOpenAI(base_url=fast_url, api_key="sk-bench", max_retries=0)
    fake_host, fake_port, prefix = split_url(fast_url)
    api_host, api_port, _ = split_url(url)
    fake, api = Conn(fake_host, fake_port), Conn(api_host, api_port)
    try:
        for i in range(warmup + requests):
            times = (
                await ttft_sdk(sdk),
                await ttft_fake_raw(fake, prefix),
                await ttft_api(api, body),
            )
            if i >= warmup:
                result.sdk.append(times[0])
                result.raw.append(times[1])
                result.api.append(times[2])
    finally:
        await sdk.close()
        await fake.close()
        await api.close()
    return result


# -- 2. concurrent streams --------------------------------------------------------------


@dataclass
class Streams:
    started: int = 0
    completed: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    ttft: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)  # ms between tokens, as received
    wall: float = 0.0


async def one_stream(
    url: str, body: dict[str, Any], tokens: int, out: Streams, gate: asyncio.Event
) -> None:
    host, port, _ = split_url(url)
    conn = Conn(host, port)
    await gate.wait()
    started = time.perf_counter()
    arrivals: list[float] = []
    done = False
    try:
        async for event, data in conn.sse("/api/chat/stream", body):
            if event == "token":
                arrivals.append(time.perf_counter())
            elif event == "done":
                done = True
            elif event == "error":
                raise RuntimeError(f"error event {json.loads(data).get('code')}")
    except Exception as exc:
        name = str(exc) if isinstance(exc, RuntimeError) else type(exc).__name__
        out.failed[name] = out.failed.get(name, 0) + 1
        return
    finally:
        await conn.close()
    if not done or len(arrivals) != tokens:
        key = f"incomplete ({len(arrivals)} tokens, done={done})"
        out.failed[key] = out.failed.get(key, 0) + 1
        return
    out.completed += 1
    out.ttft.append((arrivals[0] - started) * 1000)
    out.gaps.extend((b - a) * 1000 for a, b in itertools.pairwise(arrivals))


async def bench_streams(url: str, streams: int, tokens: int, seconds: float) -> Streams:
    """All ``streams`` start together (a gate), each on its own connection."""
    out = Streams(started=streams)
    body = {"messages": MESSAGES, "model": f"ollama:{SLOW_MODEL}"}
    gate = asyncio.Event()
    tasks = [asyncio.create_task(one_stream(url, body, tokens, out, gate)) for _ in range(streams)]
    await asyncio.sleep(0)
    started = time.perf_counter()
    gate.set()
    _, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if pending:
        out.failed["phase timeout"] = len(pending)
    out.wall = time.perf_counter() - started
    return out


# -- 3. health under concurrent polling -------------------------------------------------


@dataclass
class Health:
    ok: int = 0
    other: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def bench_health(url: str, clients: int, seconds: float) -> Health:
    """``clients`` workers, each on its own keep-alive connection, for ``seconds``."""
    out = Health()
    host, port, _ = split_url(url)
    warm = Conn(host, port)
    await warm.get("/api/system/health")  # the provider health checks are cached after this
    await warm.close()

    async def worker(stop: float) -> None:
        conn = Conn(host, port)
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                status, _ = await conn.get("/api/system/health")
                out.latencies.append((time.perf_counter() - t0) * 1000)
                if status == 200:
                    out.ok += 1
                else:
                    out.other[status] = out.other.get(status, 0) + 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(started + seconds) for _ in range(clients)))
    out.seconds = time.perf_counter() - started
    return out


# -- the run ----------------------------------------------------------------------------


async def bounded(coro: Awaitable[T], seconds: float, what: str) -> T:
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        raise RuntimeError(f"{what}: over the {seconds:.0f} s bound") from None


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


async def measure(args: argparse.Namespace, url: str, fast_url: str, pids: dict[str, int]) -> None:
    limit = args.phase_timeout
    ttft = await bounded(bench_ttft(url, fast_url, args.ttft_requests), limit, "ttft")

    def row(name: str, values: list[float]) -> tuple[str, str]:
        return name, f"{pct(values, 0.5):6.2f}  {pct(values, 0.99):7.2f}"

    def pairs(a: list[float], b: list[float]) -> list[float]:
        return [x - y for x, y in zip(a, b, strict=True)]

    print(f"\n1. time to first token, {len(ttft.api)} sequential requests of each kind (ms)")
    print(
        table(
            [
                ("", "   p50      p99"),
                row("fake vendor, openai SDK", ttft.sdk),
                row("fake vendor, load client", ttft.raw),
                row("API /api/chat/stream, load client", ttft.api),
                row("added by the API (same client)", pairs(ttft.api, ttft.raw)),
                row("API minus the openai SDK's own", pairs(ttft.api, ttft.sdk)),
            ]
        )
    )

    cpu = CPU(pids)
    streams = await bench_streams(url, args.streams, args.tokens, args.phase_timeout)
    streams_cpu = cpu.report(streams.wall)
    delay_ms = args.chunk_delay * 1000
    extra = [g - delay_ms for g in streams.gaps]
    failed = ", ".join(f"{k}: {v}" for k, v in streams.failed.items()) or "none"
    ideal = (args.tokens + 1) * args.chunk_delay
    print(
        f"\n2. {streams.started} concurrent streams of {args.tokens} tokens, "
        f"chunk_delay {delay_ms:.0f} ms (one stream alone: ≈{ideal:.2f} s)"
    )
    print(
        table(
            [
                ("completed", f"{streams.completed} / {streams.started}"),
                ("failed", failed),
                ("wall time", f"{streams.wall:.2f} s"),
                ("tokens received", f"{streams.completed * args.tokens}"),
                (
                    "TTFT under load p50 / p99",
                    f"{pct(streams.ttft, 0.5):.1f} / {pct(streams.ttft, 0.99):.1f} ms",
                ),
                (
                    "inter-token gap p50 / p99",
                    f"{pct(streams.gaps, 0.5):.1f} / {pct(streams.gaps, 0.99):.1f} ms",
                ),
                (
                    "added gap (− chunk_delay) p50 / p99",
                    f"{pct(extra, 0.5):.1f} / {pct(extra, 0.99):.1f} ms",
                ),
                ("CPU during the phase", streams_cpu),
            ]
        )
    )

    cpu = CPU(pids)
    health = await bounded(
        bench_health(url, args.health_clients, args.health_seconds), limit, "health"
    )
    total = health.ok + sum(health.other.values())
    others = ", ".join(f"{k}: {v}" for k, v in health.other.items()) or "none"
    print(f"\n3. GET /api/system/health, {args.health_clients} concurrent clients")
    print(
        table(
            [
                ("requests", f"{total} in {health.seconds:.2f} s"),
                ("requests/s", f"{total / health.seconds:.0f}"),
                ("non-200", others),
                (
                    "latency p50 / p99",
                    f"{pct(health.latencies, 0.5):.1f} / {pct(health.latencies, 0.99):.1f} ms",
                ),
                ("CPU during the phase", cpu.report(health.seconds)),
            ]
        )
    )


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "fake":
        serve_fake(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttft-requests", type=int, default=300)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--chunk-delay", type=float, default=0.05)
    parser.add_argument("--health-clients", type=int, default=50)
    parser.add_argument("--health-seconds", type=float, default=5.0)
    parser.add_argument("--phase-timeout", type=float, default=180.0)
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn --workers")
    parser.add_argument("--profile-api", metavar="FILE", help="cProfile the API process")
    args = parser.parse_args()

    children: list[Child] = []
    with (
        tempfile.TemporaryDirectory(prefix="nomosx-bench-") as data_dir,
        open(os.path.join(data_dir, "api.log"), "w+") as log,
    ):
        try:
            run_all(args, data_dir, log, children)
        finally:
            for child in reversed(children):
                child.stop()
            summarise_log(log)


def summarise_log(log: TextIO) -> None:
    log.seek(0)
    lines = log.read().splitlines()
    loggers: dict[str, int] = {}
    problems: list[str] = []
    for line in lines:
        try:
            record = json.loads(line)
            key = f"{record.get('level', '?')} {record.get('logger', '?')}"
        except ValueError:
            key = "not JSON"
        loggers[key] = loggers.get(key, 0) + 1
        if not key.startswith(("info ", "debug ")):
            problems.append(line)
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(loggers.items(), key=lambda kv: -kv[1]))
    print(f"\nAPI log: {len(lines)} lines ({counts or 'empty'})")
    for line in problems[:5]:
        print("  " + line[:300])


def run_all(args: argparse.Namespace, data_dir: str, log: TextIO, children: list[Child]) -> None:
    fast, fast_url = start_fake(0, 0.0, FAST_MODEL)
    children.append(fast)
    slow, slow_url = start_fake(args.tokens, args.chunk_delay, SLOW_MODEL)
    children.append(slow)
    api, url = start_api(
        fast_url, slow_url, data_dir, log, workers=args.api_workers, profile=args.profile_api
    )
    children.append(api)
    print(
        f"API {url} (uvicorn --factory nomosx.api.main:app_factory, own process, "
        f"{args.api_workers} worker{'s' if args.api_workers > 1 else ''}); "
        f"fake vendors {fast_url} and {slow_url} (own processes); {os.cpu_count()} CPUs"
    )
    pids = {
        "api": api.process.pid,
        "fake (slow)": slow.process.pid,
        "fake (fast)": fast.process.pid,
        "clients": os.getpid(),
    }
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(measure(args, url, fast_url, pids))


if __name__ == "__main__":
    main()
