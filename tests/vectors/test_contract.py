"""The vector store contract, run on every backend.

``local``         Qdrant local mode on a folder (the default of NomosX)
``memory``        Qdrant local mode in memory
``memory-native`` the in-memory engine with Qdrant's own filtering and the calls on the
                  test's event loop: what a server does with a filter, on the local engine
``server``        the Qdrant server at ``QDRANT_URL`` (with ``QDRANT_API_KEY``), only when
                  it is set; each test uses a collection of its own and deletes it
``faiss-local``   faiss in a folder (``FaissVectorStore.open``), exact at these sizes
``faiss-memory``  faiss in memory
``faiss-ivf``     faiss in memory with ``train_at=200``: an IVF index from 200 points,
                  searched with ``nprobe`` = every list, so as exact as the others

``QDRANT_URL`` is read when this module is imported: the autouse fixture of
``tests/conftest.py`` removes it from each test's environment.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient

from nomosx.errors import VectorStoreError, VectorStoreLocked
from nomosx.sources.base import SearchFilters
from nomosx.vectors import QdrantVectorStore, VectorPoint
from nomosx.vectors.faiss import FaissVectorStore
from tests.vectors.points import DIM, expected, keys, make_points, query_vector, unit

SERVER_URL = os.environ.get("QDRANT_URL")
SERVER_KEY = os.environ.get("QDRANT_API_KEY")
BACKENDS = [
    "local",
    "memory",
    "memory-native",
    *(["server"] if SERVER_URL else []),
    "faiss-local",
    "faiss-memory",
    "faiss-ivf",
]
Store = QdrantVectorStore | FaissVectorStore


@dataclass
class Backend:
    kind: str
    folder: Path
    collection: str

    async def open(self) -> Store:
        if self.kind == "faiss-local":
            return await FaissVectorStore.open(self.folder, self.collection)
        if self.kind == "faiss-memory":
            return FaissVectorStore.memory(self.collection)
        if self.kind == "faiss-ivf":
            return FaissVectorStore.memory(self.collection, train_at=200, nprobe=1 << 20)
        if self.kind == "local":
            return await QdrantVectorStore.local(self.folder, self.collection)
        if self.kind == "memory":
            return await QdrantVectorStore.memory(self.collection)
        if self.kind == "memory-native":
            client = AsyncQdrantClient(location=":memory:")
            return QdrantVectorStore(client, self.collection, post_filter=False)
        assert SERVER_URL is not None
        return await QdrantVectorStore.server(SERVER_URL, self.collection, api_key=SERVER_KEY)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return Backend(request.param, tmp_path / "vectors", f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        if (
            isinstance(opened, QdrantVectorStore)
            and backend.kind == "server"
            and not opened._closed
        ):
            await opened._client.delete_collection(backend.collection)
        await opened.aclose()


async def test_ensure_is_idempotent_and_refuses_another_dimension(
    store: Store,
) -> None:
    await store.ensure(DIM)
    await store.ensure(DIM)
    assert await store.count() == 0
    with pytest.raises(VectorStoreError, match=f"holds {DIM}-dimensional vectors.*makes 32"):
        await store.ensure(32)
    if isinstance(store, QdrantVectorStore) and store.name == "qdrant":
        info = await store._client.get_collection(store.collection)
        assert {"year", "provider", "type", "open_access"} <= set(info.payload_schema)


async def test_upsert_then_search_nearest_first(store: Store) -> None:
    points = make_points(240)
    await store.ensure(DIM)
    await store.upsert(points)
    assert await store.count() == 240
    hits = await store.search(points[42].vector, 10)
    assert hits[0].key == "openalex:W42"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert keys(hits) == expected(points, points[42].vector, 10)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for seed in range(5):
        q = query_vector(seed)
        assert keys(await store.search(q, 7)) == expected(points, q, 7)


async def test_scores_are_cosines_of_unnormalised_vectors(store: Store) -> None:
    await store.ensure(DIM)
    rng = np.random.default_rng(3)
    raw = (rng.standard_normal((20, DIM)) * 5).astype(np.float32)
    await store.upsert(
        [VectorPoint(f"k{i}", raw[i], 2020, "library", None, None) for i in range(20)]
    )
    q = (rng.standard_normal(DIM) * 0.1).astype(np.float32)
    hits = await store.search(q, 20)
    cosines = unit(raw) @ unit(q)
    assert {h.key: round(h.score, 4) for h in hits} == {
        f"k{i}": round(float(c), 4) for i, c in enumerate(cosines)
    }


async def test_reupsert_replaces_by_key(store: Store) -> None:
    points = make_points(50)
    await store.ensure(DIM)
    await store.upsert(points)
    moved = VectorPoint(
        key=points[3].key,
        vector=points[30].vector,
        year=2001,
        provider="arxiv",
        type="preprint",
        open_access=True,
        revision=9,
    )
    await store.upsert([moved])
    assert await store.count() == 50
    hits = await store.search(points[30].vector, 2)
    assert set(keys(hits)) == {points[3].key, points[30].key}
    assert await store.revisions([points[3].key, points[4].key, "openalex:absent"]) == {
        points[3].key: 9,
        points[4].key: points[4].revision,
    }
    only_2001 = await store.search(points[30].vector, 5, SearchFilters(year_from=2001))
    assert points[3].key in keys(only_2001)


async def test_delete(store: Store) -> None:
    points = make_points(60)
    await store.ensure(DIM)
    await store.upsert(points)
    await store.delete([points[5].key, points[6].key, "openalex:never-stored"])
    await store.delete([])
    assert await store.count() == 58
    found = keys(await store.search(points[5].vector, 60))
    assert points[5].key not in found
    assert points[6].key not in found
    assert len(found) == 58
    await store.upsert([points[5]])
    assert keys(await store.search(points[5].vector, 1)) == [points[5].key]


FILTERS = [
    SearchFilters(year_from=2010),
    SearchFilters(year_to=2000),
    SearchFilters(year_from=2005, year_to=2007),
    SearchFilters(year_from=2003, year_to=2003),
    SearchFilters(providers=("arxiv",)),
    SearchFilters(providers=("arxiv", "library")),
    SearchFilters(types=("article",)),
    SearchFilters(types=("review", "preprint")),
    SearchFilters(types=("",)),
    SearchFilters(types=("article", "")),
    SearchFilters(open_access=True),
    SearchFilters(open_access=False),
    SearchFilters(year_from=2000, providers=("openalex", "crossref"), open_access=True),
    SearchFilters(year_from=1998, year_to=2015, types=("article",), open_access=False),
    SearchFilters(year_from=2019, year_to=2019, providers=("crossref",), types=("review",)),
    SearchFilters(providers=("nobody",)),
    SearchFilters(year_from=3000),
    SearchFilters(),
]


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
async def test_filters(store: Store, filters: SearchFilters) -> None:
    points = make_points(600)  # local mode: common filters over-fetch, rare ones do not
    await store.ensure(DIM)
    await store.upsert(points)
    by_key = {p.key: p for p in points}
    for seed in range(3):
        q = query_vector(100 + seed)
        hits = await store.search(q, 10, filters)
        assert keys(hits) == expected(points, q, 10, filters)
        for hit in hits:
            p = by_key[hit.key]
            assert filters.accepts(
                year=p.year, provider=p.provider, type=p.type, open_access=p.open_access
            )
    everything = await store.search(query_vector(0), 1000, filters)
    assert sorted(keys(everything)) == sorted(expected(points, query_vector(0), 1000, filters))


async def test_k_larger_than_count_and_k_zero(store: Store) -> None:
    points = make_points(12)
    await store.ensure(DIM)
    await store.upsert(points)
    q = query_vector(1)
    hits = await store.search(q, 500)
    assert keys(hits) == expected(points, q, 500)
    assert len(hits) == 12
    assert await store.search(q, 0) == []


async def test_empty_collection(store: Store) -> None:
    await store.ensure(DIM)
    q = query_vector(1)
    assert await store.search(q, 10) == []
    assert await store.search(q, 10, SearchFilters(year_from=2000)) == []
    assert await store.revisions(["a"]) == {}
    await store.upsert([])
    assert await store.count() == 0


async def test_upsert_in_batches(backend: Backend) -> None:
    store = await backend.open()
    store._batch_size = 50
    try:
        points = make_points(130)
        await store.ensure(DIM)
        calls = 0
        upsert_batch = store._upsert_batch

        async def counted(*args: object) -> None:
            nonlocal calls
            calls += 1
            await upsert_batch(*args)  # type: ignore[arg-type]

        store._upsert_batch = counted  # type: ignore[method-assign,assignment]
        await store.upsert(points)
        assert calls == 3
        assert await store.count() == 130
        await store.delete([p.key for p in points[:120]])
        assert await store.count() == 10
        revisions = await store.revisions([p.key for p in points])
        assert len(revisions) == 10
    finally:
        if isinstance(store, QdrantVectorStore) and backend.kind == "server":
            await store._client.delete_collection(backend.collection)
        await store.aclose()


async def test_bad_vectors_are_refused(store: Store) -> None:
    await store.ensure(DIM)
    good = make_points(1)[0]
    short = VectorPoint("short", np.ones(DIM - 1, dtype=np.float32), None, "library", None, None)
    with pytest.raises(VectorStoreError, match=r"vector of short has shape \(15,\)"):
        await store.upsert([good, short])
    nan = np.ones(DIM, dtype=np.float32)
    nan[3] = np.nan
    with pytest.raises(VectorStoreError, match="vector of nan is not finite"):
        await store.upsert([VectorPoint("nan", nan, None, "library", None, None)])
    with pytest.raises(VectorStoreError, match="query"):
        await store.search(np.ones((2, DIM), dtype=np.float32), 3)
    with pytest.raises(VectorStoreError, match="dimension must be positive"):
        await store.ensure(0)
    assert await store.count() == 0


async def test_calls_before_ensure_fail_clearly(store: Store) -> None:
    with pytest.raises(VectorStoreError, match=store.collection):
        await store.search(query_vector(0), 3)
    with pytest.raises(VectorStoreError, match="count"):
        await store.count()


async def test_concurrent_calls(store: Store) -> None:
    points = make_points(200)
    await store.ensure(DIM)
    await asyncio.gather(*(store.upsert(points[i : i + 20]) for i in range(0, 200, 20)))
    queries = [query_vector(s) for s in range(16)]
    results = await asyncio.gather(*(store.search(q, 5) for q in queries))
    assert [keys(r) for r in results] == [expected(points, q, 5) for q in queries]


async def test_health(store: Store) -> None:
    missing = await store.health()
    assert missing.status == "degraded"
    assert "not created" in (missing.detail or "")
    await store.ensure(DIM)
    await store.upsert(make_points(5))
    health = await store.health()
    assert health.status == "healthy"
    assert health.provider == store.name
    assert "5 vectors" in (health.detail or "")
    assert health.latency_ms is not None


async def test_closed_store(backend: Backend) -> None:
    store = await backend.open()
    await store.ensure(DIM)
    if isinstance(store, QdrantVectorStore) and backend.kind == "server":
        await store._client.delete_collection(backend.collection)
    await store.aclose()
    await store.aclose()
    with pytest.raises(VectorStoreError, match="closed"):
        await store.search(query_vector(0), 3)
    assert (await store.health()).status == "unhealthy"


# --- local mode on a folder -------------------------------------------------------------------


async def test_persistence_across_reopen(tmp_path: Path) -> None:
    folder, name = tmp_path / "vectors", "sources-test-16"
    points = make_points(150)
    store = await QdrantVectorStore.local(folder, name)
    await store.ensure(DIM)
    await store.upsert(points)
    await store.delete([points[0].key])
    await store.aclose()

    async with await QdrantVectorStore.local(folder, name) as reopened:
        await reopened.ensure(DIM)
        assert await reopened.count() == 149
        q = query_vector(9)
        filters = SearchFilters(year_from=2000, open_access=True)
        assert keys(await reopened.search(q, 10, filters)) == expected(points[1:], q, 10, filters)
        assert await reopened.revisions([points[7].key]) == {points[7].key: points[7].revision}
        with pytest.raises(VectorStoreError, match="holds 16-dimensional"):
            await reopened.ensure(8)


async def test_second_opener_of_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "vectors"
    first = await QdrantVectorStore.local(folder, "a")
    await first.ensure(DIM)
    with pytest.raises(VectorStoreLocked) as caught:
        await QdrantVectorStore.local(folder, "a")
    assert caught.value.path == str(folder)
    assert str(folder) in str(caught.value)
    assert "another NomosX process" in str(caught.value)
    assert isinstance(caught.value, VectorStoreError)
    await first.upsert(make_points(3))  # the first store is unaffected
    assert await first.count() == 3
    await first.aclose()
    async with await QdrantVectorStore.local(folder, "a") as second:
        assert await second.count() == 3


async def test_lost_race_for_a_folder_is_refused_without_leaks(tmp_path: Path) -> None:
    """Two openers both pass the early lock check; qdrant-client refuses the second, and
    what it had opened is closed (a leak would fail this test as a ResourceWarning)."""
    from nomosx.vectors.qdrant import _open_local

    folder = tmp_path / "vectors"
    first = await QdrantVectorStore.local(folder, "a")
    await first.ensure(DIM)
    with pytest.raises(VectorStoreLocked):
        await _open_local(folder)
    await first.aclose()


async def test_unusable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(VectorStoreError, match="could not be opened"):
        await QdrantVectorStore.local(blocker, "a")
