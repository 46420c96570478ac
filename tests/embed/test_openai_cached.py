"""The OpenAI embedder through the official SDK against the loopback server, and the cache
wrapper on both real cache backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from nomosx.cache.base import Cache
from nomosx.embed.cached import CachedEmbedder
from nomosx.embed.openai import OpenAIEmbedder
from nomosx.errors import AuthenticationFailed, BadRequest, RateLimited
from nomosx.llm.providers.config import ProviderConfig
from nomosx.testing.fake_llm import Fail, FakeLLMServer, fake_embedding


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
async def embedder(server: FakeLLMServer) -> AsyncIterator[Callable[..., OpenAIEmbedder]]:
    made: list[OpenAIEmbedder] = []

    def make(*, dim: int, batch: int = 256) -> OpenAIEmbedder:
        config = ProviderConfig(
            name="openai",
            wire="openai",
            api_key="sk-test-secret",
            base_url=server.openai_base_url,
        )
        made.append(OpenAIEmbedder(config, "text-embedding-3-small", dim=dim, batch=batch))
        return made[-1]

    yield make
    for model in made:
        await model.aclose()


async def test_vectors_match_the_wire_in_order_across_batches(
    server: FakeLLMServer, embedder: Callable[..., OpenAIEmbedder]
) -> None:
    model = embedder(dim=64, batch=2)
    texts = ["carbon tax emissions", "vitamin D fractures", "sea level rise", "carbon tax"]
    vectors = await model.embed(texts)
    assert vectors.shape == (4, 64) and vectors.dtype == np.float32
    expected = np.asarray([fake_embedding(t, 64) for t in texts], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    # three words shared out of three: the closest pair is the carbon-tax one
    sims = vectors @ vectors.T
    assert sims[0, 3] > sims[0, 1] and sims[0, 3] > sims[0, 2]
    requests = [r for r in server.requests if r.wire == "embeddings"]
    assert len(requests) == 2  # batches of two
    assert all(r.body is not None and r.body["dimensions"] == 64 for r in requests)
    assert all(r.body is not None and r.body["encoding_format"] == "base64" for r in requests)
    assert model.tokens == 11
    assert model.model == "openai:text-embedding-3-small@64"


async def test_empty_input_makes_no_request(
    server: FakeLLMServer, embedder: Callable[..., OpenAIEmbedder]
) -> None:
    model = embedder(dim=32)
    assert (await model.embed([])).shape == (0, 32)
    assert server.requests == []


async def test_blank_text_is_sent_as_a_space(
    server: FakeLLMServer, embedder: Callable[..., OpenAIEmbedder]
) -> None:
    model = embedder(dim=16)
    vectors = await model.embed(["", "words"])
    assert vectors.shape == (2, 16)
    assert server.requests[0].body is not None
    assert server.requests[0].body["input"] == [" ", "words"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationFailed), (400, BadRequest), (429, RateLimited)],
)
async def test_errors_are_converted_and_never_carry_the_key(
    server: FakeLLMServer,
    embedder: Callable[..., OpenAIEmbedder],
    status: int,
    error: type[Exception],
) -> None:
    model = embedder(dim=16)
    server.script(*[Fail(status, message="bad key sk-test-secret", retry_after=0)] * 3)
    with pytest.raises(error) as caught:
        await model.embed(["text"])
    assert "sk-test-secret" not in str(caught.value)


async def test_cached_embedder_computes_each_text_once(
    server: FakeLLMServer, embedder: Callable[..., OpenAIEmbedder], cache: Cache
) -> None:
    inner = embedder(dim=32)
    model = CachedEmbedder(inner, cache)
    first = await model.embed(["alpha beta", "gamma", "alpha beta"])
    assert model.misses == 2 and model.hits == 0
    sent = server.requests[0].body
    assert sent is not None and sent["input"] == ["alpha beta", "gamma"]  # deduplicated
    second = await model.embed(["gamma", "alpha beta", "delta"])
    assert model.hits == 2 and model.misses == 3
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[1], first[0])
    third_request = server.requests[-1].body
    assert third_request is not None and third_request["input"] == ["delta"]
    # a query and a document of the same text are cached apart
    await model.embed(["gamma"], kind="query")
    assert model.misses == 4
    stats = await cache.stats()
    assert stats.namespaces["emb"].keys == 4
