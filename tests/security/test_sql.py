"""SQL only through bound parameters: a static scan of ``src`` and hostile input end to end.

1. An AST scan of every module of ``src/nomosx``: a ``sqlalchemy.text()`` call must take a
   constant string, and the statement handed to ``execute``/``executemany``/
   ``executescript``/``exec_driver_sql`` must never be built from an f-string, ``%``,
   ``+`` or ``.format`` (directly or through a local name), except the reviewed entries of
   ``ALLOWED`` (constant identifiers or ``?`` placeholders only, no input).
2. Hostile strings (quotes, ``'; DROP TABLE``, ``%``/``_`` wildcards, unicode, NUL) go
   through ingest (a real JSON Lines file), search, brief questions and ids, and user
   names, via the API (ASGI) and the CLI (a real ``nomosx`` process), on SQLite and
   PostgreSQL; afterwards every table is there, the row counts are what they were plus
   what was added, and hostile text is stored verbatim. No answer is a 500.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import text

from nomosx.api.app import create_app
from nomosx.config import Settings
from nomosx.store.db import Database
from nomosx.store.users import UserRepository
from tests.conftest import TABLES

SRC = Path(__file__).resolve().parents[2] / "src" / "nomosx"
_EXECUTE = {"execute", "executemany", "executescript", "exec_driver_sql"}

# (module relative to src/nomosx, a fragment of the statement's source): reviewed, safe
ALLOWED = {
    # an int constant of the module in a PRAGMA (no parameter is allowed there)
    ("cache/embedded.py", "PRAGMA journal_size_limit = {_WAL_LIMIT}"),
    # a run of "?" placeholders, one per bound key
    ("cache/embedded.py", "WHERE key IN ({marks})"),
}

HOSTILE = [
    "'; DROP TABLE sources; --",
    'Robert"); DROP TABLE users;--',
    "1' OR '1'='1",
    "%' OR '%'='%",
    "100%_match\\",
    "$$; DELETE FROM briefs; $$",
    "ünïcödé ☃ 𝔘𝔫𝔦 \u202e",
    "nul\x00byte",
]


# --------------------------------------------------------------------------- static scan


def _is_built_string(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("format", "join", "replace")
        and isinstance(node.func.value, ast.Constant)
    )


def _assignments(tree: ast.Module) -> dict[str, list[ast.AST]]:
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            if node.value is not None:
                value = node.value if isinstance(node, ast.AnnAssign) else node
                found.setdefault(node.target.id, []).append(value)
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            found.setdefault(node.target.id, []).append(node.iter)
    return found


def _sqlalchemy_text_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "text"}
    return names


def _suspects(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assigned = _assignments(tree)
    text_names = _sqlalchemy_text_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        arg = node.args[0]
        if isinstance(func, ast.Name) and func.id in text_names:
            constant = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            if not constant:
                found.append((node.lineno, ast.unparse(arg)))
        elif isinstance(func, ast.Attribute) and func.attr in _EXECUTE:
            candidates: list[ast.AST] = [arg]
            if isinstance(arg, ast.Name):
                candidates += assigned.get(arg.id, [])
            if any(_is_built_string(c) for c in candidates):
                found.append((node.lineno, ast.unparse(arg)))
    return found


def test_the_scanner_finds_sql_built_from_strings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from sqlalchemy import text\n"
        "def f(conn, name, table):\n"
        "    conn.execute(text(f'SELECT * FROM users WHERE name = {name}'))\n"
        "    conn.execute('DELETE FROM x WHERE id = %s' % name)\n"
        "    query = 'SELECT ' + table\n"
        "    conn.execute(query)\n"
        "    conn.execute(text('SELECT 1 WHERE a = :a'), {'a': name})\n"
        "    conn.executemany('INSERT INTO t VALUES (?)', [(name,)])\n"
    )
    assert sorted(line for line, _ in _suspects(sample)) == [3, 4, 6]


def test_src_builds_no_sql_from_strings() -> None:
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 50
    offending: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in modules:
        rel = path.relative_to(SRC).as_posix()
        for line, statement in _suspects(path):
            allowed = [(m, frag) for m, frag in ALLOWED if m == rel and frag in statement]
            if allowed:
                used.update(allowed)
            else:
                offending.append(f"{rel}:{line}: {statement}")
    assert not offending, "SQL built from strings:\n" + "\n".join(offending)
    assert used == ALLOWED, f"stale allowlist entries: {ALLOWED - used}"


# --------------------------------------------------------------------------- hostile input


def _records() -> list[dict[str, object]]:
    plain: dict[str, object] = {
        "key": "test:plain",
        "provider": "test",
        "title": "The Swedish carbon tax and emissions",
        "abstract": "The Swedish carbon tax reduced emissions by eleven percent.",
    }
    return [plain] + [
        {
            "key": f"test:h{i}",
            "provider": "test",
            "provider_ids": {"test": value},
            "title": f"Carbon tax study {value}",
            "abstract": f"The carbon tax reduced emissions. {value}",
            "authors": [{"name": value}],
            "topics": [value],
        }
        for i, value in enumerate(HOSTILE)
        if "\x00" not in value  # a NUL is refused by the JSON Lines reader's checks below
    ]


async def _counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return {
                table: int(
                    (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one()
                )  # constant table names
                for table in TABLES
            }
    finally:
        await db.dispose()


def _cli(data_dir: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NOMOSX_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        NOMOSX_DATA_DIR=str(data_dir),
        DATABASE_URL=database_url,
        NOMOSX_BUNDLED_LIBRARY="false",
        NOMOSX_CACHE__ENABLED="false",
        NOMOSX_RETRIEVAL__EMBEDDER="none",
        COLUMNS="200",
        NO_COLOR="1",
        TERM="dumb",
    )
    return subprocess.run(
        [sys.executable, "-m", "nomosx", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode != 0:
        assert result.stderr.strip().count("\n") <= 2, result.stderr


@pytest.mark.timeout(300)
async def test_hostile_input_through_api_and_cli_leaves_data_intact(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    before = await _counts(database_url)
    records = _records()
    works = tmp_path / "hostile.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.append(json.dumps({"key": "test:nul", "provider": "test", "title": "a\x00b"}))
    works.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # the CLI: ingest, search, show, create users with hostile text
    data_dir = tmp_path / "cli"
    ingested = _cli(data_dir, database_url, "ingest", str(works))
    assert ingested.returncode == 0, ingested.stderr
    assert f"{len(records)} new" in ingested.stderr, ingested.stderr
    assert "NUL" in ingested.stderr, ingested.stderr
    for value in HOSTILE[:4]:
        for args in (
            ("sources", "search", value, "--limit", "5"),
            ("briefs", "show", value),
            ("users", "create", value),
        ):
            if "\x00" in value:
                continue  # a process argument cannot carry a NUL
            result = _cli(data_dir, database_url, *args)
            _assert_clean_failure(result)
            if args[0] == "users":
                assert result.returncode != 0 and "invalid user name" in result.stderr
            if args[0] == "briefs":
                assert result.returncode != 0

    # the API, in process, on the same data directory (its search index)
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        bundled_library=False,
        cache={"enabled": False},
        auth={"single_user": True},
        retrieval={"embedder": "none"},
    )
    app = create_app(settings, load_library=False)
    async with app.router.lifespan_context(app):
        nomosx = app.state.nomosx
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            # one stored brief: a LIKE wildcard as an id prefix must not find it
            first = await client.post(
                "/api/briefs", json={"question": "Did the Swedish carbon tax reduce emissions?"}
            )
            assert first.status_code == 202, first.text
            brief_id = first.json()["id"]
            for _ in range(300):
                state = (await client.get(f"/api/briefs/{brief_id}")).json()
                if state.get("status") in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.05)
            assert state["status"] == "succeeded", state.get("error", state)
            assert (await client.get(f"/api/briefs/{brief_id[:6]}")).status_code == 200
            for wildcard in ("%%%%", "____", "%", brief_id[:4] + "%"):
                response = await client.get(f"/api/briefs/{quote(wildcard, safe='')}")
                assert response.status_code == 404, (wildcard, response.text)
            for value in HOSTILE:
                hits = await nomosx.search(value, 5)
                assert all(h.source.key.startswith(("test:", "title:")) for h in hits)
                for method, url in (
                    ("GET", f"/api/briefs/{quote(value, safe='')}"),
                    ("GET", f"/api/briefs/{quote(value, safe='')}/events"),
                    ("DELETE", f"/api/briefs/{quote(value, safe='')}"),
                    ("GET", f"/briefs/{quote(value, safe='')}"),
                ):
                    response = await client.request(method, url)
                    assert response.status_code in (404, 422), (url, response.text)
                created = await client.post("/api/admin/users", json={"name": value})
                assert created.status_code == 422, created.text
                listed = await client.get("/api/briefs", params={"limit": "5", "offset": value})
                assert listed.status_code == 422
                asked = await client.post(
                    "/api/briefs", json={"question": f"Does the carbon tax work? {value}"}
                )
                assert asked.status_code < 500, asked.text
            listed = await client.get("/api/briefs")
            assert listed.status_code == 200

    after = await _counts(database_url)
    assert set(after) == set(TABLES)
    # the NUL record is reported as a bad line on both backends; every other one is stored
    assert after["sources"] == before["sources"] + len(records)
    assert after["users"] >= before["users"]
    stored = await _stored_titles(database_url)
    for record in records:
        assert record["title"] in stored


async def _stored_titles(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT title FROM sources"))
            return {str(row[0]) for row in rows}
    finally:
        await db.dispose()


async def test_a_key_prefix_is_not_a_like_pattern(db: Database) -> None:
    users = UserRepository(db)
    await users.create("carol")
    await users.add_key("carol")
    for pattern in ("nx_%", "nx__", "%", "_"):
        assert await users.revoke("carol", pattern) == 0, pattern
    assert all(k.revoked_at is None for k in await users.keys("carol"))
    assert await users.revoke("carol") == 2
