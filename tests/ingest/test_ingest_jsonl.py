"""JSON Lines: OpenAlex works, SciFact and BEIR corpus lines, NomosX sources, bad lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nomosx.ingest import _lines
from nomosx.models import Author, Institution, Source
from tests.ingest.ingest_helpers import Writer, assert_positions, errors, read_all, sources

# Shaped like https://api.openalex.org/works/W2741809807 (trimmed, fields as the API names them).
OPENALEX_WORK: dict[str, Any] = {
    "id": "https://openalex.org/W2741809807",
    "doi": "https://doi.org/10.7717/PEERJ.4375",
    "title": "The state of OA: a large-scale analysis of the prevalence and impact of Open Access",
    "display_name": (
        "The state of OA: a large-scale analysis of the prevalence and impact of Open Access "
        "articles"
    ),
    "publication_year": 2018,
    "publication_date": "2018-02-13",
    "ids": {
        "openalex": "https://openalex.org/W2741809807",
        "doi": "https://doi.org/10.7717/peerj.4375",
        "mag": "2741809807",
        "pmid": "https://pubmed.ncbi.nlm.nih.gov/29456894",
    },
    "language": "en",
    "primary_location": {
        "is_oa": True,
        "landing_page_url": "https://doi.org/10.7717/peerj.4375",
        "pdf_url": "https://peerj.com/articles/4375.pdf",
        "source": {
            "id": "https://openalex.org/S1983995261",
            "display_name": "PeerJ",
            "issn_l": "2167-8359",
            "type": "journal",
        },
        "license": "cc-by",
        "version": "publishedVersion",
    },
    "type": "article",
    "type_crossref": "journal-article",
    "open_access": {
        "is_oa": True,
        "oa_status": "gold",
        "oa_url": "https://peerj.com/articles/4375.pdf",
        "any_repository_has_fulltext": True,
    },
    "authorships": [
        {
            "author_position": "first",
            "author": {
                "id": "https://openalex.org/A5048491430",
                "display_name": "Heather Piwowar",
                "orcid": "https://orcid.org/0000-0003-1613-5981",
            },
            "institutions": [
                {
                    "id": "https://openalex.org/I4210166736",
                    "display_name": "Impact Technology Development (United States)",
                    "ror": "https://ror.org/01zkghx44",
                    "country_code": "US",
                    "type": "company",
                }
            ],
            "countries": ["US"],
            "is_corresponding": True,
            "raw_author_name": "Heather Piwowar",
        },
        {
            "author_position": "last",
            "author": {"id": "https://openalex.org/A5023888391", "display_name": "Jason Priem"},
            "institutions": [],
            "raw_author_name": "Jason Priem",
        },
    ],
    "cited_by_count": 1057,
    "topics": [
        {"id": "https://openalex.org/T10102", "display_name": "scientometrics and bibliometrics"},
        {"id": "https://openalex.org/T11937", "display_name": "Open Access Publishing"},
    ],
    "concepts": [{"id": "https://openalex.org/C2778805511", "display_name": "Citation"}],
    "locations": [
        {"landing_page_url": "https://doi.org/10.7717/peerj.4375", "pdf_url": None},
        {
            "landing_page_url": "https://arxiv.org/abs/1705.04518v2",
            "pdf_url": "https://arxiv.org/pdf/1705.04518",
            "source": {"display_name": "arXiv (Cornell University)"},
        },
    ],
    "abstract_inverted_index": {
        "Despite": [0],
        "growing": [1],
        "interest": [2],
        "in": [3, 7],
        "Open": [4],
        "Access": [5],
        "(OA)": [6],
        "scholarly": [8],
        "literature,": [9],
    },
}

# A line of /work/shared/data/scifact/corpus.jsonl, copied verbatim.
SCIFACT_LINE = (
    '{"doc_id": 70490, "title": "Simplifying likelihood ratios", "abstract": ["Likelihood '
    "ratios are one of the best measures of diagnostic accuracy, although they are seldom "
    "used, because interpreting them requires a calculator to convert back and forth between "
    "\u201cprobability\u201d and \u201codds\u201d of disease.This article describes a simpler "
    "method of interpreting likelihood ratios, one that avoids calculators, nomograms, and "
    "conversions to \u201codds\u201d of disease.Several examples illustrate how the clinician "
    'can use this method to refine diagnostic decisions at the bedside."], "structured": false}'
)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


def test_openalex_work_maps_every_field(write: Writer) -> None:
    path = write("works.jsonl", _line(OPENALEX_WORK))
    [parsed] = read_all(path)
    source = parsed.source
    assert parsed.error is None
    assert source is not None
    assert parsed.line == 1
    assert source.key == "doi:10.7717/peerj.4375"
    assert source.doi == "10.7717/peerj.4375"
    assert source.provider == "openalex"
    assert source.provider_ids == {"openalex": "W2741809807"}
    assert source.title.endswith("impact of Open Access articles")  # display_name wins
    assert (
        source.abstract == "Despite growing interest in Open Access (OA) in scholarly literature,"
    )
    assert source.year == 2018
    assert source.venue == "PeerJ"
    assert source.type == "article"
    assert source.authors == [
        Author(
            name="Heather Piwowar",
            orcid="0000-0003-1613-5981",
            institutions=[
                Institution(
                    name="Impact Technology Development (United States)",
                    ror="01zkghx44",
                    country="US",
                )
            ],
        ),
        Author(name="Jason Priem"),
    ]
    assert source.citation_count == 1057
    assert source.open_access is True
    assert source.oa_status == "gold"
    assert source.url == "https://doi.org/10.7717/peerj.4375"
    assert source.pdf_url == "https://peerj.com/articles/4375.pdf"
    assert source.links == [
        "https://doi.org/10.7717/peerj.4375",
        "https://peerj.com/articles/4375.pdf",
        "https://arxiv.org/abs/1705.04518v2",
    ]
    assert source.topics == ["scientometrics and bibliometrics", "Open Access Publishing"]
    assert source.arxiv_id == "1705.04518"
    assert source.language == "en"
    assert source.raw == OPENALEX_WORK
    assert parsed.position == path.stat().st_size


def test_openalex_work_with_nulls_and_concepts_only(write: Writer) -> None:
    work = {
        "id": "https://openalex.org/W1",
        "doi": None,
        "title": "<i>Sparse</i> work",
        "display_name": None,
        "publication_year": None,
        "primary_location": {"source": None, "landing_page_url": None},
        "open_access": None,
        "authorships": [{"author": {}, "raw_author_name": None}, None],
        "concepts": [{"display_name": "Biology"}],
        "abstract_inverted_index": None,
    }
    [parsed] = read_all(write("w.jsonl", _line(work)))
    assert parsed.source is not None
    assert parsed.source.key == "openalex:W1"
    assert parsed.source.title == "Sparse work"
    assert parsed.source.abstract is None
    assert parsed.source.authors == []
    assert parsed.source.topics == ["Biology"]
    assert parsed.source.url is None
    assert parsed.source.open_access is None


def test_openalex_malformed_inverted_index_is_a_record_error(write: Writer) -> None:
    bad_positions = {**OPENALEX_WORK, "abstract_inverted_index": {"word": [-3]}}
    not_lists = {**OPENALEX_WORK, "abstract_inverted_index": {"word": 3}}
    parsed = read_all(write("w.jsonl", _line(bad_positions) + _line(not_lists)))
    assert [p.source for p in parsed] == [None, None]
    assert "abstract_inverted_index is malformed" in errors(parsed)[0]
    assert "must map each word to a list of positions" in errors(parsed)[1]


def test_scifact_corpus_line(write: Writer) -> None:
    [parsed] = read_all(write("corpus.jsonl", SCIFACT_LINE + "\n"))
    source = parsed.source
    assert source is not None
    assert source.key == "scifact:70490"
    assert source.provider == "scifact"
    assert source.provider_ids == {"scifact": "70490"}
    assert source.title == "Simplifying likelihood ratios"
    assert source.abstract is not None
    assert source.abstract.startswith("Likelihood ratios are one of the best measures")
    # the corpus glues sentences together; they are separated again
    assert "of disease. This article describes" in source.abstract
    assert "disease.Several" not in source.abstract
    assert source.raw == {"doc_id": 70490, "structured": False}


def test_scifact_sentences_are_joined_with_spaces(write: Writer) -> None:
    record = {"doc_id": 7, "title": "T", "abstract": [" First one. ", "", "Second one."]}
    [parsed] = read_all(write("c.jsonl", _line(record)))
    assert parsed.source is not None
    assert parsed.source.abstract == "First one. Second one."


def test_beir_corpus_line(write: Writer) -> None:
    record = {
        "_id": "4983",
        "title": "Microstructural development",
        "text": "Alterations.",
        "metadata": {},
    }
    [parsed] = read_all(write("corpus.jsonl", _line(record)))
    assert parsed.source is not None
    assert parsed.source.key == "beir:4983"
    assert parsed.source.abstract == "Alterations."
    assert parsed.source.raw == {"_id": "4983", "metadata": {}}


def test_nomosx_source_round_trips(write: Writer) -> None:
    original = Source(
        key="doi:10.1000/xyz",
        provider="arxiv",
        provider_ids={"arxiv": "2101.00001"},
        doi="10.1000/xyz",
        arxiv_id="2101.00001",
        title="A title",
        abstract="An abstract.",
        year=2021,
        authors=[Author(name="Ada Lovelace")],
        topics=["maths"],
    )
    [parsed] = read_all(write("export.jsonl", original.model_dump_json() + "\n"))
    assert parsed.source == original


def test_bad_lines_are_reported_and_reading_goes_on(write: Writer) -> None:
    good = {"_id": "1", "title": "Good", "text": "ok"}
    lines = [
        _line(good),
        "{not json\n",
        "\n",
        "   \n",
        "[1, 2]\n",
        _line({"_id": "2", "title": "  ", "text": "no title"}),
        _line({"hello": "world"}),
        _line({"key": "k", "provider": "p", "title": "T", "year": "soon"}),
        _line({"doc_id": True, "title": "T", "abstract": []}),
        _line({"doc_id": 3, "title": "T", "abstract": "not a list"}),
        _line({"_id": ["x"], "title": "T", "text": ""}),
        _line({**good, "_id": "3"}),
    ]
    path = write("mixed.jsonl", "".join(lines))
    parsed = read_all(path)
    assert [p.line for p in parsed] == [1, 2, 5, 6, 7, 8, 9, 10, 11, 12]
    assert [s.key for s in sources(parsed)] == ["beir:1", "beir:3"]
    problems = errors(parsed)
    assert problems[0].startswith(f"{path}:2: invalid JSON: ")
    assert problems[1] == f"{path}:5: expected one JSON object per line, got an array"
    assert problems[2] == f"{path}:6: missing title"
    assert problems[3] == (
        f"{path}:7: unrecognised record: expected an OpenAlex work, a SciFact/BEIR corpus "
        "record or a NomosX source"
    )
    assert problems[4].startswith(f"{path}:8: invalid year: ")
    assert "Traceback" not in problems[4]
    assert problems[5] == f"{path}:9: doc_id must be an integer or a string"
    assert problems[6] == f"{path}:10: abstract must be a list of sentences (strings)"
    assert problems[7] == f"{path}:11: _id must be a string or an integer"
    assert_positions(parsed, path)


def test_ten_megabyte_abstract_is_rejected_clearly(write: Writer) -> None:
    huge = {"_id": "big", "title": "Huge", "text": "a" * 10 * 1024 * 1024}
    path = write("big.jsonl", _line(huge) + _line({"_id": "next", "title": "Next", "text": "x"}))
    first, second = read_all(path)
    assert first.source is None
    assert str(first.error) == f"{path}:1: abstract is 10,485,760 characters; the limit is 100,000"
    assert second.source is not None
    assert second.source.key == "beir:next"


def test_too_long_title_and_too_many_authors(write: Writer) -> None:
    long_title = {"_id": "1", "title": "t" * 2_001, "text": ""}
    crowd = {
        "key": "k",
        "provider": "nomosx",
        "title": "Crowd",
        "authors": [{"name": f"A{i}"} for i in range(1_001)],
    }
    parsed = read_all(write("limits.jsonl", _line(long_title) + _line(crowd)))
    assert [e.split(": ", 1)[1] for e in errors(parsed)] == [
        "title is 2,001 characters; the limit is 2,000",
        "1,001 authors; the limit is 1,000",
    ]


def test_non_utf8_line_is_reported_and_the_others_kept(write: Writer) -> None:
    latin1 = b'{"_id": "2", "title": "Caf\xe9", "text": ""}\n'
    content = (
        _line({"_id": "1", "title": "Before", "text": ""}).encode()
        + latin1
        + _line({"_id": "3", "title": "After", "text": ""}).encode()
    )
    path = write("latin1.jsonl", content)
    parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == ["Before", "After"]
    column = latin1.index(b"\xe9") + 1
    assert errors(parsed) == [
        f"{path}:2: not valid UTF-8 (byte 0xe9 at byte {column} of the line); "
        "save the file as UTF-8"
    ]


def test_utf8_bom_and_crlf_line_endings_are_accepted(write: Writer) -> None:
    content = "\ufeff" + json.dumps({"_id": "1", "title": "BOM", "text": ""}) + "\r\n"
    [parsed] = read_all(write("bom.jsonl", content))
    assert parsed.source is not None
    assert parsed.source.title == "BOM"


def test_duplicate_doi_with_different_case_or_prefix_gets_one_key(write: Writer) -> None:
    variants = [
        "https://doi.org/10.7717/PEERJ.4375",
        "10.7717/peerj.4375",
        "doi:10.7717/PeerJ.4375",
    ]
    lines = [
        _line({**OPENALEX_WORK, "doi": variants[0]}),
        _line({**OPENALEX_WORK, "id": "https://openalex.org/W9", "doi": variants[1]}),
        _line({"key": "x", "provider": "crossref", "title": "Same", "doi": variants[2]}),
    ]
    parsed = read_all(write("dups.jsonl", "".join(lines)))
    assert {s.key for s in sources(parsed)} == {"doi:10.7717/peerj.4375"}
    assert len(sources(parsed)) == 3  # merging is the store's job


def test_overlong_line_is_skipped_without_loading_it(
    write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_lines, "MAX_LINE_BYTES", 100)
    long_line = _line({"_id": "1", "title": "x" * 500, "text": ""})
    path = write("long.jsonl", long_line + _line({"_id": "2", "title": "Short", "text": ""}))
    first, second = read_all(path)
    assert first.error is not None
    assert str(first.error).endswith(f"line is {len(long_line)} bytes; the limit is 100")
    assert second.source is not None
    assert second.line == 2
    assert_positions([first, second], path)


def test_deeply_nested_json_is_a_record_error(write: Writer) -> None:
    path = write("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n")
    [parsed] = read_all(path)
    assert str(parsed.error) == f"{path}:1: invalid JSON: nested too deeply"


def test_openalex_numbers_given_as_strings(write: Writer) -> None:
    work = {**OPENALEX_WORK, "publication_year": "2018", "cited_by_count": "12", "doi": None}
    [parsed] = read_all(write("w.jsonl", _line(work)))
    assert parsed.source is not None
    assert parsed.source.year == 2018
    assert parsed.source.citation_count == 12
    assert parsed.source.key == "openalex:W2741809807"


def test_json_that_python_cannot_hold_as_text_is_a_record_error(write: Writer) -> None:
    lone_surrogate = '{"_id": "1", "title": "bad \\ud800 text", "text": ""}\n'
    emoji_pair = '{"_id": "2", "title": "ok \\ud83d\\ude00", "text": ""}\n'
    huge_int = '{"_id": 3, "title": "T", "text": "", "n": ' + "9" * 5000 + "}\n"
    parsed = read_all(write("odd.jsonl", lone_surrogate + emoji_pair + huge_int))
    assert [s.title for s in sources(parsed)] == ["ok \U0001f600"]
    assert "unpaired surrogate" in errors(parsed)[0]
    assert errors(parsed)[1].split(": ", 1)[1].startswith("invalid JSON: Exceeds the limit")


def test_year_given_as_an_oversized_digit_string_is_ignored(write: Writer) -> None:
    work = {**OPENALEX_WORK, "publication_year": "9" * 5000}
    [parsed] = read_all(write("w.jsonl", _line(work)))
    assert parsed.source is not None
    assert parsed.source.year is None
