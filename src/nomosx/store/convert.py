"""Mapping between domain models and table rows."""

from __future__ import annotations

import hashlib
import json

from nomosx.models import Author, Institution, Source
from nomosx.store.tables import SourceRow

_TITLE_NORM_CHARS = 512


def content_hash(source: Source) -> str:
    """Hash of everything stored for a source, so an unchanged re-import writes nothing."""
    payload = source.model_dump(mode="json", exclude={"key"})
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def apply_source(row: SourceRow, source: Source, title_norm: str, digest: str) -> None:
    row.key = source.key
    row.provider = source.provider
    row.provider_ids = dict(source.provider_ids)
    row.doi = source.doi
    row.arxiv_id = source.arxiv_id
    row.title = source.title
    row.title_norm = title_norm[:_TITLE_NORM_CHARS]
    row.abstract = source.abstract
    row.year = source.year
    row.venue = source.venue
    row.type = source.type
    row.citation_count = source.citation_count
    row.open_access = source.open_access
    row.oa_status = source.oa_status
    row.url = source.url
    row.pdf_url = source.pdf_url
    row.links = list(source.links)
    row.topics = list(source.topics)
    row.language = source.language
    row.quality_score = source.quality_score
    row.novelty_score = source.novelty_score
    row.raw = dict(source.raw)
    row.content_hash = digest


def row_to_source(row: SourceRow) -> Source:
    authors = [
        Author(
            name=a.author.name,
            orcid=a.author.orcid,
            institutions=[Institution.model_validate(i) for i in a.institutions],
        )
        for a in row.authorships
    ]
    return Source(
        key=row.key,
        provider=row.provider,
        provider_ids=dict(row.provider_ids),
        doi=row.doi,
        arxiv_id=row.arxiv_id,
        title=row.title,
        abstract=row.abstract,
        year=row.year,
        venue=row.venue,
        type=row.type,
        authors=authors,
        citation_count=row.citation_count,
        open_access=row.open_access,
        oa_status=row.oa_status,
        url=row.url,
        pdf_url=row.pdf_url,
        links=list(row.links),
        topics=list(row.topics),
        language=row.language,
        quality_score=row.quality_score,
        novelty_score=row.novelty_score,
        raw=dict(row.raw),
    )
