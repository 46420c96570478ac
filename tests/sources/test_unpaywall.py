"""The Unpaywall enricher against recorded ``/v2/{doi}`` replies on a mock transport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from nomosx.cache.embedded import EmbeddedCache
from nomosx.models import Source
from nomosx.sources.unpaywall import RATE, UnpaywallEnricher, enrich_source
from tests.sources.scripted import (
    HTML_ERROR,
    MALFORMED,
    FakeClock,
    Scripted,
    fixture_json,
    json_reply,
    provider_http,
    status_reply,
)

BASE = "https://api.unpaywall.org"
EMAIL = "team@nomosx.example"
NATURE = "10.1038/nature12373"
CLOSED = "10.5555/3030303030x"

Make = Callable[..., UnpaywallEnricher]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[UnpaywallEnricher] = []

    def _make(handler: Scripted, **kwargs: object) -> UnpaywallEnricher:
        concurrency = kwargs.pop("concurrency", 5)
        http = provider_http("unpaywall", BASE, handler, **kwargs)  # type: ignore[arg-type]
        enricher = UnpaywallEnricher(http, email=EMAIL, concurrency=concurrency)  # type: ignore[arg-type]
        made.append(enricher)
        return enricher

    yield _make
    for enricher in made:
        await enricher.aclose()


def source(doi: str | None, **fields: object) -> Source:
    key = f"doi:{doi}" if doi else "crossref:none"
    return Source(key=key, provider="crossref", doi=doi, title=f"Work {doi}", **fields)  # type: ignore[arg-type]


def by_doi(request: httpx.Request) -> httpx.Response:
    doi = request.url.path.removeprefix("/v2/")
    if doi == NATURE:
        return json_reply("unpaywall_doi_nature12373.json")
    if doi == CLOSED:
        return json_reply("unpaywall_doi_closed.json")
    return json_reply("unpaywall_404.json", status=404)


def test_rate_and_email_required() -> None:
    assert RATE == 10.0
    with pytest.raises(ValueError, match="email"):
        UnpaywallEnricher(None, email="")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        UnpaywallEnricher(None, email=EMAIL, concurrency=0)  # type: ignore[arg-type]


async def test_request_path_and_email(make: Make) -> None:
    handler = Scripted(default=by_doi)
    await make(handler).enrich([source(NATURE)])
    request = handler.requests[0]
    assert request.method == "GET"
    assert request.url.host == "api.unpaywall.org"
    assert request.url.path == "/v2/10.1038/nature12373"
    assert handler.params == [{"email": EMAIL}]


async def test_sets_open_access_status_pdf_and_links(make: Make) -> None:
    original = source(NATURE, links=["https://doi.org/10.1038/nature12373"])
    [enriched] = await make(Scripted(default=by_doi)).enrich([original])

    assert enriched.open_access is True
    assert enriched.oa_status == "bronze"
    assert enriched.pdf_url == "https://www.nature.com/articles/nature12373.pdf"
    assert enriched.links == [
        "https://doi.org/10.1038/nature12373",
        "https://www.nature.com/articles/nature12373.pdf",
        "http://arxiv.org/abs/1304.1068",
        "http://arxiv.org/pdf/1304.1068",
    ]
    assert enriched.title == original.title and enriched.key == original.key
    assert original.open_access is None  # the input is not mutated


async def test_closed_access(make: Make) -> None:
    before = source(CLOSED, pdf_url="https://example.org/own.pdf")
    [after] = await make(Scripted(default=by_doi)).enrich([before])
    assert after.open_access is False
    assert after.oa_status == "closed"
    assert after.pdf_url == "https://example.org/own.pdf"  # no best location: kept
    assert after.links == []


async def test_404_leaves_the_source_unchanged(make: Make) -> None:
    unknown = source("10.5555/not-a-doi")
    [after] = await make(Scripted(default=by_doi)).enrich([unknown])
    assert after == unknown


async def test_sources_without_doi_are_passed_through_without_requests(make: Make) -> None:
    handler = Scripted()
    without = source(None)
    assert await make(handler).enrich([without]) == [without]
    assert await make(handler).enrich([]) == []
    assert handler.requests == []


async def test_order_kept_and_each_doi_asked_once(make: Make) -> None:
    handler = Scripted(default=by_doi)
    batch = [
        source(CLOSED),
        source(None),
        source(NATURE),
        source("https://doi.org/10.1038/NATURE12373"),
    ]
    result = await make(handler).enrich(batch)
    assert [s.key for s in result] == [s.key for s in batch]
    assert [s.oa_status for s in result] == ["closed", None, "bronze", "bronze"]
    assert sorted(r.url.path for r in handler.requests) == [
        "/v2/10.1038/nature12373",
        "/v2/10.5555/3030303030x",
    ]


async def test_one_failing_doi_never_fails_the_batch(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(CLOSED):
            return status_reply(500)
        if request.url.path.endswith("bad-json"):
            return MALFORMED
        if request.url.path.endswith("html"):
            return HTML_ERROR
        if request.url.path.endswith("array"):
            return httpx.Response(200, json=[1, 2])
        return by_doi(request)

    batch = [source(CLOSED), source(NATURE), source("10.5555/bad-json"), source("10.5555/html")]
    batch.append(source("10.5555/array"))
    with caplog.at_level(logging.WARNING, logger="nomosx.sources.unpaywall"):
        result = await make(Scripted(default=handler)).enrich(batch)
    assert result[0] == batch[0]
    assert result[1].oa_status == "bronze"
    assert result[2:] == batch[2:]
    assert len(caplog.records) == 4


async def test_429_with_retry_after_then_success(make: Make) -> None:
    clock = FakeClock()
    handler = Scripted(
        status_reply(429, {"Retry-After": "2"}), json_reply("unpaywall_doi_nature12373.json")
    )
    [after] = await make(handler, clock=clock).enrich([source(NATURE)])
    assert after.open_access is True
    assert clock.sleeps == [2.0]


async def test_timeout_retried_then_unchanged(make: Make) -> None:
    clock = FakeClock()
    handler = Scripted(default=httpx.ReadTimeout("slow"))
    before = source(NATURE)
    assert await make(handler, clock=clock).enrich([before]) == [before]
    assert len(handler.requests) == 3
    assert len(clock.sleeps) == 2


async def test_concurrency_is_bounded(make: Make) -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return json_reply("unpaywall_doi_closed.json")

    class AsyncScripted(Scripted):
        async def handle(self, request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return await slow(request)

    handler = AsyncScripted()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler.handle))
    enricher = make(Scripted(), concurrency=3)
    await enricher.http.client.aclose()
    enricher.http.client = client
    result = await enricher.enrich([source(f"10.5555/{n}") for n in range(12)])
    assert len(handler.requests) == 12
    assert all(s.oa_status == "closed" for s in result)
    assert peak == 3


async def test_lookups_are_cached(make: Make, tmp_path: Path) -> None:
    cache = EmbeddedCache(tmp_path / "cache.sqlite3")
    try:
        handler = Scripted(default=by_doi)
        enricher = make(handler, cache=cache)
        await enricher.enrich([source(NATURE)])
        [again] = await enricher.enrich([source(NATURE)])
        assert again.oa_status == "bronze"
        assert len(handler.requests) == 1
    finally:
        await cache.aclose()


def test_enrich_source_ignores_odd_fields() -> None:
    before = source(NATURE, open_access=True, oa_status="green")
    record = fixture_json("unpaywall_doi_nature12373.json")
    record.update(is_oa=None, oa_status="", best_oa_location="?", oa_locations=None)
    assert enrich_source(before, record) == before
