"""Fault injection against real processes on loopback.

Every scenario runs ``nomosx serve`` (and ``nomosx worker``) as subprocesses, against a
Redis server and a PostgreSQL cluster that this suite starts itself on free ports, so that
killing and restarting them never touches the shared services other tests use. The
language models are :class:`~nomosx.testing.fake_llm.FakeLLMServer` instances.

Each scenario records a line ``name: requests N, failed F, lost L, recovery S s``; the
lines are printed as they happen (seen with ``-s``) and again in pytest's terminal summary
by the plugin ``tests/faults/summary.py`` (seen in CI, with or without xdist).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from nomosx.app import NomosX
from nomosx.auth.models import UserLimits
from nomosx.config import Settings
from nomosx.models import Source
from nomosx.store.db import Database
from nomosx.store.users import UserRepository
from tests.factories import make_source
from tests.faults.summary import SCENARIO_KEY


def _pg_bin() -> Path:
    """``NOMOSX_TEST_PG_BIN``, else Debian's newest ``/usr/lib/postgresql/N/bin``, else
    wherever ``initdb`` is on the PATH."""
    if given := os.environ.get("NOMOSX_TEST_PG_BIN"):
        return Path(given)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
STARTUP = 90.0  # seconds a server process may take to answer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, seconds: float, process: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode} at start")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {seconds} s")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(20)


# -- Redis -------------------------------------------------------------------------------


class RedisServer:
    """A ``redis-server`` of our own: no persistence, killed and restarted at will."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        with (self.workdir / "redis.log").open("ab") as log:  # the child keeps its own fd
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_port(self.port, 20, self.process)

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(20)

    def stop(self) -> None:
        _stop(self.process)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.fail(
            "no redis-server binary: the fault tests start their own Redis "
            "(apt-get install redis-server)"
        )
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- PostgreSQL --------------------------------------------------------------------------


def _as_postgres() -> list[str]:
    """The prefix that runs a PostgreSQL binary as a non-root user (it refuses root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]


class PostgresCluster:
    """A cluster of our own in a temporary folder: trust auth, a free port, fsync off."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.data = root / "data"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            [
                *_as_postgres(),
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
        )

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        with (self.root.parent / "postgres.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *_as_postgres(),
                    str(PG_BIN / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        deadline = time.monotonic() + 60
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError("PostgreSQL exited at start")
            if time.monotonic() > deadline:
                raise TimeoutError("PostgreSQL did not start within 60 s")
            time.sleep(0.1)

    def ready(self) -> bool:
        result = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def stop(self, mode: int = signal.SIGINT) -> None:
        """SIGINT is PostgreSQL's fast shutdown: clients are disconnected, work rolled back."""
        _stop(self.process, mode)

    async def create_database(self) -> str:
        name = f"faults_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.fail(
            f"no PostgreSQL binaries in {PG_BIN}: the fault tests start their own cluster "
            "(apt-get install postgresql, or set NOMOSX_TEST_PG_BIN)"
        )
    root = Path(tempfile.mkdtemp(prefix="nomosx-faults-pg-"))
    root.chmod(0o755)  # the postgres user must reach its cluster inside
    cluster = PostgresCluster(root / "cluster")
    cluster.root.mkdir()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- the NomosX processes ----------------------------------------------------------------

CARBON = "Does a carbon tax reduce greenhouse gas emissions?"


def library() -> list[Source]:
    """Six sources on carbon taxes: enough for a brief on :data:`CARBON`."""
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


def base_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a NomosX process: nothing of the developer's, a small library,
    no embedder, generous defaults; ``extra`` on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOMOSX_", "OPENAI_", "ANTHROPIC_", "GEMINI_"))
        and k not in ("DATABASE_URL", "REDIS_URL", "QDRANT_URL", "SENTRY_DSN")
    }
    env.update(
        NOMOSX_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_RETRIEVAL__EMBEDDER="none",
        NOMOSX_PIPELINE__SOURCES="3",
        NOMOSX_LOG_JSON="false",
    )
    env.update(extra)
    return env


