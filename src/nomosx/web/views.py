"""A ``Brief`` as the web reader shows it: statements split into text and citations, and
one evidence popover per distinct (source, evidence span) pair.

The guard stored, for each ``[SRC-n]`` of each statement, the sentence of the source that
supports it and its character span in the abstract; the popover shows that span
highlighted inside the abstract around it, so a reader sees the quote in its context.
Nothing here produces markup: the templates autoescape every value.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomosx.models import Brief, Citation, Statement
from nomosx.pipeline.edit import (
    SectionView,
    SourceView,
    guard_line,
    mode_line,
    section_views,
    source_view,
)

__all__ = ["BriefView", "EvidenceView", "brief_view"]

CONTEXT_CHARS = 320  # abstract text shown on each side of the evidence span


@dataclass(frozen=True, slots=True)
class CiteView:
    ref: int
    popover: str | None  # the id of its evidence popover; None: the ref names no source


@dataclass(frozen=True, slots=True)
class EvidenceView:
    """One popover: the cited source and the evidence span within its abstract."""

    id: str
    source: SourceView
    quote: str | None  # the evidence sentence; None: the guard recorded none
    before: str  # abstract text before the span (clipped), shown as context
    after: str
    on_title: bool  # the evidence is the source's title (no span in the abstract)
    support: float | None


@dataclass(frozen=True, slots=True)
class BriefView:
    brief: Brief
    sections: tuple[SectionView[CiteView], ...]
    sources: tuple[SourceView, ...]
    popovers: tuple[EvidenceView, ...]
    mode_line: str
    guard_line: str


def _clip_before(text: str) -> str:
    if len(text) <= CONTEXT_CHARS:
        return text
    cut = text[-CONTEXT_CHARS:]
    space = cut.find(" ")
    return "…" + (cut[space + 1 :] if 0 <= space < 40 else cut)


def _clip_after(text: str) -> str:
    if len(text) <= CONTEXT_CHARS:
        return text
    cut = text[:CONTEXT_CHARS]
    space = cut.rfind(" ")
    return (cut[:space] if space > CONTEXT_CHARS - 40 else cut) + "…"


def _span(abstract: str, citation: Citation) -> tuple[int, int] | None:
    """Where the evidence sits in the abstract: the stored span when it still matches the
    quote, else the quote's first occurrence; None when it is not in the abstract."""
    quote_ = citation.evidence
    if quote_ is None:
        return None
    start, end = citation.start, citation.end
    if start is not None and end is not None and abstract[start:end] == quote_:
        return start, end
    found = abstract.find(quote_)
    return (found, found + len(quote_)) if found >= 0 else None


def _evidence_view(popover: str, source: SourceView, citation: Citation | None) -> EvidenceView:
    abstract = source.abstract or ""
    if citation is None or citation.evidence is None:
        return EvidenceView(popover, source, None, "", "", False, None)
    span = _span(abstract, citation)
    if span is None:  # the title, or a quote that is not in the abstract as stored
        on_title = citation.start is None and citation.evidence.strip() == source.title.strip()
        return EvidenceView(popover, source, citation.evidence, "", "", on_title, citation.support)
    start, end = span
    return EvidenceView(
        popover,
        source,
        abstract[start:end],
        _clip_before(abstract[:start]),
        _clip_after(abstract[end:]),
        False,
        citation.support,
    )


def brief_view(brief: Brief) -> BriefView:
    """The reader's view of ``brief``: popover ids are ``ev-1``, ``ev-2``, … in reading
    order, one per distinct (source, evidence span)."""
    sources = {s.ref: source_view(s) for s in brief.sources}
    citations = {(c.statement, c.ref): c for c in brief.guard.citations}
    popovers: dict[tuple[int, int | None, int | None, str | None], EvidenceView] = {}

    def popover_for(statement: Statement, ref: int) -> str | None:
        source = sources.get(ref)
        if source is None:
            return None
        citation = citations.get((statement.text, ref))
        key = (
            (ref, citation.start, citation.end, citation.evidence)
            if citation is not None
            else (ref, None, None, None)
        )
        if key not in popovers:
            popovers[key] = _evidence_view(f"ev-{len(popovers) + 1}", source, citation)
        return popovers[key].id

    sections = section_views(
        brief.sections, lambda statement, ref: CiteView(ref, popover_for(statement, ref))
    )
    return BriefView(
        brief=brief,
        sections=sections,
        sources=tuple(sources[ref] for ref in sorted(sources)),
        popovers=tuple(popovers.values()),
        mode_line=mode_line(brief),
        guard_line=guard_line(brief.guard),
    )
