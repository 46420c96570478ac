"""The web app in a real browser: Playwright driving Debian's Chromium against a real
uvicorn server (``tests.api.server.live_server``) with real users and API keys.

Scenarios: log in, ask, watch the stages progress, read the brief and open a citation's
evidence popover (mouse and keyboard); the reader's export links; the dashboard's charts
for an admin, and its refusal for a user; single-user mode without a login. Each saves a
screenshot to ``test-artifacts/`` and fails on any console error (a CSP violation, a
script error, a failed request).

Chromium comes from Debian (``scripts/ensure-browser.sh``, run by ``make test``), never
downloaded by Playwright.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from nomosx.auth.models import Role
from nomosx.testing.fake_llm import FakeLLMServer, Reply
from tests.api.server import LiveServer, live_server
from tests.api.test_api import QUESTION, _library
from tests.web.conftest import site_settings
from tests.web.seed import DEAD_QUESTION, FAILED_QUESTION, seed_dashboard

CHROMIUM = os.environ.get("NOMOSX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STAGES = ("scout", "index", "rank", "read", "analyse", "guard", "edit")
TIMEOUT_MS = 20_000

# every change of a stage's data-status, recorded in the page as it happens
RECORD_STAGES = """
window.__stages = [];
new MutationObserver((changes) => {
  for (const c of changes) {
    if (c.attributeName === "data-status" && c.target.dataset.stage) {
      window.__stages.push(c.target.dataset.stage + ":" + c.target.dataset.status);
    }
  }
}).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-status"] });
"""


@dataclass
class Site:
    live: LiveServer
    keys: dict[str, str]
    user_ids: dict[str, str]
    alice_brief: str = ""

    @property
    def url(self) -> str:
        return self.live.url


@dataclass
class Tab:
    """A page in its own browser context (its own cookies), with its console errors."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save ``test-artifacts/{name}.png``; an open popover is shot in the viewport (a
        full-page shot resizes the page, and the popover moves with its citation)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run 'bash scripts/ensure-browser.sh' (make test does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("web") / "data"
    with live_server(site_settings(data)) as live:
        live.ingest(_library())
        app = live.nomosx
        keys: dict[str, str] = {}
        ids: dict[str, str] = {}
        for name, role in (("alice", Role.USER), ("root", Role.ADMIN)):
            user, keys[name] = live.run(app.users.create(name, role=role))
            ids[name] = user.id
        live.run(seed_dashboard(app))
        written = live.run(app.brief(QUESTION, sources=4, fresh=True, owner_id=ids["alice"]))
        yield Site(live, keys, ids, written.brief.id)


@contextlib.contextmanager
def _open(browser: Browser, base_url: str) -> Iterator[Tab]:
    context: BrowserContext = browser.new_context(
        base_url=base_url, viewport={"width": 1200, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    tab = Tab(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def tab(browser: Browser, site: Site) -> Iterator[Tab]:
    with _open(browser, site.url) as opened:
        yield opened


def _login(tab: Tab, key: str, start: str = "/") -> None:
    page = tab.page
    page.goto(start)
    page.wait_for_url(lambda url: "/login?next=" in url)  # the page sent us to log in
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url and url.endswith(start))


def _ask(page: Page, *, fresh: bool = False) -> str:
    """Ask for a brief over the API with the page's key cookie; the new brief's id."""
    created = page.request.post(
        "/api/briefs" + ("?fresh=true" if fresh else ""),
        data={"question": QUESTION, "sources": 3},
    )
    assert created.status == 202, created.text()
    brief_id: str = created.json()["id"]
    return brief_id


def _no_console_errors(tab: Tab) -> None:
    assert tab.errors == [], tab.errors


def _evidence_of(tab: Tab, brief_id: str) -> dict[int, set[str]]:
    """The evidence the guard recorded for each source ref, from the JSON API."""
    state: dict[str, Any] = tab.page.request.get(f"/api/briefs/{brief_id}").json()
    evidence: dict[int, set[str]] = {}
    for c in state["result"]["guard"]["citations"]:
        if c["evidence"]:
            evidence.setdefault(c["ref"], set()).add(c["evidence"])
    return evidence


def _check_popover(tab: Tab, brief_id: str) -> None:
    """Open the first citation's popover by mouse, then by keyboard; it shows the cited
    source and the exact evidence span the guard recorded, highlighted."""
    page = tab.page
    evidence = _evidence_of(tab, brief_id)
    button = page.locator("button.cite").first
    target = button.get_attribute("popovertarget")
    assert target
    popover = page.locator(f"#{target}")
    expect(popover).to_be_hidden()
    button.click()
    expect(popover).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    ref = int(popover.get_attribute("data-ref") or 0)
    mark = popover.locator("mark.span")
    expect(mark).to_be_visible()
    assert mark.inner_text() in evidence[ref]
    expect(popover.locator("h3")).to_contain_text(f"[SRC-{ref}]")
    # placed next to its citation, not in the middle of the page
    box, anchor = popover.bounding_box(), button.bounding_box()
    assert box is not None and anchor is not None
    assert abs(box["y"] - (anchor["y"] + anchor["height"])) < 40 or box["y"] < anchor["y"]
    # Escape closes it and gives focus back to the citation; Enter opens it again
    page.keyboard.press("Escape")
    expect(popover).to_be_hidden()
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(popover).to_be_visible()
    expect(popover.locator("button.close")).to_be_focused()


def test_ask_watch_progress_then_read_with_citations(tab: Tab, site: Site) -> None:
    page = tab.page
    page.add_init_script(RECORD_STAGES)
    _login(tab, site.keys["alice"])
    expect(page.get_by_role("heading", name="Ask a research question")).to_be_visible()
    page.get_by_label("Question", exact=True).fill(
        "How does a carbon tax change greenhouse gas emissions?"
    )
    page.get_by_label("Sources to cite").fill("3")
    page.get_by_role("button", name="Write the brief").click()

    run = page.locator("#run")
    expect(run).to_be_visible()
    expect(run).to_have_attribute("data-state", "done")
    for stage in STAGES:
        item = run.locator(f'li[data-stage="{stage}"]')
        expect(item).to_have_attribute("data-status", "done")
        expect(item.locator(".stage-state")).to_contain_text("ms")  # its duration, from SSE
    seen: list[str] = page.evaluate("window.__stages")
    for stage in STAGES:  # each stage was shown running, then done, in pipeline order
        assert seen.index(f"{stage}:running") < seen.index(f"{stage}:done"), seen
    assert [s.split(":")[0] for s in seen if s.endswith(":done")] == list(STAGES)
    expect(page.locator("#run-status")).to_have_text("Done: the brief is below.")

    brief = page.locator("#result article.brief")
    expect(brief).to_be_visible()
    brief_id = brief.get_attribute("data-brief-id")
    assert brief_id
    expect(page).to_have_url(f"{site.url}/briefs/{brief_id}")
    expect(page.locator("#brief-title")).to_be_focused()
    assert page.locator("#result ol.sources > li").count() == 3
    tab.screenshot("ask-progress-brief")
    _check_popover(tab, brief_id)
    tab.screenshot("ask-citation-popover", full_page=False)
    _no_console_errors(tab)


def test_reader_exports_and_list(tab: Tab, site: Site) -> None:
    page = tab.page
    _login(tab, site.keys["alice"], start=f"/briefs/{site.alice_brief}")
    expect(page.locator("article.brief h1")).to_be_visible()
    expected = {
        "md": "text/markdown",
        "html": "text/html",
        "json": "application/json",
        "bib": "application/x-bibtex",
    }
    for kind, media_type in expected.items():
        href = page.locator(f'a[data-export="{kind}"]').get_attribute("href")
        assert href
        response = page.request.get(href)  # with the context's key cookie
        assert response.status == 200, (kind, response.text())
        assert response.headers["content-type"].startswith(media_type), kind
    bib = page.request.get(f"/api/briefs/{site.alice_brief}/sources.bib").text()
    assert bib.count("@") == 4 and "Cited as [SRC-4]" in bib
    _check_popover(tab, site.alice_brief)
    tab.screenshot("reader-citation-popover", full_page=False)
    page.keyboard.press("Escape")
    page.get_by_role("link", name="Briefs", exact=True).click()
    expect(page.locator(f'ul.brief-list a[href="/briefs/{site.alice_brief}"]')).to_be_visible()
    _no_console_errors(tab)


def test_login_refuses_a_bad_key(tab: Tab, site: Site) -> None:
    page = tab.page
    page.goto("/admin")
    expect(page).to_have_url(f"{site.url}/login?next=/admin")
    page.get_by_label("API key").fill("nx_" + "A" * 43)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    tab.screenshot("login-refused")
    # the 401 of the refused form is the one console error a browser reports here
    assert all("401" in e for e in tab.errors), tab.errors


def test_dashboard_draws_its_charts(tab: Tab, site: Site) -> None:
    page = tab.page
    _login(tab, site.keys["root"], start="/admin")
    expect(page.locator("body")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#dash-error")).to_be_hidden()
    bars = {"day": 30, "provider": 3, "model": 4, "agent": 3}
    for by, count in bars.items():
        chart = page.locator(f"#chart-{by} .plot svg[role=img]")
        expect(chart).to_be_visible()
        expect(chart.locator("rect.bar")).to_have_count(count)
        values = chart.locator("rect.bar").evaluate_all(
            "bars => bars.map(b => parseFloat(b.dataset.value))"
        )
        assert max(values) > 0, (by, values)
        assert page.locator(f"#chart-{by} tbody tr").count() == count
    expect(page.locator("#chart-cache svg rect.bar").first).to_be_visible()
    expect(page.locator('#cache-stats dd[data-key="hitRate"]')).to_contain_text("%")
    expect(page.locator('#jobs-stats dd[data-key="workers"]')).to_have_text("1")  # in-process
    expect(page.locator("#health-status")).to_have_text("healthy")
    expect(page.locator("#failed-runs")).to_contain_text(FAILED_QUESTION)
    expect(page.locator("#dead-letters")).to_contain_text(DEAD_QUESTION)
    expect(page.locator("#costs-total")).to_contain_text("$0.10 over 5 call(s)")
    tab.screenshot("admin-dashboard")
    page.get_by_label("LLM costs over").select_option("7")
    expect(page.locator("#chart-day svg rect.bar")).to_have_count(7)
    _no_console_errors(tab)


def test_dashboard_is_refused_to_a_user(tab: Tab, site: Site) -> None:
    page = tab.page
    _login(tab, site.keys["alice"])
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    response = page.goto("/admin")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    tab.screenshot("admin-refused")
    assert all("403" in e for e in tab.errors), tab.errors


def test_single_user_mode_needs_no_login(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("single") / "data"
    with live_server(site_settings(data, auth={"single_user": True})) as live:
        live.ingest(_library())
        with _open(browser, live.url) as tab:
            page = tab.page
            page.goto("/")
            expect(page).to_have_url(f"{live.url}/")
            expect(page.locator(".who .badge")).to_have_text("single-user")
            page.get_by_label("Question", exact=True).fill(QUESTION)
            page.get_by_role("button", name="Write the brief").click()
            brief = page.locator("#result article.brief")
            expect(brief).to_be_visible()
            expect(
                page.locator(
                    f'section.recent a[href="/briefs/{brief.get_attribute("data-brief-id")}"]'
                )
            ).to_be_visible()
            expect(page.get_by_role("link", name="Dashboard")).to_be_visible()
            tab.screenshot("single-user-brief")
            _no_console_errors(tab)


def test_a_running_brief_page_follows_its_job(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A language model slow enough to watch: the brief's own page (opened while its job
    runs) follows the events, then shows the brief; a second job is cancelled from it.
    The fake model's answers are not the JSON asked for, so READ and ANALYSE fall back to
    the extractive reader and analyst, as they do when a real model fails."""
    data = tmp_path_factory.mktemp("slow") / "data"
    with FakeLLMServer(default=Reply("Not the JSON you asked for.", delay=1.0)).in_thread() as fake:
        settings = site_settings(
            data,
            openai_api_key="sk-test",
            llm_chain="openai:gpt-4o-mini",
            cache={"enabled": False},  # else the second brief's model calls are cache hits
            llm={
                "attempts": 1,
                "cache_entries": 0,
                "timeout": 10.0,
                "openai_base_url": fake.openai_base_url,
            },
        )
        with live_server(settings) as live:
            live.ingest(_library())
            _, key = live.run(live.nomosx.users.create("carol"))
            with _open(browser, live.url) as tab:
                page = tab.page
                page.add_init_script(RECORD_STAGES)
                _login(tab, key)

                brief_id = _ask(page)
                page.goto(f"/briefs/{brief_id}")
                run = page.locator("#run")
                expect(run).to_have_attribute("data-follow", brief_id)
                expect(run.locator('li[data-stage="read"]')).to_have_attribute(
                    "data-status", "running"
                )
                tab.screenshot("progress-running", full_page=False)
                expect(run).to_have_attribute("data-state", "done", timeout=30_000)
                expect(page.locator("#result article.brief")).to_have_attribute(
                    "data-brief-id", brief_id
                )
                seen: list[str] = page.evaluate("window.__stages")
                assert [s.split(":")[0] for s in seen if s.endswith(":done")] == list(STAGES)

                second = _ask(page, fresh=True)
                page.goto(f"/briefs/{second}")
                expect(run).to_have_attribute("data-follow", second)
                expect(run.locator('li[data-stage="read"]')).to_have_attribute(
                    "data-status", "running"
                )
                page.get_by_role("button", name="Cancel").click()
                expect(run).to_have_attribute("data-state", "cancelled")
                expect(page.locator("#run-status")).to_have_text("Cancelled.")
                _no_console_errors(tab)
