"""Unpaywall: open-access status and links for sources that have a DOI.

Not a search provider: :class:`UnpaywallEnricher` takes sources found elsewhere and, for
each distinct DOI, asks ``GET /v2/{doi}?email=<email>`` (https://unpaywall.org/products/api;
the reply is one DOI object, https://unpaywall.org/data-format). From it a source gets
``open_access`` (``is_oa``), ``oa_status`` (gold, green, hybrid, bronze or closed),
``pdf_url`` (``best_oa_location.url_for_pdf``, kept as it was when Unpaywall has none) and
the landing-page and PDF URLs of every OA location added to ``links``.

A DOI Unpaywall does not know (404) and any other failure for one DOI (``SourceError``,
after ``ProviderHttp``'s retries) leave that source unchanged; the batch never fails.
At most :data:`CONCURRENCY` lookups run at once, and :data:`RATE` bounds them over time
(Unpaywall asks for at most 100,000 calls a day; 10 requests/s is the polite pace).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from nomosx.errors import SourceError
from nomosx.models import Source
from nomosx.sources.http import ProviderHttp
from nomosx.sources.normalise import normalise_doi

__all__ = ["CONCURRENCY", "NAME", "RATE", "UnpaywallEnricher", "enrich_source"]

log = logging.getLogger(__name__)

NAME = "unpaywall"
RATE = 10.0  # requests per second
CONCURRENCY = 5  # lookups in flight at once


class UnpaywallEnricher:
    """Adds open-access status and links to sources by DOI (see the module docstring)."""

    name = NAME

    def __init__(self, http: ProviderHttp, *, email: str, concurrency: int = CONCURRENCY) -> None:
        if not email or "@" not in email:
            raise ValueError("Unpaywall needs a contact email (settings: sources.mailto)")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.http = http
        self.email = email
        self.concurrency = concurrency

    async def enrich(self, sources: Sequence[Source]) -> list[Source]:
        """``sources`` in the same order, each updated from Unpaywall when it could be."""
        dois = list(dict.fromkeys(d for s in sources if (d := normalise_doi(s.doi))))
        if not dois:
            return list(sources)
        limit = asyncio.Semaphore(self.concurrency)

        async def lookup(doi: str) -> tuple[str, Mapping[str, Any] | None]:
            async with limit:
                return doi, await self.lookup(doi)

        records = dict(await asyncio.gather(*(lookup(doi) for doi in dois)))
        enriched = []
        for source in sources:
            record = records.get(normalise_doi(source.doi) or "")
            enriched.append(enrich_source(source, record) if record is not None else source)
        return enriched

    async def lookup(self, doi: str) -> Mapping[str, Any] | None:
        """The Unpaywall DOI object for ``doi``, or ``None`` (unknown DOI or a failure)."""
        try:
            reply = await self.http.get_json(f"/v2/{quote(doi, safe='/()')}", {"email": self.email})
        except SourceError as exc:
            if getattr(exc, "status", None) != 404:
                log.warning("unpaywall: %s left unchanged: %s", doi, exc)
            return None
        if not isinstance(reply, Mapping):
            log.warning("unpaywall: %s left unchanged: the reply is not a JSON object", doi)
            return None
        return reply

    async def aclose(self) -> None:
        await self.http.aclose()


def _text(value: object) -> str | None:
    if isinstance(value, str) and (stripped := value.strip()):
        return stripped
    return None


def enrich_source(source: Source, record: Mapping[str, Any]) -> Source:
    """``source`` with the open-access facts of one Unpaywall DOI object applied."""
    is_oa = record.get("is_oa")
    best = record.get("best_oa_location")
    best = best if isinstance(best, Mapping) else {}
    locations = record.get("oa_locations")
    urls: list[str | None] = []
    for location in [best, *(locations if isinstance(locations, list) else [])]:
        if isinstance(location, Mapping):
            urls += [
                _text(location.get("url_for_landing_page")),
                _text(location.get("url_for_pdf")),
            ]
    update: dict[str, Any] = {
        "links": list(dict.fromkeys([*source.links, *(u for u in urls if u)])),
    }
    if isinstance(is_oa, bool):
        update["open_access"] = is_oa
    if status := _text(record.get("oa_status")):
        update["oa_status"] = status
    if pdf := _text(best.get("url_for_pdf")):
        update["pdf_url"] = pdf
    return source.model_copy(update=update)
