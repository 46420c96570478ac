"""READ: exact spans, kinds, polarity and relevance of the findings."""

from __future__ import annotations

import pytest

from nomosx.models import FindingKind, Reading, ScoredSource
from nomosx.pipeline.read import SentenceReader, classify, polarity, sentence_relevance
from nomosx.text.tokens import terms
from tests.pipeline.conftest import QUESTION, make_source, rank


def finding(readings: list[Reading], ref: int, opening: str):  # type: ignore[no-untyped-def]
    for f in readings[ref - 1].findings:
        if f.text.startswith(opening):
            return f
    raise AssertionError(f"no finding of SRC-{ref} opens with {opening!r}")


def test_every_finding_is_an_exact_span_of_its_abstract(
    ranked: list[ScoredSource], readings: list[Reading]
) -> None:
    assert [r.ref for r in readings] == list(range(1, len(ranked) + 1))
    for reading, scored in zip(readings, ranked, strict=True):
        abstract = scored.source.abstract or ""
        assert reading.source_key == scored.source.key
        assert reading.findings
        for f in reading.findings:
            assert abstract[f.start : f.end] == f.text
            assert f.text == f.text.strip()
            assert 0.0 <= f.relevance <= 1.0


def test_structured_abstract_headings_are_trimmed_and_guide_the_kind(
    readings: list[Reading],
) -> None:
    texts = [f.text for r in readings for f in r.findings]
    assert not any(t.startswith(("RESULTS", "CONTEXT", "DESIGN", "CONCLUSIONS")) for t in texts)
    assert (
        finding(readings, 1, "Randomized, blinded, placebo-controlled").kind is FindingKind.METHOD
    )
    assert finding(readings, 1, "Alendronate decreased the risk").kind is FindingKind.RESULT
    assert finding(readings, 1, "Alendronate significantly reduced").kind is FindingKind.CLAIM
    assert finding(readings, 8, "Controlled trials are needed").kind is FindingKind.LIMITATION
    assert finding(readings, 2, "Risedronate, a potent").kind is FindingKind.BACKGROUND


def test_glued_sentences_are_separate_findings(readings: list[Reading]) -> None:
    unrelated = readings[-1]
    assert unrelated.findings[1].text.startswith("A line scan diffusion-weighted")
    assert all(f.relevance == 0.0 for f in unrelated.findings)


@pytest.mark.parametrize(
    ("sentence", "kind"),
    [
        (
            "We conducted a randomized trial in 200 patients using dual x-ray absorptiometry.",
            "method",
        ),
        ("Alendronate reduced clinical fractures by 36% (RH, 0.64; 95% CI, 0.50-0.82).", "result"),
        ("In conclusion, these findings suggest that screening is worthwhile.", "claim"),
        ("However, the small sample size is a limitation of this study.", "limitation"),
        ("Further studies are needed to confirm the effect.", "limitation"),
        ("Osteoporosis is a common disease of older women.", "background"),
    ],
)
def test_classify_clear_examples(sentence: str, kind: str) -> None:
    assert classify(sentence) is FindingKind(kind)


def test_a_background_heading_needs_a_strong_cue_to_be_overridden() -> None:
    sentence = "Alendronate reduces fracture risk in women with vertebral fractures."
    assert classify(sentence) is FindingKind.RESULT
    assert classify(sentence, FindingKind.BACKGROUND) is FindingKind.BACKGROUND
    assert classify("Dosing was weekly.", FindingKind.RESULT) is FindingKind.RESULT


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("No significant relationship was observed between these agents and fracture.", "negative"),
        ("Alendronate did not increase the risk of adverse effects.", "negative"),
        ("The treatment failed to reduce mortality.", "negative"),
        ("There was no difference between the groups.", "negative"),
        ("Alendronate significantly reduced the risk of clinical fractures.", "positive"),
        ("Statin use was associated with a reduction in hip fracture risk.", "positive"),
        ("Bone formed during risedronate treatment was histologically normal.", "neutral"),
        ("Whether this holds in men is not known.", "neutral"),
    ],
)
def test_polarity_clear_examples(sentence: str, expected: str) -> None:
    assert polarity(sentence) == expected


def test_polarity_of_fixture_findings(readings: list[Reading]) -> None:
    assert finding(readings, 8, "No significant relationship").polarity == "negative"
    assert finding(readings, 1, "Alendronate did not increase").polarity == "negative"
    assert finding(readings, 2, "These data suggest").polarity == "positive"


def test_relevance_prefers_sentences_about_the_question(readings: list[Reading]) -> None:
    question = frozenset(terms(QUESTION))
    on_topic = "Bisphosphonates reduce fracture risk in postmenopausal women with osteoporosis."
    assert sentence_relevance(question, on_topic) == 1.0
    assert sentence_relevance(question, "Preterm infants were scanned at term.") == 0.0
    assert sentence_relevance(frozenset(), on_topic) == 0.0
    assert sentence_relevance(question, "the of and") == 0.0
    partial = sentence_relevance(question, "Fracture risk rose.")
    assert 0.0 < partial < 0.5
    best = max(readings[0].findings, key=lambda f: f.relevance)
    assert best.relevance > 0.5
    assert "fracture" in best.text.lower()


async def test_a_source_without_abstract_yields_no_findings() -> None:
    source = make_source({"doc_id": 1, "title": "Untitled", "abstract": None})
    readings = await SentenceReader().read(QUESTION, rank([source]))
    assert readings == [Reading(ref=1, source_key="scifact:1", findings=[])]


async def test_bare_headings_set_the_section_and_short_fragments_are_skipped() -> None:
    abstract = (
        "Methods. We enrolled women with osteoporosis at ten sites. Results: fine. "
        "Fractures were fewer among treated women. Conclusions. Treatment is worthwhile here."
    )
    source = make_source({"doc_id": 2, "title": "T", "abstract": abstract})
    [reading] = await SentenceReader().read(QUESTION, rank([source]))
    kinds = [(f.text, f.kind) for f in reading.findings]
    assert kinds == [
        ("We enrolled women with osteoporosis at ten sites.", FindingKind.METHOD),
        ("Fractures were fewer among treated women.", FindingKind.RESULT),
        ("Treatment is worthwhile here.", FindingKind.CLAIM),
    ]


async def test_a_heading_that_implies_no_kind_leaves_the_cues_to_decide() -> None:
    abstract = (
        "UNLABELLED Osteoporosis is common in older women. We enrolled 300 women at ten sites."
    )
    source = make_source({"doc_id": 3, "title": "T", "abstract": abstract})
    [reading] = await SentenceReader().read(QUESTION, rank([source]))
    assert [(f.text, f.kind) for f in reading.findings] == [
        ("Osteoporosis is common in older women.", FindingKind.BACKGROUND),
        ("We enrolled 300 women at ten sites.", FindingKind.METHOD),
    ]
