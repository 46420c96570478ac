"""Crossref: ``GET /works?query=`` in the polite pool, with offset paging.

Request   ``/works?query=<query>&rows=<n>&offset=<k>&select=<SELECT>&filter=<...>
          &mailto=<email>`` (https://api.crossref.org/swagger-ui). Pages of
          ``min(limit, page_size)`` rows are read at growing ``offset`` until ``limit``
          items are collected, a page is short, ``message.total-results`` is reached, or
          Crossref's deep-paging ceiling (offset 10,000) would be passed.
Filters   ``from-pub-date:<year>``, ``until-pub-date:<year>``, ``type:<type>`` (repeated
          for several types, which Crossref ORs), per
          https://crossref.org/documentation/retrieve-metadata/rest-api/rest-api-filters/.
          Type names of other providers are translated (``article`` and ``review`` ->
          ``journal-article``, ``preprint`` -> ``posted-content``). Crossref has no
          open-access filter: ``SearchFilters.open_access`` is left to the caller's
          ``SearchFilters.matches`` (and to the Unpaywall enricher, which knows).
Mapping   ``title[0]`` and the JATS ``abstract`` with markup stripped; authors with their
          ORCID and affiliations (a ROR from ``affiliation[].id[]`` where ``id-type`` is
          ``ROR``); year from ``published``, else ``issued``; venue ``container-title[0]``;
          citations ``is-referenced-by-count``; ``link[]`` URLs as links (a PDF one as
          ``pdf_url``); ``subject`` as topics; open access ``True`` only when a license is
          Creative Commons (otherwise unknown, never ``False``).
Limits    :data:`RATE` (10 requests/s) is for the polite pool (a ``mailto``). The public
          pool (no ``mailto``) is lower: :data:`PUBLIC_RATE` (5 requests/s) and fewer
          concurrent requests. Crossref revised both pools' limits from 1 December 2025
          ("Announcing changes to REST API rate limits", Crossref blog, 2025-11-05); the
          limits in force are sent in the ``x-rate-limit-limit`` and
          ``x-rate-limit-interval`` headers of every reply. Over the limit Crossref answers
          429 (retried, honouring ``Retry-After``, by ``ProviderHttp``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from nomosx.errors import SourceError
from nomosx.models import Author, Institution, Source
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.sources.http import ProviderHttp, SourceHTTPError
from nomosx.sources.normalise import (
    normalise_doi,
    normalise_language,
    normalise_orcid,
    normalise_ror,
    parse_year,
    source_key,
    strip_markup,
)

__all__ = [
    "MAX_ROWS",
    "NAME",
    "PUBLIC_RATE",
    "RATE",
    "SELECT",
    "CrossrefProvider",
    "crossref_filter",
    "source_from_crossref_item",
]

log = logging.getLogger(__name__)

NAME = "crossref"
RATE = 10.0  # requests per second in the polite pool (with ``mailto``)
PUBLIC_RATE = 5.0  # requests per second in the public pool (no ``mailto``)
MAX_ROWS = 100  # rows per page we ask for (Crossref allows up to 1,000)
MAX_OFFSET = 10_000  # Crossref refuses deeper offsets (cursors are for harvesting)
SELECT = ",".join(
    (
        "DOI",
        "title",
        "abstract",
        "author",
        "issued",
        "published",
        "container-title",
        "type",
        "is-referenced-by-count",
        "link",
        "URL",
        "language",
        "subject",
        "license",
    )
)
_TYPES = {
    "article": "journal-article",
    "review": "journal-article",
    "systematic-review": "journal-article",
    "meta-analysis": "journal-article",
    "preprint": "posted-content",
}


def crossref_filter(filters: SearchFilters | None) -> str | None:
    """The ``filter=`` value for ``filters``, or ``None`` when nothing narrows the search."""
    if filters is None:
        return None
    parts: list[str] = []
    if filters.year_from is not None:
        parts.append(f"from-pub-date:{filters.year_from}")
    if filters.year_to is not None:
        parts.append(f"until-pub-date:{filters.year_to}")
    types = dict.fromkeys(_TYPES.get(t.lower(), t.lower()) for t in filters.types if t)
    parts.extend(f"type:{kind}" for kind in types)
    return ",".join(parts) or None


class CrossrefProvider:
    """The ``crossref`` source provider (see the module docstring)."""

    name = NAME

    def __init__(
        self, http: ProviderHttp, *, mailto: str | None, page_size: int = MAX_ROWS
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.http = http
        self.mailto = mailto
        self.page_size = page_size

    def _params(self, **params: Any) -> dict[str, Any]:
        if self.mailto:
            params["mailto"] = self.mailto
        return params

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]:
        if limit <= 0 or not query.strip():
            return []
        rows = min(limit, self.page_size)
        params = self._params(query=query, rows=rows, select=SELECT)
        if (condition := crossref_filter(filters)) is not None:
            params["filter"] = condition
        found: list[Source] = []
        offset = 0
        while True:
            page = {**params, "offset": offset} if offset else params
            items, total = _page(await self.http.get_json("/works", page))
            for item in items:
                if (source := _to_source(item)) is not None:
                    found.append(source)
            offset += rows
            if (
                len(found) >= limit
                or len(items) < rows
                or (total is not None and offset >= total)
                or offset + rows > MAX_OFFSET
            ):
                break
        return found[:limit]

    async def health(self) -> SourceHealth:
        """One real, uncached ``/works?rows=0`` request; never raises."""
        started = time.perf_counter()
        try:
            # ``_get`` rather than ``get_json``: a health probe must reach the API, not
            # the ``api`` cache (it still goes through the breaker and rate limiter).
            await self.http.probe("/works", self._params(rows=0))
        except SourceError as exc:
            return SourceHealth(NAME, "unhealthy", _since(started), detail=str(exc)[:200])
        return SourceHealth(NAME, "healthy", _since(started))

    async def aclose(self) -> None:
        await self.http.aclose()


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _page(reply: Any) -> tuple[list[Any], int | None]:
    message = reply.get("message") if isinstance(reply, Mapping) else None
    if not isinstance(message, Mapping) or not isinstance(message.get("items"), list):
        raise SourceHTTPError(
            "unexpected reply: no 'message.items' list in the /works answer", provider=NAME
        )
    total = message.get("total-results")
    return message["items"], total if isinstance(total, int) else None


def _to_source(item: object) -> Source | None:
    if not isinstance(item, dict):
        log.warning("crossref: skipped an item that is not a JSON object")
        return None
    source = source_from_crossref_item(item)
    if source is None:
        log.warning("crossref: skipped item %s: no title", item.get("DOI"))
    return source


# --------------------------------------------------------------------------- mapping


def _text(value: object) -> str | None:
    if isinstance(value, str) and (stripped := value.strip()):
        return stripped
    return None


def _first(value: object) -> str | None:
    """The first non-blank string of a Crossref list field (``title``, ``container-title``)."""
    if isinstance(value, list):
        for entry in value:
            if text := _text(entry):
                return text
        return None
    return _text(value)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _map(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _year(item: Mapping[str, Any]) -> int | None:
    for field in ("published", "issued"):
        parts = _list(_map(item.get(field)).get("date-parts"))
        first = _list(parts[0]) if parts else []
        if first and (year := parse_year(first[0])) is not None:
            return year
    return None


def _institution(affiliation: object) -> Institution | None:
    entry = _map(affiliation)
    ror = None
    for ident in _list(entry.get("id")):
        ident = _map(ident)
        if str(ident.get("id-type", "")).upper() == "ROR":
            ror = normalise_ror(_text(ident.get("id")))
            if ror:
                break
    name = _text(entry.get("name")) or (f"https://ror.org/{ror}" if ror else None)
    return Institution(name=strip_markup(name), ror=ror) if name else None


def _author(entry: object) -> Author | None:
    person = _map(entry)
    given, family = _text(person.get("given")), _text(person.get("family"))
    name = " ".join(part for part in (given, family) if part) or _text(person.get("name"))
    if not name:
        return None
    institutions = [i for i in map(_institution, _list(person.get("affiliation"))) if i]
    return Author(
        name=name, orcid=normalise_orcid(_text(person.get("ORCID"))), institutions=institutions
    )


def _unique(values: list[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def source_from_crossref_item(item: dict[str, Any]) -> Source | None:
    """A keyed ``Source`` from one Crossref work (``message.items[]``), ``None`` if untitled."""
    title = strip_markup(_first(item.get("title")) or "")
    if not title:
        return None
    doi = normalise_doi(_text(item.get("DOI")))
    year = _year(item)
    abstract = strip_markup(_text(item.get("abstract")) or "") or None
    links = [_map(link) for link in _list(item.get("link"))]
    pdf = next(
        (
            _text(link.get("URL"))
            for link in links
            if link.get("content-type") == "application/pdf"
            and link.get("intended-application") != "similarity-checking"
            and _text(link.get("URL"))
        ),
        None,
    )
    licences = [_text(_map(lic).get("URL")) or "" for lic in _list(item.get("license"))]
    url = f"https://doi.org/{doi}" if doi else _text(item.get("URL"))
    citations = item.get("is-referenced-by-count")
    return Source(
        key=source_key(doi=doi, provider=NAME, provider_id=doi, title=title, year=year),
        provider=NAME,
        provider_ids={NAME: doi} if doi else {},
        doi=doi,
        title=title,
        abstract=abstract,
        year=year,
        venue=_first(item.get("container-title")),
        type=_text(item.get("type")),
        authors=[a for a in map(_author, _list(item.get("author"))) if a],
        citation_count=citations
        if isinstance(citations, int) and not isinstance(citations, bool)
        else None,
        open_access=True if any("creativecommons.org" in lic for lic in licences) else None,
        url=url,
        pdf_url=pdf,
        links=_unique([url, _text(item.get("URL"))] + [_text(link.get("URL")) for link in links]),
        topics=_unique([_text(subject) for subject in _list(item.get("subject"))]),
        language=normalise_language(_text(item.get("language"))),
        raw=item,
    )
