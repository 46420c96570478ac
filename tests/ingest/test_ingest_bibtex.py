"""BibTeX: field mapping, LaTeX decoding, failed blocks, bad bytes."""

from __future__ import annotations

import logging

import pytest
from bibtexparser.exceptions import ParserStateException
from bibtexparser.library import Library
from bibtexparser.middlewares import LatexDecodingMiddleware
from bibtexparser.model import Block, Entry, MiddlewareErrorBlock

from nomosx.errors import IngestError
from nomosx.ingest import bibtex
from nomosx.models import Author
from tests.ingest.ingest_helpers import Writer, assert_positions, errors, read_all, sources

THREE_ENTRIES = r"""% Exported from a reference manager
@string{nat = "Nature"}

@article{piwowar2018,
  title = {The State of {OA}: A Large-Scale Analysis of {Open Access}},
  author = {Piwowar, Heather and Priem, Jason and Larivi{\`e}re, Vincent and others},
  journal = {PeerJ},
  year = {2018},
  doi = {https://doi.org/10.7717/PEERJ.4375},
  url = {https://peerj.com/articles/4375},
  abstract = {Despite growing interest in Open Access, 50% of papers\ldots},
  keywords = {open access; bibliometrics, citations},
}

@InProceedings{vaswani2017,
  author    = {Ashish Vaswani and Noam Shazeer and {Google Brain Team}},
  title     = "Attention Is All You Need",
  booktitle = {Advances in Neural Information Processing Systems},
  year      = 2017,
  eprint    = {1706.03762v5},
  archivePrefix = {arXiv},
  language  = {english},
}

@phdthesis{mueller2020,
  author = {M{\"u}ller, J{\"o}rg and {Barnes and Noble, Inc.}},
  title = {{\"U}ber die Caf{\'e}-Kultur \& $\alpha$-Helices},
  school = {ETH Z{\"u}rich},
  journal = nat,
  date = {2020-05-01},
}
"""


def test_three_entries_round_trip(write: Writer) -> None:
    path = write("refs.bib", THREE_ENTRIES)
    parsed = read_all(path)
    assert errors(parsed) == []
    assert [p.line for p in parsed] == [4, 15, 25]
    first, second, third = sources(parsed)

    assert first.key == "doi:10.7717/peerj.4375"
    assert first.provider == "bibtex"
    assert first.provider_ids == {"bibtex": "piwowar2018"}
    assert first.title == "The State of OA: A Large-Scale Analysis of Open Access"
    assert [a.name for a in first.authors] == [
        "Heather Piwowar",
        "Jason Priem",
        "Vincent Larivière",
    ]
    assert first.venue == "PeerJ"
    assert first.year == 2018
    assert first.type == "article"
    assert first.url == "https://peerj.com/articles/4375"
    assert first.abstract == "Despite growing interest in Open Access, 50% of papers…"
    assert first.topics == ["open access", "bibliometrics", "citations"]
    assert first.raw["ID"] == "piwowar2018"
    assert first.raw["ENTRYTYPE"] == "article"

    assert second.key == "bibtex:vaswani2017"
    assert second.type == "proceedings-article"
    assert second.venue == "Advances in Neural Information Processing Systems"
    assert second.arxiv_id == "1706.03762"
    assert second.year == 2017
    assert second.language == "en"
    assert second.authors == [
        Author(name="Ashish Vaswani"),
        Author(name="Noam Shazeer"),
        Author(name="Google Brain Team"),
    ]

    assert third.type == "dissertation"
    assert third.title == "Über die Café-Kultur & α-Helices"
    assert [a.name for a in third.authors] == ["Jörg Müller", "Barnes and Noble, Inc."]
    assert third.venue == "Nature"  # @string macro resolved
    assert third.year == 2020  # from biblatex date
    assert_positions(parsed, path)


def test_failed_block_is_reported_and_the_good_entries_kept(write: Writer) -> None:
    content = (
        "@article{good1, title = {First}, year = {2001}}\n"
        "\n"
        "@article{broken,\n"
        "  title = {Never closed,\n"
        "  year = {2002},\n"
        "\n"
        "@book{good2, title = {Second}, year = {2003}}\n"
    )
    path = write("broken.bib", content)
    parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == ["First", "Second"]
    [problem] = errors(parsed)
    assert problem.startswith(f"{path}:3: BibTeX syntax error in the block '@article{{broken,'")
    assert "Was still looking for field-value closing" in problem
    assert [p.line for p in parsed] == [1, 3, 7]


def test_duplicate_key_and_missing_title(write: Writer) -> None:
    content = (
        "@article{same, title = {One}}\n"
        "@article{same, title = {Two}}\n"
        "@misc{untitled, year = {1999}}\n"
        "@article{dupfield, title = {A}, title = {B}}\n"
    )
    path = write("dup.bib", content)
    parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == ["One"]
    assert errors(parsed) == [
        f"{path}:2: duplicate citation key 'same' (first used on line 1)",
        f"{path}:3: missing title",
        f"{path}:4: duplicate fields title",
    ]


def test_non_utf8_entry_is_reported_and_the_others_kept(write: Writer) -> None:
    content = (
        b"@article{a, title = {Before}}\n"
        b"% a comment with a bad byte \xff\n"
        b"@article{b,\n"
        b"  title = {Caf\xe9 au lait},\n"
        b"}\n"
        b"@article{c, title = {After}}\n"
    )
    path = write("latin1.bib", content)
    parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == ["Before", "After"]
    problems = errors(parsed)
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}:2: not valid UTF-8 (byte 0xff")
    assert problems[1].startswith(f"{path}:4: not valid UTF-8 (byte 0xe9")
    assert [p.line for p in parsed] == [1, 2, 3, 6]


def test_bibtexparser_log_messages_do_not_leak(
    write: Writer, caplog: pytest.LogCaptureFixture
) -> None:
    path = write("broken.bib", "@article{x title = {no comma}}\n@article{y, title={Fine}}\n")
    with caplog.at_level(logging.DEBUG):
        parsed = read_all(path)
    assert [s.title for s in sources(parsed)] == ["Fine"]
    assert "Expected comma after entry key" in errors(parsed)[0]
    assert not [r for r in caplog.records if r.name == "bibtexparser.splitter"]
    assert logging.getLogger("bibtexparser.splitter").filters == []


def test_name_suffixes_and_bare_latex_fallback(
    write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: LatexDecodingMiddleware, entry: Entry, library: Library) -> Block:
        return MiddlewareErrorBlock(block=entry, error=ValueError("decoder broke"))

    monkeypatch.setattr(LatexDecodingMiddleware, "transform_entry", fail)
    content = (
        "@article{k,\n"
        "  title = {{\\em Fallback} keeps R\\&D and 5\\% \\textbf{text}},\n"
        "  author = {King, Jr., Martin Luther},\n"
        "}\n"
    )
    [parsed] = read_all(write("fallback.bib", content))
    assert parsed.source is not None
    assert parsed.source.title == "Fallback keeps R&D and 5% text"
    assert parsed.source.authors == [Author(name="Martin Luther King Jr.")]


def test_bibtexparser_internal_failure_is_an_ingest_error(
    write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str) -> Library:
        raise ParserStateException("invalid state")

    monkeypatch.setattr(bibtex, "parse_string", broken)
    path = write("any.bib", "@article{k, title={T}}\n")
    with pytest.raises(IngestError, match=r"cannot parse .*any\.bib as BibTeX"):
        read_all(path)
