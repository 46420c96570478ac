"""Benchmark: hybrid search (lexical + dense + reciprocal rank fusion) over a synthetic
library of a million sources, without the reranker.

    .venv/bin/python bench/search_scale.py [--n 1000000] [--queries 200] [--peer-n 100000]
        [--work-dir /tmp/nomosx-scale] [--rebuild] [--vectors calibrated|isotropic]
        [--nprobe 384] [--sweep 64,128,256,384,512,768]

At a million sources the first run builds for about 15 minutes on 2 cores (then cached;
a rerun measures in about 7), and needs some 8 GB of memory and 2 GB of disk.

The library: ``bench/synthetic.py`` (Zipf over 50,000 words, ~150 words a source, seed 0),
each source with a year (1990-2024, from its number, unrelated to its words). Its dense
vectors are synthetic too, made consistent with the text without a neural model: every
word has a fixed random 384-d vector; a source's vector is the sum of the vectors of its
24 heaviest terms weighted by ``(1 + ln tf) · idf`` (idf from the Zipf law), normalised,
plus 10 % noise; a question's vector is the idf-weighted sum of its words. Sources sharing
a question's rarer words are its nearest neighbours. With ``--vectors calibrated`` (the
default) the word vectors are drawn from a Gaussian with the covariance of the real
MiniLM vectors of the bundled SciFact library (``src/nomosx/data/scifact-vectors.npz``),
and their mean is added to every vector: the sources then have the spectrum and the
anisotropy of real embeddings (mean cosine of a pair 0.13 either way). The words of the
synthetic corpus are drawn independently, so it has no topics: nearest neighbours are
less distinct than in real abstracts, which makes an IVF index's job harder than on real
vectors; the report compares the two on 5,183 vectors. ``--vectors isotropic`` makes the
word vectors independent and isotropic: every source nearly orthogonal to every other,
the worst case of an IVF index.

Built once under ``--work-dir`` (one folder per size and seed; ``--rebuild`` starts again):
the tantivy index through ``nomosx.search.lexical.DiskIndex`` (our tokeniser in Python:
a few minutes at a million), the vectors (``vectors.npy``), and ``FaissVectorStore`` on
disk, filled through its ``upsert`` in one call (flat, then trained into IVF at the end).

Measured in a fresh process (so that its memory is the serving side's): opening both
indexes, then per question (after 10 warm-up questions): lexical top-100, dense top-100
(the store's search; the synthetic question embedding is not timed), and hybrid = the
two one after the other + ``reciprocal_rank_fusion`` (the figure the issue asks under
100 ms), also with the two run side by side (lexical on a thread, dense on another); the
same with a year filter (``year >= 2015``, 29 % of the sources: the store filters, the
lexical side over-fetches 400 and keeps the years that pass). Then recall@10 and @100 of
the dense search against the exact answer (numpy over all vectors), and the same for
``--sweep`` values of ``nprobe``.

Peer, same process, at ``--peer-n`` sources: ``QdrantVectorStore`` in local mode (in
memory: its search is the same brute force as on disk) against ``FaissVectorStore`` at
that size, dense top-100 p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import nomosx.data
from nomosx.retrieval.fusion import reciprocal_rank_fusion
from nomosx.search.lexical import DiskIndex, IndexUnusable, LexicalHit
from nomosx.sources.base import SearchFilters
from nomosx.vectors import QdrantVectorStore, VectorHit, VectorPoint
from nomosx.vectors.faiss import NPROBE, FaissVectorStore, nlist_for
from synthetic import Corpus, vocabulary_words  # bench/synthetic.py, beside this script

K = 100
WARM = 10
DIM = 384
TOP_TERMS = 24
NOISE = 0.1
REFERENCE = Path(nomosx.data.__file__).parent / "scifact-vectors.npz"
CALIBRATION_PROBES = (4, 8, 16)
YEAR_FROM = 2015
LEXICAL_OVERFETCH = 400
COLLECTION = "synthetic-384"
BLOCK = 10_000
FORMAT = 1

Matrix = npt.NDArray[np.float32]


def year_of(numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each source's year, 1990-2024, from its number alone."""
    return 1990 + (numbers * 7919 + 13) % 35


