"""The OpenAlex provider against recorded ``/works?search=`` replies on a mock transport."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from nomosx.cache.embedded import EmbeddedCache
from nomosx.errors import SourceError
from nomosx.sources.base import SearchFilters, SourceProvider
from nomosx.sources.openalex import RATE, SELECT, OpenAlexProvider, openalex_filter
from tests.sources.scripted import (
    HTML_ERROR,
    MALFORMED,
    FakeClock,
    Scripted,
    fixture_json,
    fixture_text,
    json_reply,
    provider_http,
    status_reply,
)

BASE = "https://api.openalex.org"
MAILTO = "team@nomosx.example"
ABSTRACT = fixture_text("openalex_abstract_W2741809807.txt").strip()

Make = Callable[..., OpenAlexProvider]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[OpenAlexProvider] = []

    def _make(handler: Scripted, **kwargs: object) -> OpenAlexProvider:
        mailto = kwargs.pop("mailto", MAILTO)
        http = provider_http("openalex", BASE, handler, **kwargs)  # type: ignore[arg-type]
        provider = OpenAlexProvider(http, mailto=mailto)  # type: ignore[arg-type]
        made.append(provider)
        return provider

    yield _make
    for provider in made:
        await provider.aclose()


def pages() -> Scripted:
    return Scripted(
        json_reply("openalex_works_page1.json"),
        json_reply("openalex_works_page2.json"),
        json_reply("openalex_works_empty.json"),
    )


async def test_is_a_source_provider(make: Make) -> None:
    provider: SourceProvider = make(Scripted())
    assert provider.name == "openalex"
    assert RATE == 10.0


async def test_request_has_search_per_page_select_mailto_and_cursor(make: Make) -> None:
    handler = pages()
    await make(handler).search("open access citation advantage", 3)

    assert len(handler.requests) == 1  # three works on the first page are enough
    request = handler.requests[0]
    assert request.method == "GET"
    assert request.url.host == "api.openalex.org"
    assert request.url.path == "/works"
    assert handler.params[0] == {
        "search": "open access citation advantage",
        "per-page": "3",
        "select": SELECT,
        "mailto": MAILTO,
        "cursor": "*",
    }
    assert "abstract_inverted_index" in SELECT.split(",")
    assert "filter" not in handler.params[0]


async def test_maps_a_work_to_a_source(make: Make) -> None:
    sources = await make(pages()).search("open access", 3)

    first = sources[0]
    assert first.key == "doi:10.7717/peerj.4375"
    assert first.provider == "openalex"
    assert first.provider_ids == {"openalex": "W2741809807"}
    assert first.doi == "10.7717/peerj.4375"
    assert first.title.startswith("The state of OA: a large-scale analysis")
    assert first.year == 2018
    assert first.venue == "PeerJ"
    assert first.type == "article"
    assert first.citation_count == 1154
    assert first.open_access is True
    assert first.oa_status == "gold"
    assert first.url == "https://doi.org/10.7717/peerj.4375"
    assert first.pdf_url == "https://peerj.com/articles/4375.pdf"
    assert "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC5815332" in first.links
    assert first.topics == [
        "scientometrics and bibliometrics research",
        "Academic Publishing and Open Access",
    ]
    assert first.language == "en"
    author = first.authors[0]
    assert author.name == "Heather Piwowar"
    assert author.orcid == "0000-0003-1613-5981"
    assert author.institutions[0].name == "OurResearch"
    assert author.institutions[0].ror == "02nr0ka47"
    assert author.institutions[0].country == "US"
    assert first.authors[-1].orcid is None
    assert first.raw["id"] == "https://openalex.org/W2741809807"
    assert first.raw == fixture_json("openalex_works_page1.json")["results"][0]

    preprint = sources[1]
    assert preprint.doi == "10.48550/arxiv.1706.03762"
    assert preprint.arxiv_id == "1706.03762"
    assert preprint.type == "preprint"
    assert preprint.oa_status == "green"

    closed = sources[2]
    assert closed.abstract is None
    assert closed.open_access is False
    assert closed.oa_status == "closed"
    assert closed.topics == ["Physics"]  # concepts when a work has no topics


async def test_abstract_rebuilt_from_inverted_index_by_positions(make: Make) -> None:
    sources = await make(pages()).search("open access", 1)

    assert sources[0].abstract == ABSTRACT
    index = fixture_json("openalex_works_page1.json")["results"][0]["abstract_inverted_index"]
    assert sources[0].abstract != " ".join(index)  # the old word-salad bug joined the keys
    words = sources[0].abstract.split(" ")
    assert [i for i, word in enumerate(words) if word == "OA"] == index["OA"]  # every position


async def test_cursor_paging_stops_at_limit(make: Make) -> None:
    handler = pages()
    sources = await make(handler).search("open access", 5)

    assert len(sources) == 5
    assert [p["cursor"] for p in handler.params] == [
        "*",
        fixture_json("openalex_works_page1.json")["meta"]["next_cursor"],
    ]
    assert {p["per-page"] for p in handler.params} == {"5"}
    assert sources[4].doi is None
    assert sources[4].key.startswith("openalex:W1901616594")


async def test_paging_stops_when_results_run_out(make: Make) -> None:
    handler = pages()
    sources = await make(handler).search("open access", 50)

    assert len(sources) == 5
    assert len(handler.requests) == 3
    assert (
        handler.params[2]["cursor"]
        == fixture_json("openalex_works_page2.json")["meta"]["next_cursor"]
    )


async def test_paging_stops_on_a_null_cursor(make: Make) -> None:
    page = fixture_json("openalex_works_page1.json")
    page["meta"]["next_cursor"] = None
    handler = Scripted(httpx.Response(200, json=page))
    assert len(await make(handler).search("open access", 50)) == 3
    assert len(handler.requests) == 1


async def test_per_page_is_capped_at_200(make: Make) -> None:
    handler = Scripted(json_reply("openalex_works_empty.json"))
    await make(handler).search("open access", 1000)
    assert handler.params[0]["per-page"] == "200"


async def test_empty_results(make: Make) -> None:
    handler = Scripted(json_reply("openalex_works_empty.json"))
    assert await make(handler).search("zzqxj unfindable", 10) == []
    assert len(handler.requests) == 1


async def test_blank_query_or_no_limit_makes_no_request(make: Make) -> None:
    provider = make(Scripted())
    assert await provider.search("  ", 10) == []
    assert await provider.search("open access", 0) == []


async def test_without_mailto_no_mailto_param(make: Make) -> None:
    handler = Scripted(json_reply("openalex_works_empty.json"))
    await make(handler, mailto=None).search("x", 1)
    assert "mailto" not in handler.params[0]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(year_from=2015, year_to=2020), "publication_year:2015-2020"),
        (SearchFilters(year_from=2019, year_to=2019), "publication_year:2019"),
        (SearchFilters(year_from=2015), "publication_year:>2014"),
        (SearchFilters(year_to=2020), "publication_year:<2021"),
        (SearchFilters(open_access=True), "is_oa:true"),
        (SearchFilters(open_access=False), "is_oa:false"),
        (SearchFilters(types=("article", "review")), "type:article|review"),
        (SearchFilters(types=("journal-article", "posted-content")), "type:article|preprint"),
        (
            SearchFilters(year_from=2015, year_to=2020, open_access=True, types=("article",)),
            "publication_year:2015-2020,is_oa:true,type:article",
        ),
    ],
)
async def test_filters_become_the_filter_param(
    make: Make, filters: SearchFilters, expected: str
) -> None:
    assert openalex_filter(filters) == expected
    handler = Scripted(json_reply("openalex_works_empty.json"))
    await make(handler).search("open access", 5, filters)
    assert handler.params[0]["filter"] == expected


def test_no_filters_no_filter_param() -> None:
    assert openalex_filter(None) is None
    assert openalex_filter(SearchFilters()) is None


async def test_429_with_retry_after_then_success(make: Make) -> None:
    clock = FakeClock()
    handler = Scripted(
        status_reply(429, {"Retry-After": "2"}), json_reply("openalex_works_page1.json")
    )
    sources = await make(handler, clock=clock).search("open access", 3)
    assert len(sources) == 3
    assert clock.sleeps == [2.0]
    assert len(handler.requests) == 2


async def test_500_then_success(make: Make) -> None:
    clock = FakeClock()
    handler = Scripted(status_reply(500), json_reply("openalex_works_page1.json"))
    assert len(await make(handler, clock=clock).search("open access", 3)) == 3
    assert len(clock.sleeps) == 1


async def test_three_500s_raise_source_error_naming_the_provider(make: Make) -> None:
    handler = Scripted(default=status_reply(500))
    with pytest.raises(SourceError, match=r"^openalex: HTTP 500"):
        await make(handler).search("open access", 3)
    assert len(handler.requests) == 3


async def test_malformed_json_raises_source_error(make: Make) -> None:
    with pytest.raises(SourceError, match="openalex: malformed JSON"):
        await make(Scripted(MALFORMED)).search("open access", 3)


async def test_json_of_the_wrong_shape_raises_source_error(make: Make) -> None:
    handler = Scripted(httpx.Response(200, json={"error": "Invalid query parameters"}))
    with pytest.raises(SourceError, match="openalex: unexpected reply"):
        await make(handler).search("open access", 3)


async def test_html_error_page_raises_source_error(make: Make) -> None:
    with pytest.raises(SourceError, match="openalex: an HTML page"):
        await make(Scripted(HTML_ERROR)).search("open access", 3)


async def test_400_is_not_retried(make: Make) -> None:
    handler = Scripted(
        httpx.Response(400, json={"error": "Invalid query parameters error."}),
        default=json_reply("openalex_works_page1.json"),
    )
    with pytest.raises(SourceError, match="openalex: HTTP 400"):
        await make(handler).search("open access", 3)
    assert len(handler.requests) == 1


async def test_timeout_is_retried_then_raises(make: Make) -> None:
    clock = FakeClock()
    handler = Scripted(default=httpx.ReadTimeout("read timed out"))
    with pytest.raises(SourceError, match="openalex: no answer within"):
        await make(handler, clock=clock).search("open access", 3)
    assert len(handler.requests) == 3
    assert len(clock.sleeps) == 2


async def test_timeout_then_success(make: Make) -> None:
    handler = Scripted(httpx.ReadTimeout("slow"), json_reply("openalex_works_page1.json"))
    assert len(await make(handler).search("open access", 3)) == 3


async def test_a_broken_work_is_skipped_not_fatal(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    page = fixture_json("openalex_works_page1.json")
    page["meta"]["next_cursor"] = None
    page["results"][1]["abstract_inverted_index"] = {"word": ["zero"]}
    page["results"][2]["display_name"] = "  "
    page["results"].append("not a work")
    with caplog.at_level(logging.WARNING, logger="nomosx.sources.openalex"):
        sources = await make(Scripted(httpx.Response(200, json=page))).search("x", 10)
    assert [s.doi for s in sources] == ["10.7717/peerj.4375"]
    assert len(caplog.records) == 3


async def test_same_search_twice_is_one_request_with_the_api_cache(
    make: Make, tmp_path: Path
) -> None:
    cache = EmbeddedCache(tmp_path / "cache.sqlite3")
    try:
        handler = Scripted(default=json_reply("openalex_works_page1.json"))
        provider = make(handler, cache=cache)
        first = await provider.search("open access", 3)
        second = await provider.search("open access", 3)
        assert first == second
        assert len(handler.requests) == 1
        await provider.search("open access", 3, SearchFilters(open_access=True))
        assert len(handler.requests) == 2  # other parameters are another cache entry
    finally:
        await cache.aclose()


async def test_health_healthy_is_a_cheap_uncached_request(make: Make, tmp_path: Path) -> None:
    cache = EmbeddedCache(tmp_path / "cache.sqlite3")
    try:
        handler = Scripted(default=json_reply("openalex_works_empty.json"))
        provider = make(handler, cache=cache)
        health = await provider.health()
        await provider.health()
    finally:
        await cache.aclose()
    assert health.provider == "openalex"
    assert health.status == "healthy"
    assert health.latency_ms is not None and health.latency_ms >= 0
    assert handler.params[0] == {"per-page": "1", "select": "id", "mailto": MAILTO}
    assert len(handler.requests) == 2  # a probe is never answered from the cache


async def test_health_unhealthy_never_raises(make: Make) -> None:
    handler = Scripted(default=status_reply(503))
    health = await make(handler).health()
    assert health.status == "unhealthy"
    assert health.detail is not None and "HTTP 503" in health.detail
    assert health.latency_ms is not None


async def test_health_unhealthy_on_timeout(make: Make) -> None:
    health = await make(Scripted(default=httpx.ConnectTimeout("no route"))).health()
    assert health.status == "unhealthy"
