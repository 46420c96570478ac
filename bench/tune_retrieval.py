"""Tune hybrid retrieval on a training split: a grid over fusion and reranking settings,
each configuration measured by the evaluation harness on the same cached embeddings.

    .venv/bin/python bench/tune_retrieval.py --dataset ../shared/data/scifact --split train

Only ever tune on a training split; the chosen values become ``RetrievalSettings``'
defaults and are then measured once on the held-out split. Embeddings are cached in an
SQLite file (``--cache``), so only the first run pays for them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from pathlib import Path

from nomosx.cache.embedded import EmbeddedCache
from nomosx.config import RetrievalSettings
from nomosx.embed.cached import CachedEmbedder
from nomosx.embed.minilm import MiniLMEmbedder
from nomosx.evaluation.beir import load
from nomosx.evaluation.retrieval import evaluate
from nomosx.vectors.qdrant import QdrantVectorStore


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nomosx-tune-cache.sqlite3"))
    parser.add_argument("--grid", choices=["fusion", "rerank", "gate"], default="fusion")
    args = parser.parse_args()
    bench = load(args.dataset, args.split)
    cache = EmbeddedCache(args.cache, max_bytes=2 * 1024**3)
    embedder = CachedEmbedder(MiniLMEmbedder(), cache)
    base = RetrievalSettings()
    grids = {
        "fusion": [
            ("hybrid", {"fusion": f, "rrf_k": k, "dense_weight": w})
            for f, k, w in itertools.product(["rrf"], [5, 10, 30, 60], [0.4, 0.5])
        ]
        + [("hybrid", {"fusion": "weighted", "dense_weight": w}) for w in (0.4, 0.5)],
        "rerank": [
            ("hybrid+rerank", {"rerank_top": t, "rerank_weight": w})
            for t, w in [(10, 0.5), (20, 0.3), (20, 0.5), (30, 0.5)]
        ],
        "gate": [("hybrid", {"min_similarity": s}) for s in (0.25, 0.3, 0.35, 0.4, 1.0)],
    }
    print(f"{bench.name}/{args.split}: {len(bench.corpus)} docs, {len(bench.qrels)} queries")
    print("| config | settings | nDCG@10 | Recall@100 | MRR@10 | p50 ms |")
    print("|---|---|---|---|---|---|")
    store = await QdrantVectorStore.memory("tune")
    try:
        baseline = await evaluate(bench, ["bm25"], retrieval=base)
        b = baseline[0]
        print(
            f"| bm25 | - | {b.ndcg_10:.4f} | {b.recall_100:.4f} | {b.mrr_10:.4f} | {b.p50_ms:.2f} |"
        )
        for config, update in grids[args.grid]:
            settings = base.model_copy(update=update)
            started = time.perf_counter()
            store = await QdrantVectorStore.memory(f"tune-{time.monotonic_ns()}")
            (r,) = await evaluate(
                bench, [config], embedder=embedder, vector_store=store, retrieval=settings
            )
            await store.aclose()
            print(
                f"| {config} | {update} | {r.ndcg_10:.4f} | {r.recall_100:.4f} | "
                f"{r.mrr_10:.4f} | {r.p50_ms:.2f} | ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    finally:
        await store.aclose()
        await cache.aclose()


if __name__ == "__main__":
    asyncio.run(main())
