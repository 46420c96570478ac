"""RANK: relevance to the question first, then quality, novelty and diversity.

A source enters the ranking only if it is related to the question: it must match a
share of the question's terms weighted by idf (``min_term_coverage``) and score at least
``min_relevance`` of the best BM25 score. Quality and novelty only order the sources that
pass; they can never bring an unrelated source in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from nomosx.config import PipelineSettings
from nomosx.models import ScoredSource, Source
from nomosx.search.lexical import K1, B
from nomosx.search.stats import LocalStatistics, TermStatistics
from nomosx.sources.scores import novelty_scores, quality_score
from nomosx.text.tokens import terms


class StatisticsSource(Protocol):
    async def get(self) -> TermStatistics: ...


def bm25(
    query: Sequence[str], doc: Sequence[str], stats: TermStatistics
) -> tuple[float, list[str]]:
    """BM25 of one document, and the query terms it matched."""
    tf = Counter(doc)
    norm = K1 * (1 - B + B * len(doc) / (stats.avgdl or 1.0))
    score = 0.0
    matched = []
    for term in query:
        freq = tf.get(term, 0)
        if freq:
            matched.append(term)
            score += stats.idf(term) * freq * (K1 + 1) / (freq + norm)
    return score, matched


class RelevanceRanker:
    def __init__(
        self,
        settings: PipelineSettings,
        statistics: StatisticsSource | None = None,
        *,
        this_year: int | None = None,
    ) -> None:
        self.settings = settings
        self.statistics = statistics
        self.this_year = this_year

    async def rank(
        self, question: str, sources: Sequence[Source], limit: int
    ) -> list[ScoredSource]:
        query = list(dict.fromkeys(terms(question)))
        if not query or not sources:
            return []
        docs = [terms(s.text) for s in sources]
        stats: TermStatistics = (
            await self.statistics.get() if self.statistics is not None else LocalStatistics(docs)
        )
        weights = {t: stats.idf(t) for t in query}
        mass = sum(weights.values()) or 1.0
        related: list[tuple[Source, float, list[str]]] = []
        for source, doc in zip(sources, docs, strict=True):
            score, matched = bm25(query, doc, stats)
            coverage = sum(weights[t] for t in matched) / mass
            if score > 0 and coverage >= self.settings.min_term_coverage:
                related.append((source, score, matched))
        if not related:
            return []
        best = max(score for _, score, _ in related)
        related = [r for r in related if r[1] >= self.settings.min_relevance * best]
        novelty = novelty_scores([s for s, _, _ in related])
        scored = []
        for (source, score, matched), new in zip(related, novelty, strict=True):
            relevance = score / best
            quality = quality_score(source, this_year=self.this_year)
            scored.append(
                ScoredSource(
                    source=source.model_copy(
                        update={"quality_score": quality, "novelty_score": new}
                    ),
                    relevance=round(relevance, 4),
                    lexical=round(score, 4),
                    quality=quality,
                    novelty=round(new, 4),
                    score=round(
                        self.settings.relevance_weight * relevance
                        + self.settings.quality_weight * quality
                        + self.settings.novelty_weight * new,
                        4,
                    ),
                    matched_terms=matched,
                )
            )
        scored.sort(key=lambda s: (-s.score, -s.relevance, s.source.key))
        return self._diversify(scored, limit)

    def _diversify(self, scored: list[ScoredSource], limit: int) -> list[ScoredSource]:
        per_year: Counter[int] = Counter()
        per_venue: Counter[str] = Counter()
        chosen: list[ScoredSource] = []
        for item in scored:
            year, venue = item.source.year, (item.source.venue or "").lower()
            if year is not None and per_year[year] >= self.settings.max_per_year:
                continue
            if venue and per_venue[venue] >= self.settings.max_per_venue:
                continue
            chosen.append(item)
            if year is not None:
                per_year[year] += 1
            if venue:
                per_venue[venue] += 1
            if len(chosen) == limit:
                break
        return chosen
