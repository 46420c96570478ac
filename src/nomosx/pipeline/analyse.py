"""ANALYSE without a language model: a brief made of quoted source sentences.

``ExtractiveAnalyst`` fills each section of the brief with sentences the reader found,
chosen for their relevance to the question and their kind. Every claim is one verbatim
sentence of a cited abstract followed by its marker, ``"<sentence> [SRC-n]"``; no sentence
is quoted twice; a section without material gets one plain ``note`` saying so. The result
depends only on its input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nomosx.models import (
    Draft,
    Finding,
    FindingKind,
    Reading,
    ScoredSource,
    Section,
    SectionKey,
    Statement,
)
from nomosx.text.tokens import terms

__all__ = ["EXTRACTIVE_NOTE", "SECTION_TITLES", "ExtractiveAnalyst"]

SECTION_TITLES: dict[SectionKey, str] = {
    SectionKey.EXECUTIVE_SUMMARY: "Executive summary",
    SectionKey.CONSENSUS: "Consensus",
    SectionKey.DISAGREEMENTS: "Disagreements",
    SectionKey.DEBATE: "Debate",
    SectionKey.DEBATE_FOR: "For",
    SectionKey.DEBATE_AGAINST: "Against",
    SectionKey.DEBATE_SYNTHESIS: "Synthesis",
    SectionKey.EVIDENCE_QUALITY: "Evidence quality",
    SectionKey.IMPLICATIONS: "Implications",
    SectionKey.RISKS: "Risks and limitations",
    SectionKey.OPEN_QUESTIONS: "Open questions",
    SectionKey.CHANGE_OUR_MIND: "What would change our mind",
}

EXTRACTIVE_NOTE = (
    "This brief is extractive: every claim in it is a sentence quoted verbatim from the "
    "cited source, and no language model wrote it."
)

_EMPTY: dict[SectionKey, str] = {
    SectionKey.EXECUTIVE_SUMMARY: (
        "None of the ranked sources reports a result that bears directly on the question."
    ),
    SectionKey.CONSENSUS: "None of the ranked sources reports a positive result on the question.",
    SectionKey.DISAGREEMENTS: (
        "The ranked sources do not report results that contradict each other."
    ),
    SectionKey.DEBATE_FOR: "None of the ranked sources reports a result in favour of this.",
    SectionKey.DEBATE_AGAINST: "None of the ranked sources reports a result against this.",
    SectionKey.DEBATE_SYNTHESIS: (
        "The ranked sources state no conclusion that bears on the question."
    ),
    SectionKey.EVIDENCE_QUALITY: (
        "The ranked sources do not describe their design in their abstracts."
    ),
    SectionKey.IMPLICATIONS: "None of the ranked sources draws an implication from its results.",
    SectionKey.RISKS: "None of the ranked sources states a limitation in its abstract.",
    SectionKey.OPEN_QUESTIONS: "None of the ranked sources names an open question.",
    SectionKey.CHANGE_OUR_MIND: (
        "None of the top sources reports a null result or a limitation that would change "
        "this reading."
    ),
}
_SINGLE_SOURCE = (
    "No result is reported by two or more of the ranked sources; the strongest single "
    "result follows."
)
_SYNTHESIS_LEAD = (
    "An extractive brief does not weigh the two sides; these are the sources' own "
    "conclusions that bear most on the question."
)
_CHANGE_LEAD = "Findings of the top-ranked sources that point the other way or limit the evidence:"

_OUTCOMES = frozenset({FindingKind.RESULT, FindingKind.CLAIM})
_DESIGN = re.compile(
    r"randomi[sz]ed|placebo|double-blind|blinded|cohort|case-control|cross-sectional"
    r"|meta-analys|systematic review|\btrials?\b|prospective|retrospective|multicent",
    re.IGNORECASE,
)
_SAMPLE_SIZE = re.compile(
    r"\bn\s*=\s*\d|\b\d[\d,]*\s+(?:\w+\s+){0,3}?(?:patients|women|men|participants|subjects"
    r"|adults|children|infants|individuals|residents|studies|trials|articles|cases)\b",
    re.IGNORECASE,
)
_IMPLICATION = re.compile(r"suggest|implicat|\bshould\b|\bmay\b", re.IGNORECASE)
_OPEN = re.compile(
    r"\bfurther (?:stud|research|investigat|trials?\b|work|evaluation|data|evidence)"
    r"|remains? (?:unclear|unknown|uncertain|to be)|\bunknown\b|\bunclear\b"
    r"|\bnot (?:yet )?(?:been )?(?:\w+ )?(?:known|studied|established|examined|evaluated)\b"
    r"|\bfuture (?:stud|research|trials?\b|work)|\b(?:are|is) (?:needed|warranted|required)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Candidate:
    ref: int
    finding: Finding
    terms: frozenset[str]

    @property
    def order(self) -> tuple[float, int, int]:
        """Most relevant first; ties go to the better-ranked source, then text order."""
        return (-self.finding.relevance, self.ref, self.finding.start)

    @property
    def statement(self) -> Statement:
        return Statement(text=f"{self.finding.text} [SRC-{self.ref}]")


class ExtractiveAnalyst:
    """Composes a ``Draft`` from the readings alone (see the module docstring).

    ``summary_size`` bounds the executive summary, ``section_size`` every other section;
    ``top_sources`` is how many of the best-ranked sources count as "the top sources".
    """

    name: str = "extractive"

    def __init__(self, *, summary_size: int = 5, section_size: int = 3, top_sources: int = 5):
        self.summary_size = summary_size
        self.section_size = section_size
        self.top_sources = top_sources

    async def analyse(
        self, question: str, ranked: Sequence[ScoredSource], readings: Sequence[Reading]
    ) -> Draft:
        known = set(range(1, len(ranked) + 1))
        composer = _Composer(
            question,
            [r for r in readings if r.ref in known],
            summary_size=self.summary_size,
            section_size=self.section_size,
            top_sources=self.top_sources,
        )
        return composer.draft()


class _Composer:
    """The state of one composition: the candidate sentences and those already quoted."""

    def __init__(
        self,
        question: str,
        readings: Sequence[Reading],
        *,
        summary_size: int,
        section_size: int,
        top_sources: int,
    ):
        self.question = question.strip()
        self.question_terms = frozenset(terms(question))
        self.summary_size = summary_size
        self.size = section_size
        self.used: set[str] = set()
        relevant_refs = {r.ref for r in readings if any(f.relevance > 0 for f in r.findings)}
        self.top_refs = {r.ref for r in sorted(readings, key=lambda r: r.ref)[:top_sources]}
        # Only sources that speak to the question at all contribute anything.
        self.all = sorted(
            (
                _Candidate(r.ref, f, frozenset(terms(f.text)))
                for r in readings
                if r.ref in relevant_refs
                for f in r.findings
            ),
            key=lambda c: c.order,
        )
        self.relevant = [c for c in self.all if c.finding.relevance > 0]
        self.positive = [
            c
            for c in self.relevant
            if c.finding.kind in _OUTCOMES and c.finding.polarity == "positive"
        ]
        self.negative = [
            c
            for c in self.relevant
            if c.finding.kind in _OUTCOMES and c.finding.polarity == "negative"
        ]

    # ----------------------------------------------------------------- composition

    def draft(self) -> Draft:
        # Sections are filled in order of importance, so the best sentences land where
        # they matter most; the draft lists them in the brief's order.
        summary = self._summary()
        consensus = self._consensus()
        disagreements = self._disagreements()
        against = self._section(SectionKey.DEBATE_AGAINST, self._pick(self.negative))
        in_favour = self._section(SectionKey.DEBATE_FOR, self._pick(self.positive))
        synthesis = self._synthesis()
        quality = self._evidence_quality()
        risks = self._section(SectionKey.RISKS, self._pick(self._limitations()))
        open_questions = self._section(
            SectionKey.OPEN_QUESTIONS,
            self._pick(
                c
                for c in self.all
                if c.finding.kind is not FindingKind.METHOD and _OPEN.search(c.finding.text)
            ),
        )
        implications = self._section(
            SectionKey.IMPLICATIONS,
            self._pick(
                c
                for c in self.relevant
                if c.finding.kind is FindingKind.CLAIM and _IMPLICATION.search(c.finding.text)
            ),
        )
        change = self._change_our_mind()
        debate = Section(
            key=SectionKey.DEBATE,
            title=SECTION_TITLES[SectionKey.DEBATE],
            subsections=[in_favour, against, synthesis],
        )
        return Draft(
            title=f"Evidence brief: {self.question}",
            sections=[
                summary,
                consensus,
                disagreements,
                debate,
                quality,
                implications,
                risks,
                open_questions,
                change,
            ],
            analyst=ExtractiveAnalyst.name,
        )

    def _summary(self) -> Section:
        pool = [c for c in self.relevant if c.finding.kind in _OUTCOMES and c.ref in self.top_refs]
        first = self._pick(pool, self.summary_size, per_source=1)
        rest = self._pick(pool, self.summary_size - len(first), per_source=2, taken=first)
        chosen = sorted([*first, *rest], key=lambda c: c.order)
        return self._section(
            SectionKey.EXECUTIVE_SUMMARY, chosen, lead=EXTRACTIVE_NOTE, always_lead=True
        )

    def _consensus(self) -> Section:
        def corroboration(c: _Candidate) -> int:
            return len({g.ref for g in self.positive if g.ref != c.ref and self._share(c, g)})

        counts = {id(c): corroboration(c) for c in self.positive}
        shared = sorted(
            (c for c in self.positive if counts[id(c)] > 0),
            key=lambda c: (-counts[id(c)], *c.order),
        )
        chosen = self._pick(shared)
        if chosen:
            return self._section(SectionKey.CONSENSUS, chosen)
        strongest = self._pick(self.positive, 1)
        lead = _SINGLE_SOURCE if strongest else None
        return self._section(SectionKey.CONSENSUS, strongest, lead=lead)

    def _disagreements(self) -> Section:
        conflicting = [
            c
            for c in self.negative
            if any(g.ref != c.ref and self._share(c, g) for g in self.positive)
        ]
        return self._section(SectionKey.DISAGREEMENTS, self._pick(conflicting))

    def _synthesis(self) -> Section:
        chosen = self._pick(c for c in self.relevant if c.finding.kind is FindingKind.CLAIM)
        lead = _SYNTHESIS_LEAD if chosen else None
        return self._section(SectionKey.DEBATE_SYNTHESIS, chosen, lead=lead)

    def _evidence_quality(self) -> Section:
        def strength(c: _Candidate) -> int:
            text = c.finding.text
            return len(set(_DESIGN.findall(text.lower()))) + (2 if _SAMPLE_SIZE.search(text) else 0)

        pool = [
            c
            for c in self.all
            if c.finding.kind is FindingKind.METHOD and c.ref in self.top_refs and strength(c) > 0
        ]
        pool.sort(key=lambda c: (-strength(c), *c.order))
        return self._section(SectionKey.EVIDENCE_QUALITY, self._pick(pool, self.size + 1))

    def _limitations(self) -> list[_Candidate]:
        return [c for c in self.all if c.finding.kind is FindingKind.LIMITATION]

    def _change_our_mind(self) -> Section:
        pool = [
            c
            for c in self.all
            if c.ref in self.top_refs
            and (
                c.finding.kind is FindingKind.LIMITATION
                or (c.finding.kind in _OUTCOMES and c.finding.polarity == "negative")
            )
        ]
        chosen = self._pick(pool)
        return self._section(
            SectionKey.CHANGE_OUR_MIND, chosen, lead=_CHANGE_LEAD if chosen else None
        )

    # ----------------------------------------------------------------- helpers

    def _share(self, a: _Candidate, b: _Candidate) -> bool:
        """Whether two findings speak of the same thing: two common terms, one of the question's."""
        common = a.terms & b.terms
        return len(common) >= 2 and bool(common & self.question_terms)

    def _pick(
        self,
        candidates: Iterable[_Candidate],
        limit: int | None = None,
        *,
        per_source: int = 1,
        taken: Sequence[_Candidate] = (),
    ) -> list[_Candidate]:
        """Up to ``limit`` unused candidates, in the given order, ``per_source`` per source."""
        limit = self.size if limit is None else limit
        per_ref: dict[int, int] = {}
        for c in taken:
            per_ref[c.ref] = per_ref.get(c.ref, 0) + 1
        chosen: list[_Candidate] = []
        for c in candidates:
            if len(chosen) >= limit:
                break
            key = _normalise(c.finding.text)
            if key in self.used or per_ref.get(c.ref, 0) >= per_source:
                continue
            self.used.add(key)
            per_ref[c.ref] = per_ref.get(c.ref, 0) + 1
            chosen.append(c)
        return chosen

    def _section(
        self,
        key: SectionKey,
        chosen: Sequence[_Candidate],
        *,
        lead: str | None = None,
        always_lead: bool = False,
    ) -> Section:
        statements: list[Statement] = []
        if lead is not None and (chosen or always_lead):
            statements.append(Statement(text=lead, kind="note"))
        statements.extend(c.statement for c in chosen)
        if not chosen:
            statements.append(Statement(text=_EMPTY[key], kind="note"))
        return Section(key=key, title=SECTION_TITLES[key], statements=statements)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())
