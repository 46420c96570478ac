"""Choosing a reader for an input file, and the one entry point :func:`iter_records`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, get_args

from nomosx.errors import IngestError
from nomosx.ingest._lines import head
from nomosx.ingest.bibtex import parse_bibtex
from nomosx.ingest.jsonl import parse_jsonl
from nomosx.ingest.records import Parsed
from nomosx.ingest.ris import parse_ris

__all__ = ["ACCEPTED", "FORMATS", "Format", "detect_format", "iter_records"]

Format = Literal["jsonl", "bibtex", "ris"]
FORMATS: tuple[Format, ...] = get_args(Format)
ACCEPTED = (
    "JSON Lines (.jsonl, .ndjson, .json), BibTeX (.bib, .bibtex) or RIS (.ris), "
    "optionally gzip-compressed (.gz)"
)
_EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".bib": "bibtex",
    ".bibtex": "bibtex",
    ".ris": "ris",
}
_READERS: dict[Format, Callable[[Path], Iterator[Parsed]]] = {
    "jsonl": parse_jsonl,
    "bibtex": parse_bibtex,
    "ris": parse_ris,
}
_RIS_START = re.compile(rb"TY {1,2}-")


def detect_format(path: Path) -> Format:
    """The format of ``path`` from its extension (``.gz`` looked through), else its content.

    Raises ``IngestError`` if the file cannot be read or its format cannot be told.
    """
    fmt, start = _inspect(path)
    if fmt is not None:
        return fmt
    if not start:
        raise IngestError(f"{path} is empty: there are no records to read")
    raise IngestError(f"cannot tell the format of {path}: expected {ACCEPTED}")


def iter_records(path: Path, fmt: Format | None = None) -> Iterator[Parsed]:
    """Every record of ``path`` as a ``Parsed``: a validated ``Source`` or a ``RecordError``.

    The file itself is checked now (it exists, is readable, is not empty, has a known
    format) and ``IngestError`` is raised here; records are read lazily as the iterator
    is consumed. A gzip file is decompressed transparently whatever its name.
    """
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    detected, start = _inspect(path)
    if not start:
        raise IngestError(f"{path} is empty: there are no records to read")
    chosen = fmt or detected
    if chosen is None:
        raise IngestError(f"cannot tell the format of {path}: expected {ACCEPTED}")
    return _READERS[chosen](path)


def _inspect(path: Path) -> tuple[Format | None, bytes]:
    """The format ``path`` appears to have (or ``None``) and its first non-blank bytes."""
    if not path.exists():
        raise IngestError(f"{path} does not exist")
    if path.is_dir():
        raise IngestError(f"{path} is a directory, not a file")
    start = head(path)
    name = path.name.lower().removesuffix(".gz")
    by_extension = _EXTENSIONS.get(Path(name).suffix)
    return by_extension or _sniff(start), start


def _sniff(start: bytes) -> Format | None:
    if start.startswith(b"{"):
        return "jsonl"
    if start.startswith((b"@", b"%")):
        return "bibtex"
    if _RIS_START.match(start):
        return "ris"
    return None
