"""Semantic Scholar: relevance search on the Academic Graph API.

``GET /graph/v1/paper/search?query=…&offset=…&limit=…&fields=…`` answers
``{"total": n, "offset": o, "next": o + limit, "data": [paper, …]}``; ``next`` is absent on
the last page and ``data`` is absent when nothing matched. At most 100 papers a page and
1,000 relevance-ranked results in all. Filters: ``year`` (``2015-2020``, ``2015-``,
``-2020``), ``openAccessPdf`` (present without a value) and ``publicationTypes``.

Politeness: 1 request a second (the shared unauthenticated pool, and the introductory rate
of an API key). The key travels in the ``x-api-key`` header; it is never logged, put in a
cache key, or shown in a ``repr``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from nomosx.errors import SourceError
from nomosx.models import Author, Source
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.sources.http import ProviderHttp
from nomosx.sources.normalise import (
    normalise_arxiv_id,
    normalise_doi,
    parse_year,
    source_key,
    strip_markup,
)

__all__ = ["FIELDS", "RATE", "RATE_WITH_KEY", "SemanticScholarProvider"]

RATE = 1.0  # requests per second without a key (published)
RATE_WITH_KEY = 1.0  # the introductory dedicated rate of an API key (published)

SEARCH_PATH = "/graph/v1/paper/search"
FIELDS = (
    "title,abstract,year,venue,publicationTypes,authors,externalIds,citationCount,"
    "isOpenAccess,openAccessPdf,url,fieldsOfStudy,publicationDate,journal"
)
PAGE_SIZE = 100  # the API's maximum ``limit``
MAX_RESULTS = 1000  # relevance search returns at most this many (offset + limit)
MAX_PAGES = 12  # a bound on paging when client-side filtering drops results

# Semantic Scholar publication types → this project's source types, strongest first.
_TYPES: tuple[tuple[str, str], ...] = (
    ("MetaAnalysis", "meta-analysis"),
    ("Review", "review"),
    ("JournalArticle", "article"),
    ("Conference", "proceedings-article"),
    ("BookSection", "book-chapter"),
    ("Book", "book"),
    ("Dataset", "dataset"),
    ("ClinicalTrial", "article"),
    ("CaseReport", "article"),
    ("Study", "article"),
    ("Editorial", "editorial"),
    ("LettersAndComments", "letter"),
    ("News", "news"),
)


def _reverse_types() -> dict[str, tuple[str, ...]]:
    reverse: dict[str, tuple[str, ...]] = {}
    for s2, ours in _TYPES:
        reverse[ours] = (*reverse.get(ours, ()), s2)
    reverse["journal-article"] = reverse["article"]
    return reverse


_TO_S2 = _reverse_types()


class SemanticScholarProvider:
    """``SourceProvider`` for the Semantic Scholar Academic Graph."""

    name = "semanticscholar"

    def __init__(self, http: ProviderHttp, *, api_key: str | None) -> None:
        self.http = http
        self._has_key = bool(api_key)
        if api_key:
            http.headers["x-api-key"] = api_key
        else:
            http.headers.pop("x-api-key", None)

    def __repr__(self) -> str:
        return f"SemanticScholarProvider(base_url={self.http.base_url!r}, key={self._has_key})"

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]:
        text = _clean_query(query)
        if not text or limit <= 0:
            return []
        base = {"query": text, "fields": FIELDS, **_filter_params(filters)}
        found: list[Source] = []
        seen: set[str] = set()
        offset = 0
        for _ in range(MAX_PAGES):
            size = min(PAGE_SIZE, limit - len(found), MAX_RESULTS - offset)
            if size <= 0:
                break
            page = await self.http.get_json(SEARCH_PATH, {**base, "offset": offset, "limit": size})
            if not isinstance(page, Mapping):
                raise SourceError(f"{self.name}: unexpected reply (not a JSON object)")
            data = page.get("data") or []
            if not isinstance(data, list):
                raise SourceError(f"{self.name}: unexpected reply ('data' is not a list)")
            for record in data:
                source = map_paper(record) if isinstance(record, Mapping) else None
                if source is None or source.key in seen:
                    continue
                if filters is not None and not filters.matches(source):
                    continue
                seen.add(source.key)
                found.append(source)
                if len(found) >= limit:
                    return found
            following = page.get("next")
            if not data or not isinstance(following, int) or following <= offset:
                break
            offset = following
        return found

    async def health(self) -> SourceHealth:
        """One cheap uncached search (``limit=1``); reports, never raises."""
        started = time.perf_counter()
        params = {"query": "science", "limit": 1, "fields": "title"}
        try:
            # the cache is bypassed on purpose: health must reach the API
            await self.http.probe(SEARCH_PATH, params)
        except SourceError as exc:
            return SourceHealth(self.name, "unhealthy", detail=str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - health reports every failure
            return SourceHealth(self.name, "unhealthy", detail=type(exc).__name__)
        latency = round((time.perf_counter() - started) * 1000, 3)
        detail = "api key" if self._has_key else "shared unauthenticated pool"
        return SourceHealth(self.name, "healthy", latency, detail=detail)

    async def aclose(self) -> None:
        await self.http.aclose()


# --------------------------------------------------------------------------- request


def _clean_query(query: str) -> str:
    """Plain words: the endpoint has no query syntax, and hyphenated terms match nothing."""
    return " ".join(query.replace("-", " ").split())


def _filter_params(filters: SearchFilters | None) -> dict[str, str]:
    if filters is None:
        return {}
    params: dict[str, str] = {}
    if filters.year_from is not None or filters.year_to is not None:
        low = "" if filters.year_from is None else str(filters.year_from)
        high = "" if filters.year_to is None else str(filters.year_to)
        params["year"] = low if low == high else f"{low}-{high}"
    if filters.open_access:
        params["openAccessPdf"] = ""
    if filters.types:
        mapped = [_TO_S2.get(t.lower()) for t in filters.types]
        # only when every type has an equivalent: otherwise filtering happens client-side
        if all(mapped):
            params["publicationTypes"] = ",".join(
                dict.fromkeys(s2 for group in mapped if group for s2 in group)
            )
    return params


# --------------------------------------------------------------------------- mapping


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _source_type(types: object, arxiv_id: str | None) -> str | None:
    names = {t for t in types if isinstance(t, str)} if isinstance(types, list) else set()
    for s2, ours in _TYPES:
        if s2 in names:
            return ours
    return "preprint" if arxiv_id else None


_ID_NAMES = {"ArXiv": "arxiv", "CorpusId": "corpus", "MAG": "mag", "PubMed": "pubmed"}
_ID_NAMES |= {"PubMedCentral": "pmc", "DBLP": "dblp", "ACL": "acl"}


def map_paper(record: Mapping[str, Any]) -> Source | None:
    """One ``paper`` object of a search reply as a ``Source``; ``None`` without a title."""
    title = _text(record.get("title"))
    if title is None:
        return None
    paper_id = _text(record.get("paperId"))
    external = record.get("externalIds")
    external = external if isinstance(external, Mapping) else {}
    doi = normalise_doi(_text(external.get("DOI")))
    arxiv_id = normalise_arxiv_id(_text(external.get("ArXiv")))
    year = _int(record.get("year")) or parse_year(record.get("publicationDate"))

    journal = record.get("journal")
    venue = _text(record.get("venue"))
    if venue is None and isinstance(journal, Mapping):
        venue = _text(journal.get("name"))

    pdf = record.get("openAccessPdf")
    pdf = pdf if isinstance(pdf, Mapping) else {}
    pdf_url = _text(pdf.get("url"))
    status = _text(pdf.get("status"))
    is_oa = record.get("isOpenAccess")
    open_access = is_oa if isinstance(is_oa, bool) else (True if pdf_url else None)

    authors = []
    people = record.get("authors")
    for author in people if isinstance(people, list) else []:
        name = _text(author.get("name")) if isinstance(author, Mapping) else None
        if name:
            authors.append(Author(name=name))

    abstract = record.get("abstract")
    abstract_text = strip_markup(abstract) if isinstance(abstract, str) else ""
    fields = record.get("fieldsOfStudy")
    topics = [t for t in fields if isinstance(t, str)] if isinstance(fields, list) else []

    provider_ids: dict[str, str] = {}
    if paper_id:
        provider_ids["semanticscholar"] = paper_id
    for name, ours in _ID_NAMES.items():
        value = external.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            provider_ids[ours] = arxiv_id if ours == "arxiv" and arxiv_id else str(value)

    url = _text(record.get("url"))
    links = [
        link
        for link in (
            url,
            pdf_url,
            f"https://doi.org/{doi}" if doi else None,
            f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        )
        if link
    ]
    return Source(
        key=source_key(
            doi=doi, provider="semanticscholar", provider_id=paper_id, title=title, year=year
        ),
        provider="semanticscholar",
        provider_ids=provider_ids,
        doi=doi,
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract_text or None,
        year=year,
        venue=venue,
        type=_source_type(record.get("publicationTypes"), arxiv_id),
        authors=authors,
        citation_count=_int(record.get("citationCount")),
        open_access=open_access,
        oa_status=status.lower() if status else None,
        url=url,
        pdf_url=pdf_url,
        links=list(dict.fromkeys(links)),
        topics=topics,
        raw=dict(record),
    )
