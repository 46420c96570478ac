"""Identifier and text normalisation shared by every reader."""

from __future__ import annotations

import pytest

from nomosx.sources.normalise import (
    abstract_from_inverted_index,
    normalise_arxiv_id,
    normalise_doi,
    normalise_language,
    normalise_orcid,
    normalise_ror,
    normalise_title,
    parse_year,
    source_key,
    strip_markup,
)


@pytest.mark.parametrize(
    "value",
    [
        "10.7717/peerj.4375",
        "10.7717/PEERJ.4375",
        "  10.7717/peerj.4375\n",
        "https://doi.org/10.7717/peerj.4375",
        "HTTPS://DOI.ORG/10.7717/PeerJ.4375",
        "http://doi.org/10.7717/peerj.4375",
        "https://dx.doi.org/10.7717/peerj.4375",
        "http://dx.doi.org/10.7717/peerj.4375",
        "doi:10.7717/peerj.4375",
        "DOI: 10.7717/peerj.4375",
    ],
)
def test_normalise_doi_accepts_every_common_spelling(value: str) -> None:
    assert normalise_doi(value) == "10.7717/peerj.4375"


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "not a doi", "10.123/abc", "10.7717/", "https://example.org/10.7717/x"],
)
def test_normalise_doi_rejects_what_is_not_a_doi(value: str | None) -> None:
    assert normalise_doi(value) is None


def test_normalise_title_drops_accents_case_and_punctuation() -> None:
    assert normalise_title("  Café  Über-Study: A/B testing!  ") == "cafe uber study a b testing"
    assert normalise_title("The \ufb01rst_TRIAL") == normalise_title("the first trial")


def test_strip_markup_removes_jats_and_the_abstract_heading() -> None:
    text = (
        "<jats:sec><jats:title>Abstract</jats:title>\n<jats:p>We measured "
        "<jats:italic>in vivo</jats:italic> uptake&#160;in 17&nbsp;infants "
        "&amp; adults.</jats:p><jats:p>Second paragraph.</jats:p></jats:sec>"
    )
    assert (
        strip_markup(text) == "We measured in vivo uptake in 17 infants & adults. Second paragraph."
    )


def test_strip_markup_keeps_an_abstract_heading_that_is_not_leading_or_not_a_heading() -> None:
    assert strip_markup("<p>Abstract algebra</p>") == "Abstract algebra"
    assert strip_markup("<h2>Methods</h2><p>Abstract</p>") == "Methods Abstract"


def test_strip_markup_handles_html_mathml_and_comments() -> None:
    text = (
        "<p>Energy <i>E</i>=<mml:math><mml:mi>m</mml:mi><mml:msup><mml:mi>c</mml:mi>"
        "<mml:mn>2</mml:mn></mml:msup><mml:annotation encoding='tex'>mc^2</mml:annotation>"
        "</mml:math><!-- note --><br/>holds.</p>"
    )
    assert strip_markup(text) == "Energy E=mc2 holds."


def test_strip_markup_leaves_comparisons_in_plain_text_alone() -> None:
    assert strip_markup("when x<y and y>z, p <0.05") == "when x<y and y>z, p <0.05"
    assert strip_markup("&lt;b&gt; is escaped") == "<b> is escaped"


def test_inverted_index_is_rebuilt_by_position_not_by_key_order() -> None:
    # keys deliberately out of order, "the" at two positions
    index = {"mat.": [5], "sat": [2], "the": [0, 4], "cat": [1], "on": [3]}
    assert abstract_from_inverted_index(index) == "the cat sat on the mat."


@pytest.mark.parametrize("index", [None, {}])
def test_inverted_index_absent_gives_no_abstract(index: dict[str, list[int]] | None) -> None:
    assert abstract_from_inverted_index(index) is None


@pytest.mark.parametrize("positions", [[-1], ["3"], [True], "03"])
def test_inverted_index_rejects_bad_positions(positions: list[object] | str) -> None:
    with pytest.raises(ValueError, match="word"):
        abstract_from_inverted_index({"word": positions})  # type: ignore[dict-item]


def test_source_key_prefers_the_normalised_doi() -> None:
    a = source_key(
        doi="https://doi.org/10.7717/PEERJ.4375",
        provider="openalex",
        provider_id="W2741809807",
        title="x",
        year=2018,
    )
    b = source_key(
        doi="doi:10.7717/peerj.4375", provider="bibtex", provider_id="k", title="y", year=None
    )
    assert a == b == "doi:10.7717/peerj.4375"


def test_source_key_falls_back_to_provider_id_then_title_and_year() -> None:
    assert (
        source_key(doi="not a doi", provider="scifact", provider_id="4983", title="t", year=None)
        == "scifact:4983"
    )
    key = source_key(doi=None, provider="ris", provider_id=None, title="Café Study", year=2020)
    assert key.startswith("title:")
    assert len(key) == len("title:") + 16
    same = source_key(doi=None, provider="bibtex", provider_id=None, title="CAFE study!", year=2020)
    other_year = source_key(
        doi=None, provider="ris", provider_id=None, title="Café Study", year=2021
    )
    assert key == same
    assert key != other_year


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://orcid.org/0000-0003-1613-5981", "0000-0003-1613-5981"),
        ("0000-0002-1694-233x", "0000-0002-1694-233X"),
        ("0000000216942339", "0000-0002-1694-2339"),
        ("https://orcid.org/not-an-orcid", None),
        (None, None),
    ],
)
def test_normalise_orcid(value: str | None, expected: str | None) -> None:
    assert normalise_orcid(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://ror.org/01zkghx44", "01zkghx44"),
        ("01ZKGHX44", "01zkghx44"),
        ("x", None),
        (None, None),
    ],
)
def test_normalise_ror(value: str | None, expected: str | None) -> None:
    assert normalise_ror(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2101.00001", "2101.00001"),
        ("arXiv:2101.00001v3", "2101.00001"),
        ("https://arxiv.org/abs/2101.00001v2", "2101.00001"),
        ("http://arxiv.org/pdf/2101.00001.pdf", "2101.00001"),
        ("10.48550/arxiv.2101.00001", "2101.00001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("https://arxiv.org/abs/math.AG/0601001", "math.AG/0601001"),
        ("https://example.org/2101.00001", None),
        (None, None),
    ],
)
def test_normalise_arxiv_id(value: str | None, expected: str | None) -> None:
    assert normalise_arxiv_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("en", "en"), ("EN", "en"), ("English", "en"), ("eng", "en"), ("Klingon", None), (None, None)],
)
def test_normalise_language(value: str | None, expected: str | None) -> None:
    assert normalise_language(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2020, 2020),
        ("2020", 2020),
        ("2020/05/01/", 2020),
        ("May 1999", 1999),
        ("n.d.", None),
        (True, None),
        (None, None),
    ],
)
def test_parse_year(value: object, expected: int | None) -> None:
    assert parse_year(value) == expected
