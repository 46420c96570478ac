"""Benchmark: the library's lexical index on tantivy, against the bm25s index it replaced.

    .venv/bin/python bench/lexical.py [--scifact /work/shared/data/scifact]
        [--sizes 100000,1000000] [--queries 200] [--peer-rev 9fb76dc] [--peer-max 100000]

The peer is the previous ``nomosx.search.lexical`` (bm25s sparse matrices, rebuilt and
saved whole at each library change), read from git at ``--peer-rev``; it needs ``bm25s``
installed (skipped otherwise). Both tokenise with NomosX's ``terms`` and score BM25 with
k1 = 1.2, b = 0.75.

SciFact (5,183 abstracts; the train claims as queries, k = 100 as ``nomosx eval``): build
time in memory and on disk, query p50/p95, nDCG@10 and Recall@100 on the train qrels.
Then a change of 100 documents: tantivy replaces them by key in the index on disk and
commits; the peer rebuilds and saves everything, as the library did before. The same end
to end through ``LibraryIndex.get()`` on SQLite: the first build from the store, then
``get()`` right after an ingest of 100 sources.

Synthetic libraries (``bench/synthetic.py``: Zipf over 50,000 words, ~150 terms per
document), for each of ``--sizes``: build on disk (the texts are generated beforehand),
size on disk, opening the index, query p50/p95, 100 documents added; the peer's build and
queries up to ``--peer-max`` documents.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from nomosx.evaluation.beir import Benchmark, load
from nomosx.evaluation.metrics import ndcg_at_k, recall_at_k
from nomosx.models import Source
from nomosx.search.lexical import DiskIndex, LexicalIndex
from nomosx.search.library_index import LibraryIndex
from nomosx.store.db import Database
from nomosx.store.repositories import SourceRepository
from nomosx.text.tokens import terms
from synthetic import Corpus  # bench/synthetic.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
PEER_REV = "9fb76dc2f03d3f281252c81952271783f7579712"  # the last bm25s lexical.py
K = 100
ADDED = 100


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def load_peer(rev: str) -> ModuleType | None:
    try:
        code = subprocess.run(
            ["git", "show", f"{rev}:src/nomosx/search/lexical.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no peer: cannot read the old lexical.py from git at {rev}: {exc})")
        return None
    path = Path(tempfile.gettempdir()) / "old_lexical.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_lexical", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_lexical"] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        print(f"(no peer: {exc})")
        return None
    return module


class Table:
    def __init__(self, title: str, peer: bool) -> None:
        self.peer = peer
        print(f"\n== {title}")
        print(f"{'':44} {'bm25s (peer)':>14} {'tantivy':>14}")

    def row(self, label: str, old: float | None, new: float | None, unit: str) -> None:
        def cell(value: float | None) -> str:
            if value is None:
                return f"{'-':>14}"
            if unit == "":
                return f"{value:>14.4f}"
            if unit == "MB":
                return f"{value:>11.1f} MB"
            if value >= 1:
                return f"{value:>12.2f} {unit}"
            return f"{value * 1000:>11.2f} m{unit}"

        print(f"{label:44} {cell(old if self.peer else None)} {cell(new)}")


def query_latencies(
    search: Callable[[str, int], list[Any]], queries: Iterable[str]
) -> tuple[list[float], list[list[str]]]:
    latencies, results = [], []
    for query in queries:
        t0 = time.perf_counter()
        hits = search(query, K)
        latencies.append(time.perf_counter() - t0)
        results.append([h.key for h in hits])
    return latencies, results


def disk_build(folder: Path, documents: Iterable[tuple[str, str]], revision: int) -> DiskIndex:
    disk = DiskIndex.prepare(folder)
    update = disk.writer(build=True)
    batch: list[tuple[str, str]] = []
    for doc in documents:
        batch.append(doc)
        if len(batch) == 2000:
            update.upsert(batch)
            batch = []
    update.upsert(batch)
    update.commit(revision)
    return disk


def disk_add(folder: Path, documents: Sequence[tuple[str, str]], revision: int) -> LexicalIndex:
    disk = DiskIndex.open(folder)
    update = disk.writer()
    update.upsert(documents)
    update.commit(revision)
    return disk.snapshot()


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def scifact(folder: Path, peer: ModuleType | None) -> None:
    bench = load(folder, "train")
    docs = [(doc_id, f"{title}\n{text}") for doc_id, (title, text) in bench.corpus.items()]
    queries = [bench.queries[q] for q in bench.qrels]
    for _, text in docs:
        terms(text)  # both tokenise alike: time them with the stemmer's cache warm
    table = Table(
        f"SciFact: {len(docs):,} documents, {len(queries):,} train queries, k = {K}",
        peer is not None,
    )
    new_build, new = timed(lambda: LexicalIndex.build(docs))
    old_build, old = timed(lambda: peer.LexicalIndex.build(docs)) if peer else (None, None)
    table.row("build, in memory", old_build, new_build, "s")
    with tempfile.TemporaryDirectory() as tmp:
        disk_s, _ = timed(lambda: disk_build(Path(tmp) / "new", docs, 1))
        saved_s = None
        if old is not None:
            saved_s, _ = timed(lambda: old.save(Path(tmp) / "old"))
        table.row(
            "build, on disk (peer: build + save)",
            None if old_build is None or saved_s is None else old_build + saved_s,
            disk_s,
            "s",
        )
        table.row(
            "size on disk",
            folder_mb(Path(tmp) / "old") if old is not None else None,
            folder_mb(Path(tmp) / "new"),
            "MB",
        )
        opened_s, _ = timed(lambda: DiskIndex.open(Path(tmp) / "new").snapshot())
        loaded_s = None
        if peer is not None:
            loaded_s, _ = timed(lambda: peer.LexicalIndex.load(Path(tmp) / "old"))
        table.row("open the saved index", loaded_s, opened_s, "s")

        new_lat, new_runs = query_latencies(new.search, queries)
        old_lat, old_runs = query_latencies(old.search, queries) if old else ([], [])
        table.row("query p50", pct(old_lat, 0.5) if old_lat else None, pct(new_lat, 0.5), "s")
        table.row("query p95", pct(old_lat, 0.95) if old_lat else None, pct(new_lat, 0.95), "s")
        for name, metric, k in (("nDCG@10", ndcg_at_k, 10), ("Recall@100", recall_at_k, 100)):
            scores = [
                statistics.fmean(
                    metric(run, bench.qrels[q], k) for q, run in zip(bench.qrels, runs, strict=True)
                )
                for runs in (old_runs, new_runs)
                if runs
            ]
            table.row(name, scores[0] if old else None, scores[-1], "")
        overlap = [
            len(set(a[:10]) & set(b[:10])) / max(1, len(b[:10]))
            for a, b in zip(old_runs, new_runs, strict=False)
        ]
        if overlap:
            print(f"{'top-10 overlap, peer vs tantivy':44} {statistics.fmean(overlap):>29.3f}")

        added = [(f"new:{key}", text) for key, text in docs[:ADDED]]
        rounds = []
        for r in range(5):
            t0 = time.perf_counter()
            disk_add(Path(tmp) / "new", added, 2 + r)
            rounds.append(time.perf_counter() - t0)
        rebuild = None
        if peer is not None:
            rebuild, _ = timed(
                lambda: peer.LexicalIndex.build(docs + added).save(Path(tmp) / "old2")
            )
        table.row(
            f"{ADDED} documents changed, on disk (median of 5)",
            rebuild,
            statistics.median(rounds),
            "s",
        )
    asyncio.run(library(bench, table, peer))


async def library(bench: Benchmark, table: Table, peer: ModuleType | None) -> None:
    """Through ``LibraryIndex.get()`` on a SQLite store holding SciFact."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await db.migrate()
        repo = SourceRepository(db)
        sources = [
            Source(
                key=f"scifact:{i}", provider="scifact", title=title or "(untitled)", abstract=text
            )
            for i, (title, text) in bench.corpus.items()
        ]
        await repo.upsert_many(sources)
        index = LibraryIndex(repo, Path(tmp) / "index")
        build_s = time.perf_counter()
        await index.get()
        build_s = time.perf_counter() - build_s

        old_build = None
        if peer is not None:
            t0 = time.perf_counter()
            documents: list[tuple[str, str]] = []
            async for batch in repo.iter_texts():
                documents.extend(batch)
            peer.LexicalIndex.build(documents).save(Path(tmp) / "old")
            old_build = time.perf_counter() - t0
        table.row("LibraryIndex: first build from SQLite", old_build, build_s, "s")

        rounds = []
        for r in range(5):
            await repo.upsert_many(
                [
                    Source(
                        key=f"added:{r}:{j}", provider="bench", title=s.title, abstract=s.abstract
                    )
                    for j, s in enumerate(sources[:ADDED])
                ]
            )
            t0 = time.perf_counter()
            lexical = await index.get()
            rounds.append(time.perf_counter() - t0)
        assert len(lexical) == len(sources) + 5 * ADDED
        assert index.builds == 1
        table.row(
            f"LibraryIndex: get() after {ADDED} ingested (median)",
            None if old_build is None else old_build,  # the peer rebuilt at every change
            statistics.median(rounds),
            "s",
        )
        await db.dispose()


