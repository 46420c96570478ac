"""What the contract tests do not show: names, filter translation, error conversion, the
rounds of a filtered local search, server set-up without a server, and the factory."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from nomosx.errors import ConfigError, VectorStoreError
from nomosx.models import Source
from nomosx.sources.base import SearchFilters
from nomosx.vectors import QdrantVectorStore, VectorPoint, collection_name, open_vector_store
from nomosx.vectors import qdrant as qdrant_module
from nomosx.vectors.qdrant import _converted, point_id, qdrant_filter
from tests.vectors.points import DIM, expected, keys, make_points, query_vector, unit

# --- collection names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "dim", "name"),
    [
        (
            "sentence-transformers/all-MiniLM-L6-v2",
            384,
            "sources-sentence-transformers-all-minilm-l6-v2-384",
        ),
        ("text-embedding-3-small", 1536, "sources-text-embedding-3-small-1536"),
        ("ollama:nomic-embed-text@latest", 768, "sources-ollama-nomic-embed-text-latest-768"),
        ("BAAI/bge-m3", 1024, "sources-baai-bge-m3-1024"),
        ("///", 8, "sources-model-8"),
    ],
)
def test_collection_name(model: str, dim: int, name: str) -> None:
    assert collection_name(model, dim) == name


def test_collection_name_of_long_models_stays_short_and_distinct() -> None:
    a = collection_name("org/" + "x" * 200 + "-a", 384)
    b = collection_name("org/" + "x" * 200 + "-b", 384)
    assert a != b
    assert len(a) <= len("sources-") + 80 + len("-384")
    assert collection_name("m", 8, prefix="chunks") == "chunks-m-8"
    with pytest.raises(ValueError, match="positive"):
        collection_name("m", 0)


def test_point_ids_are_stable_uuids() -> None:
    assert point_id("openalex:W1") == point_id("openalex:W1")
    assert point_id("openalex:W1") != point_id("openalex:W2")
    assert len(point_id("x")) == 36


# --- filters ----------------------------------------------------------------------------


def test_no_filter() -> None:
    assert qdrant_filter(None) is None
    assert qdrant_filter(SearchFilters()) is None


def test_filter_translation() -> None:
    built = qdrant_filter(
        SearchFilters(
            year_from=2000, year_to=2010, open_access=False, types=("article",), providers=("x",)
        )
    )
    assert built == models.Filter(
        must=[
            models.FieldCondition(key="year", range=models.Range(gte=2000, lte=2010)),
            models.FieldCondition(key="provider", match=models.MatchAny(any=["x"])),
            models.FieldCondition(key="type", match=models.MatchAny(any=["article"])),
        ],
        must_not=[
            models.FieldCondition(key="open_access", match=models.MatchValue(value=True)),
        ],
    )
    untyped = qdrant_filter(SearchFilters(types=("",), open_access=True))
    assert untyped == models.Filter(
        must=[
            models.IsEmptyCondition(is_empty=models.PayloadField(key="type")),
            models.FieldCondition(key="open_access", match=models.MatchValue(value=True)),
        ]
    )
    both = qdrant_filter(SearchFilters(types=("review", "")))
    assert both is not None
    assert both.must == [
        models.Filter(
            should=[
                models.FieldCondition(key="type", match=models.MatchAny(any=["review"])),
                models.IsEmptyCondition(is_empty=models.PayloadField(key="type")),
            ]
        )
    ]


def test_search_filters_accepts_is_matches() -> None:
    """``matches`` (sources) and ``accepts`` (vector payloads) are one rule, providers too."""
    filters = SearchFilters(year_from=2000, providers=("arxiv",), open_access=False)
    source = Source(key="arxiv:1", provider="arxiv", title="t", year=2001, open_access=None)
    assert filters.matches(source)
    assert not filters.matches(source.model_copy(update={"provider": "openalex"}))
    assert not filters.matches(source.model_copy(update={"year": None}))
    assert not filters.matches(source.model_copy(update={"open_access": True}))
    assert SearchFilters(types=("",)).matches(source)
    assert not SearchFilters(types=("article",)).matches(source)


async def test_filtered_local_search_widens_then_lets_qdrant_filter() -> None:
    """Local mode over-fetches 8k (at least 64), then enough for 2k at the share of points
    that passed, and asks Qdrant to filter past a quarter of the collection; the answer is
    exact each way."""
    points = [
        VectorPoint(
            p.key,
            p.vector,
            p.year,
            "uncommon" if i % 12 == 0 else "rare" if i % 101 == 1 else p.provider,
            p.type,
            p.open_access,
        )
        for i, p in enumerate(make_points(2000, seed=11))
    ]
    async with await QdrantVectorStore.memory("rounds") as store:
        await store.ensure(DIM)
        await store.upsert(points)
        calls: list[tuple[int, bool]] = []
        query = store._query

        async def recorded(
            q: list[float], limit: int, condition: models.Filter | None, fields: list[str]
        ) -> list[models.ScoredPoint]:
            calls.append((limit, condition is not None))
            return await query(q, limit, condition, fields)

        store._query = recorded  # type: ignore[method-assign]
        q = query_vector(5)
        filters = SearchFilters(open_access=True)  # a third of the points: one round
        assert keys(await store.search(q, 10, filters)) == expected(points, q, 10, filters)
        assert calls == [(80, False)]

        calls.clear()
        filters = SearchFilters(providers=("uncommon",))  # 1/12: a second, planned round
        assert keys(await store.search(q, 10, filters)) == expected(points, q, 10, filters)
        assert len(calls) == 2
        assert calls[0] == (80, False)
        assert 160 <= calls[1][0] <= 500
        assert not calls[1][1]

        for rare in (SearchFilters(providers=("rare",)), SearchFilters(providers=("nobody",))):
            calls.clear()
            assert keys(await store.search(q, 10, rare)) == expected(points, q, 10, rare)
            assert calls == [(80, False), (10, True)]

        calls.clear()
        assert keys(await store.search(q, 300, filters)) == expected(points, q, 300, filters)
        assert calls == [(300, True)]  # 8k is past a quarter already

        calls.clear()
        assert keys(await store.search(q, 10)) == expected(points, q, 10)
        assert calls == [(10, False)]


# --- error conversion and servers -------------------------------------------------------


def test_unexpected_response_becomes_vector_store_error() -> None:
    body = b'{"status": {"error": "Wrong input: Vector dimension error"}, "time": 0.0}'
    error = UnexpectedResponse(400, "Bad Request", body, httpx.Headers())
    converted = _converted(error, "Qdrant at x: upsert")
    assert isinstance(converted, VectorStoreError)
    assert (
        str(converted)
        == "Qdrant at x: upsert: Qdrant answered 400: Wrong input: Vector dimension error"
    )
    raw = _converted(UnexpectedResponse(502, "Bad Gateway", b"<html>", httpx.Headers()), "w")
    assert str(raw) == "w: Qdrant answered 502: <html>"
    unreachable = _converted(ResponseHandlingException(httpx.ConnectError("refused")), "w")
    assert str(unreachable) == "w: Qdrant could not be reached (ConnectError: refused)"
    assert str(_converted(RuntimeError(), "w")) == "w: RuntimeError"


async def test_unreachable_server() -> None:
    store = await QdrantVectorStore.server("http://127.0.0.1:9", "sources-x-8")
    assert store.name == "qdrant"
    try:
        with pytest.raises(VectorStoreError, match=r"Qdrant at http://127.0.0.1:9.*reached"):
            await store.ensure(8)
        health = await store.health()
        assert health.status == "unhealthy"
        assert "could not be reached" in (health.detail or "")
    finally:
        await store.aclose()


async def test_bad_server_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="QDRANT_URL"):
        await QdrantVectorStore.server("ftp://qdrant.example", "c")


async def test_api_key_over_plain_http_is_logged_not_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="nomosx.vectors.qdrant"):
        store = await QdrantVectorStore.server("http://qdrant.internal:6333", "c", api_key="k")
    await store.aclose()
    assert "plain HTTP" in caplog.text


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        QdrantVectorStore(None, "c", batch_size=0)  # type: ignore[arg-type]


# --- local mode -------------------------------------------------------------------------


async def test_factory(tmp_path: Path) -> None:
    local = await open_vector_store(None, None, tmp_path / "v", "c")
    assert local.name == "qdrant-local"
    await local.aclose()
    server = await open_vector_store("http://127.0.0.1:9", None, tmp_path / "v", "c")
    assert server.name == "qdrant"
    await server.aclose()


async def test_large_local_collection_is_logged_and_degraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(qdrant_module, "LOCAL_MODE_COMFORT", 10)
    async with await QdrantVectorStore.local(tmp_path / "v", "c") as store:
        await store.ensure(DIM)
        await store.upsert(make_points(11))
        health = await store.health()
    assert health.status == "degraded"
    assert "QDRANT_URL" in (health.detail or "")
    with caplog.at_level(logging.WARNING, logger="nomosx.vectors.qdrant"):
        async with await QdrantVectorStore.local(tmp_path / "v", "c"):
            pass
    assert "11 vectors" in caplog.text


async def test_local_calls_leave_the_event_loop_free(tmp_path: Path) -> None:
    """An upsert runs on the store's thread: the caller's loop keeps ticking meanwhile."""
    async with await QdrantVectorStore.local(tmp_path / "v", "c") as store:
        await store.ensure(DIM)
        points = make_points(1500)
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        await store.upsert(points)
        elapsed = time.perf_counter() - started
        done.set()
        await task
        assert await store.count() == 1500
    # the loop ticked through the upsert (blocked, it would tick once)
    assert ticks >= max(3, int(elapsed * 30))


async def test_query_normalisation_keeps_scores_in_range() -> None:
    async with await QdrantVectorStore.memory() as store:
        await store.ensure(4)
        await store.upsert(
            [VectorPoint("a", np.array([3, 0, 0, 0], dtype=np.float32), None, "x", None, None)]
        )
        (hit,) = await store.search(unit(np.array([1, 1, 0, 0], dtype=np.float32)) * 7, 1)
        assert hit.score == pytest.approx(np.sqrt(0.5), abs=1e-6)


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        ({"text": models.VectorParams(size=8, distance=models.Distance.DOT)}, "named vectors"),
        (models.VectorParams(size=8, distance=models.Distance.EUCLID), "Euclid distance"),
    ],
)
async def test_collections_made_otherwise_are_refused(
    vectors: models.VectorParams | dict[str, models.VectorParams], message: str
) -> None:
    client = AsyncQdrantClient(location=":memory:")
    await client.create_collection("other", vectors_config=vectors)
    async with QdrantVectorStore(client, "other") as store:
        with pytest.raises(VectorStoreError, match=message):
            await store.ensure(8)


async def test_a_cosine_collection_is_accepted() -> None:
    client = AsyncQdrantClient(location=":memory:")
    params = models.VectorParams(size=4, distance=models.Distance.COSINE)
    await client.create_collection("cosine", vectors_config=params)
    async with QdrantVectorStore(client, "cosine") as store:
        await store.ensure(4)
        await store.upsert(
            [VectorPoint("a", np.array([1, 2, 0, 0], dtype=np.float32), None, "x", None, None)]
        )
        (hit,) = await store.search(np.array([1, 2, 0, 0], dtype=np.float32), 1)
        assert hit.score == pytest.approx(1.0, abs=1e-5)
