"""The sentence splitter: abbreviations, numbers, initials, glued boundaries, exact spans."""

from __future__ import annotations

import pytest

from nomosx.text.sentences import split_heading, split_sentences
from tests.pipeline.conftest import RECORDS


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Smith et al. reported a fall in fractures. Jones et al. Showed none.",
            ["Smith et al. reported a fall in fractures.", "Jones et al. Showed none."],
        ),
        (
            "Some drugs, e.g. Alendronate, work. Others, i.e. The rest, do not.",
            ["Some drugs, e.g. Alendronate, work.", "Others, i.e. The rest, do not."],
        ),
        ("Drug vs. Placebo was tested. It worked.", ["Drug vs. Placebo was tested.", "It worked."]),
        ("See Fig. 2 for details. Then stop.", ["See Fig. 2 for details.", "Then stop."]),
        ("It weighs approx. 5 kg in total. Done.", ["It weighs approx. 5 kg in total.", "Done."]),
        ("As on p. 5 of the report. Done.", ["As on p. 5 of the report.", "Done."]),
        ("J. Smith wrote it. Then he left.", ["J. Smith wrote it.", "Then he left."]),
        (
            "Proc. Natl. Acad. Sci. USA published it. Fine.",
            ["Proc. Natl. Acad. Sci. USA published it.", "Fine."],
        ),
    ],
)
def test_abbreviations_do_not_end_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_numbers_do_not_end_sentences() -> None:
    text = (
        "The coefficient fell from 1.8 to 1.2 microm2/ms (p = 0.016). "
        "Clinical fractures fell (P<.05) and BMD rose by 5.4 percent. "
        "The hazard was 0.86 (95% CI, 0.73-1.01)."
    )
    assert sentences(text) == [
        "The coefficient fell from 1.8 to 1.2 microm2/ms (p = 0.016).",
        "Clinical fractures fell (P<.05) and BMD rose by 5.4 percent.",
        "The hazard was 0.86 (95% CI, 0.73-1.01).",
    ]


def test_initials_do_not_end_sentences_but_single_letter_words_do() -> None:
    assert sentences("The trial was led by J. Smith and R. K. Jones. It ended.") == [
        "The trial was led by J. Smith and R. K. Jones.",
        "It ended.",
    ]
    assert sentences("Levels of vitamin D. Serum calcium was normal.") == [
        "Levels of vitamin D.",
        "Serum calcium was normal.",
    ]
    assert sentences("Carriers of hepatitis B. We studied them.") == [
        "Carriers of hepatitis B.",
        "We studied them.",
    ]


def test_glued_boundaries_are_split() -> None:
    text = (
        "It can result in functional disabilities.A line scan was applied in full-term "
        "infants (n = 7).To assess effects, we used MRI.In the white matter it rose by "
        "5%.We measured DNA.The data were clear?Yes!"
    )
    assert sentences(text) == [
        "It can result in functional disabilities.",
        "A line scan was applied in full-term infants (n = 7).",
        "To assess effects, we used MRI.",
        "In the white matter it rose by 5%.",
        "We measured DNA.",
        "The data were clear?",
        "Yes!",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Patients in the U.S. were enrolled.",
        "She holds a Ph.D. from Oslo.",
        "The variant p.Arg123His was found.",
        "Histone H2A.Z was enriched.",
        "Staphylococcus aureus and E.coli grew.",
    ],
)
def test_no_split_inside_tokens(text: str) -> None:
    assert sentences(text) == [text]


def test_question_marks_blank_lines_and_closing_quotes() -> None:
    text = 'Does it work? "Yes," they said. (It did.) Next\n\nA heading without a stop\nmore'
    assert sentences(text) == [
        "Does it work?",
        '"Yes," they said.',
        "(It did.)",
        "Next",
        "A heading without a stop\nmore",
    ]


def test_spans_are_exact_stripped_and_ordered() -> None:
    for record in RECORDS:
        text = record["abstract"]
        spans = split_sentences(text)
        assert spans
        previous_end = 0
        for start, end in spans:
            assert previous_end <= start < end
            piece = text[start:end]
            assert piece == piece.strip()
            previous_end = end
        # nothing but white space is left out
        covered = "".join(text[s:e] for s, e in spans)
        assert "".join(covered.split()) == "".join(text.split())


def test_the_glued_scifact_abstract_splits_into_its_nine_sentences() -> None:
    text = RECORDS[-1]["abstract"]
    parts = sentences(text)
    assert len(parts) == 9
    assert parts[0].endswith("result in functional disabilities.")
    assert parts[1].startswith("A line scan diffusion-weighted")
    assert "p = 0.016" in parts[6]


def test_empty_and_blank_text() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n\n  ") == []
    assert sentences("No final stop") == ["No final stop"]


def test_headings_of_structured_abstracts() -> None:
    text = "RESULTS Alendronate increased BMD."
    assert split_heading(text) == ("RESULTS", 8)
    text = "DESIGN, SETTING, AND PARTICIPANTS Randomized trial of 2458 women."
    heading, body = split_heading(text)
    assert heading == "DESIGN, SETTING, AND PARTICIPANTS"
    assert text[body:].startswith("Randomized")
    assert split_heading("RESULTS BMD rose.") == ("RESULTS", 8)
    assert split_heading("Background: Vitamin D is made in skin.") == ("Background", 12)
    assert split_heading("MRI showed lesions.") == (None, 0)
    assert split_heading("BMD rose.") == (None, 0)
    assert split_heading("Methods") == (None, 0)
    assert split_heading("Summary of the data: none.") == (None, 0)
    offset_text = "xx CONCLUSIONS It works."
    assert split_heading(offset_text, 3) == ("CONCLUSIONS", 15)
