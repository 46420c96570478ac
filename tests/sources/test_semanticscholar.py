"""Semantic Scholar provider against recorded reply shapes on an ``httpx.MockTransport``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from nomosx.errors import SourceError
from nomosx.sources.base import SearchFilters, SourceProvider
from nomosx.sources.http import HttpPolicy, ProviderHttp
from nomosx.sources.semanticscholar import (
    FIELDS,
    RATE,
    RATE_WITH_KEY,
    SemanticScholarProvider,
    map_paper,
)
from tests.llm.clock import FakeClock

FIXTURES = Path(__file__).parent / "fixtures"
BASE = "https://api.semanticscholar.org"
KEY = "s2-secret-key-123"

Handler = Callable[[httpx.Request], httpx.Response]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


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
async def client_for() -> AsyncIterator[Callable[[Recorder], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(recorder: Recorder) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def provider_for(
    client_for: Callable[[Recorder], httpx.AsyncClient], clock: FakeClock
) -> Callable[..., SemanticScholarProvider]:
    def make(recorder: Recorder, *, api_key: str | None = None) -> SemanticScholarProvider:
        recorder.clock = clock
        http = ProviderHttp(
            "semanticscholar",
            BASE,
            policy=HttpPolicy(rate=RATE, attempts=3, jitter=lambda: 1.0),
            client=client_for(recorder),
            clock=clock,
            sleep=clock.sleep,
        )
        return SemanticScholarProvider(http, api_key=api_key)

    return make


# --------------------------------------------------------------------------- requests


async def test_request_path_params_and_no_key_header(provider_for: Any) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_page1.json")))
    provider = provider_for(server)
    found = await provider.search("deep residual learning", 2)
    await provider.aclose()
    assert len(found) == 2
    request = server.requests[0]
    assert request.method == "GET"
    assert request.url.host == "api.semanticscholar.org"
    assert request.url.path == "/graph/v1/paper/search"
    assert server.params() == {
        "query": "deep residual learning",
        "fields": FIELDS,
        "offset": "0",
        "limit": "2",
    }
    assert "x-api-key" not in request.headers


async def test_api_key_header_only_when_configured_and_never_shown(provider_for: Any) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_page1.json")))
    provider = provider_for(server, api_key=KEY)
    await provider.search("residual", 1)
    assert server.requests[0].headers["x-api-key"] == KEY
    assert KEY not in repr(provider)
    assert "key=True" in repr(provider)


def test_published_rates() -> None:
    assert RATE == 1.0
    assert RATE_WITH_KEY == 1.0


def test_provider_satisfies_protocol(provider_for: Any) -> None:
    provider: SourceProvider = provider_for(Recorder(reply({})))
    assert provider.name == "semanticscholar"


async def test_hyphens_and_whitespace_cleaned_and_empty_query_sends_nothing(
    provider_for: Any,
) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_empty.json")))
    provider = provider_for(server)
    assert await provider.search("  state-of-the-art \n retrieval ", 5) == []
    assert server.params()["query"] == "state of the art retrieval"
    assert await provider.search(" - ", 5) == []
    assert await provider.search("anything", 0) == []
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- mapping


async def test_mapping_of_a_real_reply(provider_for: Any) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_page1.json")))
    resnet, turing = await provider_for(server).search("deep learning", 2)

    assert resnet.key == "doi:10.1109/cvpr.2016.90"
    assert resnet.provider == "semanticscholar"
    assert resnet.doi == "10.1109/cvpr.2016.90"
    assert resnet.arxiv_id == "1512.03385"
    assert resnet.provider_ids == {
        "semanticscholar": "2c03df8b48bf3fa39054345bafabfeff15bfd11d",
        "arxiv": "1512.03385",
        "corpus": "206594692",
        "mag": "2949650786",
        "dblp": "conf/cvpr/HeZRS16",
    }
    assert resnet.title == "Deep Residual Learning for Image Recognition"
    assert resnet.abstract is not None and resnet.abstract.startswith("Deeper neural networks")
    assert resnet.year == 2015
    assert resnet.venue == "Computer Vision and Pattern Recognition"
    assert resnet.type == "article"
    assert [a.name for a in resnet.authors] == [
        "Kaiming He",
        "X. Zhang",
        "Shaoqing Ren",
        "Jian Sun",
    ]
    assert resnet.citation_count == 192803
    assert resnet.open_access is True
    assert resnet.oa_status == "green"
    assert resnet.pdf_url == "https://arxiv.org/pdf/1512.03385"
    assert resnet.url == (
        "https://www.semanticscholar.org/paper/2c03df8b48bf3fa39054345bafabfeff15bfd11d"
    )
    assert resnet.links == [
        resnet.url,
        "https://arxiv.org/pdf/1512.03385",
        "https://doi.org/10.1109/cvpr.2016.90",
        "https://arxiv.org/abs/1512.03385",
    ]
    assert resnet.topics == ["Computer Science"]
    assert resnet.raw["paperId"] == "2c03df8b48bf3fa39054345bafabfeff15bfd11d"

    assert turing.doi == "10.1093/mind/lix.236.433"  # upper-case DOI normalised
    assert turing.type == "review"  # Review outranks JournalArticle
    assert turing.open_access is False
    assert turing.pdf_url is None
    assert turing.oa_status is None
    assert turing.arxiv_id is None


def test_mapping_without_doi_type_or_abstract() -> None:
    record = fixture("semanticscholar_search_page2.json")["data"][0]
    source = map_paper(record)
    assert source is not None
    assert source.title == "Attention is All you Need"  # line break collapsed
    assert source.key == "semanticscholar:204e3073870fae3d05bcbc2f6a8e40d8c0d6e30a"
    assert source.type == "preprint"  # no publication type, but on arXiv
    assert source.abstract is None
    assert source.arxiv_id == "1706.03762"


def test_mapping_tolerates_missing_and_odd_fields() -> None:
    assert map_paper({"paperId": "x"}) is None
    assert map_paper({"paperId": "x", "title": "   "}) is None
    source = map_paper(
        {
            "paperId": "abc",
            "title": "Markup <i>in</i> abstracts",
            "abstract": "<jats:p>Odds &lt; 1</jats:p>",
            "year": None,
            "publicationDate": "2021-03-04",
            "venue": "",
            "journal": {"name": "Journal of Things"},
            "authors": [{"name": "A. Person"}, {"name": ""}, "not an author"],
            "externalIds": {"DOI": "not a doi", "ArXiv": None, "CorpusId": True},
            "openAccessPdf": {"url": "", "status": None},
            "citationCount": "many",
            "fieldsOfStudy": "Physics",
            "publicationTypes": ["Editorial"],
        }
    )
    assert source is not None
    assert source.abstract == "Odds < 1"
    assert source.year == 2021
    assert source.venue == "Journal of Things"
    assert [a.name for a in source.authors] == ["A. Person"]
    assert source.doi is None
    assert source.pdf_url is None
    assert source.open_access is None
    assert source.citation_count is None
    assert source.topics == []
    assert source.type == "editorial"
    assert source.provider_ids == {"semanticscholar": "abc"}
    no_oa_flag = map_paper({"title": "t", "openAccessPdf": {"url": "https://x.org/a.pdf"}})
    assert no_oa_flag is not None and no_oa_flag.open_access is True
    assert no_oa_flag.key.startswith("title:")


# --------------------------------------------------------------------------- paging


async def test_pages_by_next_until_the_last_page(provider_for: Any) -> None:
    server = Recorder(
        reply(fixture("semanticscholar_search_page1.json")),
        reply(fixture("semanticscholar_search_page2.json")),
    )
    found = await provider_for(server).search("attention", 10)
    assert [s.arxiv_id for s in found] == ["1512.03385", None, "1706.03762"]
    assert len(server.requests) == 2  # page 2 has no "next": paging stops
    assert server.params(0)["offset"] == "0" and server.params(0)["limit"] == "10"
    assert server.params(1)["offset"] == "2" and server.params(1)["limit"] == "8"


async def test_stops_at_the_limit(provider_for: Any) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_page1.json")))
    found = await provider_for(server).search("attention", 1)
    assert len(found) == 1
    assert len(server.requests) == 1
    assert server.params()["limit"] == "1"


async def test_page_size_capped_at_100_and_1000_results(provider_for: Any) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        size = int(request.url.params["limit"])
        data = [{"paperId": f"p{offset + i}", "title": f"T {offset + i}"} for i in range(size)]
        return reply({"total": 5000, "offset": offset, "next": offset + size, "data": data})

    server = Recorder(page)
    found = await provider_for(server).search("many", 2000)
    assert len(found) == 1000
    assert {server.params(i)["limit"] for i in range(len(server.requests))} == {"100"}
    assert server.params(len(server.requests) - 1)["offset"] == "900"


async def test_duplicates_across_pages_are_dropped(provider_for: Any) -> None:
    body = fixture("semanticscholar_search_page1.json")
    last = {**body, "offset": 2}
    del last["next"]
    server = Recorder(reply(body), reply(last))
    found = await provider_for(server).search("x", 10)
    assert len(found) == 2


async def test_empty_result(provider_for: Any) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_empty.json")))
    assert await provider_for(server).search("n0 r3sult s3arch t3rm", 10) == []
    assert len(server.requests) == 1


# --------------------------------------------------------------------------- filters


async def test_filters_sent_as_api_parameters_and_applied_after(provider_for: Any) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_page1.json")))
    filters = SearchFilters(year_from=2015, year_to=2020, open_access=True, types=("review",))
    found = await provider_for(server).search("x", 5, filters)
    params = server.params()
    assert params["year"] == "2015-2020"
    assert params["openAccessPdf"] == ""
    assert params["publicationTypes"] == "Review"
    assert found == []  # ResNet is an article, Turing from 1950: matches() keeps neither


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(year_from=2015), {"year": "2015-"}),
        (SearchFilters(year_to=2020), {"year": "-2020"}),
        (SearchFilters(year_from=2019, year_to=2019), {"year": "2019"}),
        (SearchFilters(open_access=False), {}),
        (
            SearchFilters(types=("article", "proceedings-article")),
            {"publicationTypes": "JournalArticle,ClinicalTrial,CaseReport,Study,Conference"},
        ),
        (SearchFilters(types=("article", "preprint")), {}),  # no S2 type for preprints
    ],
)
async def test_filter_parameters(
    provider_for: Any, filters: SearchFilters, expected: dict[str, str]
) -> None:
    server = Recorder(reply(fixture("semanticscholar_search_empty.json")))
    await provider_for(server).search("x", 5, filters)
    params = server.params()
    for name in ("query", "fields", "offset", "limit"):
        params.pop(name)
    assert params == expected


async def test_client_side_filter_keeps_paging(provider_for: Any) -> None:
    server = Recorder(
        reply(fixture("semanticscholar_search_page1.json")),
        reply(fixture("semanticscholar_search_page2.json")),
    )
    found = await provider_for(server).search("x", 2, SearchFilters(year_from=2016))
    assert [s.year for s in found] == [2017]
    assert len(server.requests) == 2


# --------------------------------------------------------------------------- failures


async def test_429_with_retry_after_is_honoured(provider_for: Any, clock: FakeClock) -> None:
    server = Recorder(
        reply({"message": "Too Many Requests"}, 429, {"Retry-After": "7"}),
        reply(fixture("semanticscholar_search_page1.json")),
    )
    found = await provider_for(server).search("x", 2)
    assert len(found) == 2
    assert len(server.requests) == 2
    assert 7.0 in clock.sleeps
    assert server.times[1] - server.times[0] >= 7.0


async def test_5xx_is_retried(provider_for: Any) -> None:
    server = Recorder(
        reply({"message": "Internal Server Error"}, 500),
        reply({"message": "Bad Gateway"}, 502),
        reply(fixture("semanticscholar_search_page1.json")),
    )
    assert len(await provider_for(server).search("x", 2)) == 2
    assert len(server.requests) == 3


async def test_persistent_5xx_becomes_source_error(provider_for: Any) -> None:
    server = Recorder(reply({"message": "Service Unavailable"}, 503))
    with pytest.raises(SourceError, match="semanticscholar: HTTP 503"):
        await provider_for(server).search("x", 2)
    assert len(server.requests) == 3


async def test_400_is_not_retried(provider_for: Any) -> None:
    server = Recorder(reply({"error": "Unrecognized or unsupported fields: [bogus]"}, 400))
    with pytest.raises(SourceError, match=r"HTTP 400.*Unrecognized"):
        await provider_for(server).search("x", 2)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(
                200, text='{"total": 3, "data": [', headers={"content-type": "application/json"}
            ),
            "malformed JSON",
        ),
        (httpx.Response(200, json=[1, 2]), "not a JSON object"),
        (httpx.Response(200, json={"total": 1, "data": {"paperId": "x"}}), "'data' is not a list"),
        (
            httpx.Response(
                200,
                text="<html><body><h1>502 Bad Gateway</h1></body></html>",
                headers={"content-type": "text/html; charset=utf-8"},
            ),
            "HTML page",
        ),
    ],
)
async def test_malformed_replies_become_source_errors(
    provider_for: Any, response: httpx.Response, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        await provider_for(Recorder(response)).search("x", 2)


# --------------------------------------------------------------------------- health


async def test_health_reaches_the_api(provider_for: Any) -> None:
    server = Recorder(reply({"total": 1, "offset": 0, "next": 1, "data": [{"paperId": "a"}]}))
    provider = provider_for(server, api_key=KEY)
    health = await provider.health()
    assert health.provider == "semanticscholar"
    assert health.status == "healthy"
    assert health.latency_ms is not None
    assert KEY not in (health.detail or "")
    assert server.params() == {"query": "science", "limit": "1", "fields": "title"}


async def test_health_never_raises(provider_for: Any) -> None:
    health = await provider_for(Recorder(reply({}, 500))).health()
    assert health.status == "unhealthy"
    assert "HTTP 500" in (health.detail or "")

    def boom(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("unexpected")

    health = await provider_for(Recorder(boom)).health()
    assert health.status == "unhealthy"
    assert health.detail == "RuntimeError"
