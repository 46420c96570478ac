"""GUARD: every citation of a draft is checked against the source it names.

Rules (DESIGN.md, "GUARD"):

- every marker ``[SRC-n]`` (also ``[SRC-2, SRC-5]`` and ``[SRC-2; SRC-5]``) must name a
  source of the brief, else ``unknown_ref``;
- every sentence of a ``claim`` statement that says something (has a content term) must be
  covered by a marker, inside the sentence or trailing it, else ``uncited``;
- each cited source must support its sentence, else ``unsupported``: the guard finds the
  sentence of the source (title or abstract) that shares most of the claim's terms and
  records it, with its span, as the citation's evidence;
- a ``note`` describes the brief itself and must not cite: a note with a marker is reported
  as ``cited_note`` (a note cannot be evidence-backed, since it asserts nothing about the
  world), its citations are checked like a claim's, and the repair turns it into a claim;
- a draft with no claim at all is ``empty``.

Support measure. A claim sentence and an evidence sentence are each reduced to *polar
terms*: the content terms of ``terms(..., keep_negations=True)``, where a term inside the
scope of a negation ("not", "no", "without", "failed", ...; the scope runs to the end of
its clause) is marked as negated. Support is the share of the claim's polar terms found in
the evidence sentence. A verbatim quote scores 1.0, a faithful paraphrase typically
0.5-0.9, and "X does not reduce Y" against "X reduced Y" scores low because its negated
terms are absent from the evidence. The default threshold, 0.5, asks that at least half of
what the sentence says, with the same polarity, appear in one sentence of the source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from nomosx.errors import GuardError
from nomosx.models import (
    BriefSource,
    Citation,
    Draft,
    GuardIssue,
    GuardReport,
    Section,
    SectionKey,
    Source,
    Statement,
)
from nomosx.text.sentences import split_heading, split_sentences
from nomosx.text.tokens import stem, terms

__all__ = [
    "DEFAULT_MIN_SUPPORT",
    "CitationGuard",
    "check",
    "claim_terms",
    "parse_citations",
    "repair",
]

DEFAULT_MIN_SUPPORT = 0.5

_IssueCode = Literal["unknown_ref", "uncited", "unsupported", "cited_note", "empty"]

_MARKER = re.compile(r"\[\s*SRC-\d+(?:\s*[,;]\s*SRC-\d+)*\s*\]", re.IGNORECASE)
_MARKER_WITH_SPACE = re.compile(rf"(\s*)({_MARKER.pattern})", re.IGNORECASE)
_REF = re.compile(r"SRC-(\d+)", re.IGNORECASE)
_CLAUSE = re.compile(
    r"[,;:()\[\]]|\s(?:but|whereas|although|though|while|yet|except|however)\s", re.IGNORECASE
)
_NEGATION_WORDS = """
    no not nor without never neither none cannot fail failed fails didnt doesnt dont isnt
    wasnt werent arent cant wont hasnt havent hadnt couldnt shouldnt wouldnt
"""
_NEGATIONS = frozenset(stem(w) for w in _NEGATION_WORDS.split())
_EMPTIED_SECTION = (
    "Every claim of this section was removed because its citations did not check out."
)


def parse_citations(text: str) -> list[int]:
    """The source numbers cited in ``text``, in order of first appearance, each once."""
    refs: list[int] = []
    for marker in _MARKER.finditer(text):
        for ref in _REF.findall(marker.group(0)):
            if int(ref) not in refs:
                refs.append(int(ref))
    return refs


def claim_terms(text: str) -> frozenset[str]:
    """The polar terms of ``text`` (see the module docstring); a negated term reads "!t"."""
    out: set[str] = set()
    for clause in _CLAUSE.split(_MARKER.sub(" ", text)):
        negated = False
        for term in terms(clause, keep_negations=True):
            if term in _NEGATIONS:
                negated = True
            else:
                out.add(f"!{term}" if negated else term)
    return frozenset(out)


# --------------------------------------------------------------------------- pieces


@dataclass(frozen=True, slots=True)
class _Unit:
    """One sentence of a statement, with the markers inside or right after it."""

    text: str
    refs: tuple[int, ...]
    terms: frozenset[str]

    @property
    def is_claim(self) -> bool:
        return bool(self.terms)


def _units(text: str) -> list[_Unit]:
    spans: list[tuple[int, int]] = []
    for start, end in split_sentences(text):
        marker_only = not _MARKER.sub("", text[start:end]).strip(" \t\n.,;:")
        if marker_only and spans:
            spans[-1] = (spans[-1][0], end)  # a trailing marker covers the sentence before it
        else:
            spans.append((start, end))
    units = []
    for start, end in spans:
        piece = text[start:end]
        units.append(_Unit(piece, tuple(parse_citations(piece)), claim_terms(piece)))
    return units


@dataclass(frozen=True, slots=True)
class _Evidence:
    text: str
    start: int | None  # None when the evidence is the title
    end: int | None
    terms: frozenset[str]


class _Library:
    """The brief's sources by ref, each split into evidence sentences once."""

    def __init__(self, sources: Sequence[BriefSource]):
        self.sources = {s.ref: s.source for s in sources}
        self._evidence: dict[int, list[_Evidence]] = {}

    def evidence(self, ref: int) -> list[_Evidence]:
        if ref not in self._evidence:
            self._evidence[ref] = _evidence_of(self.sources[ref])
        return self._evidence[ref]

    def best(self, ref: int, claim: frozenset[str]) -> tuple[_Evidence | None, float]:
        """The sentence of source ``ref`` that best supports ``claim``, and its support."""
        best: _Evidence | None = None
        best_support = 0.0
        if not claim:
            return None, 0.0
        for ev in self.evidence(ref):
            support = len(claim & ev.terms) / len(claim)
            if support > best_support:
                best, best_support = ev, support
        return best, best_support


