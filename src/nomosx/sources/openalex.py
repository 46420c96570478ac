"""OpenAlex: ``GET /works?search=`` in the polite pool, with cursor paging.

Request   ``/works?search=<query>&per-page=<min(limit, 200)>&select=<SELECT>&filter=<...>
          &mailto=<email>&cursor=*``, then ``cursor=<meta.next_cursor>`` until ``limit``
          works are collected, a page comes back empty, or ``next_cursor`` is ``null``
          (https://docs.openalex.org/how-to-use-the-api/get-lists-of-entities/paging).
Filters   ``SearchFilters`` become one ``filter=`` value, conditions joined by ``,`` (AND),
          alternatives by ``|`` (OR): ``publication_year:2015-2020`` (or ``>2014`` /
          ``<2021`` for an open range), ``is_oa:true``, ``type:article|review``. Type names
          of other providers are translated (``journal-article`` -> ``article``,
          ``posted-content`` -> ``preprint``).
Mapping   one work -> ``Source`` by :func:`nomosx.ingest.jsonl.source_from_openalex_work`,
          the same function that reads OpenAlex JSON Lines, so both paths agree; the
          abstract is rebuilt from ``abstract_inverted_index`` by word positions. A work
          whose record is broken (a malformed inverted index, no title) is skipped and
          logged, never failing the search.
Limits    OpenAlex publishes 10 requests/s and 100,000 a day for the polite pool
          (``mailto``): :data:`RATE`. The ``HttpPolicy`` is set where the provider is built.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from nomosx.errors import RecordError, SourceError
from nomosx.ingest.jsonl import source_from_openalex_work
from nomosx.models import Source
from nomosx.sources.base import SearchFilters, SourceHealth
from nomosx.sources.http import ProviderHttp, SourceHTTPError
from nomosx.sources.normalise import source_key, strip_markup

__all__ = ["MAX_PER_PAGE", "NAME", "RATE", "SELECT", "OpenAlexProvider", "openalex_filter"]

log = logging.getLogger(__name__)

NAME = "openalex"
RATE = 10.0  # requests per second, the published polite-pool limit
MAX_PER_PAGE = 200  # OpenAlex's ceiling for ``per-page``
MAX_PAGES = 50  # a safety net against a cursor that never ends
# Exactly the root fields that ``source_from_openalex_work`` reads (``select`` takes
# root-level fields only).
SELECT = ",".join(
    (
        "id",
        "doi",
        "display_name",
        "publication_year",
        "type",
        "language",
        "ids",
        "primary_location",
        "locations",
        "open_access",
        "authorships",
        "cited_by_count",
        "topics",
        "concepts",
        "abstract_inverted_index",
    )
)
_TYPES = {
    "journal-article": "article",
    "proceedings-article": "article",
    "posted-content": "preprint",
    "systematic-review": "review",
    "meta-analysis": "review",
}


def openalex_filter(filters: SearchFilters | None) -> str | None:
    """The ``filter=`` value for ``filters``, or ``None`` when nothing narrows the search."""
    if filters is None:
        return None
    parts: list[str] = []
    low, high = filters.year_from, filters.year_to
    if low is not None and high is not None:
        parts.append(f"publication_year:{low}" if low == high else f"publication_year:{low}-{high}")
    elif low is not None:
        parts.append(f"publication_year:>{low - 1}")
    elif high is not None:
        parts.append(f"publication_year:<{high + 1}")
    if filters.open_access is not None:
        parts.append(f"is_oa:{str(filters.open_access).lower()}")
    types = list(dict.fromkeys(_TYPES.get(t.lower(), t.lower()) for t in filters.types if t))
    if types:
        parts.append("type:" + "|".join(types))
    return ",".join(parts) or None


class OpenAlexProvider:
    """The ``openalex`` source provider (see the module docstring)."""

    name = NAME

    def __init__(self, http: ProviderHttp, *, mailto: str | None) -> None:
        self.http = http
        self.mailto = mailto

    def _params(self, **params: Any) -> dict[str, Any]:
        if self.mailto:
            params["mailto"] = self.mailto
        return params

    async def search(
        self, query: str, limit: int, filters: SearchFilters | None = None
    ) -> list[Source]:
        if limit <= 0 or not query.strip():
            return []
        params = self._params(search=query, select=SELECT)
        params["per-page"] = min(limit, MAX_PER_PAGE)
        if (condition := openalex_filter(filters)) is not None:
            params["filter"] = condition
        found: list[Source] = []
        cursor: str | None = "*"
        for _ in range(MAX_PAGES):
            reply = await self.http.get_json("/works", {**params, "cursor": cursor})
            results, cursor = self._page(reply)
            found.extend(source for source in map(_to_source, results) if source is not None)
            if len(found) >= limit or not results or not cursor:
                break
        return found[:limit]

    def _page(self, reply: Any) -> tuple[list[Any], str | None]:
        if not isinstance(reply, Mapping) or not isinstance(reply.get("results"), list):
            raise SourceHTTPError(
                "unexpected reply: no 'results' list in the /works answer", provider=NAME
            )
        meta = reply.get("meta")
        cursor = meta.get("next_cursor") if isinstance(meta, Mapping) else None
        return reply["results"], cursor if isinstance(cursor, str) and cursor else None

    async def health(self) -> SourceHealth:
        """One real, uncached ``/works?per-page=1&select=id`` request; never raises."""
        started = time.perf_counter()
        try:
            # ``_get`` rather than ``get_json``: a health probe must reach the API, not
            # the ``api`` cache (it still goes through the breaker and rate limiter).
            await self.http.probe("/works", self._params(**{"per-page": 1, "select": "id"}))
        except SourceError as exc:
            return SourceHealth(NAME, "unhealthy", _since(started), detail=str(exc)[:200])
        return SourceHealth(NAME, "healthy", _since(started))

    async def aclose(self) -> None:
        await self.http.aclose()


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _to_source(work: object) -> Source | None:
    if not isinstance(work, dict):
        log.warning("openalex: skipped a result that is not a JSON object")
        return None
    try:
        source = source_from_openalex_work(work)
    except RecordError as exc:
        log.warning("openalex: skipped work %s: %s", work.get("id"), exc)
        return None
    title = strip_markup(source.title)
    if not title:
        log.warning("openalex: skipped work %s: no title", work.get("id"))
        return None
    abstract = strip_markup(source.abstract) if source.abstract else None
    key = source_key(
        doi=source.doi,
        provider=NAME,
        provider_id=source.provider_ids.get(NAME),
        title=title,
        year=source.year,
    )
    return source.model_copy(update={"key": key, "title": title, "abstract": abstract or None})
