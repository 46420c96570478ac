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


def test_processes_starting_together_all_migrate(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Four processes start on one fresh database at once: none fails."""
    import subprocess
    import sys
    import uuid

    from tests.conftest import ADMIN_URL, _admin, _asyncpg_url

    name = None
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    else:
        import asyncio

        name = f"nomosx_race_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        base = _asyncpg_url(ADMIN_URL).rsplit("/", 1)[0]
        url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://")
    script = (
        "import asyncio, sys\n"
        "from nomosx.store.db import Database\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    ran = await db.migrate()\n"
        "    print(ran, await db.current_revision())\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-500:] for _, err in outputs]
        results = [out.split() for out, _ in outputs]
        assert all(revision == HEAD_REVISION for _, revision in results)
        assert sum(ran == "True" for ran, _ in results) >= 1
    finally:
        if name is not None:
            import asyncio

            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_existing_sources_get_the_current_revision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """0004 stamps the sources already stored with the library's revision."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(resources.files("nomosx.store") / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        conn.execute(
            text(
                "INSERT INTO sources (key, provider, provider_ids, title, title_norm, links,"
                " topics, raw, content_hash, created_at, updated_at) VALUES (:key, 'x', '{}',"
                " 't', 't', '[]', '[]', '{}', 'h', '2024-01-01', '2024-01-01')"
            ),
            [{"key": "a"}, {"key": "b"}],
        )
        conn.execute(text("UPDATE library_state SET revision = 5, sources = 2"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        assert conn.execute(text("SELECT key, revision FROM sources ORDER BY key")).all() == [
            ("a", 5),
            ("b", 5),
        ]
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("sources")}
        assert indexes["ix_sources_revision"] == ["revision", "id"]
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
        assert "revision" not in {c["name"] for c in inspect(conn).get_columns("sources")}
    engine.dispose()
