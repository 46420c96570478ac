"""Reading input files (JSON Lines, BibTeX, RIS; gzip or not) into validated sources.

The one entry point is :func:`iter_records`; it yields one :class:`Parsed` per record,
holding either a ``Source`` ready to upsert by ``key`` or the ``RecordError`` that
rejected it, so one bad record never stops an import::

    for parsed in iter_records(Path("works.jsonl.gz")):
        if parsed.error:
            log(parsed.error)  # "works.jsonl.gz:12: invalid JSON: ..."
        else:
            store(parsed.source)

This layer is pure: it reads the file and nothing else.
"""

from nomosx.ingest.bibtex import parse_bibtex
from nomosx.ingest.formats import ACCEPTED, FORMATS, Format, detect_format, iter_records
from nomosx.ingest.jsonl import parse_jsonl, source_from_object
from nomosx.ingest.records import (
    MAX_ABSTRACT_CHARS,
    MAX_AUTHORS,
    MAX_TITLE_CHARS,
    Parsed,
    finalise,
    validate,
)
from nomosx.ingest.ris import parse_ris

__all__ = [
    "ACCEPTED",
    "FORMATS",
    "MAX_ABSTRACT_CHARS",
    "MAX_AUTHORS",
    "MAX_TITLE_CHARS",
    "Format",
    "Parsed",
    "detect_format",
    "finalise",
    "iter_records",
    "parse_bibtex",
    "parse_jsonl",
    "parse_ris",
    "source_from_object",
    "validate",
]
