"""What a reader yields per record, the limits a record must respect, and its final checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from nomosx.errors import RecordError
from nomosx.models import Source
from nomosx.sources.normalise import normalise_doi, source_key, strip_markup

__all__ = [
    "MAX_ABSTRACT_CHARS",
    "MAX_AUTHORS",
    "MAX_TITLE_CHARS",
    "Parsed",
    "describe_validation_error",
    "finalise",
    "located",
    "validate",
]

MAX_TITLE_CHARS = 2_000
MAX_ABSTRACT_CHARS = 100_000
MAX_AUTHORS = 1_000


@dataclass(frozen=True, slots=True)
class Parsed:
    """One record of an input file: a ``source`` or the ``error`` that rejected it.

    ``line`` is where the record starts (1-based); ``position`` is the number of bytes of
    the file on disk consumed so far, for a progress bar against ``path.stat().st_size``.
    """

    line: int
    source: Source | None
    error: RecordError | None
    position: int


def validate(source: Source, line: int, path: Path) -> Source:
    """Return ``source`` unchanged, or raise ``RecordError`` saying which limit it breaks."""

    def fail(reason: str) -> RecordError:
        return RecordError(reason, line=line, source=str(path))

    if not source.title.strip():
        raise fail("missing title")
    if len(source.title) > MAX_TITLE_CHARS:
        raise fail(f"title is {len(source.title):,} characters; the limit is {MAX_TITLE_CHARS:,}")
    if source.abstract is not None and len(source.abstract) > MAX_ABSTRACT_CHARS:
        raise fail(
            f"abstract is {len(source.abstract):,} characters; the limit is {MAX_ABSTRACT_CHARS:,}"
        )
    if len(source.authors) > MAX_AUTHORS:
        raise fail(f"{len(source.authors):,} authors; the limit is {MAX_AUTHORS:,}")
    if _has_nul(source.model_dump()):
        # PostgreSQL refuses U+0000 in text and JSON: one such record would fail its batch
        raise fail("contains a NUL character (U+0000), which no field may hold")
    return source


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def finalise(source: Source, line: int, path: Path) -> Source:
    """Normalise the DOI, strip markup from title and abstract, set ``key``, then validate."""
    doi = normalise_doi(source.doi)
    title = strip_markup(source.title)
    abstract = strip_markup(source.abstract) if source.abstract else None
    key = source_key(
        doi=doi,
        provider=source.provider,
        provider_id=source.provider_ids.get(source.provider),
        title=title,
        year=source.year,
    )
    update = {"key": key, "doi": doi, "title": title, "abstract": abstract or None}
    return validate(source.model_copy(update=update), line, path)


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line reason from a pydantic error: the first field and its message."""
    errors = exc.errors(include_url=False)
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return "invalid record"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid {where}: {first['msg']}{more}"


def located(exc: RecordError | ValidationError, line: int, path: Path) -> RecordError:
    """``exc`` as a ``RecordError`` naming ``path`` and ``line`` (kept if it already has one)."""
    if isinstance(exc, ValidationError):
        return RecordError(describe_validation_error(exc), line=line, source=str(path))
    if exc.line is not None and exc.source is not None:
        return exc
    return RecordError(exc.reason, line=exc.line or line, source=str(path))