async def prepare_database(data_dir: Path, database_url: str) -> str:
    """Migrate, load :func:`library`, create a user with generous limits: their key."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        bundled_library=False,
        retrieval={"embedder": "none"},
        cache={"enabled": False},
    )
    app = await NomosX.open(settings)
    try:
        await app.sources.upsert_many(library())
    finally:
        await app.close()
    db = Database(database_url)
    try:
        users = UserRepository(db)
        name = f"load{uuid.uuid4().hex[:8]}"
        await users.create(name)
        await users.set_limits(
            name,
            UserLimits(requests_per_minute=100_000, concurrent_streams=500, daily_budget_usd=1e6),
        )
        return await users.add_key(name)
    finally:
        await db.dispose()


class NomosXProcess:
    """``nomosx serve`` or ``nomosx worker`` as a subprocess, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nomosx", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        _stop(self.process)

    def tail(self, chars: int = 6000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


class Api(NomosXProcess):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__(["serve", "--port", str(self.port)], env, log)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP
        while True:
            if not self.alive():
                raise RuntimeError(f"the API exited at start:\n{self.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API was not ready in {STARTUP} s:\n{self.tail()}")
            time.sleep(0.2)


@contextlib.contextmanager
def running(*processes: NomosXProcess) -> Iterator[None]:
    """Start ``processes``, stop them after (their logs printed if the block failed)."""
    try:
        for process in processes:
            process.start()
        for process in processes:
            if isinstance(process, Api):
                process.wait_ready()
        yield
    except BaseException:
        for process in processes:
            print(f"--- {' '.join(process.args)} ---\n{process.tail()}", flush=True)
        raise
    finally:
        for process in processes:
            process.stop()


# -- the load generator ------------------------------------------------------------------

Outcome = str  # "ok", "failed" (an error the user sees), "lost" (no answer at all)


@dataclass
class Tally:
    """What became of the requests of a load."""

    outcomes: list[tuple[float, str, Outcome, str]] = field(default_factory=list)

    def add(self, at: float, kind: str, outcome: Outcome, detail: str = "") -> None:
        self.outcomes.append((at, kind, outcome, detail))

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o[2] == outcome)

    def details(self, outcome: Outcome, limit: int = 10) -> list[str]:
        return [f"{kind}: {detail}" for _, kind, o, detail in self.outcomes if o == outcome][:limit]


Request = Callable[[httpx.AsyncClient], Awaitable[tuple[Outcome, str]]]


async def load(
    client: httpx.AsyncClient,
    kinds: dict[str, Request],
    *,
    total: int,
    concurrency: int,
    seconds: float,
    per_request: float = 30.0,
    pace: float = 0.0,
) -> Tally:
    """Run ``total`` requests (cycling through ``kinds``), ``concurrency`` at a time, for at
    most ``seconds`` of wall clock: requests not started by then are not made, and one that
    has no answer within ``per_request`` seconds is lost. Each lane waits ``pace`` seconds
    between its requests (so that fast failures do not use up ``total`` at once)."""
    tally = Tally()
    names = list(kinds)
    started = time.monotonic()
    counter = iter(range(total))

    async def one(kind: str) -> None:
        at = time.monotonic() - started
        try:
            async with asyncio.timeout(per_request):
                outcome, detail = await kinds[kind](client)
        except TimeoutError:
            outcome, detail = "lost", f"no answer in {per_request} s"
        except httpx.TransportError as exc:
            outcome, detail = "lost", f"{type(exc).__name__}: {exc}"
        tally.add(at, kind, outcome, detail)

    async def lane() -> None:
        for n in counter:
            if time.monotonic() - started > seconds:
                return
            await one(names[n % len(names)])
            if pace:
                await asyncio.sleep(pace)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return tally


def problem_of(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message'][:120]}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:120]!r}"


async def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """The events of an SSE response, read to its end."""
    events: list[tuple[str, Any]] = []
    name, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line:
            if data:
                events.append((name, json.loads(data)))
            name, data = "message", ""
    return events


# -- reporting ---------------------------------------------------------------------------


def report(
    request: pytest.FixtureRequest,
    name: str,
    tally: Tally,
    recovery: float | None,
    note: str = "",
) -> str:
    """Print the scenario's line now, and keep it for the terminal summary."""
    rec = "n/a" if recovery is None else f"{recovery:.2f}"
    line = (
        f"{name}: requests {tally.requests}, failed {tally.count('failed')}, "
        f"lost {tally.count('lost')}, recovery {rec} s"
    )
    if note:
        line += f" ({note})"
    print(line, flush=True)
    request.node.user_properties.append((SCENARIO_KEY, line))
    return line
