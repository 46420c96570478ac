"""Shared fixtures: isolated settings, and a real database per backend.

Store tests run on both backends: SQLite (a file in a temporary folder) and the real
PostgreSQL server at ``NOMOSX_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, the server
CI starts). Each pytest-xdist worker gets its own PostgreSQL database, migrated once and
emptied before every test.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from nomosx.config import Settings
from nomosx.store.db import Database

# the fault-injection scenarios' figures in the terminal summary (tests/faults)
pytest_plugins = ["tests.faults.summary"]

ADMIN_URL = os.environ.get(
    "NOMOSX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_ENV_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "QDRANT_URL",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "SENTRY_DSN",
)
TABLES = (
    "source_authors",
    "authors",
    "sources",
    "llm_calls",
    "briefs",
    "pipeline_runs",
    "api_keys",
    "users",
    "dead_letters",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's settings or data directory."""
    for name in list(os.environ):
        if name.startswith("NOMOSX_") and name != "NOMOSX_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NOMOSX_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def _asyncpg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_url(ADMIN_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test worker."""
    name = f"nomosx_test_{worker_id}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = _asyncpg_url(ADMIN_URL).rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://")

    async def migrate() -> None:
        db = Database(url)
        await db.migrate()
        await db.dispose()

    asyncio.run(migrate())
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database on each backend."""
    database = Database(database_url)
    await database.migrate()
    if database.dialect == "postgresql":
        async with database.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
            await conn.execute(text("UPDATE library_state SET revision = 0, sources = 0"))
    yield database
    await database.dispose()
