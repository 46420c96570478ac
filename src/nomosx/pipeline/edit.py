"""EDIT: render a finished ``Brief`` as Markdown, HTML or JSON.

All three come from the one typed model. Source text is data, never markup: the HTML is
rendered by Jinja2 with autoescaping on, citation markers become links to the numbered
source list (with the evidence span as their ``title``), and only ``http(s)`` links are
ever made clickable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

from nomosx.errors import PipelineError
from nomosx.models import Brief, BriefSource, GuardReport, Section, Statement

__all__ = [
    "BriefEditor",
    "doi_url",
    "format_authors",
    "guard_line",
    "mode_line",
    "section_views",
    "source_view",
    "split_citations",
    "web_url",
]

_MARKER = re.compile(r"\[\s*SRC-\d+(?:\s*[,;]\s*SRC-\d+)*\s*\]", re.IGNORECASE)
_REF = re.compile(r"SRC-(\d+)", re.IGNORECASE)
_WEB = re.compile(r"https?://\S+$", re.IGNORECASE)


def split_citations(text: str) -> list[str | tuple[int, ...]]:
    """``text`` as its runs of prose (``str``) and its citation markers (the refs of one
    ``[SRC-1, SRC-2]``, in order, each once), for renderers that link citations."""
    parts: list[str | tuple[int, ...]] = []
    last = 0
    for match in _MARKER.finditer(text):
        if match.start() > last:
            parts.append(text[last : match.start()])
        parts.append(tuple(dict.fromkeys(int(r) for r in _REF.findall(match.group(0)))))
        last = match.end()
    if last < len(text):
        parts.append(text[last:])
    return parts


def format_authors(source: BriefSource, limit: int = 3) -> str:
    """The first ``limit`` author names, then "et al." when there are more."""
    names = [a.name for a in source.source.authors]
    if len(names) > limit:
        return ", ".join(names[:limit]) + " et al."
    return ", ".join(names)


def doi_url(doi: str) -> str:
    return "https://doi.org/" + quote(doi.strip(), safe="/:;()._-")


def web_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) address, else None (no ``javascript:`` links)."""
    if url is None:
        return None
    url = url.strip()
    return url if _WEB.match(url) else None


def mode_line(brief: Brief) -> str:
    if brief.mode == "extractive":
        return (
            "Extractive brief: every claim is a sentence quoted from the cited sources; "
            "no language model wrote it."
        )
    return f"Written by a language model ({brief.lineage.analyst}); every citation was checked."


def guard_line(report: GuardReport) -> str:
    state = "passed" if report.passed else f"{len(report.issues)} issue(s) remain"
    return (
        f"Citation guard: {state}; {len(report.citations)} citation(s) checked in "
        f"{report.claims} claim(s); {len(report.repairs)} repair(s)."
    )


# --------------------------------------------------------------------------- HTML view


@dataclass(frozen=True, slots=True)
class _Cite:
    ref: int
    title: str
    known: bool


C = TypeVar("C")  # what a renderer makes of one citation


@dataclass(frozen=True)  # no slots: they break generic dataclasses on 3.11
class PartView(Generic[C]):
    """A run of a statement: prose, or the citations of one ``[SRC-…]`` marker."""

    text: str = ""
    cites: tuple[C, ...] = ()


@dataclass(frozen=True)  # no slots: they break generic dataclasses on 3.11
class StatementView(Generic[C]):
    kind: str
    parts: tuple[PartView[C], ...]


@dataclass(frozen=True)  # no slots: they break generic dataclasses on 3.11
class SectionView(Generic[C]):
    key: str
    title: str
    statements: tuple[StatementView[C], ...]
    subsections: tuple[SectionView[C], ...]


@dataclass(frozen=True, slots=True)
class SourceView:
    ref: int
    authors: str
    title: str
    year: int | None
    venue: str | None
    doi: str | None
    doi_url: str | None
    url: str | None
    key: str
    abstract: str | None
    relevance: float
    quality: float


