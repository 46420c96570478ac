"""A site with three users (alice and bob, and root the admin), a small library and one
brief of alice's, served in-process over ASGI; the browser tests serve it over TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from nomosx.api.app import create_app
from nomosx.auth.models import Role
from nomosx.config import Settings
from tests.api.test_api import QUESTION, _library, _wait_done


@dataclass
class Site:
    app: FastAPI
    client: httpx.AsyncClient
    keys: dict[str, str]  # user name -> API key
    alice_brief: str

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def cookie(self, name: str) -> dict[str, str]:
        return {"Cookie": f"nomosx_key={self.keys[name]}"}


def site_settings(data_dir: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'nomosx.db'}",
        "bundled_library": False,
        "redis_url": None,
        "limits": {"requests_per_minute": 1000},
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    app = create_app(site_settings(tmp_path / "data"), load_library=False)
    async with app.router.lifespan_context(app):
        nomosx = app.state.nomosx
        await nomosx.sources.upsert_many(_library())
        keys = {}
        for name, role in (("alice", Role.USER), ("bob", Role.USER), ("root", Role.ADMIN)):
            _, keys[name] = await nomosx.users.create(name, role=role)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nomosx") as client:
            alice = {"Authorization": f"Bearer {keys['alice']}"}
            created = await client.post(
                "/api/briefs", json={"question": QUESTION, "sources": 3}, headers=alice
            )
            assert created.status_code == 202, created.text
            brief_id = created.json()["id"]
            client.headers.update(alice)
            assert (await _wait_done(client, brief_id))["status"] == "succeeded"
            del client.headers["Authorization"]
            yield Site(app, client, keys, brief_id)
