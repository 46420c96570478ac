"""The typed views of the cache, on both backends."""

from __future__ import annotations

import numpy as np

from nomosx.cache.adapters import EmbeddingCache, cached_json
from nomosx.cache.base import Cache, Namespace
from nomosx.llm.cache import SharedResponseCache
from nomosx.llm.types import LLMResponse, TokenUsage


async def test_embeddings_round_trip_packed(cache: Cache) -> None:
    embeddings = EmbeddingCache(cache, "all-MiniLM-L6-v2")
    texts = ["carbon tax", "vitamin D", "carbon tax"]
    assert await embeddings.get_many(texts) == [None, None, None]
    vectors = [np.random.default_rng(i).standard_normal(384).astype(np.float32) for i in range(2)]
    await embeddings.set_many(texts[:2], vectors)
    found = await embeddings.get_many(texts)
    assert found[0] is not None and np.array_equal(found[0], vectors[0])
    assert found[2] is not None and np.array_equal(found[2], vectors[0])
    other_model = EmbeddingCache(cache, "text-embedding-3-small")
    assert await other_model.get_many(texts[:1]) == [None]  # the model is part of the key
    blob = await cache.get(Namespace.EMB, embeddings.key("vitamin D"))
    assert blob is not None and len(blob) == 384 * 4


async def test_cached_json_computes_once(cache: Cache) -> None:
    calls = 0

    async def fetch() -> dict[str, object]:
        nonlocal calls
        calls += 1
        return {"results": [{"id": "W1", "title": "A"}], "count": 1}

    payload = {"provider": "openalex", "query": "carbon tax", "per_page": 25}
    first = await cached_json(cache, Namespace.API, payload, fetch)
    second = await cached_json(cache, Namespace.API, payload, fetch)
    assert first == second == {"results": [{"id": "W1", "title": "A"}], "count": 1}
    assert calls == 1
    await cached_json(cache, Namespace.API, {**payload, "per_page": 50}, fetch)
    assert calls == 2


async def test_shared_llm_response_cache(cache: Cache) -> None:
    shared = SharedResponseCache(cache)
    response = LLMResponse(
        content="yes", provider="openai", model="gpt-4o-mini", usage=TokenUsage(input_tokens=3)
    )
    assert await shared.get("abc") is None
    await shared.set("abc", response, ttl=60)
    assert await shared.get("abc") == response
    await cache.set(Namespace.LLM, "v1:broken", b"not an encoded value")
    assert await shared.get("broken") is None  # unreadable: dropped, never raised
    assert await cache.get(Namespace.LLM, "v1:broken") is None
