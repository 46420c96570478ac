"""Retrieval evaluation: each configuration of NomosX's ranking on a benchmark, with
nDCG@10, Recall@100, MRR@10, latency per query and index build time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nomosx.config import PipelineSettings
from nomosx.evaluation.beir import Benchmark
from nomosx.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from nomosx.models import Source
from nomosx.pipeline.rank import RelevanceRanker
from nomosx.search.lexical import LexicalIndex

CONFIGS = ("bm25", "bm25+rank")


@dataclass(frozen=True, slots=True)
class Result:
    config: str
    queries: int
    ndcg_10: float
    recall_100: float
    mrr_10: float
    p50_ms: float
    p95_ms: float
    build_s: float


class _Stats:
    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    async def get(self) -> LexicalIndex:
        return self.index


async def evaluate(
    bench: Benchmark,
    configs: Sequence[str] = CONFIGS,
    *,
    on_query: Callable[[], None] | None = None,
) -> list[Result]:
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    started = time.perf_counter()
    index = LexicalIndex.build(
        (doc_id, f"{title}\n{text}") for doc_id, (title, text) in bench.corpus.items()
    )
    build_s = time.perf_counter() - started
    sources = {
        doc_id: Source(key=doc_id, provider="benchmark", title=title or "(untitled)", abstract=text)
        for doc_id, (title, text) in bench.corpus.items()
    }
    ranker = RelevanceRanker(PipelineSettings(), _Stats(index))
    results = []
    for config in configs:
        ndcg, recall, mrr, latencies = [], [], [], []
        for query_id, relevant in bench.qrels.items():
            query = bench.queries[query_id]
            t0 = time.perf_counter()
            hits = [h.key for h in index.search(query, 100)]
            if config == "bm25+rank":
                ranked = await ranker.rank(query, [sources[k] for k in hits], 100)
                hits = [r.source.key for r in ranked]
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
                build_s=build_s,
            )
        )
    return results
