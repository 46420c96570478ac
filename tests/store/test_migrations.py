from __future__ import annotations

from importlib import resources

from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from nomosx.store.db import Database
from nomosx.store.migrations import HEAD_REVISION


def test_head_revision_constant_matches_the_scripts() -> None:
    location = str(resources.files("nomosx.store") / "migrations")
    script = ScriptDirectory(location)
    assert script.get_current_head() == HEAD_REVISION


async def test_migrate_creates_schema_once(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()  # the fixture database may already be migrated
        assert await db.current_revision() == HEAD_REVISION
        assert await db.migrate() is False  # nothing left to do

        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {
            "sources",
            "authors",
            "source_authors",
            "briefs",
            "pipeline_runs",
            "llm_calls",
            "alembic_version",
            "library_state",
        } <= tables
    finally:
        await db.dispose()


async def test_fresh_sqlite_file_is_migrated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}")
    try:
        assert await db.current_revision() is None
        assert await db.migrate() is True
        assert await db.current_revision() == HEAD_REVISION
    finally:
        await db.dispose()
