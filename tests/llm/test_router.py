"""The router's own logic, on in-process scripted models and a manual clock."""

from __future__ import annotations

import pytest

from nomosx.breaker import BreakerState, CircuitBreaker
from nomosx.errors import (
    AllProvidersFailed,
    AuthenticationFailed,
    BadRequest,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from nomosx.llm.retry import RetryPolicy
from nomosx.llm.router import CONTINUE_PROMPT, Router, RouterLimits
from nomosx.llm.types import (
    DoneEvent,
    ErrorEvent,
    HealthStatus,
    LLMRequest,
    Message,
    ProviderSwitched,
    TokenEvent,
)
from nomosx.testing.models import Answer, Raise, ScriptedModel
from tests.llm.clock import FakeClock

REQUEST = LLMRequest(messages=[Message(role="user", content="Say hello")])


def _router(*models: ScriptedModel, clock: FakeClock, **kw) -> Router:  # type: ignore[no-untyped-def]
    kw.setdefault("policy", RetryPolicy(attempts=3, base=0.5, max_delay=8.0, jitter=lambda: 1.0))
    return Router(list(models), sleep=clock.sleep, clock=clock, **kw)


async def test_fallback_in_order_each_with_its_own_model() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "gpt-4o-mini", default=Raise(ProviderUnavailable("503")))
    b = ScriptedModel(
        "anthropic", "claude-3-5-haiku-latest", default=Raise(ProviderUnavailable("down"))
    )
    c = ScriptedModel("gemini", "gemini-2.0-flash", [Answer("hello from gemini")])
    response = await _router(a, b, c, clock=clock).complete(REQUEST)
    assert response.content == "hello from gemini"
    assert (response.provider, response.model) == ("gemini", "gemini-2.0-flash")
    assert len(a.requests) == 3 and len(b.requests) == 3 and len(c.requests) == 1
    assert response.attempts == 7
    # exponential backoff with (here maximal) jitter: 0.5, 1.0 per provider
    assert clock.sleeps == [0.5, 1.0, 0.5, 1.0]


async def test_no_fallback_on_the_callers_bad_request() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m", [Raise(BadRequest("max_tokens too large"))])
    b = ScriptedModel("anthropic", "m2")
    with pytest.raises(BadRequest, match="max_tokens"):
        await _router(a, b, clock=clock).complete(REQUEST)
    assert b.requests == []
    assert clock.sleeps == []


async def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    a = ScriptedModel(
        "openai", "m", [Raise(RateLimited("slow down", retry_after=7.0)), Answer("ok")]
    )
    response = await _router(a, clock=clock).complete(REQUEST)
    assert response.content == "ok"
    assert clock.sleeps == [7.0]


async def test_a_long_retry_after_moves_on_to_the_next_provider() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m", [Raise(RateLimited("quota", retry_after=3600.0))])
    b = ScriptedModel("anthropic", "m2", [Answer("from b")])
    response = await _router(a, b, clock=clock).complete(REQUEST)
    assert response.provider == "anthropic"
    assert clock.sleeps == []


async def test_authentication_failure_is_not_retried_but_falls_back() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m", [Raise(AuthenticationFailed("bad key"))])
    b = ScriptedModel("anthropic", "m2", [Answer("fine")])
    assert (await _router(a, b, clock=clock).complete(REQUEST)).provider == "anthropic"
    assert len(a.requests) == 1


async def test_full_jitter_stays_within_the_exponential_ceiling() -> None:
    policy = RetryPolicy(base=0.5, max_delay=4.0, jitter=lambda: 0.999)
    error = ProviderUnavailable("x")
    assert [round(policy.delay(k, error), 3) for k in range(1, 6)] == [
        0.499,
        0.999,
        1.998,
        3.996,
        3.996,
    ]
    assert RetryPolicy(jitter=lambda: 0.0).delay(3, error) == 0.0


async def test_all_failing_reports_every_provider() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m1", default=Raise(ProviderUnavailable("boom a")))
    b = ScriptedModel("anthropic", "m2", default=Raise(Timeout("slow b")))
    with pytest.raises(AllProvidersFailed) as info:
        await _router(a, b, clock=clock, policy=RetryPolicy(attempts=1)).complete(REQUEST)
    assert [e.provider for e in info.value.errors] == ["openai", "anthropic"]
    assert "boom a" in str(info.value) and "slow b" in str(info.value)


async def test_deadline_bounds_the_whole_call() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m", default=Raise(RateLimited("wait", retry_after=20.0)))
    router = _router(a, clock=clock, limits=RouterLimits(deadline=30.0))
    with pytest.raises(AllProvidersFailed):
        await router.complete(REQUEST)
    assert clock.sleeps == [20.0]  # a second 20 s wait would pass the deadline
    request = REQUEST.model_copy(update={"timeout": 5.0})
    b = ScriptedModel("openai", "m", [Answer("x")])
    await _router(b, clock=clock).complete(request)
    assert b.requests[0].timeout == 5.0  # the remaining time is passed down


