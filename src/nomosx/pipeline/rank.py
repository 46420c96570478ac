"""RANK: relevance to the question first, then quality, novelty and diversity.

Relevance is hybrid. Each candidate gets a BM25 score against the library's statistics and,
when an embedder is configured, the cosine of its embedding and the question's. The two
are fused (reciprocal rank fusion or a weighted sum, ``RetrievalSettings``); a reranker
then reorders the top of the fusion. A source enters the ranking only if it is related to
the question: it matches a share of the question's terms weighted by idf
(``min_term_coverage``) with a BM25 score of at least ``min_relevance`` of the best, or
its cosine reaches ``min_similarity``. Quality and novelty only order the sources that
pass; they can never bring an unrelated source in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from nomosx.config import PipelineSettings, RetrievalSettings
from nomosx.embed.base import Embedder
from nomosx.models import ScoredSource, Source
from nomosx.retrieval.fusion import fuse, reciprocal_rank_fusion
from nomosx.retrieval.rerank import Reranker
from nomosx.search.lexical import K1, B
from nomosx.search.stats import LocalStatistics, TermStatistics
from nomosx.sources.scores import novelty_scores, quality_score
from nomosx.text.tokens import terms


class StatisticsSource(Protocol):
    async def get(self) -> TermStatistics: ...


def bm25(
    query: Sequence[str],
    doc: Sequence[str],
    stats: TermStatistics,
    tf: Mapping[str, int] | None = None,
) -> tuple[float, list[str]]:
    """BM25 of one document, and the query terms it matched (``tf``: its term counts,
    when already known)."""
    if tf is None:
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


@lru_cache(maxsize=20_000)
def _doc_terms(text: str) -> tuple[tuple[str, ...], Mapping[str, int]]:
    """A candidate's terms and their counts; the same sources come back question after
    question, so they are kept (bounded)."""
    doc = tuple(terms(text))
    return doc, Counter(doc)


def embedding_text(source: Source) -> str:
    """What a source's embedding is computed from (the same at ingest and at RANK)."""
    return f"{source.title}\n{source.abstract or ''}".strip()


@dataclass(slots=True)
class _Candidate:
    source: Source
    lexical: float = 0.0
    matched: list[str] = field(default_factory=list)
    coverage: float = 0.0
    dense: float | None = None
    rerank: float | None = None
    relevance: float = 0.0


