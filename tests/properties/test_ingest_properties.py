"""Property tests of the ingest parsers (JSON Lines, BibTeX, RIS).

What they prove, for generated input:

- a valid record written in each format reads back with its fields intact (title,
  abstract, year, DOI, authors, ids);
- arbitrary bytes or text never make a parser raise anything but the project's
  ``IngestError`` (``RecordError`` included) and never yield a record that is neither a
  source nor an error;
- a JSON Lines file mixing good and bad lines keeps every good record and reports every
  bad line by its number, in order (no partial garbage: a rejected line yields no source).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nomosx.errors import IngestError
from nomosx.ingest import Parsed, iter_records
from nomosx.ingest.formats import Format
from nomosx.models import Source

# Plain words: no markup, LaTeX or RIS/BibTeX syntax, so a field must come back unchanged.
_WORD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éüßλ",
    min_size=1,
    max_size=12,
)
_PHRASE = st.lists(_WORD, min_size=1, max_size=12).map(" ".join)
_YEAR = st.integers(min_value=1900, max_value=2030)
_DOI = st.builds(
    lambda a, b: f"10.{a}/{b}".lower(),
    st.integers(min_value=1000, max_value=99999),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=16).filter(
        lambda s: s[0].isalnum() and s[-1].isalnum()
    ),
)
_NAME = st.tuples(_WORD, _WORD)  # (first, last)

_SETTINGS = settings(
    max_examples=40,
    deadline=None,  # file I/O
    suppress_health_check=[HealthCheck.too_slow],
)


@contextmanager
def _file(name: str, data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        yield path


def _read(path: Path, fmt: Format | None = None) -> list[Parsed]:
    return list(iter_records(path, fmt))


def _only_source(parsed: list[Parsed]) -> Source:
    assert len(parsed) == 1, [str(p.error) for p in parsed]
    assert parsed[0].error is None, str(parsed[0].error)
    assert parsed[0].source is not None
    return parsed[0].source


# --------------------------------------------------------------------------- round trips


@_SETTINGS
@given(
    doc_id=st.integers(min_value=0, max_value=10**12),
    title=_PHRASE,
    sentences=st.lists(_PHRASE, min_size=1, max_size=5),
)
def test_jsonl_corpus_record_round_trips(doc_id: int, title: str, sentences: list[str]) -> None:
    record = {"doc_id": doc_id, "title": title, "abstract": [s + "." for s in sentences]}
    with _file("corpus.jsonl", (json.dumps(record) + "\n").encode()) as path:
        source = _only_source(_read(path))
    assert source.title == title
    assert source.abstract == " ".join(s + "." for s in sentences)
    assert source.provider_ids == {"scifact": str(doc_id)}
    assert source.key == f"scifact:{doc_id}"


@_SETTINGS
@given(
    key=_WORD,
    title=_PHRASE,
    abstract=_PHRASE,
    year=_YEAR,
    doi=_DOI,
    names=st.lists(_NAME, min_size=1, max_size=4),
)
def test_bibtex_entry_round_trips(
    key: str, title: str, abstract: str, year: int, doi: str, names: list[tuple[str, str]]
) -> None:
    authors = " and ".join(f"{last}, {first}" for first, last in names)
    entry = (
        f"@article{{{key},\n  title = {{{title}}},\n  abstract = {{{abstract}}},\n"
        f"  year = {{{year}}},\n  doi = {{{doi}}},\n  author = {{{authors}}},\n}}\n"
    )
    with _file("refs.bib", entry.encode()) as path:
        source = _only_source(_read(path))
    assert source.title == title
    assert source.abstract == abstract
    assert source.year == year
    assert source.doi == doi
    assert source.key == f"doi:{doi}"
    assert [a.name for a in source.authors] == [f"{first} {last}" for first, last in names]
    assert source.provider_ids == {"bibtex": key}


@_SETTINGS
@given(
    title=_PHRASE,
    abstract=_PHRASE,
    year=_YEAR,
    doi=_DOI,
    names=st.lists(_NAME, min_size=1, max_size=4, unique=True),
    keywords=st.lists(_PHRASE, max_size=3, unique=True),
)
def test_ris_record_round_trips(
    title: str,
    abstract: str,
    year: int,
    doi: str,
    names: list[tuple[str, str]],
    keywords: list[str],
) -> None:
    lines = ["TY  - JOUR", f"TI  - {title}", f"AB  - {abstract}", f"PY  - {year}", f"DO  - {doi}"]
    lines += [f"AU  - {last}, {first}" for first, last in names]
    lines += [f"KW  - {k}" for k in keywords]
    lines.append("ER  - ")
    with _file("refs.ris", ("\n".join(lines) + "\n").encode()) as path:
        source = _only_source(_read(path))
    assert source.title == title
    assert source.abstract == abstract
    assert source.year == year
    assert source.doi == doi
    assert source.type == "article"
    assert [a.name for a in source.authors] == [f"{first} {last}" for first, last in names]
    assert source.topics == keywords


# --------------------------------------------------------------------------- no crash


def _assert_well_formed(path: Path, fmt: Format) -> None:
    try:
        parsed = _read(path, fmt)
    except IngestError:
        return  # the file as a whole was refused, with the project's error
    lines = [p.line for p in parsed]
    assert lines == sorted(lines)
    for p in parsed:
        assert (p.source is None) != (p.error is None)
        if p.error is not None:
            assert isinstance(p.error, IngestError)
            assert p.error.line is not None and p.error.line >= 1
        else:
            assert p.source is not None
            assert p.source.title.strip()
            assert p.source.key


_JUNK_TEXT = st.text(
    alphabet=st.sampled_from(list('@{}",=%\\$~\n \t{}TYERAUTI-0123456789abcdé[]:\r\x00λ')),
    max_size=300,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(["jsonl", "bibtex", "ris"]), data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_a_parser(fmt: Format, data: bytes) -> None:
    with _file("input.dat", data) as path:
        _assert_well_formed(path, fmt)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(["jsonl", "bibtex", "ris"]), content=_JUNK_TEXT)
def test_syntax_like_text_never_crashes_a_parser(fmt: Format, content: str) -> None:
    with _file("input.dat", content.encode("utf-8", errors="surrogatepass")) as path:
        _assert_well_formed(path, fmt)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "doc_id",
                    "_id",
                    "title",
                    "abstract",
                    "text",
                    "key",
                    "provider",
                    "doi",
                    "abstract_inverted_index",
                    "authorships",
                    "publication_year",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_JSON_VALUES)
def test_arbitrary_json_values_never_crash_jsonl(value: object) -> None:
    with _file("values.jsonl", (json.dumps(value) + "\n").encode()) as path:
        _assert_well_formed(path, "jsonl")


# --------------------------------------------------------------------------- mixed files

_BAD_LINES = st.sampled_from(
    [
        "{not json",
        "[1, 2, 3]",
        '"a string"',
        '{"doc_id": 1, "title": "", "abstract": ["x"]}',  # missing title
        '{"doc_id": true, "title": "t", "abstract": ["x"]}',
        '{"doc_id": 2, "title": "t", "abstract": "not a list"}',
        '{"unknown": "shape"}',
        '{"doc_id": 3, "title": "t", "abstract": ["\\ud800"]}',
        '{"doc_id": 4, "title": "a\\u0000b", "abstract": ["x"]}',  # NUL: no database keeps it
    ]
)


@_SETTINGS
@given(
    lines=st.lists(
        st.one_of(st.tuples(st.just(True), _PHRASE), st.tuples(st.just(False), _BAD_LINES)),
        min_size=1,
        max_size=15,
    ),
    bad_bytes=st.booleans(),
)
def test_jsonl_keeps_good_lines_and_reports_each_bad_one(
    lines: list[tuple[bool, str]], bad_bytes: bool
) -> None:
    content: list[bytes] = []
    good: dict[int, str] = {}
    bad: list[int] = []
    for number, (ok, text) in enumerate(lines, start=1):
        if ok:
            record = {"doc_id": number, "title": text, "abstract": ["An abstract."]}
            content.append(json.dumps(record).encode())
            good[number] = text
        else:
            content.append(text.encode())
            bad.append(number)
    if bad_bytes:
        content.append(b'{"doc_id": 999, "title": "caf\xe9", "abstract": ["x"]}')
        bad.append(len(content))
    with _file("mixed.jsonl", b"\n".join(content) + b"\n") as path:
        parsed = _read(path)
        assert [p.line for p in parsed] == list(range(1, len(content) + 1))
        assert {p.line: p.source.title for p in parsed if p.source is not None} == good
        errors = [p for p in parsed if p.error is not None]
        assert [p.line for p in errors] == bad
        for p in errors:
            assert p.source is None
            assert p.error is not None and p.error.line == p.line
            assert str(p.error).startswith(f"{path}:{p.line}: ")
