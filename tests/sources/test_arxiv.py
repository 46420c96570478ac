"""arXiv provider against recorded Atom feeds on an ``httpx.MockTransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from nomosx.errors import SourceError
from nomosx.sources.arxiv import RATE, ArxivProvider, build_query, parse_feed
from nomosx.sources.base import SearchFilters, SourceProvider
from nomosx.sources.http import HttpPolicy, ProviderHttp
from tests.llm.clock import FakeClock

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://export.arxiv.org"
ATOM = {"content-type": "application/atom+xml; charset=UTF-8"}


def feed(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def atom(text: str, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, text=text, headers={**ATOM, **(headers or {})})


class Recorder:
    """A scripted server: answers in order (the last answer repeats) and keeps requests."""

    def __init__(self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.times: list[float] = []
        self.clock: FakeClock | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.clock is not None:
            self.times.append(self.clock())
        answer = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        return answer(request) if callable(answer) else answer

    def params(self, index: int = 0) -> dict[str, str]:
        return dict(self.requests[index].url.params)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def provider_for(clock: FakeClock) -> AsyncIterator[Callable[[Recorder], ArxivProvider]]:
    clients: list[httpx.AsyncClient] = []

    def make(recorder: Recorder) -> ArxivProvider:
        recorder.clock = clock
        client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
        clients.append(client)
        http = ProviderHttp(
            "arxiv",
            BASE,
            policy=HttpPolicy(rate=RATE, attempts=3, jitter=lambda: 1.0),
            client=client,
            clock=clock,
            sleep=clock.sleep,
        )
        return ArxivProvider(http)

    yield make
    for client in clients:
        await client.aclose()


# --------------------------------------------------------------------------- query


def test_query_quotes_each_term_and_joins_with_and() -> None:
    assert build_query("attention transformers") == 'all:"attention" AND all:"transformers"'


def test_query_cannot_inject_operators_fields_or_grouping() -> None:
    built = build_query('foo" OR ti:bar) ANDNOT (baz')
    assert built == 'all:"foo" AND all:"ti" AND all:"bar" AND all:"baz"'
    assert "(" not in built and ")" not in built
    assert " OR " not in built and "ANDNOT" not in built


def test_query_drops_common_words_dedupes_and_caps() -> None:
    assert build_query("What is the effect of attention on the attention?") == (
        'all:"effect" AND all:"attention"'
    )
    assert build_query("the of") == 'all:"the" AND all:"of"'  # nothing but common words
    many = " ".join(f"word{i}" for i in range(20))
    assert build_query(many).count("all:") == 8
    assert build_query("state-of-the-art, O'Neil's 3.5") == (
        'all:"state-of-the-art" AND all:"o\'neil\'s" AND all:"3.5"'
    )
    assert build_query(' "() : ') == ""


def test_published_rate_is_one_request_every_three_seconds() -> None:
    assert abs(1 / RATE - 3.0) < 1e-9


# --------------------------------------------------------------------------- requests and mapping


async def test_request_and_mapping(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_search.xml")))
    provider: SourceProvider = provider_for(server)
    assert provider.name == "arxiv"
    found = await provider.search("attention transformers", 3)
    await provider.aclose()

    request = server.requests[0]
    assert request.url.host == "export.arxiv.org"
    assert request.url.path == "/api/query"
    assert server.params() == {
        "search_query": 'all:"attention" AND all:"transformers"',
        "start": "0",
        "max_results": "3",
        "sortBy": "relevance",
    }

    attention, ligo, hera = found
    assert attention.key == "arxiv:1706.03762"
    assert attention.provider == "arxiv"
    assert attention.arxiv_id == "1706.03762"  # version stripped
    assert attention.provider_ids == {"arxiv": "1706.03762"}
    assert attention.title == "Attention Is All You Need"  # whitespace collapsed
    assert attention.abstract is not None
    assert attention.abstract.startswith("The dominant sequence transduction models are based")
    assert "\n" not in attention.abstract and "  " not in attention.abstract
    assert attention.year == 2017
    assert [a.name for a in attention.authors] == ["Ashish Vaswani", "Noam Shazeer"]
    assert [i.name for i in attention.authors[0].institutions] == ["Google Brain"]
    assert attention.authors[1].institutions == []
    assert attention.topics == ["cs.CL", "cs.LG"]  # primary category first
    assert attention.type == "preprint"
    assert attention.open_access is True
    assert attention.venue == "arXiv"
    assert attention.doi is None
    assert attention.url == "https://arxiv.org/abs/1706.03762"
    assert attention.pdf_url == "https://arxiv.org/pdf/1706.03762v7"
    assert attention.links == [attention.url, attention.pdf_url]
    assert attention.raw["comment"] == "15 pages, 5 figures"
    assert attention.raw["primary_category"] == "cs.CL"

    assert ligo.doi == "10.1103/physrevlett.116.061102"  # from arxiv:doi, normalised
    assert ligo.key == "doi:10.1103/physrevlett.116.061102"
    assert ligo.topics == ["gr-qc", "astro-ph.HE"]
    assert "https://doi.org/10.1103/physrevlett.116.061102" in ligo.links
    assert ligo.raw["journal_ref"] == "Phys. Rev. Lett. 116, 061102 (2016)"

    assert hera.arxiv_id == "hep-ex/0307015"  # old-style identifier
    assert hera.title == (
        "Multi-Electron Production at High Transverse Momenta in ep Collisions at HERA"
    )
    assert hera.year == 2003


async def test_current_feed_layout_parses() -> None:
    parsed = parse_feed(feed("arxiv_search_page2.xml"))
    assert parsed.total == 5
    assert parsed.start == 3
    bahdanau, xu = parsed.sources
    assert bahdanau.arxiv_id == "1409.0473"
    assert bahdanau.year == 2014
    assert bahdanau.topics == ["cs.CL", "cs.LG", "cs.NE", "stat.ML"]
    assert [a.name for a in bahdanau.authors] == [
        "Dzmitry Bahdanau",
        "Kyunghyun Cho",
        "Yoshua Bengio",
    ]
    assert bahdanau.pdf_url == "https://arxiv.org/pdf/1409.0473v7"
    assert xu.topics == ["cs.LG", "cs.CV"]


def test_entries_without_id_or_title_are_skipped() -> None:
    text = (
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        "<entry><id>http://arxiv.org/abs/2101.00001v1</id></entry>"
        "<entry><title>No id</title></entry>"
        "<entry><id>http://arxiv.org/abs/2101.00002</id><title>Kept</title>"
        "<author><name> </name></author></entry>"
        "</feed>"
    )
    parsed = parse_feed(text)
    assert [s.arxiv_id for s in parsed.sources] == ["2101.00002"]
    assert parsed.total == 1  # no opensearch:totalResults: the entries present
    kept = parsed.sources[0]
    assert kept.authors == []
    assert kept.pdf_url == "https://arxiv.org/pdf/2101.00002"
    assert kept.year is None


# --------------------------------------------------------------------------- paging


async def test_pages_until_total_results(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_search.xml")), atom(feed("arxiv_search_page2.xml")))
    found = await provider_for(server).search("attention", 10)
    assert [s.arxiv_id for s in found] == [
        "1706.03762",
        "1602.03837",
        "hep-ex/0307015",
        "1409.0473",
        "1502.03044",
    ]
    assert len(server.requests) == 2  # 5 of totalResults 5: no third request
    assert server.params(0)["start"] == "0" and server.params(0)["max_results"] == "10"
    assert server.params(1)["start"] == "3" and server.params(1)["max_results"] == "7"


async def test_stops_at_the_limit(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_search.xml")))
    found = await provider_for(server).search("attention", 2)
    assert len(found) == 2
    assert len(server.requests) == 1


async def test_page_size_is_capped(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_empty.xml")))
    await provider_for(server).search("attention", 500)
    assert server.params()["max_results"] == "100"


async def test_empty_result(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_empty.xml")))
    assert await provider_for(server).search("qwzxv", 10) == []
    assert len(server.requests) == 1


async def test_nothing_searchable_sends_nothing(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_empty.xml")))
    provider = provider_for(server)
    assert await provider.search("()", 10) == []
    assert await provider.search("attention", 0) == []
    assert server.requests == []


async def test_year_filter_applied_client_side(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_search.xml")), atom(feed("arxiv_search_page2.xml")))
    found = await provider_for(server).search(
        "attention", 10, SearchFilters(year_from=2015, year_to=2016)
    )
    assert [(s.arxiv_id, s.year) for s in found] == [("1602.03837", 2016), ("1502.03044", 2015)]
    assert "submittedDate" not in server.params()["search_query"]


async def test_duplicate_entries_across_pages_are_dropped(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_search.xml")))  # the same page again and again
    found = await provider_for(server).search("attention", 10)
    assert len(found) == 3
    assert len(server.requests) == 2  # start reaches totalResults (5) after two pages


async def test_requests_are_three_seconds_apart(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_search.xml")), atom(feed("arxiv_search_page2.xml")))
    await provider_for(server).search("attention", 10)
    assert server.times[1] - server.times[0] >= 3.0 - 1e-9


# --------------------------------------------------------------------------- failures


async def test_error_feed_becomes_source_error(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_error.xml")))
    with pytest.raises(SourceError, match=r"arxiv: API error: incorrect id format for 1234\.12345"):
        await provider_for(server).search("attention", 10)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&lol3;</title></feed>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!doctype feed [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title></feed>
"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY, "<! ENTITY x 'y'><feed/>"])
async def test_doctype_and_entity_declarations_are_refused(provider_for: Any, payload: str) -> None:
    with pytest.raises(SourceError, match="DOCTYPE or ENTITY"):
        await provider_for(Recorder(atom(payload))).search("attention", 10)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (atom("<feed xmlns='http://www.w3.org/2005/Atom'><entry>"), "malformed XML"),
        (atom("not xml at all"), "malformed XML"),
        (atom("<rss><channel/></rss>"), "not an Atom feed"),
        (
            atom(
                "<feed xmlns='http://www.w3.org/2005/Atom' "
                "xmlns:opensearch='http://a9.com/-/spec/opensearch/1.1/'>"
                "<opensearch:totalResults>many</opensearch:totalResults></feed>"
            ),
            "malformed number",
        ),
        (
            httpx.Response(
                200,
                text="<html><body><h1>Service Unavailable</h1></body></html>",
                headers={"content-type": "text/html"},
            ),
            "HTML page",
        ),
    ],
)
async def test_malformed_replies_become_source_errors(
    provider_for: Any, response: httpx.Response, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        await provider_for(Recorder(response)).search("attention", 10)


async def test_429_with_retry_after_is_honoured(provider_for: Any, clock: FakeClock) -> None:
    server = Recorder(
        httpx.Response(429, text="Rate exceeded.", headers={"Retry-After": "10"}),
        atom(feed("arxiv_search.xml")),
    )
    assert len(await provider_for(server).search("attention", 3)) == 3
    assert 10.0 in clock.sleeps
    assert server.times[1] - server.times[0] >= 10.0


async def test_5xx_is_retried(provider_for: Any) -> None:
    server = Recorder(httpx.Response(503, text="busy"), atom(feed("arxiv_search.xml")))
    assert len(await provider_for(server).search("attention", 3)) == 3
    assert len(server.requests) == 2


# --------------------------------------------------------------------------- health


async def test_health(provider_for: Any) -> None:
    server = Recorder(atom(feed("arxiv_search.xml")))
    health = await provider_for(server).health()
    assert (health.provider, health.status) == ("arxiv", "healthy")
    assert health.latency_ms is not None
    assert server.params()["max_results"] == "1"

    health = await provider_for(Recorder(atom(feed("arxiv_empty.xml")))).health()
    assert health.status == "degraded"


async def test_health_never_raises(provider_for: Any) -> None:
    health = await provider_for(Recorder(atom(feed("arxiv_error.xml")))).health()
    assert health.status == "unhealthy"
    assert "incorrect id format" in (health.detail or "")

    def boom(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("unexpected")

    health = await provider_for(Recorder(boom)).health()
    assert (health.status, health.detail) == ("unhealthy", "RuntimeError")
