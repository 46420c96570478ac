"""The web app's pages over ASGI: login and the key cookie, redirects, who sees what, the
reader's citations and evidence, security headers, single-user mode."""

from __future__ import annotations

import html
import re
from pathlib import Path

import httpx
import pytest

from nomosx.api.app import create_app
from nomosx.models import Brief
from nomosx.web.session import safe_next
from tests.api.test_api import QUESTION, _library, _wait_done
from tests.web.conftest import Site, site_settings

_POPOVER = re.compile(
    r'<div id="(ev-\d+)" class="evidence" popover role="dialog"[^>]*data-ref="(\d+)">'
    r'.*?<mark class="span">(.*?)</mark>',
    re.DOTALL,
)


async def _login(site: Site, key: str, next_page: str = "/") -> httpx.Response:
    return await site.client.post(
        "/login",
        data={"key": key, "next": next_page},
        headers={"Origin": "http://nomosx"},
    )


def test_safe_next_keeps_local_paths_only() -> None:
    assert safe_next("/briefs/abc?x=1") == "/briefs/abc?x=1"
    for bad in (None, "", "//evil.example/x", "https://evil.example/", "/\\evil", "x", "/a\nb"):
        assert safe_next(bad) == "/", bad


async def test_pages_redirect_to_login_and_back(site: Site) -> None:
    response = await site.client.get(f"/briefs/{site.alice_brief}?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/briefs/{site.alice_brief}%3Fx%3D1"
    login = await site.client.get("/login", params={"next": f"/briefs/{site.alice_brief}"})
    assert login.status_code == 200
    assert 'name="next" value="/briefs/' in login.text
    assert '<label for="key">API key</label>' in login.text

    refused = await _login(site, "nx_" + "A" * 43, "/briefs")
    assert refused.status_code == 401
    assert 'role="alert"' in refused.text and "unknown or revoked" in refused.text
    assert "set-cookie" not in refused.headers

    accepted = await _login(site, site.keys["alice"], "/briefs")
    assert accepted.status_code == 303 and accepted.headers["location"] == "/briefs"
    cookie = accepted.headers["set-cookie"]
    assert cookie.startswith(f"nomosx_key={site.keys['alice']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    # an open redirect is refused: back to the home page
    elsewhere = await _login(site, site.keys["alice"], "https://evil.example/")
    assert elsewhere.headers["location"] == "/"


async def test_login_from_another_site_is_refused(site: Site) -> None:
    response = await site.client.post(
        "/login",
        data={"key": site.keys["alice"], "next": "/"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


async def test_a_bad_cookie_is_dropped(site: Site) -> None:
    response = await site.client.get("/", headers={"Cookie": "nomosx_key=nx_revoked"})
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/"
    assert response.headers["set-cookie"].startswith('nomosx_key="";')


async def test_logout_forgets_the_key(site: Site) -> None:
    page = await site.client.get("/logout")
    assert page.status_code == 200 and 'action="/logout"' in page.text
    response = await site.client.post(
        "/logout", headers={**site.cookie("alice"), "Origin": "http://nomosx"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "max-age=0" in response.headers["set-cookie"].lower()
    foreign = await site.client.post("/logout", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403


async def test_secure_cookie_when_configured(tmp_path: Path) -> None:
    settings = site_settings(tmp_path / "data", auth={"cookie_secure": True})
    app = create_app(settings, load_library=False)
    async with app.router.lifespan_context(app):
        _, key = await app.state.nomosx.users.create("dana")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://x") as client:
            response = await client.post("/login", data={"key": key, "next": "/"})
            assert response.status_code == 303
            assert "Secure" in response.headers["set-cookie"]


async def test_ask_page_lists_my_recent_briefs(site: Site) -> None:
    mine = await site.client.get("/", headers=site.cookie("alice"))
    assert mine.status_code == 200
    assert '<form id="ask-form"' in mine.text and '<label for="question">' in mine.text
    assert f'href="/briefs/{site.alice_brief}"' in mine.text
    assert 'data-stage="scout"' in mine.text and 'data-stage="edit"' in mine.text
    assert "Signed in as <strong>alice</strong>" in mine.text
    assert 'href="/admin"' not in mine.text  # not an admin
    theirs = await site.client.get("/", headers=site.cookie("bob"))
    assert site.alice_brief not in theirs.text and "No briefs yet" in theirs.text
    listed = await site.client.get("/briefs", headers=site.cookie("alice"))
    assert "1 brief, newest first" in listed.text
    assert f'href="/briefs/{site.alice_brief}"' in listed.text
    beyond = await site.client.get("/briefs?page=3", headers=site.cookie("alice"))
    assert beyond.status_code == 200 and "No briefs on this page" in beyond.text


async def test_pages_carry_security_headers(site: Site) -> None:
    response = await site.client.get("/", headers=site.cookie("alice"))
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "<script>" not in response.text and "style=" not in response.text  # CSP-clean
    css = await site.client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await site.client.get("/static/ask.js")).status_code == 200


async def test_the_reader_shows_citations_with_their_evidence(site: Site) -> None:
    response = await site.client.get(f"/briefs/{site.alice_brief}", headers=site.cookie("alice"))
    assert response.status_code == 200
    page = response.text
    brief: Brief = await site.app.state.nomosx.briefs.get(site.alice_brief)
    assert html.escape(brief.title) in page
    popovers = _POPOVER.findall(page)
    assert popovers, "no evidence popover"
    evidence = {(c.ref, c.evidence) for c in brief.guard.citations}
    for popover_id, ref, quote in popovers:
        assert f'popovertarget="{popover_id}"' in page  # a citation button opens it
        assert (int(ref), html.unescape(quote)) in evidence
        source = brief.source_by_ref(int(ref))
        assert source is not None and source.source.abstract is not None
        assert html.unescape(quote) in source.source.abstract
    for n in range(1, len(brief.sources) + 1):
        assert f'<li id="src-{n}">' in page
    for href in (
        f"/api/briefs/{brief.id}?format=md",
        f"/api/briefs/{brief.id}?format=html",
        f"/api/briefs/{brief.id}?format=json",
        f"/api/briefs/{brief.id}/sources.bib",
    ):
        assert f'href="{href}"' in page
        assert (await site.client.get(href, headers=site.cookie("alice"))).status_code == 200
    fragment = await site.client.get(
        f"/briefs/{site.alice_brief}/view", headers=site.cookie("alice")
    )
    assert fragment.text.lstrip().startswith('<article class="brief"')


async def test_another_users_brief_is_not_found(site: Site) -> None:
    for path in (f"/briefs/{site.alice_brief}", f"/briefs/{site.alice_brief}/view"):
        response = await site.client.get(path, headers=site.cookie("bob"))
        assert response.status_code == 404, path
        assert brief_title_absent(response.text)


def brief_title_absent(page: str) -> bool:
    return "Carbon tax" not in page and "SRC-1" not in page


async def test_a_failed_brief_says_why(site: Site) -> None:
    alice = site.auth("alice")
    created = await site.client.post(
        "/api/briefs",
        json={"question": "Lattice gluon propagators in quantum chromodynamics?"},
        headers=alice,
    )
    brief_id = created.json()["id"]
    site.client.headers.update(alice)
    try:
        assert (await _wait_done(site.client, brief_id))["status"] == "failed"
    finally:
        del site.client.headers["Authorization"]
    page = await site.client.get(f"/briefs/{brief_id}", headers=site.cookie("alice"))
    assert page.status_code == 200 and "This brief was not written" in page.text


async def test_the_dashboard_is_for_admins(site: Site) -> None:
    refused = await site.client.get("/admin", headers=site.cookie("alice"))
    assert refused.status_code == 403
    assert "administrators only" in refused.text and "<h1" in refused.text
    allowed = await site.client.get("/admin", headers=site.cookie("root"))
    assert allowed.status_code == 200
    for figure in ("chart-day", "chart-provider", "chart-model", "chart-agent", "chart-cache"):
        assert f'id="{figure}"' in allowed.text
    assert 'href="/admin" aria-current="page"' in allowed.text


@pytest.mark.parametrize("remote", [False, True])
async def test_single_user_mode_needs_no_login(tmp_path: Path, remote: bool) -> None:
    settings = site_settings(tmp_path / "data", auth={"single_user": True})
    app = create_app(settings, load_library=False)
    async with app.router.lifespan_context(app):
        await app.state.nomosx.sources.upsert_many(_library())
        client_address = ("203.0.113.9", 5000) if remote else ("127.0.0.1", 5000)
        transport = httpx.ASGITransport(app=app, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            page = await client.get("/")
            if remote:
                assert page.status_code == 403 and "single-user mode" in page.text
                return
            assert page.status_code == 200 and "single-user" in page.text
            assert "Log out" not in page.text
            login = await client.get("/login?next=/briefs")
            assert login.status_code == 303 and login.headers["location"] == "/briefs"
            assert (await client.get("/admin")).status_code == 200
            created = await client.post("/api/briefs", json={"question": QUESTION, "sources": 3})
            brief_id = created.json()["id"]
            assert (await _wait_done(client, brief_id))["status"] == "succeeded"
            assert (await client.get(f"/briefs/{brief_id}")).status_code == 200
