from __future__ import annotations

from nomosx.sources.scores import novelty_scores, quality_score
from tests.factories import make_source


def test_quality_rewards_citations_reviews_and_completeness() -> None:
    base = make_source(citation_count=0, open_access=False, type="article", year=2020)
    cited = base.model_copy(update={"citation_count": 1000})
    review = base.model_copy(update={"type": "review"})
    bare = base.model_copy(update={"doi": None, "abstract": None, "authors": [], "venue": None})
    assert quality_score(cited, this_year=2026) > quality_score(base, this_year=2026)
    assert quality_score(review, this_year=2026) > quality_score(base, this_year=2026)
    assert quality_score(bare, this_year=2026) < quality_score(base, this_year=2026)
    assert 0.0 <= quality_score(bare, this_year=2026) <= 1.0


def test_unknown_values_are_neutral_not_best() -> None:
    known_new = make_source(year=2026, citation_count=5)
    unknown = make_source(year=None, citation_count=None, open_access=None, type=None)
    assert quality_score(unknown, this_year=2026) < quality_score(known_new, this_year=2026)


def test_missing_year_is_not_new() -> None:
    sources = [make_source(year=2000), make_source(year=None), make_source(year=2020)]
    assert novelty_scores(sources) == [0.0, 0.0, 1.0]
    assert novelty_scores([make_source(year=None)]) == [0.0]
    assert novelty_scores([make_source(year=2010), make_source(year=2010)]) == [1.0, 1.0]
