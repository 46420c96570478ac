"""Caching, pricing and the cost ledger around models (the ledger on both real stores)."""

from __future__ import annotations

import pytest
from genai_prices import Usage, calc_price

from nomosx.errors import ProviderUnavailable
from nomosx.llm.cache import CachedModel, MemoryResponseCache, cache_key, cacheable
from nomosx.llm.ledger import InstrumentedModel, MemoryLedger
from nomosx.llm.pricing import cost_usd
from nomosx.llm.retry import RetryPolicy
from nomosx.llm.router import Router
from nomosx.llm.types import (
    CachePolicy,
    DoneEvent,
    LLMRequest,
    Message,
    ResponseFormat,
    TokenEvent,
    TokenUsage,
)
from nomosx.store.db import Database
from nomosx.store.repositories import LLMCallRepository
from nomosx.testing.models import Answer, Raise, ScriptedModel
from tests.llm.clock import FakeClock

REQUEST = LLMRequest(
    messages=[Message(role="user", content="Summarise")], agent="analyst", run_id=None
)


def test_costs_come_from_genai_prices() -> None:
    usage = TokenUsage(input_tokens=1200, output_tokens=300, cached_tokens=200)
    expected = calc_price(
        Usage(input_tokens=1200, cache_read_tokens=200, output_tokens=300),
        model_ref="gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert cost_usd("openai", "gpt-4o-mini", usage) == pytest.approx(float(expected))
    assert cost_usd("anthropic", "claude-3-5-haiku-latest", usage) is not None
    assert cost_usd("gemini", "gemini-2.0-flash", usage) is not None
    assert cost_usd("openai", "fake-model-9000", usage) is None  # unknown: never $0
    assert cost_usd("ollama", "llama3.2", usage) is None


def test_cache_key_covers_what_changes_the_answer() -> None:
    base = cache_key(REQUEST, "openai:m")
    assert base == cache_key(REQUEST.model_copy(update={"agent": "other"}), "openai:m")
    variants = [
        cache_key(REQUEST, "anthropic:m"),
        cache_key(REQUEST.model_copy(update={"temperature": 0.5}), "openai:m"),
        cache_key(REQUEST.model_copy(update={"max_tokens": 10}), "openai:m"),
        cache_key(
            REQUEST.model_copy(update={"response_format": ResponseFormat(type="json_object")}),
            "openai:m",
        ),
        cache_key(
            REQUEST.model_copy(update={"messages": [Message(role="user", content="Other")]}),
            "openai:m",
        ),
    ]
    assert len({base, *variants}) == 6
    assert cacheable(REQUEST)
    assert not cacheable(REQUEST.model_copy(update={"temperature": 0.7}))
    assert cacheable(REQUEST.model_copy(update={"temperature": 0.7, "cache": CachePolicy.ALWAYS}))
    assert not cacheable(REQUEST.model_copy(update={"cache": CachePolicy.NEVER}))


async def test_cache_hit_costs_nothing_and_records_the_saving() -> None:
    ledger = MemoryLedger()
    scripted = ScriptedModel(
        "openai",
        "gpt-4o-mini",
        default=Answer("cached answer", input_tokens=1000, output_tokens=200),
    )
    model = CachedModel(InstrumentedModel(scripted, ledger), MemoryResponseCache(), ledger=ledger)
    first = await model.complete(REQUEST)
    second = await model.complete(REQUEST)
    assert len(scripted.requests) == 1
    assert first.cached is False and first.cost_usd is not None and first.cost_usd > 0
    assert second.cached is True and second.cost_usd == 0.0
    assert second.content == first.content
    assert [c.outcome for c in ledger.calls] == ["ok", "cache_hit"]
    assert ledger.calls[1].saved_usd == first.cost_usd
    assert ledger.calls[1].cost_usd == 0.0

    hot = REQUEST.model_copy(update={"temperature": 0.9})
    await model.complete(hot)
    await model.complete(hot)
    assert len(scripted.requests) == 3  # not cached without opt-in

    events = [e async for e in model.stream(REQUEST)]
    assert isinstance(events[-1], DoneEvent) and events[-1].response.cached
    assert "".join(e.content for e in events if isinstance(e, TokenEvent)) == "cached answer"


async def test_memory_cache_expires_and_evicts() -> None:
    clock = FakeClock()
    cache = MemoryResponseCache(max_entries=2, clock=clock)
    scripted = ScriptedModel("openai", "m")
    response = await scripted.complete(REQUEST)
    await cache.set("a", response, ttl=10)
    await cache.set("b", response, ttl=10)
    await cache.get("a")
    await cache.set("c", response, ttl=10)  # evicts b, the least recently used
    assert await cache.get("b") is None
    assert await cache.get("a") is not None
    clock.advance(11)
    assert await cache.get("a") is None
    assert cache.hits == 2
    assert cache.misses == 2


async def test_every_attempt_lands_in_the_ledger(db: Database) -> None:
    ledger = LLMCallRepository(db)
    clock = FakeClock()
    a = ScriptedModel(
        "openai",
        "gpt-4o-mini",
        [Raise(ProviderUnavailable("503")), Raise(ProviderUnavailable("503"))],
    )
    b = ScriptedModel(
        "anthropic", "claude-3-5-haiku-latest", [Answer("done", input_tokens=500, output_tokens=50)]
    )
    router = Router(
        [InstrumentedModel(a, ledger), InstrumentedModel(b, ledger)],
        policy=RetryPolicy(attempts=2, jitter=lambda: 0.0),
        sleep=clock.sleep,
        clock=clock,
    )
    response = await router.complete(REQUEST)
    assert response.attempts == 3
    by_provider = {t.group: t for t in await ledger.totals("provider")}
    assert by_provider["openai"].calls == 2
    assert by_provider["openai"].cost_usd == 0.0
    assert by_provider["anthropic"].calls == 1
    assert by_provider["anthropic"].cost_usd == pytest.approx(response.cost_usd)
    by_agent = await ledger.totals("agent")
    assert [(t.group, t.calls) for t in by_agent] == [("analyst", 3)]


async def test_cut_stream_is_recorded_with_estimated_usage() -> None:
    ledger = MemoryLedger()
    a = InstrumentedModel(
        ScriptedModel("openai", "gpt-4o-mini", [Raise(ProviderUnavailable("reset"), cut_after=3)]),
        ledger,
    )
    with pytest.raises(ProviderUnavailable):
        async for _ in a.stream(REQUEST):
            pass
    [call] = ledger.calls
    assert call.outcome == "provider_unavailable"
    assert call.tokens_out > 0 and call.tokens_in > 0
    assert call.cost_usd is not None and call.cost_usd > 0
