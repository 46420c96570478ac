"""INDEX: merge duplicates across providers, keeping the richest fields of each.

Two records are one work when their normalised DOIs are equal, or when their normalised
titles are equal and their years agree (a preprint may be a year older than its
published version, so there a difference of one year is allowed).
"""

from __future__ import annotations

from collections.abc import Sequence

from nomosx.models import Source
from nomosx.sources.normalise import normalise_doi, normalise_title

_PREPRINT_TYPES = {"preprint", "posted-content"}
_PREPRINT_HOSTS = ("arxiv", "biorxiv", "medrxiv", "ssrn", "preprint")


def is_preprint(source: Source) -> bool:
    if source.type and source.type.lower() in _PREPRINT_TYPES:
        return True
    if source.provider == "arxiv" or (source.arxiv_id and not source.venue):
        return True
    venue = (source.venue or "").lower()
    return any(host in venue for host in _PREPRINT_HOSTS)


def _years_agree(a: Source, b: Source) -> bool:
    if a.year is None or b.year is None:
        return True
    gap = abs(a.year - b.year)
    return gap == 0 or (gap == 1 and is_preprint(a) != is_preprint(b))


def _longer(a: str | None, b: str | None) -> str | None:
    if not a:
        return b
    if not b:
        return a
    return b if len(b) > len(a) else a


def _union(a: Sequence[str], b: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def merge(a: Source, b: Source) -> Source:
    """One source from two records of the same work; the published version leads."""
    lead, other = (b, a) if is_preprint(a) and not is_preprint(b) else (a, b)
    links = _union(
        [u for u in (lead.url, lead.pdf_url, *lead.links) if u],
        [u for u in (other.url, other.pdf_url, *other.links) if u],
    )
    counts = [c for c in (lead.citation_count, other.citation_count) if c is not None]
    return lead.model_copy(
        update={
            "provider_ids": {**other.provider_ids, **lead.provider_ids},
            "doi": lead.doi or other.doi,
            "arxiv_id": lead.arxiv_id or other.arxiv_id,
            "abstract": _longer(lead.abstract, other.abstract),
            "year": lead.year if lead.year is not None else other.year,
            "venue": lead.venue or other.venue,
            "type": lead.type or other.type,
            "authors": lead.authors if len(lead.authors) >= len(other.authors) else other.authors,
            "citation_count": max(counts) if counts else None,
            "open_access": lead.open_access or other.open_access,
            "oa_status": lead.oa_status or other.oa_status,
            "url": lead.url or other.url,
            "pdf_url": lead.pdf_url or other.pdf_url,
            "links": links,
            "topics": _union(lead.topics, other.topics),
            "language": lead.language or other.language,
        }
    )


def deduplicate(sources: Sequence[Source]) -> list[Source]:
    """Merge duplicates, keeping the order in which each work was first seen."""
    merged: list[Source] = []
    by_doi: dict[str, int] = {}
    by_title: dict[str, list[int]] = {}
    for source in sources:
        doi = normalise_doi(source.doi)
        title = normalise_title(source.title)
        slot = by_doi.get(doi) if doi else None
        if slot is None:
            slot = next(
                (i for i in by_title.get(title, []) if _years_agree(merged[i], source)), None
            )
        if slot is None:
            slot = len(merged)
            merged.append(source)
        else:
            merged[slot] = merge(merged[slot], source)
        current = merged[slot]
        for d in {doi, normalise_doi(current.doi)} - {None}:
            by_doi[str(d)] = slot
        if title and slot not in by_title.setdefault(title, []):
            by_title[title].append(slot)
    return merged


class DedupeIndexer:
    """The INDEX stage: ``deduplicate`` behind the ``Indexer`` protocol."""

    async def index(self, sources: Sequence[Source]) -> list[Source]:
        return deduplicate(sources)
