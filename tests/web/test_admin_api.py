"""The dashboard's JSON routes: costs by day, provider, model and agent; cache; jobs;
errors; all for admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.web.conftest import Site
from tests.web.seed import (
    AGENTS,
    CALLS,
    DEAD_QUESTION,
    FAILED_QUESTION,
    MODELS,
    PROVIDERS,
    seed_dashboard,
)

ROUTES = ("/api/admin/costs", "/api/admin/cache", "/api/admin/jobs", "/api/admin/errors")


@pytest.fixture
async def seeded(site: Site) -> Site:
    await seed_dashboard(site.app.state.nomosx)
    return site


async def test_admin_routes_refuse_users_and_strangers(site: Site) -> None:
    for route in ROUTES:
        refused = await site.client.get(route, headers=site.auth("alice"))
        assert refused.status_code == 403, route
        assert refused.json()["error"]["code"] == "forbidden"
        assert (await site.client.get(route)).status_code == 401
        assert (await site.client.get(route, headers=site.auth("root"))).status_code == 200


async def test_costs_by_day_cover_every_day_of_the_window(seeded: Site) -> None:
    response = await seeded.client.get("/api/admin/costs?days=7", headers=seeded.auth("root"))
    report = response.json()
    assert report["by"] == "day" and report["days"] == 7
    today = datetime.now(UTC).date()
    assert [r["group"] for r in report["items"]] == [
        (today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)
    ]
    by_day = {r["group"]: r for r in report["items"]}
    assert by_day[today.isoformat()]["costUsd"] == pytest.approx(0.042)
    assert by_day[today.isoformat()]["calls"] == 2
    assert by_day[(today - timedelta(days=2)).isoformat()] == {
        "group": (today - timedelta(days=2)).isoformat(),
        "calls": 0,
        "tokensIn": 0,
        "tokensOut": 0,
        "costUsd": 0.0,
    }
    assert by_day[(today - timedelta(days=3)).isoformat()]["costUsd"] is None  # ollama: unknown
    assert report["calls"] == len(CALLS)
    # the day with the unpriced call still counts its priced one in the total
    assert report["totalUsd"] == pytest.approx(0.096)
    assert report["unpricedCalls"] == 1 and report["unpricedGroups"] == 1
    narrow = await seeded.client.get("/api/admin/costs?days=1", headers=seeded.auth("root"))
    assert narrow.json()["calls"] == 2


@pytest.mark.parametrize(
    ("by", "groups"), [("provider", PROVIDERS), ("model", MODELS), ("agent", AGENTS)]
)
async def test_costs_by_group_costliest_first(seeded: Site, by: str, groups: tuple[str]) -> None:
    response = await seeded.client.get(f"/api/admin/costs?by={by}", headers=seeded.auth("root"))
    items = response.json()["items"]
    assert sorted(r["group"] for r in items) == sorted(groups)
    known = [r["costUsd"] for r in items if r["costUsd"] is not None]
    assert known == sorted(known, reverse=True)
    assert sum(r["calls"] for r in items) == len(CALLS)


async def test_costs_refuse_unknown_groups_and_windows(site: Site) -> None:
    root = site.auth("root")
    for query in ("by=run", "by=user", "days=0", "days=367"):
        response = await site.client.get(f"/api/admin/costs?{query}", headers=root)
        assert response.status_code == 422, query
        assert response.json()["error"]["code"] == "validation_error"


async def test_cache_and_jobs(site: Site) -> None:
    root = site.auth("root")
    cache = (await site.client.get("/api/admin/cache", headers=root)).json()
    assert cache["enabled"] is True and cache["backend"] == "embedded"
    assert {n["namespace"] for n in cache["namespaces"]} >= {"brief"}
    assert cache["hits"] + cache["misses"] >= 1  # the brief job looked in the brief cache
    assert cache["memoryBytes"] is not None and cache["keys"] >= 1
    jobs = (await site.client.get("/api/admin/jobs", headers=root)).json()
    assert jobs["succeeded"] == 1 and jobs["pending"] == 0 and jobs["running"] == 0
    assert jobs["oldestPendingSeconds"] == 0


async def test_errors_show_failed_runs_and_dead_letters(seeded: Site) -> None:
    report = (await seeded.client.get("/api/admin/errors", headers=seeded.auth("root"))).json()
    (run,) = report["failedRuns"]
    assert run["question"] == FAILED_QUESTION and run["error"]
    (letter,) = report["deadLetters"]
    assert letter["question"] == DEAD_QUESTION
    assert letter["attempts"] == 3 and letter["errorCode"] == "Timeout"
    assert "Traceback" in letter["error"]
