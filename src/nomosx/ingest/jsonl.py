"""JSON Lines input: OpenAlex works, SciFact or BEIR corpus records, or NomosX sources.

The file is read one line at a time; a bad line becomes a ``Parsed`` error and reading
goes on with the next line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nomosx.errors import RecordError
from nomosx.ingest import _values as v
from nomosx.ingest._lines import decode_line, iter_lines
from nomosx.ingest.records import Parsed, finalise, located
from nomosx.models import Author, Institution, Source
from nomosx.sources.normalise import (
    abstract_from_inverted_index,
    normalise_arxiv_id,
    normalise_doi,
    normalise_language,
    normalise_orcid,
    normalise_ror,
)

__all__ = ["parse_jsonl", "source_from_object", "source_from_openalex_work"]

_OPENALEX_WORK = "https://openalex.org/W"
_UNRECOGNISED = (
    "unrecognised record: expected an OpenAlex work, a SciFact/BEIR corpus record "
    "or a NomosX source"
)
# SciFact's corpus glues sentences together ("disease.This article"); put the space back.
_GLUED_SENTENCE = re.compile(r"(?<=[a-z0-9)][.?!])(?=[A-Z][a-z])")


def parse_jsonl(path: Path) -> Iterator[Parsed]:
    """One ``Parsed`` per non-blank line of ``path``."""
    for line in iter_lines(path):
        try:
            content = decode_line(line, path)
            if not content.strip():
                continue
            source = finalise(source_from_object(_load(content)), line.number, path)
        except (RecordError, ValidationError) as exc:
            yield Parsed(line.number, None, located(exc, line.number, path), line.position)
        else:
            yield Parsed(line.number, source, None, line.position)


def _load(content: str) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise RecordError("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python allows
        raise RecordError(f"invalid JSON: {exc}") from None
    if "\\ud" in content.lower() and _has_lone_surrogate(value):
        raise RecordError("invalid JSON: a \\u escape is an unpaired surrogate (not text)")
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else f"a {type(value).__name__}"
        raise RecordError(f"expected one JSON object per line, got {kind}")
    return value


def _has_lone_surrogate(value: object) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def source_from_object(record: dict[str, Any]) -> Source:
    """A keyless ``Source`` from one JSON object; ``RecordError`` if it is not recognised."""
    record_id = record.get("id")
    if "abstract_inverted_index" in record or (
        isinstance(record_id, str) and record_id.startswith(_OPENALEX_WORK)
    ):
        return source_from_openalex_work(record)
    if "doc_id" in record and "abstract" in record:
        return _scifact(record)
    if "_id" in record and "text" in record:
        return _beir(record)
    if "key" in record and "provider" in record:
        return Source.model_validate(record)
    raise RecordError(_UNRECOGNISED)


# --------------------------------------------------------------------------- OpenAlex


def source_from_openalex_work(work: dict[str, Any]) -> Source:
    """A keyless ``Source`` from one OpenAlex work object (a JSON Lines record or an API
    result); ``RecordError`` if its ``abstract_inverted_index`` is malformed."""
    work_id = v.text(work.get("id"))
    provider_id = work_id.removeprefix("https://openalex.org/") if work_id else None
    primary = v.mapping(work.get("primary_location"))
    access = v.mapping(work.get("open_access"))
    locations = [v.mapping(location) for location in v.items(work.get("locations"))]
    doi = normalise_doi(v.text(work.get("doi")))
    landing = v.text(primary.get("landing_page_url"))
    topics = [v.text(v.mapping(t).get("display_name")) for t in v.items(work.get("topics"))]
    if not any(topics):
        concepts = v.items(work.get("concepts"))
        topics = [v.text(v.mapping(c).get("display_name")) for c in concepts]
    return Source(
        key="",
        provider="openalex",
        provider_ids={"openalex": provider_id} if provider_id else {},
        doi=doi,
        arxiv_id=_openalex_arxiv(work, doi, locations),
        title=v.text(work.get("display_name")) or v.text(work.get("title")) or "",
        abstract=_openalex_abstract(work.get("abstract_inverted_index")),
        year=v.integer(work.get("publication_year")),
        venue=v.text(v.mapping(primary.get("source")).get("display_name")),
        type=v.text(work.get("type")),
        authors=[a for a in map(_openalex_author, v.items(work.get("authorships"))) if a],
        citation_count=v.integer(work.get("cited_by_count")),
        open_access=v.boolean(access.get("is_oa")),
        oa_status=v.text(access.get("oa_status")),
        url=landing or (f"https://doi.org/{doi}" if doi else None),
        pdf_url=v.text(primary.get("pdf_url")),
        links=v.unique(
            [landing, v.text(primary.get("pdf_url")), v.text(access.get("oa_url"))]
            + [v.text(location.get("landing_page_url")) for location in locations]
        ),
        topics=v.unique(topics),
        language=normalise_language(v.text(work.get("language"))),
        raw=work,
    )


def _openalex_abstract(index: object) -> str | None:
    if index is None:
        return None
    if not isinstance(index, dict) or not all(
        isinstance(word, str) and isinstance(positions, list) for word, positions in index.items()
    ):
        raise RecordError("abstract_inverted_index must map each word to a list of positions")
    try:
        return abstract_from_inverted_index(index)
    except ValueError as exc:
        raise RecordError(f"abstract_inverted_index is malformed: {exc}") from None


def _openalex_author(authorship: object) -> Author | None:
    entry = v.mapping(authorship)
    author = v.mapping(entry.get("author"))
    name = v.text(author.get("display_name")) or v.text(entry.get("raw_author_name"))
    if not name:
        return None
    institutions = []
    for item in v.items(entry.get("institutions")):
        institution = v.mapping(item)
        if institution_name := v.text(institution.get("display_name")):
            institutions.append(
                Institution(
                    name=institution_name,
                    ror=normalise_ror(v.text(institution.get("ror"))),
                    country=v.text(institution.get("country_code")),
                )
            )
    return Author(
        name=name, orcid=normalise_orcid(v.text(author.get("orcid"))), institutions=institutions
    )


def _openalex_arxiv(
    work: dict[str, Any], doi: str | None, locations: list[dict[str, Any]]
) -> str | None:
    candidates = [v.text(v.mapping(work.get("ids")).get("arxiv")), doi]
    for location in locations:
        candidates += [v.text(location.get("landing_page_url")), v.text(location.get("pdf_url"))]
    for candidate in candidates:
        if arxiv_id := normalise_arxiv_id(candidate):
            return arxiv_id
    return None


# --------------------------------------------------------------------------- corpora


def _scifact(record: dict[str, Any]) -> Source:
    doc_id = record["doc_id"]
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str):
        raise RecordError("doc_id must be an integer or a string")
    sentences = record["abstract"]
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise RecordError("abstract must be a list of sentences (strings)")
    abstract = " ".join(_GLUED_SENTENCE.sub(" ", s.strip()) for s in sentences if s.strip())
    return Source(
        key="",
        provider="scifact",
        provider_ids={"scifact": str(doc_id)},
        title=v.text(record.get("title")) or "",
        abstract=abstract or None,
        raw={k: value for k, value in record.items() if k not in ("title", "abstract")},
    )


def _beir(record: dict[str, Any]) -> Source:
    doc_id = record["_id"]
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str):
        raise RecordError("_id must be a string or an integer")
    return Source(
        key="",
        provider="beir",
        provider_ids={"beir": str(doc_id)},
        title=v.text(record.get("title")) or "",
        abstract=v.text(record.get("text")),
        raw={k: value for k, value in record.items() if k not in ("title", "text")},
    )
