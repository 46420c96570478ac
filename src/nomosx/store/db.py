"""The database handle: engine, sessions, migrations, error conversion."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from nomosx.errors import StoreError
from nomosx.store.migrations import HEAD_REVISION


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """One database: SQLite (embedded) or PostgreSQL, chosen by the URL alone."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        options: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                folder = Path(database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the database folder {folder}: {exc.strerror or exc}; "
                        "set NOMOSX_DATA_DIR to a writable directory"
                    ) from None
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({redact(self.url)!r})"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success, errors made ``StoreError``."""
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except (OperationalError, DBAPIError, OSError) as exc:
            raise StoreError(self._describe(exc)) from exc

    def _describe(self, exc: BaseException) -> str:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"database {redact(self.url)} failed: {detail}"

    async def current_revision(self) -> str | None:
        try:
            async with self.engine.connect() as conn:
                result = await conn.execute(text("SELECT version_num FROM alembic_version"))
                row = result.first()
                return None if row is None else str(row[0])
        except (OperationalError, ProgrammingError) as exc:
            if _is_missing_table(exc):
                return None
            raise StoreError(self._describe(exc)) from exc
        except (DBAPIError, OSError) as exc:
            raise StoreError(self._describe(exc)) from exc

    async def migrate(self, *, wait: float = 30.0) -> bool:
        """Bring the schema to the latest revision; returns whether this call ran it.

        Several processes may start at once on one database: on PostgreSQL they queue on
        an advisory lock (the DDL is transactional); elsewhere, a process whose migration
        collides with another's waits up to ``wait`` seconds for the schema to reach head.
        """
        if await self.current_revision() == HEAD_REVISION:
            return False
        async with _MIGRATING:  # alembic keeps global state: one migration per process
            return await self._migrate(wait)

    async def _migrate(self, wait: float) -> bool:
        if await self.current_revision() == HEAD_REVISION:
            return False
        try:
            async with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
                    if await conn.run_sync(_revision) == HEAD_REVISION:
                        return False  # another process migrated while we waited
                await conn.run_sync(_upgrade_to_head)
        except SQLAlchemyError as exc:
            if await self._reached_head(wait):
                return False
            raise StoreError(self._describe(exc)) from exc
        return True

    async def _reached_head(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                if await self.current_revision() == HEAD_REVISION:
                    return True
            except StoreError:
                pass
            await asyncio.sleep(0.2)
        return False

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as exc:
            raise StoreError(self._describe(exc)) from exc

    async def dispose(self) -> None:
        await self.engine.dispose()


def _is_missing_table(exc: BaseException) -> bool:
    message = str(exc).lower()
    return "no such table" in message or "does not exist" in message


_LOCK = 0x6E6F6D6F  # "nomo": the advisory lock key of NomosX migrations
_MIGRATING = asyncio.Lock()


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_to_head(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    location = resources.files("nomosx.store") / "migrations"
    config.set_main_option("script_location", str(location))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