def year_of_key(key: str) -> int:
    return 1990 + (int(key[4:]) * 7919 + 13) % 35


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def rss_parts_mb() -> tuple[float, float]:
    """Resident memory of this process: anonymous (its own) and file-backed (mapped
    files: page cache that the kernel can take back)."""
    parts = {"RssAnon:": 0.0, "RssFile:": 0.0}
    with open("/proc/self/status") as status:
        for line in status:
            name, *rest = line.split()
            if name in parts:
                parts[name] = int(rest[0]) / 1024
    return parts["RssAnon:"], parts["RssFile:"]


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not inherited
    from the parent across ``exec``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


# --- synthetic embeddings -------------------------------------------------------------------


def reference_vectors() -> Matrix | None:
    """Real MiniLM vectors of the 5,183 SciFact abstracts bundled with NomosX, normalised."""
    try:
        real = np.load(REFERENCE)["vectors"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return None
    out: Matrix = real / np.linalg.norm(real, axis=1, keepdims=True)
    return out


class Embedding:
    """Fixed random word vectors; a text's vector from its heaviest terms (see above).

    ``calibrated``: the word vectors are drawn from a Gaussian with the covariance of real
    MiniLM vectors (``REFERENCE``), and the real mean is added to every vector, so that
    sources have the spectrum and the anisotropy of real embeddings; otherwise the word
    vectors are independent and isotropic (every source then nearly orthogonal to every
    other: the worst case for an IVF index)."""

    def __init__(self, corpus: Corpus, *, calibrated: bool = True, seed: int = 0) -> None:
        vocabulary, dim = corpus.vocabulary, DIM
        real = reference_vectors() if calibrated else None
        if calibrated and real is None:
            raise SystemExit(f"no reference vectors at {REFERENCE}: use --vectors isotropic")
        if real is not None:
            self.mean: Matrix = real.mean(axis=0)
            centred = real - self.mean
            values, axes = np.linalg.eigh(centred.T @ centred / (len(real) - 1))
            self.factor: Matrix = (axes * np.sqrt(np.clip(values, 0, None))).astype(np.float32)
        else:
            self.mean = np.zeros(dim, dtype=np.float32)
            self.factor = np.eye(dim, dtype=np.float32) / np.float32(math.sqrt(dim))
        self.spread = float(np.sqrt((self.factor**2).sum()))  # the expected norm of a word
        rng = np.random.default_rng([seed, 384])
        self.words: Matrix = (
            rng.standard_normal((vocabulary, dim), dtype=np.float32) @ self.factor.T
        )
        self.vocabulary = vocabulary
        weights = 1.0 / np.arange(1, vocabulary + 1, dtype=np.float64) ** corpus.exponent
        p = weights / weights.sum()
        share = -np.expm1(corpus.length * np.log1p(-p))  # P(a source holds the word)
        self.idf = np.log1p((1 - share) / share).astype(np.float32)
        self.rank = {w: i for i, w in enumerate(vocabulary_words(vocabulary))}

    def ranks(self, title: str, abstract: str) -> list[int]:
        rank = self.rank
        return [rank[w] for w in f"{title} {abstract[:-1]}".lower().split()]

    def _finish(self, centred: Matrix) -> Matrix:
        centred /= np.linalg.norm(centred, axis=-1, keepdims=True)
        out: Matrix = self.mean + self.spread * centred
        out /= np.linalg.norm(out, axis=-1, keepdims=True)
        return out

    def documents(self, ranks: list[list[int]], first: int) -> Matrix:
        """The vectors of a block of sources (numbered from ``first``, for the noise)."""
        n, vocabulary = len(ranks), self.vocabulary
        lengths = np.fromiter((len(r) for r in ranks), dtype=np.int64, count=n)
        flat = np.fromiter((w for r in ranks for w in r), dtype=np.int64, count=int(lengths.sum()))
        doc = np.repeat(np.arange(n, dtype=np.int64), lengths)
        pairs, tf = np.unique(doc * vocabulary + flat, return_counts=True)
        doc, word = pairs // vocabulary, pairs % vocabulary
        weight = (1 + np.log(tf)) * self.idf[word]
        order = np.lexsort((-weight, doc))
        doc, word, weight = doc[order], word[order], weight[order]
        starts = np.searchsorted(doc, np.arange(n))
        keep = np.arange(doc.size) - starts[doc] < TOP_TERMS
        doc, word, weight = doc[keep], word[keep], weight[keep].astype(np.float32)
        out = np.empty((n, DIM), dtype=np.float32)
        step = 2000
        for low in range(0, n, step):
            high = min(low + step, n)
            a, b = np.searchsorted(doc, [low, high])
            rows = self.words[word[a:b]] * weight[a:b, None]
            out[low:high] = np.add.reduceat(rows, np.searchsorted(doc[a:b], np.arange(low, high)))
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        noise = np.random.default_rng([first, 386]).standard_normal(out.shape, dtype=np.float32)
        noise = noise @ self.factor.T
        out += NOISE * noise / np.linalg.norm(noise, axis=1, keepdims=True)
        return self._finish(out)

    def query(self, question: str) -> Matrix:
        words = [self.rank[w] for w in dict.fromkeys(question.rstrip("?").lower().split())]
        return self._finish((self.words[words] * self.idf[words, None]).sum(axis=0))


def neighbourhood(vectors: Matrix, nlist: int, probes: Sequence[int]) -> dict[str, float]:
    """How clustered ``vectors`` are: mean cosine of a pair, of the nearest and the 10th
    nearest neighbour, and recall@10 of an IVF index (each vector as the query)."""
    import faiss

    n = len(vectors)
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -2.0)
    ordered = -np.sort(-scores, axis=1)
    out = {
        "pair": float(scores[np.triu_indices(n, 1)].mean()),
        "top1": float(ordered[:, 0].mean()),
        "top10": float(ordered[:, 9].mean()),
    }
    exact = np.argsort(-scores[:1000], axis=1)[:, :10]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    for probe in probes:
        index.nprobe = probe
        _, found = index.search(vectors[:1000], 11)
        hits = [
            len(set(row[row != i][:10].tolist()) & set(exact[i].tolist()))
            for i, row in enumerate(found)
        ]
        out[f"recall_{probe}"] = sum(hits) / (10 * len(hits))
    return out