def synthetic(sizes: Sequence[int], n_queries: int, peer: ModuleType | None, peer_max: int) -> None:
    corpus = Corpus()
    queries = corpus.queries(n_queries)
    for n in sizes:
        synthetic_size(corpus, n, queries, peer if n <= peer_max else None)


def synthetic_size(corpus: Corpus, n: int, queries: Sequence[str], peer: ModuleType | None) -> None:
    gen_s, texts = timed(lambda: list(corpus.texts(n)))
    table = Table(
        f"synthetic: {n:,} documents, vocabulary {corpus.vocabulary:,} (Zipf s = "
        f"{corpus.exponent}), ~{corpus.length} terms each (generated in {gen_s:.1f} s); "
        f"{len(queries)} queries, k = {K}",
        peer is not None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "idx"
        build_s, _ = timed(lambda: disk_build(folder, texts, 1))
        old, old_build = None, None
        if peer is not None:
            old_build, old = timed(lambda: peer.LexicalIndex.build(texts))
        table.row("build (tantivy: on disk)", old_build, build_s, "s")
        table.row("size on disk", None, folder_mb(folder), "MB")
        open_s, index = timed(lambda: DiskIndex.open(folder).snapshot())
        table.row("open (with avgdl over all documents)", None, open_s, "s")
        index.search(queries[0], K)  # the first search reads the files in
        new_lat, _ = query_latencies(index.search, queries)
        old_lat, _ = query_latencies(old.search, queries) if old else ([], [])
        table.row("query p50", pct(old_lat, 0.5) if old else None, pct(new_lat, 0.5), "s")
        table.row("query p95", pct(old_lat, 0.95) if old else None, pct(new_lat, 0.95), "s")
        del old
        rounds = []
        for r in range(3):
            added = list(corpus.texts(ADDED, start=n + r * ADDED))
            t0 = time.perf_counter()
            disk_add(folder, added, 2 + r)
            rounds.append(time.perf_counter() - t0)
        table.row(f"{ADDED} documents added (median of 3)", None, statistics.median(rounds), "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scifact", type=Path, default=Path("/work/shared/data/scifact"))
    parser.add_argument("--sizes", default="100000,1000000", help="synthetic sizes; '' for none")
    parser.add_argument("--queries", type=int, default=200, help="synthetic queries")
    parser.add_argument("--peer-rev", default=PEER_REV)
    parser.add_argument("--peer-max", type=int, default=100_000, help="largest size for the peer")
    args = parser.parse_args()
    peer = load_peer(args.peer_rev)
    if args.scifact.is_dir():
        scifact(args.scifact, peer)
    else:
        print(f"(no SciFact at {args.scifact})")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    synthetic(sizes, args.queries, peer, args.peer_max)


if __name__ == "__main__":
    main()
