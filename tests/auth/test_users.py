"""Users and keys in the real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from nomosx.auth.keys import key_hash, looks_like_key
from nomosx.auth.models import Role, UserLimits
from nomosx.errors import InputError, NotFoundError
from nomosx.store.db import Database
from nomosx.store.tables import ApiKeyRow
from nomosx.store.users import UserRepository


async def test_a_key_authenticates_its_user_until_revoked(db: Database) -> None:
    users = UserRepository(db)
    alice, key = await users.create("alice", role=Role.ADMIN)
    assert looks_like_key(key) and alice.is_admin
    found = await users.authenticate(key)
    assert found is not None and found.id == alice.id and found.name == "alice"
    assert await users.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert await users.authenticate("not a key") is None
    assert await users.authenticate("") is None

    (stored,) = await users.keys("alice")
    assert stored.prefix == key[:11] and stored.last_used_at is not None
    async with db.session() as session:
        row = await session.get(ApiKeyRow, stored.id)
        assert row is not None and row.key_hash == key_hash(key)  # never the key itself

    second = await users.add_key("alice")
    assert await users.revoke("alice", key[:11]) == 1
    assert await users.authenticate(key) is None
    assert await users.authenticate(second) is not None
    assert await users.revoke("alice") == 1  # the rest
    assert await users.authenticate(second) is None


async def test_names_limits_roles_and_disabling(db: Database) -> None:
    users = UserRepository(db)
    _, key = await users.create("bob")
    with pytest.raises(InputError, match="already exists"):
        await users.create("bob")
    with pytest.raises(InputError, match="invalid user name"):
        await users.create("-bob")
    with pytest.raises(NotFoundError):
        await users.by_name("nobody")

    bob = await users.set_limits("bob", UserLimits(requests_per_minute=5, daily_budget_usd=0))
    assert bob.limits == UserLimits(requests_per_minute=5, daily_budget_usd=0.0)
    assert (await users.set_role("bob", Role.ADMIN)).is_admin
    await users.set_disabled("bob", True)
    assert await users.authenticate(key) is None
    await users.set_disabled("bob", False)
    assert await users.authenticate(key) is not None
    assert [u.name for u in await users.all()] == ["bob"] and await users.count() == 1
