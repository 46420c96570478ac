"""The whole gateway over real HTTP: official SDKs → loopback fake vendors → router.

Three fake vendor servers (OpenAI, Anthropic, Gemini wire formats), the real adapters,
the instrumented ledger on the real store, and the router with a manual clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from nomosx.config import Settings
from nomosx.errors import AllProvidersFailed, BadRequest
from nomosx.llm.factory import build_gateway
from nomosx.llm.ledger import InstrumentedModel, MemoryLedger
from nomosx.llm.pricing import cost_usd
from nomosx.llm.providers import ProviderConfig, make_model
from nomosx.llm.retry import RetryPolicy
from nomosx.llm.router import Router
from nomosx.llm.types import (
    DoneEvent,
    LLMRequest,
    Message,
    ProviderSwitched,
    ResponseFormat,
    TokenEvent,
)
from nomosx.store.db import Database
from nomosx.store.repositories import LLMCallRepository
from nomosx.testing.fake_llm import CutStream, Fail, FakeLLMServer, Reply, unused_port
from tests.llm.clock import FakeClock

REQUEST = LLMRequest(
    messages=[
        Message(role="system", content="Be brief."),
        Message(role="user", content="Does a carbon tax work?"),
    ],
    agent="chat",
)
MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
}


@pytest.fixture
async def vendors() -> AsyncIterator[dict[str, FakeLLMServer]]:
    servers = {name: FakeLLMServer(models=(model,)) for name, model in MODELS.items()}
    for server in servers.values():
        await server.start()
    yield servers
    for server in servers.values():
        await server.stop()


def _model(name: str, server: FakeLLMServer, ledger, *, base_url: str | None = None):  # type: ignore[no-untyped-def]
    url = base_url or (server.openai_base_url if name == "openai" else server.base_url)
    config = ProviderConfig(name=name, wire=name, api_key="sk-test", base_url=url, timeout=5.0)  # type: ignore[arg-type]
    return InstrumentedModel(make_model(config, MODELS[name]), ledger)


def _router(vendors, ledger, clock: FakeClock, **kw) -> Router:  # type: ignore[no-untyped-def]
    kw.setdefault("policy", RetryPolicy(attempts=2, jitter=lambda: 0.5))
    chain = [_model(name, vendors[name], ledger) for name in ("openai", "anthropic", "gemini")]
    return Router(chain, sleep=clock.sleep, clock=clock, **kw)


async def test_fallback_order_uses_each_providers_own_model(vendors, db: Database) -> None:  # type: ignore[no-untyped-def]
    ledger = LLMCallRepository(db)
    clock = FakeClock()
    vendors["openai"].script(Fail(503), Fail(500))
    vendors["anthropic"].script(Fail(529, error_type="overloaded_error"), Fail(503))
    vendors["gemini"].script(Reply("Yes, by 5 to 15 percent.", input_tokens=40, output_tokens=8))
    router = _router(vendors, ledger, clock)
    try:
        response = await router.complete(REQUEST)
    finally:
        await router.aclose()
    assert response.content == "Yes, by 5 to 15 percent."
    assert (response.provider, response.model) == ("gemini", "gemini-2.0-flash")
    assert response.attempts == 5
    assert [r.model for r in vendors["openai"].completion_requests] == ["gpt-4o-mini"] * 2
    assert [r.model for r in vendors["anthropic"].completion_requests] == [
        "claude-3-5-haiku-latest"
    ] * 2
    assert [r.model for r in vendors["gemini"].completion_requests] == ["gemini-2.0-flash"]
    assert clock.sleeps == [0.25, 0.25]  # full jitter of 0.5 s, once per provider
    # every attempt is in the ledger, the failed ones at $0, the answer at genai-prices'
    totals = {t.group: t for t in await ledger.totals("provider")}
    assert (totals["openai"].calls, totals["anthropic"].calls, totals["gemini"].calls) == (2, 2, 1)
    assert totals["openai"].cost_usd == 0.0
    expected = cost_usd("gemini", "gemini-2.0-flash", response.usage)
    assert expected is not None and expected > 0
    assert response.cost_usd == pytest.approx(expected)
    assert totals["gemini"].cost_usd == pytest.approx(expected)


async def test_no_fallback_on_a_callers_error(vendors) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    vendors["openai"].script(Fail(400, message="max_tokens is too large"))
    router = _router(vendors, MemoryLedger(), clock)
    try:
        with pytest.raises(BadRequest, match="max_tokens"):
            await router.complete(REQUEST)
    finally:
        await router.aclose()
    assert vendors["anthropic"].completion_requests == []
    assert vendors["gemini"].completion_requests == []


async def test_retry_after_from_the_wire_is_honoured(vendors) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    vendors["openai"].script(Fail(429, retry_after=3), Reply("after the wait"))
    router = _router(vendors, MemoryLedger(), clock)
    try:
        response = await router.complete(REQUEST)
    finally:
        await router.aclose()
    assert response.content == "after the wait"
    assert clock.sleeps == [3.0]


async def test_refused_connection_falls_back(vendors) -> None:  # type: ignore[no-untyped-def]
    ledger = MemoryLedger()
    clock = FakeClock()
    dead = _model(
        "openai", vendors["openai"], ledger, base_url=f"http://127.0.0.1:{unused_port()}/v1"
    )
    alive = _model("anthropic", vendors["anthropic"], ledger)
    router = Router([dead, alive], policy=RetryPolicy(attempts=1), sleep=clock.sleep, clock=clock)
    try:
        response = await router.complete(REQUEST)
    finally:
        await router.aclose()
    assert response.provider == "anthropic"
    assert [c.outcome for c in ledger.calls] == ["provider_unavailable", "ok"]


async def test_mid_stream_failover_is_one_coherent_answer(vendors) -> None:  # type: ignore[no-untyped-def]
    ledger = MemoryLedger()
    clock = FakeClock()
    first = "Carbon taxes reduce emissions "
    vendors["openai"].script(CutStream(after_chunks=4, text=first + "by a lot, says everyone."))
    vendors["anthropic"].script(Reply("by five to fifteen percent.", chunks=3))
    router = _router(vendors, ledger, clock)
    try:
        events = [e async for e in router.stream(REQUEST)]
    finally:
        await router.aclose()
    tokens = "".join(e.content for e in events if isinstance(e, TokenEvent))
    assert tokens == first + "by five to fifteen percent."
    switches = [e for e in events if isinstance(e, ProviderSwitched)]
    assert [(s.from_provider, s.to_provider) for s in switches] == [("openai", "anthropic")]
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.response.content == tokens
    assert done.response.provider == "anthropic"
    # the continuation carried the text already sent
    continued = vendors["anthropic"].completion_requests[0].body
    assert continued is not None
    assert any(first.strip() in str(m.get("content")) for m in continued["messages"])
    # usage and cost of both providers: the cut one estimated, the other reported
    assert [c.outcome for c in ledger.calls] == ["provider_unavailable", "ok"]
    assert ledger.calls[0].tokens_out > 0
    assert done.response.usage.output_tokens > ledger.calls[1].tokens_out
    assert done.response.cost_usd == pytest.approx(sum(c.cost_usd or 0 for c in ledger.calls))


async def test_consumer_cancellation_cancels_upstream(vendors) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    server = vendors["openai"]
    server.script(Reply("one two three four five six seven eight nine ten", chunk_delay=0.05))
    router = _router(vendors, MemoryLedger(), clock)
    try:
        stream = router.stream(REQUEST)
        received = 0
        async for event in stream:
            if isinstance(event, TokenEvent):
                received += 1
                if received == 2:
                    break
        await stream.aclose()  # type: ignore[attr-defined]
        gone = await server.wait_for_disconnect(timeout=5.0)
        assert gone.disconnected and not gone.completed
        for _ in range(50):
            if server.active_streams == 0:
                break
            await asyncio.sleep(0.02)
        assert server.active_streams == 0
    finally:
        await router.aclose()


async def test_all_down_gives_an_error_event_and_an_exception(vendors) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    for server in vendors.values():
        server.script(*[Fail(503)] * 4)
    router = _router(vendors, MemoryLedger(), clock)
    try:
        events = [e async for e in router.stream(REQUEST)]
        assert events[-1].type == "error"
        assert events[-1].code == "all_providers_failed"
        for server in vendors.values():
            server.script(*[Fail(503)] * 4)
        with pytest.raises(AllProvidersFailed):
            await router.complete(REQUEST)
    finally:
        await router.aclose()


async def test_structured_output_request_reaches_each_vendor(vendors) -> None:  # type: ignore[no-untyped-def]
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
    }
    request = REQUEST.model_copy(
        update={"response_format": ResponseFormat(type="json_schema", json_schema=schema)}
    )
    ledger = MemoryLedger()
    for name in MODELS:
        vendors[name].script(Reply('{"answer": "yes"}'))
        model = _model(name, vendors[name], ledger)
        try:
            response = await model.complete(request)
        finally:
            await model.aclose()
        assert response.content == '{"answer": "yes"}'
    assert "response_format" in (vendors["openai"].completion_requests[0].body or {})


async def test_gateway_from_settings(vendors, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        openai_api_key="sk-test",
        anthropic_api_key="sk-ant-test",
        llm_chain="anthropic:claude-3-5-haiku-latest, openai:gpt-4o-mini",
        llm={
            "anthropic_base_url": vendors["anthropic"].base_url,
            "openai_base_url": vendors["openai"].openai_base_url,
            "attempts": 1,
            "cache_entries": 16,
        },
    )
    ledger = MemoryLedger()
    gateway = build_gateway(settings, ledger=ledger)
    assert gateway is not None
    try:
        vendors["anthropic"].script(Fail(503))
        first = await gateway.complete(REQUEST)
        assert first.provider == "openai"
        again = await gateway.complete(REQUEST)  # deterministic: answered by the cache
        assert again.cached and again.cost_usd == 0.0
        assert len(vendors["openai"].completion_requests) == 1
        health = await gateway.health()
        assert health.status.value in ("healthy", "degraded")
    finally:
        await gateway.aclose()
    assert build_gateway(Settings()) is None
