"""The dense index in step with the store (SQLite and PostgreSQL), and hybrid library search."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from nomosx.config import RetrievalSettings
from nomosx.embed.base import EmbeddingKind, Vectors, normalise
from nomosx.errors import VectorStoreLocked
from nomosx.models import Source
from nomosx.retrieval.dense_index import DenseLibraryIndex, text_digest
from nomosx.search.library_index import LibraryIndex
from nomosx.sources.base import SearchFilters
from nomosx.sources.library import LibraryProvider
from nomosx.store.db import Database
from nomosx.store.repositories import SourceRepository
from nomosx.testing.embedders import HashingEmbedder
from nomosx.vectors.base import VectorStore
from nomosx.vectors.qdrant import QdrantVectorStore
from tests.factories import make_source


def sources(n: int, *, start: int = 0) -> list[Source]:
    return [
        make_source(
            f"doi:10.1/{i}",
            title=f"Study {i} of carbon pricing",
            abstract=f"Emissions fell in region {i}.",
            year=2000 + i % 20,
        )
        for i in range(start, start + n)
    ]


def dense_index(
    db: Database, tmp_path: Path, embedder: HashingEmbedder, store: list[VectorStore]
) -> DenseLibraryIndex:
    async def opener() -> VectorStore:
        opened = await QdrantVectorStore.local(tmp_path / "vectors", "test")
        store.append(opened)
        return opened

    return DenseLibraryIndex(SourceRepository(db), embedder, opener, tmp_path / "dense.json")


async def test_sync_embeds_only_what_changed(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    embedder = HashingEmbedder(32)
    opened: list[VectorStore] = []
    index = dense_index(db, tmp_path, embedder, opened)
    await repo.upsert_many(sources(30))
    progress: list[tuple[int, int]] = []
    assert await index.sync(on_progress=lambda d, t: progress.append((d, t))) == 30
    assert embedder.calls == 30 and progress[-1] == (30, 30)
    assert await opened[0].count() == 30
    assert await index.sync() == 0 and embedder.calls == 30  # nothing new
    await repo.upsert_many(sources(2, start=30))
    assert await index.sync() == 2 and embedder.calls == 32  # only the new ones
    changed = make_source("doi:10.1/3", title="Songbird migration", abstract="Birds fly south.")
    await repo.upsert_many([changed])
    await index.sync()
    assert embedder.calls == 33
    vector = (await embedder.embed(["Songbird migration\nBirds fly south."]))[0]
    hits = await index.search(vector, 1)
    assert hits[0].key == "doi:10.1/3" and hits[0].score > 0.99
    await index.aclose()


async def test_a_restarted_index_resumes_from_its_recorded_revision(
    db: Database, tmp_path: Path
) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(sources(10))
    first = dense_index(db, tmp_path, HashingEmbedder(32), [])
    await first.sync()
    await first.aclose()
    await repo.upsert_many(sources(3, start=10))
    embedder = HashingEmbedder(32)
    second = dense_index(db, tmp_path, embedder, [])
    assert await second.sync() == 3 and embedder.calls == 3
    await second.aclose()


async def test_known_vectors_are_used_when_their_text_matches(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    batch = sources(4)
    await repo.upsert_many(batch)
    embedder = HashingEmbedder(32)
    known = {}
    for s in batch[:3]:
        text = f"{s.title}\n{s.abstract}"
        digest = text_digest(text) if s.key != "doi:10.1/2" else "stale"
        known[s.key] = (digest, np.full(32, 1 / np.sqrt(32), dtype=np.float32))
    index = dense_index(db, tmp_path, embedder, [])
    await index.sync(known=known)
    assert embedder.calls == 2  # the stale one and the one without a vector
    assert index.reused == 2
    await index.aclose()


async def test_a_locked_store_turns_dense_retrieval_off(db: Database, tmp_path: Path) -> None:
    holder = await QdrantVectorStore.local(tmp_path / "vectors", "test")
    index = dense_index(db, tmp_path, HashingEmbedder(32), [])
    await SourceRepository(db).upsert_many(sources(2))
    assert await index.sync() == 0
    assert index.problem is not None and "another NomosX process" in index.problem
    assert await index.search(np.ones(32, dtype=np.float32), 3) == []
    await holder.aclose()
    assert isinstance(VectorStoreLocked("x"), Exception)


class _Topics:
    """Vectors by topic word, so that texts sharing no term can still be near."""

    model = "test:topics"
    dim = 4
    topics: ClassVar[dict[str, int]] = {
        "ocean": 0,
        "sea": 0,
        "marine": 0,
        "tax": 1,
        "levy": 1,
        "bird": 2,
    }

    async def embed(self, texts: Sequence[str], *, kind: EmbeddingKind = "document") -> Vectors:
        out = np.full((len(texts), 4), 0.01, dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace("\n", " ").split():
                axis = self.topics.get(word.strip(".,"))
                if axis is not None:
                    out[i, axis] += 1
        return normalise(out)


async def test_library_search_finds_by_meaning_and_by_terms(db: Database, tmp_path: Path) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many(
        [
            make_source("k:marine", title="Marine heatwaves", abstract="The sea warms.", year=2020),
            make_source("k:ocean", title="Ocean acidity", abstract="Ocean pH drops.", year=2010),
            make_source("k:tax", title="A levy on fuel", abstract="Tax and prices.", year=2020),
        ]
    )
    embedder = _Topics()

    async def opener() -> VectorStore:
        return await QdrantVectorStore.memory("topics")

    dense = DenseLibraryIndex(repo, embedder, opener, tmp_path / "d.json")
    provider = LibraryProvider(
        repo, LibraryIndex(repo, tmp_path / "index"), dense=dense, embedder=embedder
    )
    found = [s.key for s in await provider.search("ocean", 10)]
    assert found[0] == "k:ocean"  # both sides agree
    assert "k:marine" in found  # no shared term: found by its embedding
    assert "k:tax" not in found[:2]
    filtered = await provider.search("ocean", 10, SearchFilters(year_from=2015))
    assert filtered[0].key == "k:marine"
    lexical_only = LibraryProvider(
        repo,
        LibraryIndex(repo, tmp_path / "index2"),
        dense=dense,
        embedder=embedder,
        retrieval=RetrievalSettings(dense=False),
    )
    assert [s.key for s in await lexical_only.search("ocean", 10)] == ["k:ocean"]
    health = await provider.health()
    assert health.status == "healthy"
    await provider.aclose()
