"""Retrieval evaluation: each configuration of NomosX's retrieval and ranking on a
benchmark, with nDCG@10, Recall@100, MRR@10, latency per query, index build time and
memory.

Configurations (``CONFIGS``), each a switch of ``RetrievalSettings`` over the same
indexes, so one run measures them side by side:

- ``bm25``: the lexical index's top 100;
- ``dense``: the vector store's top 100 for the query's embedding;
- ``hybrid``: both lists fused by RANK's relevance (lexical + dense, no reranker);
- ``hybrid+rerank``: the same, the top reordered by the reranker;
- ``hybrid+rerank+rank``: the full RANK stage (quality, novelty and diversity too);
- ``bm25+rank``: RANK on the lexical candidates only.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nomosx.config import PipelineSettings, RetrievalSettings
from nomosx.embed.base import Embedder, EmbeddingKind, Vectors
from nomosx.evaluation.beir import Benchmark
from nomosx.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from nomosx.models import Source
from nomosx.pipeline.rank import RelevanceRanker, embedding_text
from nomosx.retrieval.rerank import SentenceReranker
from nomosx.search.lexical import LexicalIndex
from nomosx.vectors.base import VectorPoint, VectorStore

CONFIGS = ("bm25", "dense", "hybrid", "hybrid+rerank", "hybrid+rerank+rank", "bm25+rank")
LEXICAL_ONLY = ("bm25", "bm25+rank")
DEPTH = 100


@dataclass(frozen=True, slots=True)
class Result:
    config: str
    queries: int
    ndcg_10: float
    recall_100: float
    mrr_10: float
    p50_ms: float
    p95_ms: float
    build_s: float  # building the indexes this configuration reads
    rss_mb: float  # the process's peak resident memory after the configuration ran


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class _Stats:
    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    async def get(self) -> LexicalIndex:
        return self.index


class _CorpusVectors:
    """The corpus' embeddings computed once; other texts (queries, sentences) go to the
    model, remembered so that every configuration pays for a text once."""

    def __init__(self, inner: Embedder, known: dict[str, np.ndarray]) -> None:
        self.inner = inner
        self.known = known
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def dim(self) -> int:
        return self.inner.dim

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo: list[int] = []
        for i, text in enumerate(texts):
            hit = self.known.get(text) if kind == "document" else None
            hit = hit if hit is not None else self._memo.get((kind, text))
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        if todo:
            unique = list(dict.fromkeys(texts[i] for i in todo))
            fresh = await self.inner.embed(unique, kind=kind)
            for text, vector in zip(unique, fresh, strict=True):
                self._memo[(kind, text)] = vector
            for i in todo:
                out[i] = self._memo[(kind, texts[i])]
        return out


def _settings(config: str, base: RetrievalSettings) -> RetrievalSettings:
    return base.model_copy(
        update={
            "dense": config not in LEXICAL_ONLY,
            "rerank": "rerank" in config,
            "lexical": config != "dense",
        }
    )


async def evaluate(
    bench: Benchmark,
    configs: Sequence[str] = ("bm25", "bm25+rank"),
    *,
    embedder: Embedder | None = None,
    vector_store: VectorStore | None = None,
    retrieval: RetrievalSettings | None = None,
    on_query: Callable[[], None] | None = None,
    on_stage: Callable[[str, int, int], None] | None = None,
) -> list[Result]:
    """Measure ``configs``; dense ones need ``embedder`` and ``vector_store`` (empty)."""
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    dense_wanted = any(c not in LEXICAL_ONLY for c in configs)
    if dense_wanted and (embedder is None or vector_store is None):
        raise ValueError("dense configurations need an embedder and a vector store")
    base = retrieval or RetrievalSettings()
    started = time.perf_counter()
    index = await asyncio.to_thread(
        LexicalIndex.build,
        [(doc_id, f"{title}\n{text}") for doc_id, (title, text) in bench.corpus.items()],
    )
    lexical_s = time.perf_counter() - started
    sources = {
        doc_id: Source(key=doc_id, provider="benchmark", title=title or "(untitled)", abstract=text)
        for doc_id, (title, text) in bench.corpus.items()
    }
    dense_s = 0.0
    model: Embedder | None = None
    if dense_wanted:
        assert embedder is not None
        assert vector_store is not None
        model, dense_s = await _index_dense(bench, sources, embedder, vector_store, on_stage)
    results = []
    for config in configs:
        settings = _settings(config, base)
        reranker = SentenceReranker(model) if model is not None and settings.rerank else None
        ranker = RelevanceRanker(
            PipelineSettings(),
            _Stats(index),
            retrieval=settings,
            embedder=model if settings.dense else None,
            reranker=reranker,
        )
        ndcg, recall, mrr, latencies = [], [], [], []
        for query_id, relevant in bench.qrels.items():
            query = bench.queries[query_id]
            t0 = time.perf_counter()
            hits = await _run(config, query, index, ranker, sources, model, vector_store)
            latencies.append((time.perf_counter() - t0) * 1000)
            ndcg.append(ndcg_at_k(hits, relevant, 10))
            recall.append(recall_at_k(hits, relevant, 100))
            mrr.append(mrr_at_k(hits, relevant, 10))
            if on_query is not None:
                on_query()
        latencies.sort()
        results.append(
            Result(
                config=config,
                queries=len(bench.qrels),
                ndcg_10=statistics.fmean(ndcg),
                recall_100=statistics.fmean(recall),
                mrr_10=statistics.fmean(mrr),
                p50_ms=latencies[len(latencies) // 2],
                p95_ms=latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
                build_s=lexical_s + (0.0 if config in LEXICAL_ONLY else dense_s),
                rss_mb=_peak_rss_mb(),
            )
        )
    return results


async def _index_dense(
    bench: Benchmark,
    sources: dict[str, Source],
    embedder: Embedder,
    store: VectorStore,
    on_stage: Callable[[str, int, int], None] | None,
) -> tuple[Embedder, float]:
    started = time.perf_counter()
    keys = list(sources)
    texts = [embedding_text(sources[k]) for k in keys]
    await store.ensure(embedder.dim)
    known: dict[str, np.ndarray] = {}
    step = 256
    for start in range(0, len(keys), step):
        chunk = texts[start : start + step]
        vectors = await embedder.embed(chunk, kind="document")
        await store.upsert(
            [
                VectorPoint(
                    key=k, vector=v, year=None, provider="benchmark", type=None, open_access=None
                )
                for k, v in zip(keys[start : start + step], vectors, strict=True)
            ]
        )
        known.update(zip(chunk, vectors, strict=True))
        if on_stage is not None:
            on_stage("embedding the corpus", min(start + step, len(keys)), len(keys))
    return _CorpusVectors(embedder, known), time.perf_counter() - started


async def _run(
    config: str,
    query: str,
    index: LexicalIndex,
    ranker: RelevanceRanker,
    sources: dict[str, Source],
    model: Embedder | None,
    store: VectorStore | None,
) -> list[str]:
    lexical = [h.key for h in index.search(query, DEPTH)] if config != "dense" else []
    if config == "bm25":
        return lexical
    dense: list[str] = []
    if config not in LEXICAL_ONLY:
        assert model is not None
        assert store is not None
        vector = await model.embed([query], kind="query")
        dense = [h.key for h in await store.search(vector[0], DEPTH)]
        if config == "dense":
            return dense
    candidates = [sources[k] for k in dict.fromkeys([*lexical, *dense])]
    if config.endswith("+rank"):
        return [r.source.key for r in await ranker.rank(query, candidates, DEPTH)]
    return [s.key for s in await ranker.relevance(query, candidates)][:DEPTH]
