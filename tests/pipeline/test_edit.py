"""EDIT: Markdown, HTML and JSON from one Brief; source text is escaped, never markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from nomosx.errors import PipelineError
from nomosx.models import Brief, Section, SectionKey, Statement
from nomosx.pipeline.edit import BriefEditor, doi_url, format_authors

EVIL_TITLE = '<script>alert("x")</script> Fractures & "falls"'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def all_titles(sections: list[Section]) -> list[str]:
    return [t for s in sections for t in (s.title, *all_titles(s.subsections))]


def test_markdown_has_every_section_and_source(brief: Brief) -> None:
    md = BriefEditor().render(brief, "md")
    assert md.startswith(f"# {brief.title}\n")
    assert "Extractive brief" in md and "no language model" in md
    assert "Citation guard: passed" in md
    for section in brief.sections:
        assert f"\n## {section.title}\n" in md
        for sub in section.subsections:
            assert f"\n### {sub.title}\n" in md
    assert "\n## Sources\n" in md
    for source in brief.sources:
        assert f"**[SRC-{source.ref}]**" in md
        assert source.source.title.rstrip(".") in md
    assert "Cummings SR, Black DM, Thompson DE et al. (1998)." in md
    assert "[10.1001/jama.280.24.2077](https://doi.org/10.1001/jama.280.24.2077)" in md
    assert "<https://jamanetwork.com/journals/jama/fullarticle/188213>" in md
    assert "*JAMA*" in md and "quality score 0.50." in md
    for section in brief.sections:
        for statement in section.statements:
            assert " ".join(statement.text.split()) in md


def test_html_is_a_complete_accessible_page_with_linked_citations(brief: Brief) -> None:
    html = BriefEditor().render(brief, "html")
    assert html.lstrip().startswith("<!DOCTYPE html>")
    found = tags(html)
    names = [t for t, _ in found]
    assert ("html", {"lang": "en"}) in found
    assert "main" in names and names.count("h1") == 1
    assert "script" not in names and "link" not in names and "img" not in names
    for title in all_titles(brief.sections):
        assert f">{title}</h" in html
    cites = [a for t, a in found if t == "a" and (a.get("href") or "").startswith("#src-")]
    assert len(cites) == len(brief.guard.citations)
    evidence = {c.evidence for c in brief.guard.citations}
    assert all(a.get("title") in evidence for a in cites)
    anchors = {a.get("id") for t, a in found if t == "li"}
    assert {f"src-{s.ref}" for s in brief.sources} <= anchors
    assert 'href="https://doi.org/10.1001/jama.280.24.2077"' in html


def test_html_escapes_source_text(brief: Brief) -> None:
    evil = brief.sources[0].model_copy(
        update={
            "source": brief.sources[0].source.model_copy(
                update={"title": EVIL_TITLE, "url": "javascript:alert(1)", "venue": "<b>V</b>"}
            )
        }
    )
    statement = Statement(text="Bold <b>claim</b> & more <img src=x onerror=alert(1)> [SRC-1]")
    sections = [
        *brief.sections,
        Section(key=SectionKey.CONSENSUS, title="<i>Extra</i>", statements=[statement]),
    ]
    bad = brief.model_copy(
        update={"title": EVIL_TITLE, "sources": [evil, *brief.sources[1:]], "sections": sections}
    )
    html = BriefEditor().render(bad, "html")
    names = [t for t, _ in tags(html)]
    assert "script" not in names and "img" not in names and "i" not in names
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert "&lt;b&gt;claim&lt;/b&gt;" in html
    assert "&lt;b&gt;V&lt;/b&gt;" in html
    # the marker is still a link, with the escaped source title as its tooltip
    assert re.search(r'<a class="cite" href="#src-1" title="&lt;script&gt;[^"]*">SRC-1</a>', html)


def test_unknown_refs_render_as_plain_text(brief: Brief) -> None:
    statement = Statement(text="A claim [SRC-1; SRC-42].")
    section = Section(key=SectionKey.CONSENSUS, title="Extra", statements=[statement])
    html = BriefEditor().render(brief.model_copy(update={"sections": [section]}), "html")
    assert 'href="#src-1"' in html
    assert 'href="#src-42"' not in html
    assert '<span class="unknown" title="No source SRC-42">SRC-42</span>' in html


def test_json_round_trips_to_an_equal_brief(brief: Brief) -> None:
    text = BriefEditor().render(brief, "json")
    assert Brief.model_validate_json(text) == brief
    assert text.startswith('{\n  "id": "brief-test"')


def test_llm_briefs_and_failed_guards_say_so(brief: Brief) -> None:
    guard = brief.guard.model_copy(update={"passed": False, "repairs": ["dropped x"]})
    lineage = brief.lineage.model_copy(update={"analyst": "openai:gpt-test"})
    llm = brief.model_copy(update={"mode": "llm", "guard": guard, "lineage": lineage})
    md = BriefEditor().render(llm, "md")
    assert "language model (openai:gpt-test)" in md
    assert "issue(s) remain" in md and "1 repair(s)" in md
    assert "openai:gpt-test" in BriefEditor().render(llm, "html")


def test_unknown_format_is_an_error(brief: Brief) -> None:
    with pytest.raises(PipelineError, match="unknown brief format"):
        BriefEditor().render(brief, "pdf")  # type: ignore[arg-type]


def test_helpers(brief: Brief) -> None:
    assert format_authors(brief.sources[1]) == "Harris ST, Watts NB, Genant HK"
    assert format_authors(brief.sources[2]) == ""
    assert doi_url(" 10.1000/a b<c> ") == "https://doi.org/10.1000/a%20b%3Cc%3E"
