"""``nomosx users`` and ``serve --single-user`` as people run them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nomosx.config import Settings
from nomosx.store.db import Database
from nomosx.store.users import UserRepository
from tests.cli.conftest import run_cli


async def _authenticate(data: Path, key: str) -> str | None:
    db = Database(Settings(data_dir=data).resolved_database_url)
    try:
        user = await UserRepository(db).authenticate(key)
        return None if user is None else f"{user.name}:{user.role.value}"
    finally:
        await db.dispose()


def test_create_prints_a_working_key_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = run_cli(data, "users", "create", "alice", "--admin")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("nx_") and len(key) == 46  # the key alone on stdout
    assert "shown this once" in created.stderr
    assert asyncio.run(_authenticate(data, key)) == "alice:admin"
    assert key not in (data / "nomosx.db").read_bytes().decode("latin-1")  # only its hash

    again = run_cli(data, "users", "create", "alice")
    assert again.returncode == 1
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
    bad = run_cli(data, "users", "create", "no spaces please")
    assert bad.returncode == 1 and "invalid user name" in bad.stderr

    listed = run_cli(data, "users", "list")
    assert "alice" in listed.stdout and "admin" in listed.stdout


def test_limits_keys_and_revocation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run_cli(data, "users", "create", "bob").stdout.strip()
    limits = run_cli(data, "users", "limits", "bob", "--rpm", "30", "--budget", "2.5")
    assert limits.returncode == 0, limits.stderr
    assert "'requests_per_minute': 30" in limits.stderr and "2.5" in limits.stderr
    listed = run_cli(data, "users", "list").stdout
    assert "30" in listed and "2.5" in listed

    second = run_cli(data, "users", "key", "bob").stdout.strip()
    assert second.startswith("nx_") and second != first
    keys = run_cli(data, "users", "keys", "bob").stdout
    assert first[:11] in keys and second[:11] in keys and first not in keys
    revoked = run_cli(data, "users", "revoke", "bob", first[:11])
    assert revoked.returncode == 0 and "revoked 1 key of bob" in revoked.stderr
    assert asyncio.run(_authenticate(data, first)) is None
    assert asyncio.run(_authenticate(data, second)) == "bob:user"

    assert run_cli(data, "users", "disable", "bob").returncode == 0
    assert asyncio.run(_authenticate(data, second)) is None
    assert run_cli(data, "users", "enable", "bob").returncode == 0
    assert asyncio.run(_authenticate(data, second)) == "bob:user"
    reset = run_cli(data, "users", "limits", "bob", "--default")
    assert "the server's defaults" in reset.stderr

    missing = run_cli(data, "users", "key", "nobody")
    assert missing.returncode == 1 and "no user named 'nobody'" in missing.stderr


def test_single_user_mode_is_refused_on_a_public_interface(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "data", "serve", "--single-user", "--host", "0.0.0.0")
    assert result.returncode == 1
    assert "single-user mode" in result.stderr and "--host 127.0.0.1" in result.stderr
