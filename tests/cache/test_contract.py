"""The contract every cache backend keeps, run against Redis and the embedded file."""

from __future__ import annotations

import asyncio

import pytest

from nomosx.cache.base import DEFAULT_TTLS, NAMESPACES, Cache, Namespace
from nomosx.cache.keys import make_key


async def test_set_get_delete(cache: Cache) -> None:
    key = make_key({"q": 1})
    assert await cache.get(Namespace.LLM, key) is None
    await cache.set(Namespace.LLM, key, b"\x00value\xff")
    assert await cache.get(Namespace.LLM, key) == b"\x00value\xff"
    assert await cache.delete(Namespace.LLM, key) is True
    assert await cache.delete(Namespace.LLM, key) is False
    assert await cache.get(Namespace.LLM, key) is None


async def test_namespaces_are_isolated(cache: Cache) -> None:
    key = make_key("same")
    await cache.set(Namespace.LLM, key, b"llm")
    await cache.set(Namespace.EMB, key, b"emb")
    assert await cache.get(Namespace.LLM, key) == b"llm"
    assert await cache.get(Namespace.EMB, key) == b"emb"
    assert await cache.get(Namespace.API, key) is None
    assert await cache.invalidate(Namespace.LLM) == 1
    assert await cache.get(Namespace.EMB, key) == b"emb"


async def test_each_namespace_has_its_ttl(cache: Cache) -> None:
    for namespace in NAMESPACES:
        await cache.set(namespace, "k", b"v")
        left = await cache.ttl(namespace, "k")
        assert left is not None
        assert DEFAULT_TTLS[namespace] - 5 <= left <= DEFAULT_TTLS[namespace]
    await cache.set(Namespace.API, "short", b"v", ttl=60)
    left = await cache.ttl(Namespace.API, "short")
    assert left is not None and 55 <= left <= 60
    assert await cache.ttl(Namespace.API, "absent") is None


async def test_a_value_expires(cache: Cache) -> None:
    await cache.set(Namespace.API, "soon", b"v", ttl=0.2)
    assert await cache.get(Namespace.API, "soon") == b"v"
    await asyncio.sleep(0.4)
    assert await cache.get(Namespace.API, "soon") is None


async def test_get_many_and_set_many(cache: Cache) -> None:
    items = {make_key(i): f"value {i}".encode() for i in range(50)}
    await cache.set_many(Namespace.EMB, items)
    keys = [*list(items)[:10], "missing"]
    found = await cache.get_many(Namespace.EMB, keys)
    assert found == {k: items[k] for k in keys[:10]}
    assert await cache.get_many(Namespace.EMB, []) == {}


async def test_pattern_invalidation_removes_exactly_the_matching_keys(cache: Cache) -> None:
    for i in range(30):
        await cache.set(Namespace.API, f"openalex:{i}", b"x")
        await cache.set(Namespace.API, f"crossref:{i}", b"x")
        await cache.set(Namespace.LLM, f"openalex:{i}", b"x")
    assert await cache.invalidate(Namespace.API, "openalex:*") == 30
    assert await cache.get(Namespace.API, "openalex:3") is None
    assert await cache.get(Namespace.API, "crossref:3") == b"x"
    assert await cache.get(Namespace.LLM, "openalex:3") == b"x"
    assert await cache.invalidate(Namespace.API, "crossref:1?") == 10
    assert await cache.get(Namespace.API, "crossref:1") == b"x"
    assert await cache.clear() >= 50
    assert await cache.get(Namespace.LLM, "openalex:3") is None


async def test_stats_count_hits_misses_and_keys(cache: Cache) -> None:
    await cache.set(Namespace.LLM, "a", b"1")
    await cache.set(Namespace.LLM, "b", b"2")
    await cache.get(Namespace.LLM, "a")
    await cache.get(Namespace.LLM, "a")
    await cache.get(Namespace.LLM, "zzz")
    await cache.get_many(Namespace.EMB, ["x", "y"])
    stats = await cache.stats()
    assert stats.status == "up"
    llm = stats.namespaces["llm"]
    assert (llm.hits, llm.misses, llm.keys) == (2, 1, 2)
    assert llm.hit_rate == pytest.approx(2 / 3)
    assert stats.namespaces["emb"].misses == 2
    assert stats.keys == 2
    health = await cache.health()
    assert health.status == "up"
    assert health.backend == cache.backend


async def test_single_flight_computes_once_under_50_concurrent_misses(cache: Cache) -> None:
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"expensive"

    results = await asyncio.gather(
        *(cache.get_or_compute(Namespace.LLM, "hot", compute) for _ in range(50))
    )
    assert results == [b"expensive"] * 50
    assert calls == 1
    assert await cache.get_or_compute(Namespace.LLM, "hot", compute) == b"expensive"
    assert calls == 1


async def test_a_failing_computation_is_not_cached(cache: Cache) -> None:
    async def broken() -> bytes:
        raise RuntimeError("upstream failed")

    with pytest.raises(RuntimeError, match="upstream failed"):
        await cache.get_or_compute(Namespace.API, "k", broken)

    async def fine() -> bytes:
        return b"ok"

    assert await cache.get_or_compute(Namespace.API, "k", fine) == b"ok"
