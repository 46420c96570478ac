"""BibTeX export: escaping, entry types, keys; read back by bibtexparser and by NomosX's own
BibTeX importer; and the ``sources.bib`` route (owner-checked)."""

from __future__ import annotations

from pathlib import Path

from bibtexparser.entrypoint import parse_string
from bibtexparser.model import Entry

from nomosx.export.bibtex import bibtex_entry_type, brief_bibtex, citation_keys, sources_bibtex
from nomosx.ingest.bibtex import parse_bibtex
from nomosx.models import Author, Brief, Source
from tests.factories import make_source
from tests.web.conftest import Site

# every TeX special but "^": pylatexenc (the importer's decoder) reads \textasciicircum as
# "ˆ" (U+02C6), though LaTeX prints "^"; the caret is checked on its own below
NASTY_TITLE = r"Carbon {taxes} & 100% of $x$ #1 under_score ~tilde \backslash @entry{"


def _entries(text: str) -> list[Entry]:
    library = parse_string(text)
    assert not library.failed_blocks, [b.error for b in library.failed_blocks]
    return list(library.entries)


def test_entry_types_follow_the_source_type() -> None:
    expected = {
        "article": "article",
        "journal-article": "article",
        "review": "article",
        "proceedings-article": "inproceedings",
        "book": "book",
        "book-chapter": "incollection",
        "dissertation": "phdthesis",
        "report": "techreport",
        "preprint": "misc",
        "posted-content": "misc",
        None: "misc",
        "something-new": "misc",
    }
    for source_type, entry_type in expected.items():
        assert bibtex_entry_type(make_source(type=source_type)) == entry_type, source_type


def test_keys_are_unique_stable_and_ascii() -> None:
    sources = [
        make_source("doi:10.1/a"),
        make_source("doi:10.1/b"),  # same author, year and first word: a collision
        make_source(
            "doi:10.1/c",
            title="The Économie of émissions",
            authors=[Author(name="Jörg Müller")],
            year=2020,
        ),
        make_source("doi:10.1/d", title="", authors=[], year=None),
        make_source("doi:10.1/e", authors=[Author(name="Lovelace, Ada")]),
    ]
    keys = citation_keys(sources)
    assert keys == [
        "lovelace2019carbona",
        "lovelace2019carbonb",
        "muller2020economie",
        "source",
        "lovelace2019carbonc",
    ]
    assert citation_keys(sources) == keys  # stable
    assert len(set(keys)) == len(keys)
    # a base key that equals another's suffixed key is suffixed too, never duplicated
    tricky = [
        make_source(title="Carbon"),
        make_source(title="Carbon"),
        make_source(title="Carbona"),
    ]
    assert len(set(citation_keys(tricky))) == 3


def test_special_characters_are_escaped_and_read_back(tmp_path: Path) -> None:
    source = make_source(
        "doi:10.1000/x_y(1)",
        title=NASTY_TITLE,
        venue="Journal of A & B",
        authors=[Author(name="Smith and Sons"), Author(name="Müller, Jörg")],
        type="proceedings-article",
        url="https://example.org/p?a=1&b={2}",
    )
    text = sources_bibtex([source])
    (entry,) = _entries(text)
    assert entry.entry_type == "inproceedings"
    fields = {f.key: f.value for f in entry.fields}
    assert fields["booktitle"] == r"Journal of A \& B"
    assert fields["doi"] == "10.1000/x_y(1)"
    assert fields["url"] == "https://example.org/p?a=1&b=%7B2%7D"
    assert fields["author"] == "{Smith and Sons} and Müller, Jörg"
    caret = sources_bibtex([make_source(title="x^2")])
    assert r"= {x\textasciicircum{}2}," in caret
    # NomosX's own importer reads the export back to the same values
    path = tmp_path / "out.bib"
    path.write_text(text, encoding="utf-8")
    (parsed,) = list(parse_bibtex(path))
    assert parsed.error is None, parsed.error
    assert parsed.source is not None
    assert parsed.source.title == NASTY_TITLE
    assert parsed.source.venue == "Journal of A & B"
    assert parsed.source.doi == "10.1000/x_y(1)"
    assert parsed.source.year == 2019
    assert [a.name for a in parsed.source.authors] == ["Smith and Sons", "Jörg Müller"]


def test_preprints_carry_their_arxiv_id() -> None:
    source = make_source(
        "arxiv:2101.00001", doi=None, type="preprint", venue=None, arxiv_id="2101.00001"
    )
    (entry,) = _entries(sources_bibtex([source]))
    fields = {f.key: f.value for f in entry.fields}
    assert entry.entry_type == "misc"
    assert fields["eprint"] == "2101.00001" and fields["archiveprefix"] == "arXiv"
    assert fields["howpublished"] == "Preprint"
    assert "doi" not in fields


def test_only_web_urls_are_written() -> None:
    source = make_source(url="javascript:alert(1)", pdf_url=None)
    (entry,) = _entries(sources_bibtex([source]))
    assert "url" not in {f.key for f in entry.fields}


async def test_a_brief_exports_its_sources_in_citation_order(site: Site) -> None:
    brief: Brief = await site.app.state.nomosx.briefs.get(site.alice_brief)
    text = brief_bibtex(brief)
    assert text.startswith(f"% Sources of the NomosX brief {brief.id}\n")
    entries = _entries(text)
    ordered: list[Source] = [s.source for s in sorted(brief.sources, key=lambda s: s.ref)]
    assert [e.fields_dict["title"].value for e in entries] == [s.title for s in ordered]
    assert [e.fields_dict["note"].value for e in entries] == [
        f"Cited as [SRC-{n}]" for n in range(1, len(ordered) + 1)
    ]


async def test_sources_bib_route(site: Site) -> None:
    url = f"/api/briefs/{site.alice_brief}/sources.bib"
    response = await site.client.get(url, headers=site.auth("alice"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-bibtex; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="nomosx-{site.alice_brief}-sources.bib"'
    )
    assert len(_entries(response.text)) == 3
    # the cookie works as well as the header (the web app's export link)
    assert (await site.client.get(url, headers=site.cookie("alice"))).status_code == 200
    # another user's brief is missing, exactly like an id that names nothing
    other = await site.client.get(url, headers=site.auth("bob"))
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    assert (await site.client.get(url)).status_code == 401
