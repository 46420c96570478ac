"""GUARD: markers resolve, claims are cited, citations are supported; repair and failure."""

from __future__ import annotations

import pytest

from nomosx.errors import GuardError
from nomosx.models import (
    BriefSource,
    Draft,
    GuardReport,
    Section,
    SectionKey,
    Statement,
)
from nomosx.pipeline.guard import (
    DEFAULT_MIN_SUPPORT,
    CitationGuard,
    check,
    claim_terms,
    parse_citations,
    repair,
)

SUPPORTED = (
    "Alendronate significantly reduced the risk of clinical fractures among women with "
    "osteoporosis [SRC-1]."
)
NEGATED = (
    "Alendronate did not reduce the risk of clinical fractures among women with "
    "osteoporosis [SRC-1]."
)
UNRELATED = "Preterm infants show higher diffusion coefficients in white matter [SRC-1]."


def draft_of(*statements: Statement | str, key: SectionKey = SectionKey.CONSENSUS) -> Draft:
    items = [s if isinstance(s, Statement) else Statement(text=s) for s in statements]
    return Draft(
        title="t",
        analyst="test:model",
        sections=[Section(key=key, title="Consensus", statements=items)],
    )


def codes(report: GuardReport) -> list[str]:
    return [issue.code for issue in report.issues]


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("Fractures fell [SRC-1].", [1]),
        ("Fractures fell [SRC-2, SRC-5].", [2, 5]),
        ("Fractures fell [SRC-2; SRC-5] and rose [SRC-3].", [2, 5, 3]),
        ("Fractures fell [ SRC-2 ,SRC-2 ] [src-4].", [2, 4]),
        ("No marker here, nor [SRC-x] nor [1].", []),
    ],
)
def test_parse_citations(text: str, refs: list[int]) -> None:
    assert parse_citations(text) == refs


def test_claim_terms_mark_negated_terms_until_the_end_of_the_clause() -> None:
    assert claim_terms("Alendronate reduces fractures [SRC-1].") == {"alendron", "reduc", "fractur"}
    assert claim_terms("Alendronate does not reduce fractures, but raises BMD.") == {
        "alendron",
        "!reduc",
        "!fractur",
        "rais",
        "bmd",
    }
    assert claim_terms("The drug failed to lower risk.") == {"drug", "!lower", "!risk"}


async def test_the_extractive_draft_passes_with_zero_issues(
    guarded: tuple[Draft, GuardReport], draft: Draft, brief_sources: list[BriefSource]
) -> None:
    final, report = guarded
    assert report.passed and not report.issues and not report.repairs
    assert final == draft
    assert report.claims >= 12 and report.statements > report.claims
    assert len(report.citations) == report.claims
    by_ref = {s.ref: s.source for s in brief_sources}
    for citation in report.citations:
        assert citation.support == 1.0
        assert citation.evidence is not None
        assert citation.start is not None and citation.end is not None
        abstract = by_ref[citation.ref].abstract or ""
        assert abstract[citation.start : citation.end] == citation.evidence
        assert citation.evidence in citation.statement


def test_unknown_ref_is_rejected(brief_sources: list[BriefSource]) -> None:
    eight = brief_sources[:8]
    report = check(draft_of("Statins reduce hip fracture risk in the elderly [SRC-9]."), eight)
    assert not report.passed
    assert codes(report) == ["unknown_ref"]
    assert "[SRC-9]" in report.issues[0].detail
    assert report.issues[0].section is SectionKey.CONSENSUS
    assert report.citations[0].ref == 9 and report.citations[0].evidence is None


def test_uncited_claim_sentences_are_rejected(brief_sources: list[BriefSource]) -> None:
    report = check(draft_of("Bisphosphonates prevent every fracture."), brief_sources)
    assert codes(report) == ["uncited"]
    # a trailing marker covers only its own sentence
    two = "Bisphosphonates prevent every fracture. " + SUPPORTED
    report = check(draft_of(two), brief_sources)
    assert codes(report) == ["uncited"]
    assert "prevent every fracture" in report.issues[0].detail


def test_a_citation_whose_source_says_nothing_of_the_kind_is_unsupported(
    brief_sources: list[BriefSource],
) -> None:
    report = check(draft_of(UNRELATED), brief_sources)
    assert codes(report) == ["unsupported"]
    assert report.citations[0].support < 0.2
    # the same sentence, citing the source that does say it
    assert check(draft_of(UNRELATED.replace("SRC-1", "SRC-10")), brief_sources).passed


def test_a_multi_source_marker_is_accepted_when_both_support(
    brief_sources: list[BriefSource],
) -> None:
    text = "Treatment was well tolerated in postmenopausal women with osteoporosis [SRC-2, SRC-5]."
    report = check(draft_of(text), brief_sources)
    assert report.passed, report.issues
    assert [c.ref for c in report.citations] == [2, 5]
    assert all(c.support >= DEFAULT_MIN_SUPPORT for c in report.citations)
    semicolon = check(draft_of(text.replace(", ", "; ", 1)), brief_sources)
    assert semicolon.passed


