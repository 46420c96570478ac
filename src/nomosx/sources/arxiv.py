"""arXiv: the Atom API at ``GET /api/query``, parsed with a real XML parser.

``search_query=all:"w1" AND all:"w2"&start=…&max_results=…&sortBy=relevance`` answers an
Atom feed: ``opensearch:totalResults`` for paging, one ``<entry>`` per e-print with
``arxiv:primary_category``, ``arxiv:doi``, ``arxiv:journal_ref`` and authors'
``arxiv:affiliation``. Errors come back as a feed whose single entry is titled "Error";
they become a ``SourceError``.

Safety: the reply is refused before parsing if it declares a DOCTYPE or an ENTITY, so an
entity-expansion bomb or an external entity never reaches the parser (``defusedxml`` is
not a dependency). Politeness: arXiv asks for at most one request every 3 seconds.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from nomosx.errors import SourceError
from nomosx.models import Author, Institution, Source
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.sources.http import ProviderHttp, SourceHTTPError
from nomosx.sources.normalise import normalise_arxiv_id, normalise_doi, parse_year, source_key

__all__ = ["NS", "RATE", "ArxivProvider", "build_query", "parse_feed"]

RATE = 1 / 3  # arXiv: "at most one request every 3 seconds"

QUERY_PATH = "/api/query"
PAGE_SIZE = 100
MAX_PAGES = 5  # a bound on paging when the client-side year filter drops results
MAX_TERMS = 8

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
}
_A = "{http://www.w3.org/2005/Atom}"

_FORBIDDEN = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_WORD = re.compile(r"\w[\w'.-]*")
_STOPWORD_TEXT = (
    "a an and are as at be by do does for from how in into is it of on or the this that "
    "to was what when where which who why will with andnot not"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def build_query(query: str) -> str:
    """``all:"w1" AND all:"w2"`` from free text.

    Only word characters (and inner ``' . -``) survive, each term is quoted, so the
    user's text can never add operators (``OR``, ``ANDNOT``), field prefixes or
    parentheses. Common English words are dropped and at most ``MAX_TERMS`` kept.
    """
    words = [w.strip("'.-") for w in _WORD.findall(query)]
    words = [w for w in words if w]
    kept = [w for w in words if w.lower() not in _STOPWORDS] or words
    terms = list(dict.fromkeys(w.lower() for w in kept))[:MAX_TERMS]
    return " AND ".join(f'all:"{term}"' for term in terms)


class ArxivProvider:
    """``SourceProvider`` for arXiv e-prints."""

    name = "arxiv"

    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]:
        search_query = build_query(query)
        if not search_query or limit <= 0:
            return []
        found: list[Source] = []
        seen: set[str] = set()
        start = 0
        for _ in range(MAX_PAGES):
            size = min(PAGE_SIZE, limit - len(found))
            params = {
                "search_query": search_query,
                "start": start,
                "max_results": size,
                "sortBy": "relevance",
            }
            feed = parse_feed(await self.http.get_text(QUERY_PATH, params))
            for source in feed.sources:
                if source.key in seen:
                    continue
                if filters is not None and not filters.matches(source):
                    continue
                seen.add(source.key)
                found.append(source)
                if len(found) >= limit:
                    return found
            start += feed.entries
            if not feed.entries or start >= feed.total:
                break
        return found

    async def health(self) -> SourceHealth:
        """One cheap uncached query (``max_results=1``); reports, never raises."""
        started = time.perf_counter()
        params = {"search_query": 'all:"electron"', "start": 0, "max_results": 1}
        try:
            # the cache is bypassed on purpose: health must reach the API
            feed = parse_feed(await self.http.probe(QUERY_PATH, params))
        except SourceError as exc:
            return SourceHealth(self.name, "unhealthy", detail=str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - health reports every failure
            return SourceHealth(self.name, "unhealthy", detail=type(exc).__name__)
        latency = round((time.perf_counter() - started) * 1000, 3)
        if not feed.total:
            return SourceHealth(self.name, "degraded", latency, detail="no results")
        return SourceHealth(self.name, "healthy", latency, detail=f"{feed.total} results")

    async def aclose(self) -> None:
        await self.http.aclose()


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class Feed:
    total: int
    start: int
    entries: int  # entries in this page, including any that could not be mapped
    sources: list[Source]


def _error(message: str) -> SourceHTTPError:
    return SourceHTTPError(message, provider="arxiv")


def parse_feed(text: str) -> Feed:
    """The sources of an arXiv Atom reply; ``SourceError`` on anything else."""
    if _FORBIDDEN.search(text):
        raise _error("refused an XML reply with a DOCTYPE or ENTITY declaration")
    try:
        # safe: no DTD can be present (checked above), so no entity can be expanded
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise _error(f"malformed XML reply ({exc})") from None
    if root.tag != f"{_A}feed":
        raise _error(f"not an Atom feed (root element {root.tag!r})")
    entries = root.findall("atom:entry", NS)
    for entry in entries:
        if _text(entry.find("atom:title", NS)) == "Error":
            summary = _text(entry.find("atom:summary", NS)) or "unspecified error"
            raise _error(f"API error: {summary}")
    total = _int(root.find("opensearch:totalResults", NS))
    start = _int(root.find("opensearch:startIndex", NS))
    sources = [s for s in (map_entry(e) for e in entries) if s is not None]
    if total is None:
        total = len(sources)
    return Feed(total=total, start=start or 0, entries=len(entries), sources=sources)


def _text(element: ET.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    text = " ".join(element.text.split())
    return text or None


def _int(element: ET.Element | None) -> int | None:
    text = _text(element)
    try:
        return int(text) if text is not None else None
    except ValueError:
        raise _error(f"malformed number {text!r} in the feed") from None


def map_entry(entry: ET.Element) -> Source | None:
    """One Atom ``<entry>`` as a ``Source``; ``None`` without an arXiv id or a title."""
    entry_id = _text(entry.find("atom:id", NS))
    arxiv_id = normalise_arxiv_id(entry_id)
    title = _text(entry.find("atom:title", NS))
    if arxiv_id is None or title is None:
        return None
    published = _text(entry.find("atom:published", NS))
    year = parse_year(published)
    doi_text = _text(entry.find("arxiv:doi", NS))
    doi = normalise_doi(doi_text)

    authors = []
    for author in entry.findall("atom:author", NS):
        name = _text(author.find("atom:name", NS))
        if not name:
            continue
        affiliations = [_text(a) for a in author.findall("arxiv:affiliation", NS)]
        authors.append(
            Author(name=name, institutions=[Institution(name=a) for a in affiliations if a])
        )

    primary = entry.find("arxiv:primary_category", NS)
    primary_term = primary.get("term") if primary is not None else None
    categories = [c.get("term") for c in entry.findall("atom:category", NS)]
    topics = list(dict.fromkeys(t for t in (primary_term, *categories) if t))

    pdf_url = None
    for link in entry.findall("atom:link", NS):
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf_url = link.get("href")
            break
    pdf_url = _https(pdf_url) or f"https://arxiv.org/pdf/{arxiv_id}"
    url = f"https://arxiv.org/abs/{arxiv_id}"
    links = [url, pdf_url, *([f"https://doi.org/{doi}"] if doi else [])]

    raw = {
        "id": entry_id,
        "published": published,
        "updated": _text(entry.find("atom:updated", NS)),
        "primary_category": primary_term,
        "categories": [c for c in categories if c],
        "doi": doi_text,
        "journal_ref": _text(entry.find("arxiv:journal_ref", NS)),
        "comment": _text(entry.find("arxiv:comment", NS)),
    }
    return Source(
        key=source_key(doi=doi, provider="arxiv", provider_id=arxiv_id, title=title, year=year),
        provider="arxiv",
        provider_ids={"arxiv": arxiv_id},
        doi=doi,
        arxiv_id=arxiv_id,
        title=title,
        abstract=_text(entry.find("atom:summary", NS)),
        year=year,
        venue="arXiv",
        type="preprint",
        authors=authors,
        open_access=True,
        oa_status="green",
        url=url,
        pdf_url=pdf_url,
        links=list(dict.fromkeys(links)),
        topics=topics,
        raw={k: v for k, v in raw.items() if v},
    )


def _https(url: str | None) -> str | None:
    if not url:
        return None
    return "https://" + url.removeprefix("http://") if url.startswith("http://") else url
