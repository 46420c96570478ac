"""BibTeX input, parsed with bibtexparser v2.

BibTeX cannot be parsed line by line (``@string`` macros, multi-line fields), so the file
is decoded line by line and then parsed as one string. A line that is not UTF-8 is
decoded with replacement characters only so that parsing can go on: the entry that
contains it is reported as an error, never imported with mangled text.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bibtexparser.entrypoint import parse_string
from bibtexparser.exceptions import BlockAbortedException, ParsingException
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexDecodingMiddleware
from bibtexparser.model import (
    DuplicateBlockKeyBlock,
    DuplicateFieldKeyBlock,
    Entry,
    Field,
    ParsingFailedBlock,
    String,
)
from pydantic import ValidationError

from nomosx.errors import IngestError, RecordError
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

__all__ = ["parse_bibtex"]

TYPES = {
    "article": "article",
    "inproceedings": "proceedings-article",
    "conference": "proceedings-article",
    "proceedings": "proceedings",
    "book": "book",
    "inbook": "book-chapter",
    "incollection": "book-chapter",
    "phdthesis": "dissertation",
    "mastersthesis": "dissertation",
    "thesis": "dissertation",
    "techreport": "report",
    "report": "report",
    "unpublished": "preprint",
    "misc": "misc",
}
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_KEYWORD_SEPARATOR = re.compile(r"\s*[,;]\s*")
# pylatexenc reads "%" as a comment and "&" as a table cell: escape the bare ones first.
_LATEX_SPECIALS = re.compile(r"(?<!\\)([%&#])")
_LATEX_HINT = re.compile(r"[\\$~]")
_SIMPLE_MACRO = re.compile(r"\\([&%$#_{}~^])")


def parse_bibtex(path: Path) -> Iterator[Parsed]:
    """One ``Parsed`` per entry or failed block of ``path``, in file order."""
    text = _read(path)
    try:
        with _silenced("bibtexparser.splitter"):  # each failure becomes a RecordError instead
            library = parse_string("".join(text.lines))
    except ParsingException as exc:  # bibtexparser's own invalid state, not a bad record
        raise IngestError(f"cannot parse {path} as BibTeX: {exc}") from exc
    latex = _Latex()
    results: list[Parsed] = []
    reported: set[int] = set()
    bad_lines = sorted(text.bad)
    for block in library.blocks:
        if not isinstance(block, Entry | ParsingFailedBlock):
            continue  # comments, @string, @preamble
        first = (block.start_line or 0) + 1
        last = first + (block.raw or "").rstrip("\n").count("\n")
        inside = bad_lines[
            bisect.bisect_left(bad_lines, first) : bisect.bisect_right(bad_lines, last)
        ]
        reported.update(inside)
        position = text.position(last)
        if inside:
            results.append(Parsed(first, None, text.bad[min(inside)], position))
        elif isinstance(block, ParsingFailedBlock):
            results.append(Parsed(first, None, _failure(block, first, path), position))
        else:
            results.append(_entry(block, latex, first, path, position))
    for number, error in text.bad.items():
        if number not in reported:  # e.g. in a comment between entries
            results.append(Parsed(number, None, error, text.position(number)))
    yield from sorted(results, key=lambda parsed: parsed.line)


def _entry(entry: Entry, latex: _Latex, line: int, path: Path, position: int) -> Parsed:
    try:
        source = finalise(_source(entry, latex), line, path)
    except (RecordError, ValidationError) as exc:
        return Parsed(line, None, located(exc, line, path), position)
    return Parsed(line, source, None, position)


@dataclass(slots=True)
class _Text:
    lines: list[str]
    ends: list[int]  # on-disk position after each line
    bad: dict[int, RecordError]  # line number -> why it could not be decoded

    def position(self, line: int) -> int:
        if not self.ends:
            return 0
        return self.ends[min(max(line, 1), len(self.ends)) - 1]


def _read(path: Path) -> _Text:
    text = _Text([], [], {})
    for line in iter_lines(path):
        try:
            content = decode_line(line, path)
        except RecordError as exc:
            text.bad[line.number] = exc
            content = line.data.decode("utf-8", errors="replace").rstrip("\r\n")
        text.lines.append(content + "\n")
        text.ends.append(line.position)
    return text


@contextmanager
def _silenced(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)

    def drop(record: logging.LogRecord) -> bool:
        return False

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _failure(block: ParsingFailedBlock, line: int, path: Path) -> RecordError:
    if isinstance(block, DuplicateBlockKeyBlock):
        previous = (block.previous_block.start_line or 0) + 1
        what = "@string name" if isinstance(block.ignore_error_block, String) else "citation key"
        reason = f"duplicate {what} {block.key!r} (first used on line {previous})"
    elif isinstance(block, DuplicateFieldKeyBlock):
        reason = f"duplicate fields {', '.join(sorted(block.duplicate_keys))}"
    else:
        opening = (block.raw or "").strip().splitlines()[:1]
        what = f"the block {opening[0][:60]!r}" if opening else "a block"
        error = block.error
        detail = error.abort_reason if isinstance(error, BlockAbortedException) else str(error)
        reason = f"BibTeX syntax error in {what}: {detail}".rstrip(": ")
    return RecordError(reason, line=line, source=str(path))


# --------------------------------------------------------------------------- mapping


class _Latex:
    """LaTeX to Unicode via bibtexparser's middleware, with a plain fallback if it fails.

    pylatexenc costs about half a millisecond per value, so values with no macro, math or
    tilde in them skip it and only lose their protective braces (``{OA}`` -> ``OA``).
    """

    def __init__(self) -> None:
        self._middleware = LatexDecodingMiddleware(keep_math_mode=False)

    def decode(self, values: Sequence[str]) -> list[str]:
        decoded = [" ".join(re.sub(r"[{}]", "", value).split()) for value in values]
        latex = [i for i, value in enumerate(values) if _LATEX_HINT.search(value)]
        if not latex:
            return decoded
        fields = [Field(f"f{i}", _LATEX_SPECIALS.sub(r"\\\1", values[i])) for i in latex]
        result = self._middleware.transform_entry(Entry("x", "x", fields), Library())
        if isinstance(result, Entry):
            converted = [str(field.value) for field in result.fields]
        else:
            converted = [_plain(values[i]) for i in latex]
        for i, value in zip(latex, converted, strict=True):
            decoded[i] = " ".join(value.split())
        return decoded


def _plain(value: str) -> str:
    """A safe LaTeX cleanup: escaped specials kept, braces and other macros' backslashes gone."""
    value = _SIMPLE_MACRO.sub(r"\1", value)
    value = re.sub(r"\\[A-Za-z]+\s*", "", value).replace("{", "").replace("}", "")
    return " ".join(value.replace("~", " ").split())


