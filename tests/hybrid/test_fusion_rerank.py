"""Fusion arithmetic against hand-computed values; the sentence reranker; hybrid RANK."""

from __future__ import annotations

import pytest

from nomosx.config import PipelineSettings, RetrievalSettings
from nomosx.models import Source
from nomosx.pipeline.rank import RelevanceRanker
from nomosx.retrieval.fusion import fuse, reciprocal_rank_fusion, weighted_sum
from nomosx.retrieval.rerank import SentenceReranker
from nomosx.testing.embedders import HashingEmbedder


def test_rrf_hand_computed() -> None:
    lexical = {"a": 9.0, "b": 5.0, "c": 1.0}
    dense = {"b": 0.9, "d": 0.8, "a": 0.1}
    fused = reciprocal_rank_fusion([lexical, dense], [1.0, 1.0], k=60)
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63)
    assert fused["d"] == pytest.approx(1 / 62)
    assert max(fused, key=fused.__getitem__) == "b"


def test_rrf_weights_and_zero_weight_run() -> None:
    fused = reciprocal_rank_fusion([{"a": 1.0}, {"b": 1.0}], [0.25, 0.0], k=1)
    assert fused == {"a": pytest.approx(0.25 / 2)}


def test_rrf_ties_break_by_key() -> None:
    fused = reciprocal_rank_fusion([{"b": 1.0, "a": 1.0}], [1.0], k=0)
    assert fused == {"a": 1.0, "b": 0.5}


def test_weighted_sum_normalises_each_run() -> None:
    fused = weighted_sum([{"a": 10.0, "b": 20.0, "c": 15.0}, {"a": 1.0, "b": 0.0}], [0.5, 0.5])
    assert fused == {"a": pytest.approx(0.5), "b": pytest.approx(0.5), "c": pytest.approx(0.25)}
    # a run with one distinct value counts fully
    assert weighted_sum([{"x": 3.0}], [2.0]) == {"x": 2.0}


def test_fuse_refuses_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse([{"a": 1.0}], [1.0], "max")


async def test_sentence_reranker_scores_the_best_sentence() -> None:
    reranker = SentenceReranker(HashingEmbedder(256))
    scores = await reranker.score(
        "carbon tax reduces emissions",
        [
            ("k1", "Energy policy", "Many topics were studied. A carbon tax reduces emissions."),
            (
                "k2",
                "Energy policy",
                "Many topics were studied. Subsidies were discussed at length.",
            ),
        ],
    )
    assert scores[0] > scores[1]
    assert await reranker.score("q", []) == []


def _source(key: str, title: str, abstract: str) -> Source:
    return Source(key=key, provider="library", title=title, abstract=abstract)


SOURCES = [
    _source("lex", "Carbon pricing", "A carbon tax and its effect on emissions in Sweden."),
    _source("sem", "Levies on fossil fuel", "Carbon tax emissions fall after the levy."),
    _source("off", "Bird migration", "Songbirds migrate south in autumn."),
]


async def test_dense_similarity_admits_sources_and_is_reported() -> None:
    retrieval = RetrievalSettings(rerank=False, min_similarity=0.2)
    ranker = RelevanceRanker(PipelineSettings(), retrieval=retrieval, embedder=HashingEmbedder(256))
    ranked = await ranker.rank("carbon tax emissions", SOURCES, 10)
    keys = [r.source.key for r in ranked]
    assert "off" not in keys and set(keys) == {"lex", "sem"}
    assert all(r.dense is not None and r.dense > 0.2 for r in ranked)
    assert max(r.relevance for r in ranked) == 1.0


async def test_switching_dense_off_is_lexical_only() -> None:
    embedder = HashingEmbedder(256)
    retrieval = RetrievalSettings(dense=False, rerank=False)
    ranker = RelevanceRanker(PipelineSettings(), retrieval=retrieval, embedder=embedder)
    ranked = await ranker.rank("carbon tax emissions", SOURCES, 10)
    assert embedder.calls == 0
    assert all(r.dense is None for r in ranked)


async def test_reranker_reorders_only_the_top() -> None:
    embedder = HashingEmbedder(256)
    retrieval = RetrievalSettings(rerank=True, rerank_top=2, rerank_weight=1.0, min_similarity=-1.0)
    ranker = RelevanceRanker(
        PipelineSettings(),
        retrieval=retrieval,
        embedder=embedder,
        reranker=SentenceReranker(embedder),
    )
    ordered = await ranker.relevance("carbon tax emissions", SOURCES)
    assert [s.key for s in ordered][-1] == "off"
    ranked = await ranker.rank("carbon tax emissions", SOURCES, 10)
    assert sum(r.rerank is not None for r in ranked) == 2