def test_a_negated_claim_is_distinguished_from_what_the_source_says(
    brief_sources: list[BriefSource],
) -> None:
    assert check(draft_of(SUPPORTED), brief_sources).passed
    report = check(draft_of(NEGATED), brief_sources)
    assert codes(report) == ["unsupported"]
    assert report.citations[0].support < DEFAULT_MIN_SUPPORT


def test_the_title_can_be_the_evidence(brief_sources: list[BriefSource]) -> None:
    text = "HMG-CoA reductase inhibitors and the risk of hip fractures in elderly patients [SRC-8]."
    report = check(draft_of(text), brief_sources)
    assert report.passed
    citation = report.citations[0]
    assert citation.evidence == brief_sources[7].source.title
    assert citation.start is None and citation.end is None


def test_a_note_must_not_cite_and_an_all_note_draft_is_empty(
    brief_sources: list[BriefSource],
) -> None:
    report = check(draft_of(Statement(text="As shown in [SRC-1].", kind="note")), brief_sources)
    assert "cited_note" in codes(report) and "empty" in codes(report)
    assert "note" in report.issues[0].detail
    report = check(draft_of(Statement(text="Nothing to report.", kind="note")), brief_sources)
    assert codes(report) == ["empty"]


def test_check_is_pure(draft: Draft, brief_sources: list[BriefSource]) -> None:
    bad = draft_of(UNRELATED, SUPPORTED)
    before = bad.model_copy(deep=True)
    check(bad, brief_sources)
    repair(bad, brief_sources)
    assert bad == before


async def test_repair_drops_the_bad_statements_and_reports_them(
    brief_sources: list[BriefSource],
) -> None:
    eight = brief_sources[:8]
    bad = draft_of(
        SUPPORTED,
        "Statins reduce hip fracture risk in the elderly [SRC-9].",
        "Bisphosphonates prevent every fracture.",
        UNRELATED,
        NEGATED,
        "Treatment was well tolerated in postmenopausal women with osteoporosis [SRC-2, SRC-9].",
        "Risedronate reduced nonvertebral fractures by 39% over 3 years [SRC-2; SRC-7].",
        Statement(text="Also see [SRC-2] on risedronate safety, similar to placebo.", kind="note"),
    )
    final, report = await CitationGuard().guard(bad, eight)
    texts = [st.text for st in final.sections[0].statements]
    assert texts == [
        SUPPORTED,
        "Treatment was well tolerated in postmenopausal women with osteoporosis [SRC-2].",
        "Risedronate reduced nonvertebral fractures by 39% over 3 years [SRC-2].",
        "Also see [SRC-2] on risedronate safety, similar to placebo.",
    ]
    # the citing note was checked as a claim, found supported, and kept as one
    assert final.sections[0].statements[-1].kind == "claim"
    assert report.passed and not report.issues
    assert len(report.repairs) == 7
    joined = "\n".join(report.repairs)
    assert "[SRC-9] names no source" in joined
    assert "cites no source" in joined
    assert "Preterm infants" in joined
    assert "[SRC-7] supports" in joined
    assert "note" in joined


async def test_repair_keeps_the_supported_sentences_of_a_statement(
    brief_sources: list[BriefSource],
) -> None:
    text = f"{UNRELATED} {SUPPORTED}"
    final, report = await CitationGuard().guard(draft_of(text), brief_sources)
    assert [st.text for st in final.sections[0].statements] == [SUPPORTED]
    assert report.passed and len(report.repairs) == 1


async def test_a_section_emptied_by_the_repair_says_so(brief_sources: list[BriefSource]) -> None:
    bad = Draft(
        title="t",
        analyst="test:model",
        sections=[
            Section(
                key=SectionKey.CONSENSUS, title="Consensus", statements=[Statement(text=SUPPORTED)]
            ),
            Section(
                key=SectionKey.DEBATE,
                title="Debate",
                subsections=[
                    Section(
                        key=SectionKey.DEBATE_AGAINST,
                        title="Against",
                        statements=[Statement(text=NEGATED)],
                    )
                ],
            ),
        ],
    )
    final, report = await CitationGuard().guard(bad, brief_sources)
    against = final.sections[1].subsections[0]
    assert [st.kind for st in against.statements] == ["note"]
    assert "removed" in against.statements[0].text
    assert report.passed


async def test_guard_error_when_nothing_survives(brief_sources: list[BriefSource]) -> None:
    with pytest.raises(GuardError) as caught:
        await CitationGuard().guard(draft_of(UNRELATED, NEGATED), brief_sources)
    report = caught.value.report
    assert isinstance(report, GuardReport)
    assert len(report.repairs) == 2
    assert "empty" in codes(report)


async def test_a_stricter_threshold_rejects_a_loose_paraphrase(
    brief_sources: list[BriefSource],
) -> None:
    loose = "Risedronate was effective for women with osteoporosis in North America [SRC-2]."
    assert check(draft_of(loose), brief_sources).passed
    assert not check(draft_of(loose), brief_sources, min_support=0.95).passed
    with pytest.raises(GuardError):
        await CitationGuard(min_support=0.95).guard(draft_of(loose), brief_sources)
