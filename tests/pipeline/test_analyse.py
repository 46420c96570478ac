"""ANALYSE (extractive): verbatim quotes, one valid marker each, every section present."""

from __future__ import annotations

import re
from collections import Counter

from nomosx.models import Draft, Reading, ScoredSource, Section, SectionKey, Statement
from nomosx.pipeline.analyse import EXTRACTIVE_NOTE, SECTION_TITLES, ExtractiveAnalyst
from tests.pipeline.conftest import QUESTION

CLAIM = re.compile(r"^(?P<sentence>.+) \[SRC-(?P<ref>\d+)\]$", re.DOTALL)
ANY_MARKER = re.compile(r"\[\s*SRC-", re.IGNORECASE)
ORDER = [
    SectionKey.EXECUTIVE_SUMMARY,
    SectionKey.CONSENSUS,
    SectionKey.DISAGREEMENTS,
    SectionKey.DEBATE,
    SectionKey.EVIDENCE_QUALITY,
    SectionKey.IMPLICATIONS,
    SectionKey.RISKS,
    SectionKey.OPEN_QUESTIONS,
    SectionKey.CHANGE_OUR_MIND,
]


def walk(draft: Draft) -> list[tuple[Section, Statement]]:
    out: list[tuple[Section, Statement]] = []
    for section in draft.sections:
        for sub in (section, *section.subsections):
            out.extend((sub, st) for st in sub.statements)
    return out


def claims(draft: Draft) -> list[tuple[Section, Statement]]:
    return [(s, st) for s, st in walk(draft) if st.kind == "claim"]


def test_all_sections_in_order_with_debate_subsections(draft: Draft) -> None:
    assert [s.key for s in draft.sections] == ORDER
    debate = draft.sections[3]
    assert [s.key for s in debate.subsections] == [
        SectionKey.DEBATE_FOR,
        SectionKey.DEBATE_AGAINST,
        SectionKey.DEBATE_SYNTHESIS,
    ]
    for section, _ in walk(draft):
        assert section.title == SECTION_TITLES[section.key]
    for section in draft.sections:
        for sub in section.subsections or [section]:
            assert sub.statements, f"{sub.key} is empty"
    assert draft.title == f"Evidence brief: {QUESTION}"
    assert draft.analyst == "extractive" == ExtractiveAnalyst.name


def test_every_claim_is_one_verbatim_sentence_with_one_valid_marker(
    draft: Draft, ranked: list[ScoredSource], readings: list[Reading]
) -> None:
    found = claims(draft)
    assert len(found) >= 12
    finding_texts = {(r.ref, f.text) for r in readings for f in r.findings}
    for _, statement in found:
        assert len(ANY_MARKER.findall(statement.text)) == 1, statement.text
        match = CLAIM.match(statement.text)
        assert match, statement.text
        ref = int(match["ref"])
        assert 1 <= ref <= len(ranked)
        assert match["sentence"] in (ranked[ref - 1].source.abstract or "")
        assert (ref, match["sentence"]) in finding_texts


def test_no_sentence_is_quoted_twice_and_unrelated_sources_are_not_cited(draft: Draft) -> None:
    sentences = [CLAIM.match(st.text)["sentence"] for _, st in claims(draft)]  # type: ignore[index]
    assert len(sentences) == len(set(sentences))
    assert "[SRC-10]" not in " ".join(st.text for _, st in claims(draft))


def test_the_summary_opens_with_the_extractive_note(draft: Draft) -> None:
    summary = draft.sections[0]
    first = summary.statements[0]
    assert first == Statement(text=EXTRACTIVE_NOTE, kind="note")
    assert "extractive" in first.text and "no language model" in first.text
    summary_claims = [st for st in summary.statements if st.kind == "claim"]
    assert 1 <= len(summary_claims) <= 5
    per_source = Counter(CLAIM.match(st.text)["ref"] for st in summary_claims)  # type: ignore[index]
    assert max(per_source.values()) <= 2


def test_notes_cite_nothing(draft: Draft) -> None:
    for _, statement in walk(draft):
        if statement.kind == "note":
            assert not ANY_MARKER.search(statement.text)


def test_sections_draw_on_the_right_kinds(draft: Draft, readings: list[Reading]) -> None:
    by_text = {(r.ref, f.text): f for r in readings for f in r.findings}

    def findings_of(key: SectionKey):  # type: ignore[no-untyped-def]
        out = []
        for section, statement in claims(draft):
            if section.key is key:
                match = CLAIM.match(statement.text)
                assert match
                out.append(by_text[(int(match["ref"]), match["sentence"])])
        return out

    assert all(f.polarity == "negative" for f in findings_of(SectionKey.DEBATE_AGAINST))
    assert all(f.polarity == "positive" for f in findings_of(SectionKey.DEBATE_FOR))
    assert all(f.kind.value == "method" for f in findings_of(SectionKey.EVIDENCE_QUALITY))
    assert all(f.kind.value == "limitation" for f in findings_of(SectionKey.RISKS))
    assert findings_of(SectionKey.EVIDENCE_QUALITY)
    assert findings_of(SectionKey.CONSENSUS)


async def test_deterministic(
    ranked: list[ScoredSource], readings: list[Reading], draft: Draft
) -> None:
    again = await ExtractiveAnalyst().analyse(QUESTION, ranked, readings)
    assert again == draft


async def test_without_material_every_section_says_so_plainly(
    ranked: list[ScoredSource],
) -> None:
    empty = [Reading(ref=i, source_key=s.source.key) for i, s in enumerate(ranked, start=1)]
    draft = await ExtractiveAnalyst().analyse(QUESTION, ranked, empty)
    assert not claims(draft)
    statements = walk(draft)
    assert statements[0][1].text == EXTRACTIVE_NOTE
    notes = {section.key: st.text for section, st in statements[1:]}
    assert notes[SectionKey.DEBATE_AGAINST] == (
        "None of the ranked sources reports a result against this."
    )
    assert len(notes) == 12 - 1  # every section and subsection but the debate parent


async def test_readings_of_unknown_refs_are_ignored(
    ranked: list[ScoredSource], readings: list[Reading]
) -> None:
    draft = await ExtractiveAnalyst(summary_size=2, section_size=1).analyse(
        QUESTION, ranked[:3], readings
    )
    refs = {int(CLAIM.match(st.text)["ref"]) for _, st in claims(draft)}  # type: ignore[index]
    assert refs <= {1, 2, 3}
    summary_claims = [st for st in draft.sections[0].statements if st.kind == "claim"]
    assert len(summary_claims) == 2
