"""The Crossref provider against recorded ``/works?query=`` replies on a mock transport."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from nomosx.cache.embedded import EmbeddedCache
from nomosx.errors import SourceError
from nomosx.sources.base import SearchFilters, SourceProvider
from nomosx.sources.crossref import (
    RATE,
    SELECT,
    CrossrefProvider,
    crossref_filter,
    source_from_crossref_item,
)
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

BASE = "https://api.crossref.org"
MAILTO = "team@nomosx.example"

Make = Callable[..., CrossrefProvider]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[CrossrefProvider] = []

    def _make(handler: Scripted, **kwargs: object) -> CrossrefProvider:
        mailto = kwargs.pop("mailto", MAILTO)
        page_size = kwargs.pop("page_size", 100)
        http = provider_http("crossref", BASE, handler, **kwargs)  # type: ignore[arg-type]
        provider = CrossrefProvider(http, mailto=mailto, page_size=page_size)  # type: ignore[arg-type]
        made.append(provider)
        return provider

    yield _make
    for provider in made:
        await provider.aclose()


def pages() -> Scripted:
    return Scripted(
        json_reply("crossref_works_page1.json"),
        json_reply("crossref_works_page2.json"),
        json_reply("crossref_works_empty.json"),
    )


async def test_is_a_source_provider(make: Make) -> None:
    provider: SourceProvider = make(Scripted())
    assert provider.name == "crossref"
    assert RATE == 10.0


def test_page_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="page_size"):
        CrossrefProvider(None, mailto=None, page_size=0)  # type: ignore[arg-type]


async def test_request_has_query_rows_select_and_mailto(make: Make) -> None:
    handler = pages()
    await make(handler).search("psychoceramics", 20)

    request = handler.requests[0]
    assert request.method == "GET"
    assert request.url.host == "api.crossref.org"
    assert request.url.path == "/works"
    assert handler.params[0] == {
        "query": "psychoceramics",
        "rows": "20",
        "select": SELECT,
        "mailto": MAILTO,
    }
    assert SELECT == (
        "DOI,title,abstract,author,issued,published,container-title,type,"
        "is-referenced-by-count,link,URL,language,subject,license"
    )
    assert len(handler.requests) == 1  # a short page is the last one


async def test_maps_items_to_sources(make: Make) -> None:
    sources = await make(pages()).search("psychoceramics", 20)
    assert [s.doi for s in sources] == [
        "10.5555/12345678es",
        "10.1128/msystems.00625-20",
        "10.32013/92m.e-7",
    ]

    first = sources[0]
    assert first.key == "doi:10.5555/12345678es"
    assert first.provider == "crossref"
    assert first.provider_ids == {"crossref": "10.5555/12345678es"}
    assert first.title.startswith("Hacia una teoría unificada")
    assert first.abstract is not None
    assert first.abstract.startswith("El tema característico de las obras de Stone")
    assert "<" not in first.abstract and "jats" not in first.abstract
    assert "  " not in first.abstract
    assert first.year == 2022
    assert first.venue == "Journal of Psychoceramics"
    assert first.type == "journal-article"
    assert first.citation_count == 0
    assert first.open_access is None  # a proprietary license says nothing about access
    assert first.language == "es"
    assert first.url == "https://doi.org/10.5555/12345678es"
    assert "http://dx.doi.org/10.5555/12345678es" in first.links
    author = first.authors[0]
    assert author.name == "Josiah Carberry"
    assert author.orcid == "0000-0002-1825-0097"
    assert author.institutions[0].name == "Department of Psychoceramics, Brown University"
    assert author.institutions[0].ror is None
    assert first.raw == fixture_json("crossref_works_page1.json")["message"]["items"][0]

    second = sources[1]
    assert second.title == "Open Access and the Microbiome: a Survey"
    assert second.abstract == (
        "Background Open data in microbiome research grew from 12 % to 40 %. "
        "Conclusions Sharing is uneven across fields; P<0.05."
    )
    assert second.year == 2020
    assert second.citation_count == 37
    assert second.open_access is True  # Creative Commons license
    assert second.pdf_url == "https://journals.asm.org/doi/pdf/10.1128/mSystems.00625-20"
    assert second.topics == ["Microbiology", "Computer Science Applications"]
    assert second.authors[0].institutions[0].ror == "05gq02987"
    assert second.authors[0].institutions[0].name == "https://ror.org/05gq02987"
    assert second.authors[1].name == "The Open Microbiome Consortium"
    assert second.authors[1].institutions == []

    third = sources[2]
    assert third.year is None  # "issued": {"date-parts": [[null]]}
    assert third.venue is None
    assert third.abstract is None
    assert third.type == "book-series"


async def test_offset_paging_stops_at_limit(make: Make) -> None:
    handler = pages()
    sources = await make(handler, page_size=3).search("psychoceramics", 4)
    assert len(sources) == 4
    assert [p.get("offset") for p in handler.params] == [None, "3"]
    assert {p["rows"] for p in handler.params} == {"3"}
    assert sources[3].doi == "10.5555/3030303030x"


async def test_paging_stops_at_total_results(make: Make) -> None:
    handler = pages()
    sources = await make(handler, page_size=3).search("psychoceramics", 50)
    assert len(sources) == 4
    assert len(handler.requests) == 2  # total-results is 4: no third page


async def test_paging_stops_at_the_deep_paging_ceiling(make: Make) -> None:
    full = fixture_json("crossref_works_page1.json")
    full["message"]["total-results"] = 10**6
    full["message"]["items"] = [{"DOI": f"10.5555/{n}", "title": ["T"]} for n in range(100)]
    handler = Scripted(default=lambda request: httpx.Response(200, json=full))
    sources = await make(handler, page_size=100).search("psychoceramics", 100_000)
    offsets = [int(p.get("offset", 0)) for p in handler.params]
    assert offsets == list(range(0, 10_000, 100))
    assert len(sources) == 10_000


async def test_limit_truncates_a_page(make: Make) -> None:
    handler = pages()
    sources = await make(handler).search("psychoceramics", 2)
    assert len(sources) == 2
    assert handler.params[0]["rows"] == "2"


async def test_empty_results(make: Make) -> None:
    handler = Scripted(json_reply("crossref_works_empty.json"))
    assert await make(handler).search("zzqxj unfindable", 10) == []
    assert len(handler.requests) == 1


async def test_blank_query_or_no_limit_makes_no_request(make: Make) -> None:
    provider = make(Scripted())
    assert await provider.search("", 10) == []
    assert await provider.search("psychoceramics", -1) == []


async def test_without_mailto_no_mailto_param(make: Make) -> None:
    handler = Scripted(json_reply("crossref_works_empty.json"))
    await make(handler, mailto=None).search("x", 1)
    assert "mailto" not in handler.params[0]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(year_from=2015, year_to=2020), "from-pub-date:2015,until-pub-date:2020"),
        (SearchFilters(year_from=2015), "from-pub-date:2015"),
        (SearchFilters(year_to=2020), "until-pub-date:2020"),
        (SearchFilters(types=("journal-article",)), "type:journal-article"),
        (SearchFilters(types=("article", "review")), "type:journal-article"),
        (
            SearchFilters(types=("article", "preprint")),
            "type:journal-article,type:posted-content",
        ),
        (
            SearchFilters(year_from=2015, year_to=2020, types=("book-chapter",)),
            "from-pub-date:2015,until-pub-date:2020,type:book-chapter",
        ),
    ],
)
async def test_filters_become_the_filter_param(
    make: Make, filters: SearchFilters, expected: str
) -> None:
    assert crossref_filter(filters) == expected
    handler = Scripted(json_reply("crossref_works_empty.json"))
    await make(handler).search("psychoceramics", 5, filters)
    assert handler.params[0]["filter"] == expected


def test_no_filter_when_nothing_crossref_can_filter() -> None:
    assert crossref_filter(None) is None
    assert crossref_filter(SearchFilters()) is None
    assert crossref_filter(SearchFilters(open_access=True)) is None


def test_an_untitled_item_maps_to_none() -> None:
    assert source_from_crossref_item({"DOI": "10.1/x", "title": []}) is None


def test_an_item_without_doi_is_keyed_by_title() -> None:
    source = source_from_crossref_item({"title": ["A Report"], "URL": "https://example.org/r"})
    assert source is not None
    assert source.key.startswith("title:")
    assert source.url == "https://example.org/r"
    assert source.provider_ids == {}


async def test_429_with_retry_after_then_success(make: Make) -> None:
    clock = FakeClock()
    handler = Scripted(
        status_reply(429, {"Retry-After": "2"}), json_reply("crossref_works_page1.json")
    )
    assert len(await make(handler, clock=clock).search("psychoceramics", 3)) == 3
    assert clock.sleeps == [2.0]


async def test_500_then_success(make: Make) -> None:
    handler = Scripted(status_reply(500), json_reply("crossref_works_page1.json"))
    assert len(await make(handler).search("psychoceramics", 3)) == 3
    assert len(handler.requests) == 2


async def test_three_500s_raise_source_error_naming_the_provider(make: Make) -> None:
    handler = Scripted(default=status_reply(500))
    with pytest.raises(SourceError, match=r"^crossref: HTTP 500"):
        await make(handler).search("psychoceramics", 3)
    assert len(handler.requests) == 3


async def test_malformed_json_raises_source_error(make: Make) -> None:
    with pytest.raises(SourceError, match="crossref: malformed JSON"):
        await make(Scripted(MALFORMED)).search("psychoceramics", 3)


async def test_json_of_the_wrong_shape_raises_source_error(make: Make) -> None:
    reply = httpx.Response(200, json={"status": "ok", "message-type": "work", "message": {}})
    with pytest.raises(SourceError, match="crossref: unexpected reply"):
        await make(Scripted(reply)).search("psychoceramics", 3)


async def test_html_error_page_raises_source_error(make: Make) -> None:
    with pytest.raises(SourceError, match="crossref: an HTML page"):
        await make(Scripted(HTML_ERROR)).search("psychoceramics", 3)


async def test_timeout_is_retried_then_raises(make: Make) -> None:
    clock = FakeClock()
    handler = Scripted(default=httpx.ReadTimeout("read timed out"))
    with pytest.raises(SourceError, match="crossref: no answer within"):
        await make(handler, clock=clock).search("psychoceramics", 3)
    assert len(handler.requests) == 3
    assert len(clock.sleeps) == 2


async def test_a_broken_item_is_skipped_not_fatal(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    page = fixture_json("crossref_works_page1.json")
    page["message"]["items"][1]["title"] = None
    page["message"]["items"].append(["not", "an", "item"])
    with caplog.at_level(logging.WARNING, logger="nomosx.sources.crossref"):
        sources = await make(Scripted(httpx.Response(200, json=page))).search("x", 10)
    assert [s.doi for s in sources] == ["10.5555/12345678es", "10.32013/92m.e-7"]
    assert len(caplog.records) == 2


async def test_same_search_twice_is_one_request_with_the_api_cache(
    make: Make, tmp_path: Path
) -> None:
    cache = EmbeddedCache(tmp_path / "cache.sqlite3")
    try:
        handler = Scripted(default=json_reply("crossref_works_page1.json"))
        provider = make(handler, cache=cache)
        first = await provider.search("psychoceramics", 3)
        second = await provider.search("psychoceramics", 3)
        assert first == second
        assert len(handler.requests) == 1
    finally:
        await cache.aclose()


async def test_health_healthy(make: Make) -> None:
    handler = Scripted(default=json_reply("crossref_works_empty.json"))
    health = await make(handler).health()
    assert health.provider == "crossref"
    assert health.status == "healthy"
    assert health.latency_ms is not None
    assert handler.params[0] == {"rows": "0", "mailto": MAILTO}


async def test_health_unhealthy_never_raises(make: Make) -> None:
    health = await make(Scripted(default=HTML_ERROR)).health()
    assert health.status == "unhealthy"
    assert health.detail is not None and "HTML page" in health.detail
