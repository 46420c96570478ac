"""Auth on every route: a walk over the OpenAPI document, unauthenticated, with a wrong
key, as another user and without the admin role; single-user mode; rate-limit headers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from nomosx.api.app import create_app
from nomosx.auth.models import Role, UserLimits
from nomosx.config import Settings
from tests.api.test_api import QUESTION, _library, _wait_done

# the only routes anyone may call without a key
OPEN_ROUTES = {
    ("GET", "/api/system/health"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
ADMIN_PREFIX = "/api/admin/"
DEFAULT_RPM = 1000
NOBODY = "00000000-0000-4000-8000-000000000000"


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    keys: dict[str, str]  # user name -> API key
    alice_brief: str

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def _settings(tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "bundled_library": False,
        "redis_url": None,
        "limits": {"requests_per_minute": DEFAULT_RPM},  # polling a job must not hit it
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    app = create_app(_settings(tmp_path), load_library=False)
    async with app.router.lifespan_context(app):
        nomosx = app.state.nomosx
        await nomosx.sources.upsert_many(_library())
        keys = {}
        for name, role in (("alice", Role.USER), ("bob", Role.USER), ("root", Role.ADMIN)):
            _, keys[name] = await nomosx.users.create(name, role=role)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nomosx") as client:
            created = await client.post(
                "/api/briefs",
                json={"question": QUESTION, "sources": 3},
                headers={"Authorization": f"Bearer {keys['alice']}"},
            )
            assert created.status_code == 202, created.text
            brief_id = created.json()["id"]
            world = World(app, client, keys, brief_id)
            client.headers.update(world.auth("alice"))
            assert (await _wait_done(client, brief_id))["status"] == "succeeded"
            del client.headers["Authorization"]
            yield world


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    document = app.openapi()
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    ]


def _url(path: str, world: World) -> str:
    return (
        path.replace("{brief_id}", world.alice_brief)
        .replace("{name}", "alice")
        .replace("{prefix}", "nx_")
    )


async def _call(world: World, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": "hi"}]} if "chat" in path else None
    if path.endswith("/briefs") and method == "POST":
        body = {"question": QUESTION}
    if path.startswith(ADMIN_PREFIX) and method in ("POST", "PATCH") and "keys" not in path:
        body = {"name": "carol"} if method == "POST" else {"requestsPerMinute": 10}
    return await world.client.request(
        method, _url(path, world), headers=headers, json=body, timeout=10
    )


async def test_every_route_but_health_needs_a_valid_key(world: World) -> None:
    routes = _routes(world.app)
    assert set(routes) >= OPEN_ROUTES
    protected = [r for r in routes if r not in OPEN_ROUTES]
    assert len(protected) >= 12  # chat, briefs, me and the admin routes
    assert all(path.startswith("/api/") for _, path in protected)
    for method, path in protected:
        for headers in (
            {},
            {"Authorization": "Bearer nx_" + "A" * 43},  # well formed, unknown
            {"Authorization": "Bearer"},
            {"Authorization": f"Basic {world.keys['alice']}"},
            {"Cookie": "nomosx_key=not-a-key"},
        ):
            response = await _call(world, method, path, headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for method, path in OPEN_ROUTES:
        response = await world.client.request(method, path)
        assert response.status_code in (200, 503), (method, path)


async def test_admin_routes_need_the_admin_role(world: World) -> None:
    admin_routes = [r for r in _routes(world.app) if r[1].startswith(ADMIN_PREFIX)]
    assert len(admin_routes) >= 5
    for method, path in admin_routes:
        refused = await _call(world, method, path, world.auth("bob"))
        assert refused.status_code == 403, (method, path, refused.text)
        assert refused.json()["error"]["code"] == "forbidden"
    listed = await world.client.get("/api/admin/users", headers=world.auth("root"))
    assert listed.status_code == 200
    assert sorted(u["name"] for u in listed.json()) == ["alice", "bob", "root"]


async def test_another_users_brief_is_not_found(world: World) -> None:
    brief = world.alice_brief
    mine = await world.client.get(f"/api/briefs/{brief}", headers=world.auth("alice"))
    assert mine.status_code == 200 and mine.json()["status"] == "succeeded"
    for method, path in _routes(world.app):
        if "{brief_id}" not in path:
            continue
        response = await _call(world, method, path, world.auth("bob"))
        assert response.status_code == 404, (method, path, response.text)
        # exactly what an id that names nothing gets: nothing tells that it exists
        unknown = await world.client.request(
            method, path.replace("{brief_id}", NOBODY), headers=world.auth("bob")
        )
        assert response.json() == json.loads(unknown.text.replace(NOBODY, brief))
    listed = await world.client.get("/api/briefs", headers=world.auth("bob"))
    assert listed.json()["total"] == 0 and listed.json()["items"] == []
    alices = await world.client.get("/api/briefs", headers=world.auth("alice"))
    assert [b["id"] for b in alices.json()["items"]] == [brief]
    short = await world.client.get(f"/api/briefs/{brief[:8]}", headers=world.auth("bob"))
    assert short.status_code == 404
    # the brief cache is per user: bob asking the same question gets his own job
    again = await world.client.post(
        "/api/briefs", json={"question": QUESTION, "sources": 3}, headers=world.auth("bob")
    )
    assert again.status_code == 202 and again.json()["id"] != brief


async def test_revoked_keys_and_disabled_users_are_refused(world: World) -> None:
    users = world.app.state.nomosx.users
    assert (await world.client.get("/api/me", headers=world.auth("bob"))).status_code == 200
    second = await users.add_key("bob")
    await users.revoke("bob", world.keys["bob"][:11])
    assert (await world.client.get("/api/me", headers=world.auth("bob"))).status_code == 401
    ok = await world.client.get("/api/me", headers={"Authorization": f"Bearer {second}"})
    assert ok.status_code == 200 and ok.json()["name"] == "bob"
    await users.set_disabled("bob", True)
    refused = await world.client.get("/api/me", headers={"Authorization": f"Bearer {second}"})
    assert refused.status_code == 401


async def test_the_web_cookie_carries_the_key(world: World) -> None:
    cookie = {"Cookie": f"nomosx_key={world.keys['root']}"}
    me = await world.client.get("/api/me", headers=cookie)
    assert me.status_code == 200 and me.json()["role"] == "admin"


async def test_admins_manage_users_and_keys_over_the_api(world: World) -> None:
    root = world.auth("root")
    created = await world.client.post("/api/admin/users", json={"name": "carol"}, headers=root)
    assert created.status_code == 201
    key = created.json()["apiKey"]
    carol = {"Authorization": f"Bearer {key}"}
    assert (await world.client.get("/api/me", headers=carol)).json()["name"] == "carol"
    taken = await world.client.post("/api/admin/users", json={"name": "carol"}, headers=root)
    assert taken.status_code == 400 and "already exists" in taken.json()["error"]["message"]
    bad = await world.client.post("/api/admin/users", json={"name": "no spaces"}, headers=root)
    assert bad.status_code == 422
    changed = await world.client.patch(
        "/api/admin/users/carol",
        json={"requestsPerMinute": 7, "dailyBudgetUsd": 0.5},
        headers=root,
    )
    assert changed.json()["limits"] == {
        "requestsPerMinute": 7,
        "concurrentStreams": 4,
        "dailyBudgetUsd": 0.5,
    }
    me = (await world.client.get("/api/me", headers=carol)).json()
    assert me["limits"]["requestsPerMinute"] == 7 and me["spentTodayUsd"] == 0
    listed = await world.client.get("/api/admin/users/carol/keys", headers=root)
    assert [k["prefix"] for k in listed.json()] == [key[:11]]
    assert key not in listed.text
    revoked = await world.client.delete(f"/api/admin/users/carol/keys/{key[:11]}", headers=root)
    assert revoked.status_code == 204
    assert (await world.client.get("/api/me", headers=carol)).status_code == 401
    missing = await world.client.patch("/api/admin/users/nobody", json={}, headers=root)
    assert missing.status_code == 404


async def test_rate_limit_headers_and_429(world: World) -> None:
    await world.app.state.nomosx.users.set_limits("bob", UserLimits(requests_per_minute=3))
    remaining = []
    for _ in range(3):
        response = await world.client.get("/api/me", headers=world.auth("bob"))
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Policy"] == "3;w=60"
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    refused = await world.client.get("/api/briefs", headers=world.auth("bob"))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Remaining"] == "0"
    # per user: alice is not affected, and has the server's default
    other = await world.client.get("/api/me", headers=world.auth("alice"))
    assert other.status_code == 200 and other.headers["RateLimit-Limit"] == str(DEFAULT_RPM)
    # health is not counted, nor limited
    assert (await world.client.get("/healthz", headers=world.auth("bob"))).status_code == 200


async def test_single_user_mode_serves_loopback_only(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, auth={"single_user": True}), load_library=False)
    async with app.router.lifespan_context(app):
        local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=local, base_url="http://x") as client:
            me = await client.get("/api/me")
            assert me.status_code == 200 and me.json()["name"] == "local"
            assert me.json()["role"] == "admin"
        async with httpx.AsyncClient(transport=remote, base_url="http://x") as client:
            refused = await client.get("/api/briefs")
            assert refused.status_code == 403
            assert "single-user mode" in refused.json()["error"]["message"]


async def test_keys_are_needed_by_default(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), load_library=False)
    async with app.router.lifespan_context(app):
        local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=local, base_url="http://x") as client:
            response = await client.get("/api/briefs")
            assert response.status_code == 401
            assert "nomosx users create" in response.json()["error"]["message"]