def _evidence_of(source: Source) -> list[_Evidence]:
    out = [_Evidence(source.title, None, None, claim_terms(source.title))]
    abstract = source.abstract or ""
    for start, end in split_sentences(abstract):
        _, body = split_heading(abstract, start, end)
        out.append(_Evidence(abstract[body:end], body, end, claim_terms(abstract[body:end])))
    return out


def _walk(sections: Sequence[Section]) -> Iterator[tuple[Section, Statement]]:
    for section in sections:
        for statement in section.statements:
            yield section, statement
        yield from _walk(section.subsections)


def _clip(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# --------------------------------------------------------------------------- check


def check(
    draft: Draft, sources: Sequence[BriefSource], *, min_support: float = DEFAULT_MIN_SUPPORT
) -> GuardReport:
    """Check every statement of ``draft`` against ``sources``; pure, changes nothing."""
    library = _Library(sources)
    citations: list[Citation] = []
    issues: list[GuardIssue] = []
    statements = claims = 0
    for section, statement in _walk(draft.sections):
        statements += 1
        units = _units(statement.text)
        if statement.kind == "note":
            if not any(u.refs for u in units):
                continue
            issues.append(
                _issue(
                    "cited_note",
                    section.key,
                    statement,
                    "a note describes the brief and must not cite a source; "
                    "state it as a claim or drop the marker",
                )
            )
        else:
            claims += 1
        for unit in units:
            _check_unit(library, section.key, statement, unit, min_support, citations, issues)
    if claims == 0:
        issues.append(
            GuardIssue(code="empty", section=None, statement="", detail="the draft makes no claim")
        )
    return GuardReport(
        passed=not issues,
        statements=statements,
        claims=claims,
        citations=citations,
        issues=issues,
    )


def _check_unit(
    library: _Library,
    key: SectionKey,
    statement: Statement,
    unit: _Unit,
    min_support: float,
    citations: list[Citation],
    issues: list[GuardIssue],
) -> None:
    if not unit.refs:
        if unit.is_claim:
            detail = f'the sentence "{_clip(unit.text)}" cites no source'
            issues.append(_issue("uncited", key, statement, detail))
        return
    for ref in unit.refs:
        if ref not in library.sources:
            citations.append(Citation(ref=ref, section=key, statement=statement.text))
            detail = f"[SRC-{ref}] names no source of this brief ({_known(library)})"
            issues.append(_issue("unknown_ref", key, statement, detail))
            continue
        evidence, support = library.best(ref, unit.terms)
        citations.append(
            Citation(
                ref=ref,
                section=key,
                statement=statement.text,
                evidence=evidence.text if evidence else None,
                start=evidence.start if evidence else None,
                end=evidence.end if evidence else None,
                support=round(support, 3),
            )
        )
        if support < min_support:
            detail = (
                f'[SRC-{ref}] does not support "{_clip(unit.text)}": support {support:.2f} '
                f"is below {min_support:.2f}"
            )
            if evidence is not None:
                detail += f'; closest evidence: "{_clip(evidence.text)}"'
            issues.append(_issue("unsupported", key, statement, detail))


def _issue(code: _IssueCode, key: SectionKey, statement: Statement, detail: str) -> GuardIssue:
    return GuardIssue(code=code, section=key, statement=statement.text, detail=detail)


def _known(library: _Library) -> str:
    refs = sorted(library.sources)
    if not refs:
        return "the brief has no sources"
    return f"it has SRC-{refs[0]} to SRC-{refs[-1]}" if len(refs) > 1 else "it has SRC-1 only"


# --------------------------------------------------------------------------- repair


def repair(
    draft: Draft, sources: Sequence[BriefSource], *, min_support: float = DEFAULT_MIN_SUPPORT
) -> tuple[Draft, list[str]]:
    """A copy of ``draft`` with what ``check`` would flag removed, and a line per repair.

    Unknown and unsupporting refs are removed from their markers; a sentence left without
    a supporting citation is dropped, and a statement left without sentences with it; a
    note that cites is turned into a claim and repaired like one; a section emptied by the
    repair gets a note saying so.
    """
    library = _Library(sources)
    repairs: list[str] = []

    def fix_section(section: Section) -> Section:
        statements: list[Statement] = []
        for statement in section.statements:
            fixed = _repair_statement(library, section.key, statement, min_support, repairs)
            if fixed is not None:
                statements.append(fixed)
        if section.statements and not statements:
            statements.append(Statement(text=_EMPTIED_SECTION, kind="note"))
        return section.model_copy(
            update={
                "statements": statements,
                "subsections": [fix_section(s) for s in section.subsections],
            }
        )

    sections = [fix_section(s) for s in draft.sections]
    return draft.model_copy(update={"sections": sections}), repairs


def _repair_statement(
    library: _Library,
    key: SectionKey,
    statement: Statement,
    min_support: float,
    repairs: list[str],
) -> Statement | None:
    units = _units(statement.text)
    if statement.kind == "note":
        if not any(u.refs for u in units):
            return statement
        repairs.append(
            f'{key.value}: the note "{_clip(statement.text)}" cites a source; checked as a claim'
        )
    kept: list[str] = []
    cited = False
    for unit in units:
        if not unit.refs:
            if unit.is_claim:
                repairs.append(f'{key.value}: dropped "{_clip(unit.text)}" (cites no source)')
            else:
                kept.append(unit.text)
            continue
        good: list[int] = []
        reasons: list[str] = []
        for ref in unit.refs:
            if ref not in library.sources:
                reasons.append(f"[SRC-{ref}] names no source")
                continue
            _, support = library.best(ref, unit.terms)
            if support < min_support:
                reasons.append(f"[SRC-{ref}] supports {support:.2f} < {min_support:.2f}")
            else:
                good.append(ref)
        if not good:
            repairs.append(f'{key.value}: dropped "{_clip(unit.text)}" ({"; ".join(reasons)})')
            continue
        if reasons:
            repairs.append(f'{key.value}: removed from "{_clip(unit.text)}": {"; ".join(reasons)}')
        kept.append(_keep_refs(unit.text, set(good)) if reasons else unit.text)
        cited = True
    if not cited:
        return None
    return Statement(text=" ".join(kept), kind="claim")


def _keep_refs(text: str, keep: set[int]) -> str:
    def rewrite(match: re.Match[str]) -> str:
        refs = [r for r in parse_citations(match.group(2)) if r in keep]
        if not refs:
            return ""
        return match.group(1) + "[" + ", ".join(f"SRC-{r}" for r in refs) + "]"

    return _MARKER_WITH_SPACE.sub(rewrite, text).strip()


# --------------------------------------------------------------------------- stage


class CitationGuard:
    """The GUARD stage: check, repair what fails, check again.

    Returns the repaired draft and the final report, whose ``repairs`` list what was
    changed and whose ``issues`` are those of the final check. Raises ``GuardError`` (with
    the final report) when no cited claim survives the repair.
    """

    def __init__(self, *, min_support: float = DEFAULT_MIN_SUPPORT):
        self.min_support = min_support

    async def guard(
        self, draft: Draft, sources: Sequence[BriefSource]
    ) -> tuple[Draft, GuardReport]:
        report = check(draft, sources, min_support=self.min_support)
        if report.passed:
            return draft, report
        repaired, repairs = repair(draft, sources, min_support=self.min_support)
        final = check(repaired, sources, min_support=self.min_support)
        final = final.model_copy(update={"repairs": repairs})
        if not any(c.support >= self.min_support for c in final.citations):
            raise GuardError(
                "the citation guard found no claim that its cited sources support; "
                f"{len(report.issues)} issue(s) before repair",
                final,
            )
        return repaired, final