async def test_requested_model_goes_first() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m1", [Answer("a")])
    b = ScriptedModel("anthropic", "m2", [Answer("b")])
    router = _router(a, b, clock=clock)
    response = await router.complete(REQUEST.model_copy(update={"model": "anthropic:m2"}))
    assert response.provider == "anthropic"
    with pytest.raises(BadRequest, match="not configured"):
        await router.complete(REQUEST.model_copy(update={"model": "openai:gpt-9"}))


async def test_breaker_opens_skips_half_opens_and_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, cooldown=30.0, clock=clock)
    a = ScriptedModel("openai", "m", default=Raise(ProviderUnavailable("down")))
    b = ScriptedModel("anthropic", "m2", default=Answer("b"))
    router = _router(
        a, b, clock=clock, breakers={"openai": breaker}, policy=RetryPolicy(attempts=1)
    )

    await router.complete(REQUEST)
    assert breaker.state is BreakerState.CLOSED
    await router.complete(REQUEST)
    assert breaker.state is BreakerState.OPEN
    calls = len(a.requests)
    await router.complete(REQUEST)  # skipped while open
    assert len(a.requests) == calls

    clock.advance(30.0)
    assert breaker.state is BreakerState.HALF_OPEN
    await router.complete(REQUEST)  # the probe fails: open again
    assert len(a.requests) == calls + 1
    assert breaker.state is BreakerState.OPEN

    clock.advance(30.0)
    a.default = Answer("a is back")
    response = await router.complete(REQUEST)
    assert response.provider == "openai"
    assert breaker.state is BreakerState.CLOSED
    health = {h.provider: h for h in await router.provider_health()}
    assert health["openai"].breaker == "closed"


async def test_half_open_lets_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cooldown=10.0, clock=clock)
    breaker.record_failure()
    clock.advance(10.0)
    assert breaker.allow() is True
    assert breaker.allow() is False  # a second caller waits for the probe's verdict
    breaker.release()
    assert breaker.allow() is True
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(threshold=0)


async def _collect(router: Router, request: LLMRequest = REQUEST) -> list:  # type: ignore[type-arg]
    return [event async for event in router.stream(request)]


async def test_stream_skips_a_provider_failing_before_the_first_token() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m1", [Raise(ProviderUnavailable("refused"))])
    b = ScriptedModel("anthropic", "m2", [Answer("hello there friend")])
    events = await _collect(_router(a, b, clock=clock, policy=RetryPolicy(attempts=1)))
    assert not any(isinstance(e, ProviderSwitched) for e in events)
    text = "".join(e.content for e in events if isinstance(e, TokenEvent))
    assert text == "hello there friend"
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.response.provider == "anthropic"


async def test_mid_stream_failover_continues_the_answer() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m1", [Raise(ProviderUnavailable("reset"), cut_after=2)])
    b = ScriptedModel("anthropic", "m2", [Answer("and the rest.", input_tokens=30)])
    events = await _collect(_router(a, b, clock=clock))
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ProviderSwitched") == 2  # after the two tokens already sent
    switched = events[2]
    assert (switched.from_provider, switched.to_provider) == ("openai", "anthropic")
    text = "".join(e.content for e in events if isinstance(e, TokenEvent))
    assert text == "chunk chunk and the rest."
    # the continuation prompt carries what was already said
    continued = b.requests[0]
    assert continued.messages[-2].role == "assistant"
    assert continued.messages[-2].content == "chunk chunk "
    assert continued.messages[-1].content == CONTINUE_PROMPT
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.response.content == text
    # usage of both providers: estimated for the cut part, reported for the rest
    assert done.response.usage.input_tokens > 30
    assert done.response.usage.output_tokens > 3
    assert len(a.requests) == 1  # no retry of the failed provider mid-answer


async def test_stream_ends_with_an_error_event_when_nothing_is_left() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m1", default=Raise(ProviderUnavailable("down"), cut_after=1))
    events = await _collect(_router(a, clock=clock))
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].code == "all_providers_failed"
    bad = ScriptedModel("openai", "m1", [Raise(BadRequest("too long"))])
    events = await _collect(_router(bad, clock=clock))
    assert events == [ErrorEvent(code="bad_request", message="too long")]


async def test_health_is_cached_and_aggregated() -> None:
    clock = FakeClock()
    a = ScriptedModel("openai", "m1")
    b = ScriptedModel("anthropic", "m2", healthy=False)
    router = _router(a, b, clock=clock, limits=RouterLimits(health_ttl=10.0))
    overall = await router.health()
    assert overall.status is HealthStatus.DEGRADED
    await router.health()
    assert a.health_checks == 1  # reused within the ttl
    clock.advance(11.0)
    await router.provider_health()
    assert a.health_checks == 2
    b.healthy = True
    clock.advance(11.0)
    assert (await router.health()).status is HealthStatus.HEALTHY
    await router.aclose()
    assert a.closed and b.closed
