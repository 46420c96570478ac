from __future__ import annotations

from nomosx.config import PipelineSettings
from nomosx.pipeline.rank import RelevanceRanker
from nomosx.search.lexical import LexicalIndex
from tests.factories import make_source

QUESTION = "Does a carbon tax reduce greenhouse gas emissions?"


def _library():  # type: ignore[no-untyped-def]
    on_topic = [
        make_source(
            f"doi:10.1/tax{i}",
            title=f"Carbon tax and greenhouse gas emissions, study {i}",
            abstract="A carbon tax reduced greenhouse gas emissions by 5 percent.",
            year=2010 + i,
            citation_count=3,
            venue=f"Venue {i}",
        )
        for i in range(5)
    ]
    # the best "quality" in the set, but about something else entirely
    star = make_source(
        "doi:10.1/star",
        title="A landmark meta-analysis of statin therapy",
        abstract="Statins reduce cardiovascular mortality in a meta-analysis of 90,000 patients.",
        year=2024,
        citation_count=100_000,
        open_access=True,
        type="review",
    )
    return on_topic, star


class _Stats:
    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    async def get(self) -> LexicalIndex:
        return self.index


async def test_unrelated_high_quality_source_is_never_ranked_in() -> None:
    on_topic, star = _library()
    ranker = RelevanceRanker(PipelineSettings(), this_year=2026)
    ranked = await ranker.rank(QUESTION, [star, *on_topic], limit=10)
    keys = [r.source.key for r in ranked]
    assert "doi:10.1/star" not in keys  # it shares only "reduce" with the question
    assert len(ranked) == 5
    assert all(r.relevance > 0 and r.matched_terms for r in ranked)


async def test_even_alone_an_unrelated_source_is_not_returned() -> None:
    _, star = _library()
    ranker = RelevanceRanker(PipelineSettings())
    assert await ranker.rank(QUESTION, [star], limit=10) == []
    assert await ranker.rank("", [star], limit=10) == []
    assert await ranker.rank(QUESTION, [], limit=10) == []


async def test_quality_orders_equally_relevant_sources() -> None:
    low = make_source(
        "doi:10.1/low",
        title="Carbon tax and greenhouse gas emissions",
        abstract="A carbon tax reduced emissions.",
        citation_count=0,
        open_access=False,
        year=2000,
    )
    high = make_source(
        "doi:10.1/high",
        title="Carbon tax and greenhouse gas emissions",
        abstract="A carbon tax reduced emissions.",
        citation_count=5000,
        open_access=True,
        year=2020,
    )
    ranker = RelevanceRanker(PipelineSettings(), this_year=2026)
    ranked = await ranker.rank(QUESTION, [low, high], limit=10)
    assert [r.source.key for r in ranked] == ["doi:10.1/high", "doi:10.1/low"]
    assert ranked[0].relevance == ranked[1].relevance == 1.0
    assert ranked[0].quality > ranked[1].quality
    assert ranked[0].source.quality_score == ranked[0].quality
    assert ranked[0].novelty == 1.0 and ranked[1].novelty == 0.0


async def test_relevance_dominates_quality() -> None:
    strong = make_source(
        "doi:10.1/strong",
        title="Carbon tax cuts greenhouse gas emissions",
        abstract="Carbon tax greenhouse gas emissions fell after the carbon tax.",
        citation_count=0,
        open_access=False,
    )
    weak = make_source(
        "doi:10.1/weak",
        title="Emissions of greenhouse gas from farms",
        abstract="Greenhouse gas emissions of cattle; a tax was discussed.",
        citation_count=10_000,
        type="review",
    )
    ranker = RelevanceRanker(PipelineSettings())
    ranked = await ranker.rank(QUESTION, [weak, strong], limit=10)
    assert ranked[0].source.key == "doi:10.1/strong"


async def test_diversity_limits_per_year_and_venue() -> None:
    same_year = [
        make_source(
            f"doi:10.1/y{i}",
            title="Carbon tax and greenhouse gas emissions",
            abstract="A carbon tax reduced emissions.",
            year=2015,
            venue=f"V{i}",
        )
        for i in range(6)
    ]
    same_venue = [
        make_source(
            f"doi:10.1/v{i}",
            title="Carbon tax and greenhouse gas emissions",
            abstract="A carbon tax reduced emissions.",
            year=2000 + i,
            venue="Energy Policy",
        )
        for i in range(6)
    ]
    settings = PipelineSettings(max_per_year=2, max_per_venue=3)
    ranked = await RelevanceRanker(settings).rank(QUESTION, same_year + same_venue, limit=20)
    years = [r.source.year for r in ranked]
    venues = [r.source.venue for r in ranked]
    assert years.count(2015) == 2
    assert venues.count("Energy Policy") == 3
    ranked = await RelevanceRanker(settings).rank(QUESTION, same_year + same_venue, limit=3)
    assert len(ranked) == 3


async def test_library_statistics_are_used_when_given() -> None:
    on_topic, star = _library()
    index = LexicalIndex.build([(s.key, s.text) for s in [*on_topic, star]])
    ranker = RelevanceRanker(PipelineSettings(), _Stats(index))
    ranked = await ranker.rank(QUESTION, on_topic, limit=3)
    assert len(ranked) == 3
    assert ranked[0].lexical > 0