class RelevanceRanker:
    def __init__(
        self,
        settings: PipelineSettings,
        statistics: StatisticsSource | None = None,
        *,
        retrieval: RetrievalSettings | None = None,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        this_year: int | None = None,
    ) -> None:
        self.settings = settings
        self.retrieval = retrieval or RetrievalSettings()
        self.statistics = statistics
        self.embedder = embedder if self.retrieval.dense else None
        self.reranker = reranker if self.retrieval.rerank else None
        self.this_year = this_year

    async def relevance(self, question: str, sources: Sequence[Source]) -> list[Source]:
        """The related sources ordered by relevance alone (no quality, novelty, diversity)."""
        return [c.source for c in await self._related(question, sources)]

    async def rank(
        self, question: str, sources: Sequence[Source], limit: int
    ) -> list[ScoredSource]:
        related = await self._related(question, sources)
        if not related:
            return []
        novelty = novelty_scores([c.source for c in related])
        scored = []
        for cand, new in zip(related, novelty, strict=True):
            quality = quality_score(cand.source, this_year=self.this_year)
            scored.append(
                ScoredSource(
                    source=cand.source.model_copy(
                        update={"quality_score": quality, "novelty_score": new}
                    ),
                    relevance=round(cand.relevance, 4),
                    lexical=round(cand.lexical, 4),
                    dense=None if cand.dense is None else round(cand.dense, 4),
                    rerank=None if cand.rerank is None else round(cand.rerank, 4),
                    quality=quality,
                    novelty=round(new, 4),
                    score=round(
                        self.settings.relevance_weight * cand.relevance
                        + self.settings.quality_weight * quality
                        + self.settings.novelty_weight * new,
                        4,
                    ),
                    matched_terms=cand.matched,
                )
            )
        scored.sort(key=lambda s: (-s.score, -s.relevance, s.source.key))
        return self._diversify(scored, limit)

    async def _related(self, question: str, sources: Sequence[Source]) -> list[_Candidate]:
        """Related candidates, ``relevance`` set in [0, 1], best first."""
        query = list(dict.fromkeys(terms(question)))
        if not sources or (not query and self.embedder is None):
            return []
        candidates = [_Candidate(s) for s in sources]
        if self.retrieval.lexical and query:
            await self._score_lexical(query, candidates)
        if self.embedder is not None:
            texts = [embedding_text(c.source) for c in candidates]
            question_vector = await self.embedder.embed([question], kind="query")
            vectors = await self.embedder.embed(texts, kind="document")
            for cand, sim in zip(candidates, vectors @ question_vector[0], strict=True):
                cand.dense = float(sim)
        related = [c for c in candidates if self._is_related(c)]
        if not related:
            return []
        if self.retrieval.lexical and self.embedder is not None:
            fused = fuse(
                [
                    {c.source.key: c.lexical for c in related if c.lexical > 0},
                    {c.source.key: c.dense or 0.0 for c in related},
                ],
                [1 - self.retrieval.dense_weight, self.retrieval.dense_weight],
                self.retrieval.fusion,
                k=self.retrieval.rrf_k,
            )
        elif self.embedder is not None:
            fused = {c.source.key: c.dense or 0.0 for c in related}
        else:
            fused = {c.source.key: c.lexical for c in related}
        related.sort(key=lambda c: (-fused.get(c.source.key, 0.0), c.source.key))
        if self.reranker is not None:
            fused = await self._rerank(question, related, fused)
            related.sort(key=lambda c: (-fused.get(c.source.key, 0.0), c.source.key))
        best = max(fused.values(), default=0.0)
        for cand in related:
            value = fused.get(cand.source.key, 0.0)
            cand.relevance = value / best if best > 0 else 0.0
        return related

    async def _score_lexical(self, query: list[str], candidates: list[_Candidate]) -> None:
        parsed = [_doc_terms(c.source.text) for c in candidates]
        docs = [doc for doc, _ in parsed]
        stats: TermStatistics = (
            await self.statistics.get() if self.statistics is not None else LocalStatistics(docs)
        )
        weights = {t: stats.idf(t) for t in query}
        mass = sum(weights.values()) or 1.0
        for cand, (doc, tf) in zip(candidates, parsed, strict=True):
            cand.lexical, cand.matched = bm25(query, doc, stats, tf)
            cand.coverage = sum(weights[t] for t in cand.matched) / mass
        minimum = self.settings.min_term_coverage
        passing = [c.lexical for c in candidates if c.lexical > 0 and c.coverage >= minimum]
        floor = self.settings.min_relevance * max(passing, default=0.0)
        for cand in candidates:
            if cand.lexical < floor:
                cand.coverage = -1.0  # too weak to count as related by its terms

    def _is_related(self, cand: _Candidate) -> bool:
        if cand.lexical > 0 and cand.coverage >= self.settings.min_term_coverage:
            return True
        return cand.dense is not None and cand.dense >= self.retrieval.min_similarity

    async def _rerank(
        self, question: str, related: list[_Candidate], fused: dict[str, float]
    ) -> dict[str, float]:
        """The top ``rerank_top`` reordered by the fusion of their fused and reranker ranks;
        the rest keep their order below them."""
        assert self.reranker is not None
        top = related[: self.retrieval.rerank_top]
        scores = await self.reranker.score(
            question, [(c.source.key, c.source.title, c.source.abstract or "") for c in top]
        )
        for cand, score in zip(top, scores, strict=True):
            cand.rerank = score
        weight = self.retrieval.rerank_weight
        combined = reciprocal_rank_fusion(
            [
                {c.source.key: fused.get(c.source.key, 0.0) for c in top},
                {c.source.key: float(s) for c, s in zip(top, scores, strict=True)},
            ],
            [1 - weight, weight],
            k=self.retrieval.rrf_k,
        )
        # above everything outside the top, and still ordered by relevance inside it
        floor = max((fused.get(c.source.key, 0.0) for c in related[len(top) :]), default=0.0)
        span = max(combined.values(), default=0.0) or 1.0
        result = dict(fused)
        top_best = max((fused.get(c.source.key, 0.0) for c in top), default=0.0)
        for cand in top:
            result[cand.source.key] = floor + (top_best - floor) * combined[cand.source.key] / span
        return result

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


__all__ = ["RelevanceRanker", "bm25", "embedding_text"]
