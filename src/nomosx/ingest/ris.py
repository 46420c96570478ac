"""RIS input: split into records at ``TY  -`` / ``ER  -`` here, each record parsed by rispy.

Splitting is done line by line, so each record knows its start line and the file is never
held in memory whole. Tag lines with one space or none around the dash (``TY - JOUR``) are
rewritten to the canonical ``TY  - JOUR`` before rispy sees them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rispy
from pydantic import ValidationError

from nomosx.errors import RecordError
from nomosx.ingest import _values as v
from nomosx.ingest._lines import decode_line, iter_lines
from nomosx.ingest.records import Parsed, finalise, located
from nomosx.models import Author, Source
from nomosx.sources.normalise import (
    normalise_arxiv_id,
    normalise_doi,
    normalise_language,
    parse_year,
)

__all__ = ["parse_ris"]

TYPES = {
    "JOUR": "article",
    "JFULL": "article",
    "EJOUR": "article",
    "MGZN": "article",
    "NEWS": "article",
    "CONF": "proceedings-article",
    "CPAPER": "proceedings-article",
    "BOOK": "book",
    "EBOOK": "book",
    "EDBOOK": "book",
    "CHAP": "book-chapter",
    "ECHAP": "book-chapter",
    "THES": "dissertation",
    "RPRT": "report",
    "DATA": "dataset",
    "UNPB": "preprint",
}
_TAG_LINE = re.compile(r"([A-Z][A-Z0-9]) {1,2}- ?(.*)")


@dataclass(slots=True)
class _Record:
    start: int
    lines: list[str] = field(default_factory=list)
    error: RecordError | None = None


def parse_ris(path: Path) -> Iterator[Parsed]:
    """One ``Parsed`` per ``TY  -`` … ``ER  -`` record of ``path``."""
    record: _Record | None = None
    stray_reported = False
    position = 0
    for line in iter_lines(path):
        error: RecordError | None = None
        try:
            content = decode_line(line, path)
        except RecordError as exc:
            content, error = "", exc
        match = _TAG_LINE.fullmatch(content.rstrip())
        tag = match.group(1) if match else None
        if match:
            content = f"{tag}  - {match.group(2)}"
        if tag == "TY":
            if record is not None:
                yield _unterminated(record, path, position, before=line.number)
            record, stray_reported = _Record(line.number), False
        elif record is None:
            if error is not None:
                yield Parsed(line.number, None, error, line.position)
            elif tag is not None and tag != "ER" and not stray_reported:
                reason = f"'{tag}  -' line outside a record (a record starts with 'TY  -')"
                yield Parsed(line.number, None, _error(reason, line.number, path), line.position)
                stray_reported = True
            elif tag == "ER":
                stray_reported = False
            position = line.position
            continue
        record.lines.append(content)
        record.error = record.error or error
        position = line.position
        if tag == "ER":
            yield _finish(record, path, position)
            record = None
    if record is not None:
        yield _unterminated(record, path, position, before=None)


def _error(reason: str, line: int, path: Path) -> RecordError:
    return RecordError(reason, line=line, source=str(path))


def _unterminated(record: _Record, path: Path, position: int, before: int | None) -> Parsed:
    where = f"before the next 'TY  -' on line {before}" if before else "before the end of the file"
    reason = f"record has no 'ER  -' line {where}"
    return Parsed(record.start, None, record.error or _error(reason, record.start, path), position)


def _finish(record: _Record, path: Path, position: int) -> Parsed:
    if record.error is not None:
        return Parsed(record.start, None, record.error, position)
    try:
        entries = rispy.loads("\n".join(record.lines))
        if len(entries) != 1:  # pragma: no cover - the splitter hands rispy one record
            raise RecordError("not a single RIS record")
        source = finalise(_source(entries[0]), record.start, path)
    except (RecordError, ValidationError) as exc:
        return Parsed(record.start, None, located(exc, record.start, path), position)
    return Parsed(record.start, source, None, position)


# --------------------------------------------------------------------------- mapping


def _all(entry: dict[str, Any], *names: str) -> list[str]:
    values: list[str] = []
    for name in names:
        value = entry.get(name)
        for item in value if isinstance(value, list) else [value]:
            if text := v.text(item):
                values.append(text)
    return values


def _first(entry: dict[str, Any], *names: str) -> str | None:
    values = _all(entry, *names)
    return values[0] if values else None


def _source(entry: dict[str, Any]) -> Source:
    urls = v.unique(_all(entry, "urls"))
    doi = next(
        (d for d in map(normalise_doi, [_first(entry, "doi"), *urls]) if d is not None), None
    )
    ris_type = (_first(entry, "type_of_reference") or "").upper()
    ris_id = _first(entry, "id")
    year_text = _first(entry, "year") or _first(entry, "publication_year") or _first(entry, "date")
    return Source(
        key="",
        provider="ris",
        provider_ids={"ris": ris_id} if ris_id else {},
        doi=doi,
        arxiv_id=next(filter(None, map(normalise_arxiv_id, [doi, *urls])), None),
        title=_first(entry, "title", "primary_title") or "",
        abstract=_first(entry, "abstract", "notes_abstract"),
        year=parse_year(year_text),
        venue=_first(entry, "alternate_title3", "secondary_title", "journal_name"),
        type=TYPES.get(ris_type, ris_type.lower() or None),
        authors=[
            Author(name=v.person_name(name))
            for name in v.unique(_all(entry, "authors", "first_authors"))
        ],
        url=urls[0] if urls else None,
        links=urls,
        topics=v.unique(_all(entry, "keywords")),
        language=normalise_language(_first(entry, "language")),
        raw=_plain_dict(entry),
    )


def _plain_dict(entry: dict[str, Any]) -> dict[str, Any]:
    """rispy's record with its ``defaultdict`` of unknown tags made a plain, JSON-able dict."""
    return {
        key: {str(tag): list(values) for tag, values in value.items()}
        if isinstance(value, dict)
        else value
        for key, value in entry.items()
    }
