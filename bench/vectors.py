"""Benchmark: the vector store (``nomosx.vectors``) on Qdrant local mode, and on a server.

    .venv/bin/python bench/vectors.py [--sizes 5000,100000] [--dim 384] [--queries 50]
                                      [--qdrant-url http://127.0.0.1:6333]

For each size: random unit vectors (seeded) with a year (35 values), a provider (1 % of
them "rare") and an open-access flag, stored through ``QdrantVectorStore``. Measured:

* upsert throughput, in memory and on disk (in batches of 512; on disk with the store's
  WAL tuning, and without it on the first 5,000 points for comparison);
* search latency p50/p99 for k = 10 through the store: no filter, a year range (about
  17 % of the points), a rare provider (1 %: the filter that local mode cannot answer by
  over-fetching), and the year range filtered by Qdrant itself (``post_filter=False``,
  what local mode does without the store's over-fetching), next to numpy's brute force
  over the same matrix (``X @ q`` and ``argpartition``) as the floor of an exact search;
* reopening the on-disk folder in a fresh process: time to open (qdrant-client loads
  every point into memory), the resident memory it adds, a search there (the reloaded
  matrix is float64), and the folder's size.

numpy's OpenBLAS runs a matrix-vector product on every core: on a busy 2-core machine
that waits for a scheduler tick (about 8 ms a search); ``OPENBLAS_NUM_THREADS=1`` makes
the figures steady.

Slow configurations stop after 5 s of queries (at least 3). With ``--qdrant-url`` the
same upserts and searches run against that server, in a collection deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from nomosx.sources.base import SearchFilters
from nomosx.vectors import QdrantVectorStore, VectorPoint
from nomosx.vectors import qdrant as qdrant_module

PROVIDERS = ("openalex", "crossref", "arxiv", "library")
YEAR_RANGE = SearchFilters(year_from=2010, year_to=2015)
RARE = SearchFilters(providers=("rare",))
BUDGET_S = 5.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def data(n: int, dim: int) -> tuple[np.ndarray, list[VectorPoint]]:
    rng = np.random.default_rng(42)
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    points = [
        VectorPoint(
            key=f"openalex:W{i}",
            vector=matrix[i],
            year=1990 + i % 35,
            provider="rare" if i % 100 == 0 else PROVIDERS[i % 4],
            type="article" if i % 5 else "preprint",
            open_access=bool(i % 2),
        )
        for i in range(n)
    ]
    return matrix, points


async def latencies(
    search: Callable[[np.ndarray], Awaitable[object]], queries: np.ndarray
) -> list[float]:
    await search(queries[0])  # warm
    out: list[float] = []
    started = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        await search(q)
        out.append((time.perf_counter() - t0) * 1000)
        if len(out) >= 3 and time.perf_counter() - started > BUDGET_S:
            break
    return out


def row(label: str, samples: list[float]) -> None:
    print(
        f"  {label:44} p50 {pct(samples, 0.5):9.2f} ms  p99 {pct(samples, 0.99):9.2f} ms"
        f"  ({len(samples)} queries)"
    )


async def upsert_rate(store: QdrantVectorStore, points: list[VectorPoint], dim: int) -> float:
    await store.ensure(dim)
    t0 = time.perf_counter()
    await store.upsert(points)
    return len(points) / (time.perf_counter() - t0)


async def searches(store: QdrantVectorStore, queries: np.ndarray, local: bool) -> None:
    row("no filter", await latencies(lambda q: store.search(q, 10), queries))
    year = await latencies(lambda q: store.search(q, 10, YEAR_RANGE), queries)
    row("year 2010-2015 (17 %)", year)
    row("provider rare (1 %)", await latencies(lambda q: store.search(q, 10, RARE), queries))
    if local:
        store._post_filter = False
        row(
            "year 2010-2015, filtered by Qdrant local",
            await latencies(lambda q: store.search(q, 10, YEAR_RANGE), queries),
        )
        store._post_filter = True


async def bench_size(n: int, dim: int, n_queries: int, url: str | None) -> None:
    matrix, points = data(n, dim)
    queries = np.random.default_rng(7).standard_normal((n_queries, dim)).astype(np.float32)
    print(f"\n== {n:,} points, {dim} dimensions")

    def brute(q: np.ndarray) -> np.ndarray:
        scores = matrix @ q
        top = np.argpartition(-scores, 10)[:10]
        ordered: np.ndarray = top[np.argsort(-scores[top])]
        return ordered

    async def numpy_search(q: np.ndarray) -> object:
        return brute(q)

    row("numpy brute force (the floor), no filter", await latencies(numpy_search, queries))

    async with await QdrantVectorStore.memory("bench") as store:
        rate = await upsert_rate(store, points, dim)
        print(f"  {'upsert, in memory':44} {rate:9,.0f} points/s")
        await searches(store, queries, local=True)

    with tempfile.TemporaryDirectory(prefix="nomosx-vectors-") as tmp:
        folder = Path(tmp) / "tuned"
        async with await QdrantVectorStore.local(folder, "bench") as store:
            rate = await upsert_rate(store, points, dim)
        print(f"  {'upsert, on disk (WAL, synchronous=NORMAL)':44} {rate:9,.0f} points/s")

        tune = qdrant_module._tune_local
        qdrant_module._tune_local = lambda client: None
        try:
            async with await QdrantVectorStore.local(Path(tmp) / "plain", "bench") as store:
                rate = await upsert_rate(store, points[:5000], dim)
        finally:
            qdrant_module._tune_local = tune
        label = f"upsert, on disk untuned ({min(n, 5000):,} points)"
        print(f"  {label:44} {rate:9,.0f} points/s")

        print(f"  {'folder size':44} {folder_mb(folder):9,.0f} MB")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--reopen",
            str(folder),
            "--dim",
            str(dim),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await child.communicate()
        assert child.returncode == 0, child.returncode
        reopened = json.loads(out)
        assert reopened["count"] == n, reopened
        print(f"  {'reopen in a new process':44} {reopened['open_s']:9.2f} s")
        print(f"  {'  memory it adds (RSS)':44} {reopened['rss_added_mb']:9,.0f} MB")
        row("  then search, no filter", reopened["search"])

    if url:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        store = await QdrantVectorStore.server(url, name)
        try:
            rate = await upsert_rate(store, points, dim)
            print(f"  {'upsert, server ' + url:44} {rate:9,.0f} points/s")
            await asyncio.sleep(2)  # let the server build its index
            await searches(store, queries, local=False)
        finally:
            await store._client.delete_collection(name)
            await store.aclose()


async def reopen(folder: Path, dim: int) -> None:
    logging.getLogger("nomosx.vectors").setLevel(logging.ERROR)  # the large-folder warning
    before = rss_mb()
    t0 = time.perf_counter()
    store = await QdrantVectorStore.local(folder, "bench")
    count = await store.count()
    opened = time.perf_counter() - t0
    added = rss_mb() - before
    queries = np.random.default_rng(7).standard_normal((20, dim)).astype(np.float32)
    search = await latencies(lambda q: store.search(q, 10), queries)
    result = {"open_s": opened, "rss_added_mb": added, "count": count, "search": search}
    await store.aclose()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,100000", help="comma-separated point counts")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--qdrant-url", default=None, help="also measure this Qdrant server")
    parser.add_argument("--reopen", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reopen is not None:
        asyncio.run(reopen(args.reopen, args.dim))
        return
    for n in (int(s) for s in args.sizes.split(",")):
        asyncio.run(bench_size(n, args.dim, args.queries, args.qdrant_url))
    print(f"\npeak RSS of this process: {rss_peak_mb():,.0f} MB")


def rss_peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