def section_views(
    sections: list[Section], cite: Callable[[Statement, int], C]
) -> tuple[SectionView[C], ...]:
    """The sections with each statement split into prose and citations, ``cite`` making
    each citation (of ``ref`` in ``statement``) into what the renderer shows."""

    def statement_view(statement: Statement) -> StatementView[C]:
        parts = [
            PartView(text=part)
            if isinstance(part, str)
            else PartView(cites=tuple(cite(statement, ref) for ref in part))
            for part in split_citations(statement.text)
        ]
        return StatementView(kind=statement.kind, parts=tuple(parts))

    def section_view(section: Section) -> SectionView[C]:
        return SectionView(
            key=section.key.value,
            title=section.title,
            statements=tuple(statement_view(s) for s in section.statements),
            subsections=tuple(section_view(s) for s in section.subsections),
        )

    return tuple(section_view(s) for s in sections)


class BriefEditor:
    """Renders a ``Brief``; ``render(brief, "md" | "html" | "json")``."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("nomosx.pipeline", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, brief: Brief, fmt: Literal["md", "html", "json"]) -> str:
        if fmt == "md":
            return self.markdown(brief)
        if fmt == "html":
            return self.html(brief)
        if fmt == "json":
            return brief.model_dump_json(indent=2)
        raise PipelineError(f"unknown brief format {fmt!r}; use md, html or json")

    # ----------------------------------------------------------------- Markdown

    def markdown(self, brief: Brief) -> str:
        lines = [f"# {brief.title}", "", f"*{mode_line(brief)} {guard_line(brief.guard)}*", ""]
        for section in brief.sections:
            lines.extend(_markdown_section(section, level=2))
        lines.extend(["## Sources", ""])
        for source in sorted(brief.sources, key=lambda s: s.ref):
            lines.append(f"- {_markdown_source(source)}")
        lines.append("")
        return "\n".join(lines)

    # ----------------------------------------------------------------- HTML

    def html(self, brief: Brief) -> str:
        evidence = {(c.statement, c.ref): c.evidence for c in brief.guard.citations if c.evidence}
        titles = {s.ref: s.source.title for s in brief.sources}

        def cite(statement: Statement, ref: int) -> _Cite:
            span = evidence.get((statement.text, ref)) or titles.get(ref)
            return _Cite(ref, span or f"No source SRC-{ref}", ref in titles)

        template = self._env.get_template("brief.html.j2")
        return template.render(
            brief=brief,
            mode_line=mode_line(brief),
            guard_line=guard_line(brief.guard),
            sections=section_views(brief.sections, cite),
            sources=[source_view(s) for s in sorted(brief.sources, key=lambda s: s.ref)],
        )


def _markdown_section(section: Section, level: int) -> list[str]:
    lines = [f"{'#' * level} {section.title}", ""]
    for statement in section.statements:
        text = " ".join(statement.text.split())
        lines.append(f"- *{text}*" if statement.kind == "note" else f"- {text}")
    if section.statements:
        lines.append("")
    for sub in section.subsections:
        lines.extend(_markdown_section(sub, level + 1))
    return lines


def _markdown_source(source: BriefSource) -> str:
    s = source.source
    parts = [f"**[SRC-{source.ref}]**"]
    authors = format_authors(source)
    if authors:
        parts.append(authors if s.year is not None else f"{authors}.")
    if s.year is not None:
        parts.append(f"({s.year}).")
    parts.append(f"{s.title.rstrip('.')}.")
    if s.venue:
        parts.append(f"*{s.venue}*.")
    if s.doi:
        parts.append(f"DOI: [{s.doi}]({doi_url(s.doi)}).")
    url = web_url(s.url)
    if url and (not s.doi or url != doi_url(s.doi)):
        parts.append(f"<{url}>")
    if not s.doi and not url:
        parts.append(f"Library id: `{s.key}`.")
    parts.append(f"Relevance {source.relevance:.2f}, quality score {source.quality:.2f}.")
    return " ".join(parts)


def source_view(source: BriefSource) -> SourceView:
    s = source.source
    return SourceView(
        ref=source.ref,
        authors=format_authors(source),
        title=s.title.rstrip("."),
        year=s.year,
        venue=s.venue,
        doi=s.doi,
        doi_url=doi_url(s.doi) if s.doi else None,
        url=web_url(s.url),
        key=s.key,
        abstract=s.abstract,
        relevance=source.relevance,
        quality=source.quality,
    )
