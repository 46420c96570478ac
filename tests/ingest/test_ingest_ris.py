"""RIS: record splitting with start lines, field mapping via rispy, malformed records."""

from __future__ import annotations

from nomosx.models import Author
from tests.ingest.ingest_helpers import Writer, assert_positions, errors, read_all, sources

TWO_RECORDS = """\
TY  - JOUR
ID  - piwowar2018
TI  - The state of OA: a large-scale analysis of the prevalence and impact of Open Access
  articles
AU  - Piwowar, Heather
AU  - Priem, Jason
PY  - 2018/02/13/
JO  - PeerJ
DO  - 10.7717/PEERJ.4375
UR  - https://peerj.com/articles/4375
AB  - Despite growing interest in Open Access (OA) to scholarly literature,
  there is an unmet need for large-scale, up-to-date evidence.
KW  - open access
KW  - bibliometrics
LA  - English
ER  -

TY  - CHAP
T1  - Ranking with <i>BM25</i>
A1  - Robertson, Stephen
A1  - Zaragoza, Hugo
Y1  - 2009
T2  - Foundations and Trends in Information Retrieval
UR  - https://arxiv.org/abs/0901.00001
N2  - Probabilistic relevance framework.
ER  -
"""


def test_two_records_round_trip(write: Writer) -> None:
    path = write("export.ris", TWO_RECORDS)
    parsed = read_all(path)
    assert errors(parsed) == []
    assert [p.line for p in parsed] == [1, 18]
    first, second = sources(parsed)

    assert first.key == "doi:10.7717/peerj.4375"
    assert first.provider == "ris"
    assert first.provider_ids == {"ris": "piwowar2018"}
    assert first.title == (
        "The state of OA: a large-scale analysis of the prevalence and impact of Open Access "
        "articles"
    )
    assert first.authors == [Author(name="Heather Piwowar"), Author(name="Jason Priem")]
    assert first.year == 2018
    assert first.venue == "PeerJ"
    assert first.type == "article"
    assert first.url == "https://peerj.com/articles/4375"
    assert first.abstract is not None
    assert first.abstract.endswith("there is an unmet need for large-scale, up-to-date evidence.")
    assert first.topics == ["open access", "bibliometrics"]
    assert first.language == "en"

    assert second.key.startswith("title:")  # no DOI and no ID tag
    assert second.provider_ids == {}
    assert second.title == "Ranking with BM25"
    assert second.type == "book-chapter"
    assert second.year == 2009
    assert second.venue == "Foundations and Trends in Information Retrieval"
    assert second.abstract == "Probabilistic relevance framework."
    assert second.arxiv_id == "0901.00001"
    assert [a.name for a in second.authors] == ["Stephen Robertson", "Hugo Zaragoza"]
    assert_positions(parsed, path)


def test_loose_tag_spacing_and_crlf_are_accepted(write: Writer) -> None:
    content = "TY - CONF\r\nTI -Loosely spaced\r\nDA  - 2021-06\r\nER  -\r\n"
    [parsed] = read_all(write("loose.ris", content))
    assert parsed.source is not None
    assert parsed.source.title == "Loosely spaced"
    assert parsed.source.type == "proceedings-article"
    assert parsed.source.year == 2021


def test_malformed_records_are_reported_and_the_good_ones_kept(write: Writer) -> None:
    content = (
        "Provider: Some Database\n"  # header text outside a record is ignored
        "TI  - Orphan title without TY\n"
        "AU  - Nobody\n"
        "ER  -\n"
        "TY  - JOUR\n"
        "AU  - Untitled, Author\n"
        "ER  -\n"
        "TY  - JOUR\n"
        "TI  - Unterminated\n"
        "TY  - RPRT\n"
        "TI  - A report\n"
        "ER  -\n"
        "TY  - JOUR\n"
        "TI  - Cut off at the end\n"
    )
    path = write("bad.ris", content)
    parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == ["A report"]
    assert sources(parsed)[0].type == "report"
    assert errors(parsed) == [
        f"{path}:2: 'TI  -' line outside a record (a record starts with 'TY  -')",
        f"{path}:5: missing title",
        f"{path}:8: record has no 'ER  -' line before the next 'TY  -' on line 10",
        f"{path}:13: record has no 'ER  -' line before the end of the file",
    ]
    assert [p.line for p in parsed] == [2, 5, 8, 10, 13]


def test_non_utf8_line_fails_its_record_only(write: Writer) -> None:
    content = (
        b"TY  - JOUR\nTI  - Good one\nER  -\n"
        b"TY  - JOUR\nTI  - Caf\xe9\nER  -\n"
        b"\xff stray bytes between records\n"
        b"TY  - JOUR\nTI  - Good two\nER  -\n"
    )
    path = write("latin1.ris", content)
    parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == ["Good one", "Good two"]
    problems = errors(parsed)
    assert problems[0].startswith(f"{path}:5: not valid UTF-8 (byte 0xe9")
    assert problems[1].startswith(f"{path}:7: not valid UTF-8 (byte 0xff")
    assert [p.line for p in parsed] == [1, 4, 7, 8]


def test_doi_found_in_a_url_and_unknown_type(write: Writer) -> None:
    content = (
        "TY  - WEB\n"
        "TI  - Only a DOI link\n"
        "UR  - https://doi.org/10.1000/ABC\n"
        "XY  - an unknown tag\n"
        "ER  -\n"
    )
    [parsed] = read_all(write("web.ris", content))
    assert parsed.source is not None
    assert parsed.source.key == "doi:10.1000/abc"
    assert parsed.source.type == "web"
    assert parsed.source.raw["unknown_tag"] == {"XY": ["an unknown tag"]}