def _source(entry: Entry, latex: _Latex) -> Source:
    fields = _fields(entry)
    names = [
        v.person_name(name)
        for name in v.split_top_level(fields.get("author", ""), _AND)
        if name.strip() and name.strip().lower() != "others"
    ]
    keywords = [k for k in _KEYWORD_SEPARATOR.split(fields.get("keywords", "")) if k]
    venue = fields.get("journal") or fields.get("journaltitle") or fields.get("booktitle") or ""
    title, abstract, venue, *rest = latex.decode(
        [fields.get("title", ""), fields.get("abstract", ""), venue, *names, *keywords]
    )
    doi = normalise_doi(_plain(fields.get("doi", ""))) if fields.get("doi") else None
    url = _plain(fields["url"]) if fields.get("url") else None
    return Source(
        key="",
        provider="bibtex",
        provider_ids={"bibtex": entry.key},
        doi=doi,
        arxiv_id=_arxiv(fields, doi, url),
        title=title,
        abstract=abstract or None,
        year=parse_year(fields.get("year") or fields.get("date")),
        venue=venue or None,
        type=TYPES.get(entry.entry_type.lower(), entry.entry_type.lower()),
        authors=[Author(name=name) for name in rest[: len(names)] if name],
        url=url,
        links=v.unique([url]),
        topics=v.unique(rest[len(names) :]),
        language=normalise_language(fields.get("language")),
        raw={"ENTRYTYPE": entry.entry_type, "ID": entry.key, **fields},
    )


def _fields(entry: Entry) -> dict[str, str]:
    """Field values by lowercased name (the first spelling wins), as plain strings."""
    fields: dict[str, str] = {}
    for name, field in entry.fields_dict.items():
        value: Any = field.value
        if isinstance(value, str):
            fields.setdefault(name.lower(), value.strip())
    return fields


def _arxiv(fields: dict[str, str], doi: str | None, url: str | None) -> str | None:
    prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "").lower()
    if prefix == "arxiv" and (arxiv_id := normalise_arxiv_id(fields.get("eprint"))):
        return arxiv_id
    return normalise_arxiv_id(doi) or normalise_arxiv_id(url)