# --- building -------------------------------------------------------------------------------


@dataclass
class Work:
    """What is built for one size, cached: the lexical index in ``folder``, the vectors and
    the faiss store in ``folder/<vectors model>``; what was built and how long it took in a
    ``build.json`` beside each."""

    folder: Path
    n: int
    model: str

    @property
    def lexical(self) -> Path:
        return self.folder / "lexical"

    @property
    def dense(self) -> Path:
        return self.folder / self.model

    @property
    def vectors(self) -> Path:
        return self.dense / "vectors.npy"

    @property
    def faiss(self) -> Path:
        return self.dense / "faiss"

    def meta(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for folder in (self.folder, self.dense):
            with suppress(OSError, ValueError):
                data |= json.loads((folder / "build.json").read_text())
        return data

    def record(self, **values: Any) -> None:
        """Keys starting ``lexical`` go with the lexical index, the others with the model."""
        for folder, lexical in ((self.folder, True), (self.dense, False)):
            mine = {k: v for k, v in values.items() if k.startswith("lexical") == lexical}
            if not mine:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "build.json"
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            data = {k: v for k, v in (data | mine).items() if v is not None}
            path.write_text(json.dumps(data, indent=1))


def build_texts_and_vectors(work: Work, corpus: Corpus, embedding: Embedding) -> None:
    """One pass over the corpus: the tantivy index (unless built) and the vectors (unless
    saved)."""
    meta = work.meta()
    need_lexical = "lexical_s" not in meta
    need_vectors = "vectors_s" not in meta
    if not need_lexical and not need_vectors:
        return
    print(f"generating {work.n:,} sources: lexical {need_lexical}, vectors {need_vectors}")
    generate_s = lexical_s = vectors_s = 0.0
    update = None
    if need_lexical:
        shutil.rmtree(work.lexical, ignore_errors=True)
        update = DiskIndex.prepare(work.lexical).writer(build=True)
    matrix = None
    if need_vectors:
        work.dense.mkdir(parents=True, exist_ok=True)
        matrix = np.lib.format.open_memmap(
            work.vectors, mode="w+", dtype=np.float32, shape=(work.n, DIM)
        )
    texts: list[tuple[str, str]] = []
    ranks: list[list[int]] = []
    started = time.perf_counter()
    documents = corpus.documents(work.n)
    first = 0
    while first < work.n:
        t0 = time.perf_counter()
        texts.clear()
        ranks.clear()
        for key, title, abstract in _take(documents, BLOCK):
            if update is not None:
                texts.append((key, f"{title}\n{abstract}"))
            if matrix is not None:
                ranks.append(embedding.ranks(title, abstract))
        t1 = time.perf_counter()
        if update is not None:
            update.upsert(texts)
        t2 = time.perf_counter()
        if matrix is not None:
            matrix[first : first + len(ranks)] = embedding.documents(ranks, first)
        t3 = time.perf_counter()
        generate_s, lexical_s, vectors_s = (
            generate_s + t1 - t0,
            lexical_s + t2 - t1,
            vectors_s + t3 - t2,
        )
        first += BLOCK
        if first % 100_000 == 0 or first >= work.n:
            print(
                f"  {min(first, work.n):>9,} sources  {time.perf_counter() - started:7.1f} s"
                f"  (generate {generate_s:.0f} s, lexical {lexical_s:.0f} s,"
                f" vectors {vectors_s:.0f} s)",
                flush=True,
            )
    if update is not None:
        t0 = time.perf_counter()
        update.commit(1)
        lexical_s += time.perf_counter() - t0
        work.record(lexical_s=lexical_s, lexical_generate_s=generate_s)
    if matrix is not None:
        matrix.flush()
        del matrix
        work.record(vectors_s=vectors_s, vectors_generate_s=generate_s)


def _take(it: Iterator[tuple[str, str, str]], n: int) -> Iterator[tuple[str, str, str]]:
    for _ in range(n):
        try:
            yield next(it)
        except StopIteration:
            return


def points(vectors: Matrix, start: int, stop: int) -> list[VectorPoint]:
    years = year_of(np.arange(start, stop, dtype=np.int64)).tolist()
    return [
        VectorPoint(
            key=f"syn:{i}",
            vector=vectors[i],
            year=years[i - start],
            provider="synthetic",
            type="article",
            open_access=i % 2 == 0,
            revision=1,
        )
        for i in range(start, stop)
    ]


async def build_faiss(work: Work) -> None:
    if "faiss_s" in work.meta():
        return
    shutil.rmtree(work.faiss, ignore_errors=True)
    vectors = np.load(work.vectors, mmap_mode="r")
    print(f"FaissVectorStore: upserting {work.n:,} vectors", flush=True)
    t0 = time.perf_counter()
    store = await FaissVectorStore.open(work.faiss, COLLECTION)
    await store.ensure(vectors.shape[1])
    await store.upsert(points(vectors, 0, work.n))  # one call: one training, at the end
    upsert_s = time.perf_counter() - t0
    nlist = store.nlist
    t1 = time.perf_counter()
    await store.aclose()
    close_s = time.perf_counter() - t1
    work.record(faiss_s=upsert_s + close_s, faiss_close_s=close_s, faiss_nlist=nlist)
    print(f"  done in {upsert_s + close_s:.1f} s (nlist {nlist:,})", flush=True)


# --- measuring ------------------------------------------------------------------------------


async def timed_runs(
    questions: Sequence[str],
    run: Callable[[int], Awaitable[dict[str, float]]],
) -> dict[str, list[float]]:
    for i in range(min(WARM, len(questions))):
        await run(i)
    out: dict[str, list[float]] = {}
    for i in range(len(questions)):
        for name, seconds in (await run(i)).items():
            out.setdefault(name, []).append(seconds * 1000)
    return out


def fused(lexical: list[LexicalHit], dense: list[VectorHit]) -> list[str]:
    scores = reciprocal_rank_fusion(
        [{h.key: h.score for h in lexical}, {h.key: h.score for h in dense}], [1.0, 1.0]
    )
    return sorted(scores, key=lambda key: -scores[key])[:K]


def exact_top(
    vectors: npt.NDArray[np.float32], queries: Matrix, k: int, mask: npt.NDArray[np.bool_] | None
) -> list[set[int]]:
    """The exact top ``k`` of each query over ``vectors`` (where ``mask``), in blocks."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    step = 100_000
    for low in range(0, len(vectors), step):
        block = np.asarray(vectors[low : low + step])
        scores = queries @ block.T
        if mask is not None:
            scores[:, ~mask[low : low + step]] = -np.inf
        ids = np.broadcast_to(np.arange(low, low + len(block)), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best_ids, ids], axis=1)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_ids = np.take_along_axis(ids, top, axis=1)
    return [set(row.tolist()) for row in best_ids]


async def recall(
    store: FaissVectorStore,
    queries: Matrix,
    truth: list[set[int]],
    k: int,
    filters: SearchFilters | None = None,
) -> tuple[float, float]:
    """Recall against ``truth`` and the p50 of the searches."""
    found, latencies = 0, []
    for q, want in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        hits = await store.search(q, k, filters)
        latencies.append((time.perf_counter() - t0) * 1000)
        got = {int(h.key[4:]) for h in hits}
        found += len(got & want)
    return found / sum(len(t) for t in truth), pct(latencies, 0.5)


async def serve(work: Work, questions: list[str], nprobe: int, sweep: list[int]) -> dict[str, Any]:
    """The query side, in a process of its own."""
    embedding = Embedding(Corpus(), calibrated=work.model == "calibrated")
    queries = np.stack([embedding.query(q) for q in questions])
    del embedding
    out: dict[str, Any] = {"rss_start_mb": rss_mb(), "load_before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    lexical = DiskIndex.open(work.lexical).snapshot()
    out["lexical_open_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = await FaissVectorStore.open(work.faiss, COLLECTION, read_only=True, nprobe=nprobe)
    out["faiss_open_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    await store.search(queries[0], K)
    out["faiss_first_search_s"] = time.perf_counter() - t0
    out["rss_opened_mb"] = rss_mb()
    out["kind"], out["nlist"], out["count"] = store.kind, store.nlist, await store.count()
    years = SearchFilters(year_from=YEAR_FROM)

    async def plain(i: int) -> dict[str, float]:
        q, v = questions[i], queries[i]
        t0 = time.perf_counter()
        lex = lexical.search(q, K)
        t1 = time.perf_counter()
        dense = await store.search(v, K)
        t2 = time.perf_counter()
        fused(lex, dense)
        t3 = time.perf_counter()
        return {"lexical": t1 - t0, "dense": t2 - t1, "hybrid": t3 - t0}

    async def parallel(i: int) -> dict[str, float]:
        q, v = questions[i], queries[i]
        t0 = time.perf_counter()
        lex, dense = await asyncio.gather(
            asyncio.to_thread(lexical.search, q, K), store.search(v, K)
        )
        fused(lex, dense)
        return {"hybrid_parallel": time.perf_counter() - t0}

    async def filtered(i: int) -> dict[str, float]:
        q, v = questions[i], queries[i]
        t0 = time.perf_counter()
        lex = [h for h in lexical.search(q, LEXICAL_OVERFETCH) if year_of_key(h.key) >= YEAR_FROM][
            :K
        ]
        t1 = time.perf_counter()
        dense = await store.search(v, K, years)
        t2 = time.perf_counter()
        fused(lex, dense)
        t3 = time.perf_counter()
        return {"lexical_year": t1 - t0, "dense_year": t2 - t1, "hybrid_year": t3 - t0}

    for run in (plain, parallel, filtered):
        for name, values in (await timed_runs(questions, run)).items():
            out[name] = values
    out["rss_serving_mb"] = rss_mb()
    out["rss_anon_mb"], out["rss_file_mb"] = rss_parts_mb()
    out["peak_rss_serving_mb"] = peak_rss_mb()
    out["load_after"] = os.getloadavg()[0]

    # recall, against numpy over every vector (reads them all: after the memory figures)
    vectors = np.load(work.vectors, mmap_mode="r")
    mask = year_of(np.arange(len(vectors), dtype=np.int64)) >= YEAR_FROM
    truth10 = exact_top(vectors, queries, 10, None)
    truth100 = exact_top(vectors, queries, K, None)
    truth10_year = exact_top(vectors, queries, 10, mask)
    out["recall10"], _ = await recall(store, queries, truth10, 10)
    out["recall100"], _ = await recall(store, queries, truth100, K)
    out["recall10_year"], _ = await recall(store, queries, truth10_year, 10, years)
    out["sweep"] = []
    for probes in sweep:
        store.nprobe = probes
        r10, p50 = await recall(store, queries, truth10, 10)
        r100, p50_100 = await recall(store, queries, truth100, K)
        out["sweep"].append(
            {
                "nprobe": probes,
                "recall10": r10,
                "p50_10": p50,
                "recall100": r100,
                "p50_100": p50_100,
            }
        )
    await store.aclose()
    return out


async def peer(work: Work, questions: list[str], n: int, nprobe: int) -> dict[str, Any]:
    """Qdrant local mode against faiss on the first ``n`` vectors."""
    embedding = Embedding(Corpus(), calibrated=work.model == "calibrated")
    queries = np.stack([embedding.query(q) for q in questions])
    vectors = np.load(work.vectors, mmap_mode="r")
    batch = points(vectors, 0, n)
    out: dict[str, Any] = {"n": n}
    logging.getLogger("nomosx.vectors").setLevel(logging.ERROR)
    async with FaissVectorStore.memory("peer", nprobe=nprobe) as faiss_store:
        await faiss_store.ensure(vectors.shape[1])
        t0 = time.perf_counter()
        await faiss_store.upsert(batch)
        out["faiss_build_s"] = time.perf_counter() - t0
        out["faiss_kind"] = f"{faiss_store.kind}, nlist {faiss_store.nlist}"
        times = await timed_runs(questions, _dense_run(faiss_store, queries))
        out["faiss_dense"] = times["dense"]
    async with await QdrantVectorStore.memory("peer") as qdrant:
        await qdrant.ensure(vectors.shape[1])
        t0 = time.perf_counter()
        await qdrant.upsert(batch)
        out["qdrant_build_s"] = time.perf_counter() - t0
        few = questions[: max(WARM + 1, min(len(questions), 60))]  # ~0.1 s a search
        times = await timed_runs(few, _dense_run(qdrant, queries))
        out["qdrant_dense"] = times["dense"]
    return out


def _dense_run(
    store: FaissVectorStore | QdrantVectorStore, queries: Matrix
) -> Callable[[int], Awaitable[dict[str, float]]]:
    async def run(i: int) -> dict[str, float]:
        t0 = time.perf_counter()
        await store.search(queries[i], K)
        return {"dense": time.perf_counter() - t0}

    return run


# --- the report -----------------------------------------------------------------------------


def len_real() -> str:
    real = reference_vectors()
    return "-" if real is None else f"{len(real):,}"


def calibrate(work: Work) -> dict[str, dict[str, float]] | None:
    """``neighbourhood`` of the real MiniLM vectors and of as many synthetic ones."""
    real = reference_vectors()
    if real is None or work.n < len(real):
        return None
    synthetic = np.array(np.load(work.vectors, mmap_mode="r")[: len(real)])
    nlist = nlist_for(len(real))
    return {
        "nlist": {"lists": float(nlist)},
        "real": neighbourhood(real, nlist, CALIBRATION_PROBES),
        "synthetic": neighbourhood(synthetic, nlist, CALIBRATION_PROBES),
    }


def report(
    work: Work,
    served: dict[str, Any],
    peer_out: dict[str, Any] | None,
    build_peak: float,
    calibration: dict[str, dict[str, float]] | None,
) -> None:
    meta = work.meta()
    n, q = work.n, len(served["lexical"])

    def ms(name: str) -> str:
        values = served[name]
        return f"{pct(values, 0.5):.1f} | {pct(values, 0.95):.1f}"

    kind = "flat, exact"
    if served["kind"] == "ivf":
        kind = f"IVF, nlist {served['nlist']:,}, nprobe {served['nprobe']}"
    bold = ms("hybrid").replace(" | ", "** | **")
    bold_year = ms("hybrid_year").replace(" | ", "** | **")
    rows = [
        (f"lexical (tantivy BM25) top-{K}", ms("lexical")),
        (f"dense (FaissVectorStore: {kind}) top-{K}", ms("dense")),
        ("**hybrid: lexical + dense + RRF, one after the other**", f"**{bold}**"),
        ("hybrid, lexical and dense side by side (2 threads)", ms("hybrid_parallel")),
        (
            f"lexical, year >= {YEAR_FROM} (top {LEXICAL_OVERFETCH}, then filtered)",
            ms("lexical_year"),
        ),
        (f"dense, year >= {YEAR_FROM} (29 % pass: a bitmap selector)", ms("dense_year")),
        (f"**hybrid, year >= {YEAR_FROM}**", f"**{bold_year}**"),
    ]
    print(f"\n### Hybrid search, {n:,} synthetic sources ({q} questions, top {K}, no reranker)\n")
    print(
        f"(machine: {os.cpu_count()} cores, 1-minute load average {served['load_before']:.1f}"
        f" before the questions, {served['load_after']:.1f} after)\n"
    )
    print("| measure | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for label, cells in rows:
        print(f"| {label} | {cells} |")
    gen = meta.get("lexical_generate_s", meta.get("vectors_generate_s", 0.0))
    opened, serving = served["rss_opened_mb"], served["rss_serving_mb"]
    sizes = [
        ("generate the corpus (synthetic.py, + word ranks)", f"{gen:.0f} s"),
        ("lexical index build (our tokeniser + tantivy, on disk)", f"{meta['lexical_s']:.0f} s"),
        (f"synthetic vectors ({DIM}-d, numpy)", f"{meta['vectors_s']:.0f} s"),
        (
            "FaissVectorStore build (one upsert: log, flat, IVF training and adds, snapshot)",
            f"{meta['faiss_s']:.0f} s",
        ),
        ("lexical index on disk", f"{folder_mb(work.lexical):,.0f} MB"),
        ("faiss folder on disk (snapshot + log)", f"{folder_mb(work.faiss):,.0f} MB"),
        ("open the lexical index (fresh process)", f"{served['lexical_open_s'] * 1000:.0f} ms"),
        (
            "open FaissVectorStore (fresh process, memory-mapped)",
            f"{served['faiss_open_s'] * 1000:.0f} ms",
        ),
        (
            "first dense search after opening (pages come in)",
            f"{served['faiss_first_search_s'] * 1000:.0f} ms",
        ),
        (
            f"RSS serving: after opening / after {q} x 3 question runs",
            f"{opened:,.0f} / {serving:,.0f} MB",
        ),
        (
            "  of which anonymous / mapped files (index pages, page cache)",
            f"{served['rss_anon_mb']:,.0f} / {served['rss_file_mb']:,.0f} MB",
        ),
        ("peak RSS, serving process", f"{served['peak_rss_serving_mb']:,.0f} MB"),
        ("peak RSS, building process (the run that built)", f"{build_peak:,.0f} MB"),
    ]
    print()
    print("| build and size | value |")
    print("|---|---:|")
    for label, cell in sizes:
        print(f"| {label} | {cell} |")
    print()
    print(f"| dense recall vs exact (numpy over all {n:,}) | value |")
    print("|---|---:|")
    print(f"| recall@10, nprobe {served['nprobe']} | {served['recall10']:.3f} |")
    print(f"| recall@{K}, nprobe {served['nprobe']} | {served['recall100']:.3f} |")
    print(f"| recall@10, year >= {YEAR_FROM} | {served['recall10_year']:.3f} |")
    if served["sweep"]:
        print()
        print(f"| nprobe | recall@10 | p50 top-10 ms | recall@{K} | p50 top-{K} ms |")
        print("|---:|---:|---:|---:|---:|")
        for row in served["sweep"]:
            print(
                f"| {row['nprobe']} | {row['recall10']:.3f} | {row['p50_10']:.2f} |"
                f" {row['recall100']:.3f} | {row['p50_100']:.2f} |"
            )
    if peer_out is not None:
        f50, q50 = pct(peer_out["faiss_dense"], 0.5), pct(peer_out["qdrant_dense"], 0.5)
        print()
        print(f"| peer: dense top-{K} at {peer_out['n']:,} | build | p50 ms | p95 ms |")
        print("|---|---:|---:|---:|")
        print(
            f"| QdrantVectorStore, local mode (in memory) | {peer_out['qdrant_build_s']:.0f} s"
            f" | {q50:.1f} | {pct(peer_out['qdrant_dense'], 0.95):.1f} |"
        )
        print(
            f"| FaissVectorStore ({peer_out['faiss_kind']}) | {peer_out['faiss_build_s']:.0f} s"
            f" | {f50:.2f} | {pct(peer_out['faiss_dense'], 0.95):.2f} |"
        )
        print(f"| ratio Qdrant / faiss, p50 | | {q50 / f50:.0f}x | |")
    if calibration is not None:
        real, synthetic = calibration["real"], calibration["synthetic"]
        nlist = int(calibration["nlist"]["lists"])
        print()
        print(
            f"| {len_real()} vectors: real MiniLM (SciFact) vs synthetic ({work.model})"
            " | real | synthetic |"
        )
        print("|---|---:|---:|")
        labels = [
            ("mean cosine of a pair", "pair"),
            ("mean cosine of the nearest neighbour", "top1"),
            ("mean cosine of the 10th nearest", "top10"),
        ] + [
            (f"IVF recall@10, nlist {nlist}, nprobe {p} (each vector as the query)", f"recall_{p}")
            for p in CALIBRATION_PROBES
        ]
        for label, name in labels:
            print(f"| {label} | {real[name]:.3f} | {synthetic[name]:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peer-n", type=int, default=100_000, help="0: no peer")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/nomosx-scale"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--nprobe", type=int, default=NPROBE)
    parser.add_argument(
        "--sweep", default="64,128,256,384,512,768", help="nprobe values; '' for none"
    )
    parser.add_argument(
        "--vectors",
        choices=["calibrated", "isotropic"],
        default="calibrated",
        help="word vectors shaped like real MiniLM vectors, or independent (see above)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    corpus = Corpus()
    folder = args.work_dir / f"n{args.n}-v{corpus.vocabulary}-s{corpus.seed}-f{FORMAT}"
    work = Work(folder, args.n, args.vectors)
    questions = corpus.queries(args.queries)
    sweep = [int(s) for s in args.sweep.split(",") if s.strip()]
    if args.serve:  # the child: measure, print JSON
        result = asyncio.run(serve(work, questions, args.nprobe, sweep))
        result["nprobe"] = args.nprobe
        print(json.dumps(result))
        return

    logging.basicConfig(level=logging.WARNING, format="  %(name)s: %(message)s")
    logging.getLogger("nomosx.vectors.faiss").setLevel(logging.INFO)
    if args.rebuild:
        shutil.rmtree(work.folder, ignore_errors=True)
    work.folder.mkdir(parents=True, exist_ok=True)
    try:
        DiskIndex.open(work.lexical)
    except IndexUnusable:  # not built, or built halfway
        work.record(lexical_s=None)
    if not work.vectors.is_file():
        work.record(vectors_s=None, faiss_s=None)
    embedding = Embedding(corpus, calibrated=args.vectors == "calibrated")
    before = work.meta()
    build_texts_and_vectors(work, corpus, embedding)
    del embedding
    asyncio.run(build_faiss(work))
    built = {k for k in ("lexical_s", "vectors_s", "faiss_s") if k not in before}
    if built:  # the peak of the run that built something, kept for the cached reruns
        peak = peak_rss_mb()
        work.record(
            lexical_peak_rss_mb=peak if "lexical_s" in built else before.get("lexical_peak_rss_mb"),
            peak_rss_mb=peak if built - {"lexical_s"} else before.get("peak_rss_mb"),
        )
    build_peak = max(work.meta().get(k, 0.0) for k in ("lexical_peak_rss_mb", "peak_rss_mb"))
    calibration = calibrate(work)

    print(f"measuring {len(questions)} questions in a fresh process", flush=True)
    child = subprocess.run(
        [sys.executable, __file__, *sys.argv[1:], "--serve"],
        check=True,
        capture_output=True,
        text=True,
    )
    served = json.loads(child.stdout.strip().splitlines()[-1])
    peer_out = None
    if args.peer_n:
        n = min(args.peer_n, args.n)
        print(f"peer at {n:,} sources", flush=True)
        peer_out = asyncio.run(peer(work, questions, n, args.nprobe))
    report(work, served, peer_out, build_peak, calibration)
    results = {
        "served": served,
        "peer": peer_out,
        "build": work.meta(),
        "calibration": calibration,
    }
    (work.dense / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
