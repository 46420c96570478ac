"""The router: one ``ChatModel`` in front of an ordered chain of them.

For each request it tries the chain in order. On a provider's typed failure it retries
that provider (exponential backoff with full jitter, or the provider's ``Retry-After``),
then falls back to the next provider, which uses its own model name. A per-provider
circuit breaker skips a provider that keeps failing. A caller's ``BadRequest`` is raised
at once: another provider would refuse it too. An overall deadline bounds the whole call.

Streaming: before the first token a failing provider is skipped like above. After it, the
answer continues on the next provider from the text already sent (the continuation prompt
includes it); the caller sees one answer and a ``provider_switched`` event. When nothing is
left, the stream ends with an ``error`` event, never silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from nomosx.breaker import BreakerState, CircuitBreaker
from nomosx.errors import AllProvidersFailed, BadRequest, LLMError, ProviderUnavailable, Timeout
from nomosx.llm.base import ChatModel
from nomosx.llm.pricing import cost_usd
from nomosx.llm.retry import RetryPolicy
from nomosx.llm.types import (
    DoneEvent,
    ErrorEvent,
    HealthStatus,
    LLMRequest,
    LLMResponse,
    Message,
    ProviderHealth,
    ProviderSwitched,
    StreamEvent,
    TokenEvent,
    TokenUsage,
)
from nomosx.llm.usage import estimate_usage

CONTINUE_PROMPT = (
    "Your previous answer was cut off. Continue it from exactly where it stops: do not "
    "repeat any of it, do not comment, just write the rest."
)

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RouterLimits:
    deadline: float = 120.0  # seconds for one call, all attempts and providers included
    health_ttl: float = 10.0  # seconds a provider's health check is reused


def continuation(request: LLMRequest, produced: str) -> LLMRequest:
    """The request that makes another provider continue an answer cut after ``produced``."""
    messages = [
        *request.messages,
        Message(role="assistant", content=produced),
        Message(role="user", content=CONTINUE_PROMPT),
    ]
    return request.model_copy(update={"messages": messages})


class Router:
    def __init__(
        self,
        chain: Sequence[ChatModel],
        *,
        policy: RetryPolicy | None = None,
        limits: RouterLimits | None = None,
        breakers: dict[str, CircuitBreaker] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        if not chain:
            raise ValueError("a router needs at least one model")
        self.chain = list(chain)
        self.policy = policy or RetryPolicy()
        self.limits = limits or RouterLimits()
        self.breakers = breakers if breakers is not None else {}
        for route in self.chain:
            self.breakers.setdefault(route.provider, CircuitBreaker(clock=clock))
        self._sleep = sleep
        self._clock = clock
        self._health: dict[str, tuple[float, ProviderHealth]] = {}

    # ------------------------------------------------------------------ identity

    @property
    def provider(self) -> str:
        return self.chain[0].provider

    @property
    def model(self) -> str:
        return self.chain[0].model

    def __repr__(self) -> str:
        return "Router(" + " → ".join(f"{m.provider}:{m.model}" for m in self.chain) + ")"

    def routes_for(self, request: LLMRequest) -> list[ChatModel]:
        """The chain, with the requested ``provider:model`` (if it is in the chain) first."""
        if request.model is None:
            return list(self.chain)
        wanted = [m for m in self.chain if f"{m.provider}:{m.model}" == request.model]
        if not wanted:
            known = ", ".join(f"{m.provider}:{m.model}" for m in self.chain)
            raise BadRequest(f"model {request.model!r} is not configured (configured: {known})")
        return wanted + [m for m in self.chain if m not in wanted]

    # ------------------------------------------------------------------ complete

    async def complete(self, request: LLMRequest) -> LLMResponse:
        deadline = self._clock() + (request.timeout or self.limits.deadline)
        errors: list[LLMError] = []
        attempts = 0
        for route in self.routes_for(request):
            breaker = self.breakers[route.provider]
            for attempt in range(1, self.policy.attempts + 1):
                if not breaker.allow():
                    errors.append(_breaker_open(route, breaker))
                    break
                remaining = deadline - self._clock()
                if remaining <= 0:
                    breaker.release()
                    raise _deadline_passed(errors)
                attempts += 1
                try:
                    response = await route.complete(
                        request.model_copy(update={"timeout": remaining})
                    )
                except BadRequest:
                    breaker.release()
                    raise
                except LLMError as exc:
                    breaker.record_failure()
                    errors.append(exc)
                    if not await self._backoff(attempt, exc, deadline):
                        break
                    continue
                except BaseException:
                    breaker.release()
                    raise
                breaker.record_success()
                return response.model_copy(update={"attempts": attempts})
        raise AllProvidersFailed(errors)

    async def _backoff(self, attempt: int, error: LLMError, deadline: float) -> bool:
        """Wait before retrying the same provider; False when it should not be retried."""
        if attempt >= self.policy.attempts or not self.policy.retryable(error):
            return False
        delay = self.policy.delay(attempt, error)
        if self._clock() + delay >= deadline:
            return False
        await self._sleep(delay)
        return True

    # ------------------------------------------------------------------ stream

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        deadline = self._clock() + (request.timeout or self.limits.deadline)
        try:
            routes = self.routes_for(request)
        except BadRequest as exc:
            yield ErrorEvent(code="bad_request", message=str(exc))
            return
        errors: list[LLMError] = []
        produced = ""
        usage = TokenUsage()
        cost: float | None = 0.0
        attempts = 0
        previous: ChatModel | None = None
        started = time.perf_counter()
        for route in routes:
            breaker = self.breakers[route.provider]
            for attempt in range(1, self.policy.attempts + 1):
                if not breaker.allow():
                    errors.append(_breaker_open(route, breaker))
                    break
                remaining = deadline - self._clock()
                if remaining <= 0:
                    breaker.release()
                    yield _error_event(_deadline_passed(errors))
                    return
                if produced and previous is not None and previous is not route:
                    yield ProviderSwitched(
                        from_provider=previous.provider,
                        from_model=previous.model,
                        to_provider=route.provider,
                        to_model=route.model,
                        reason=str(errors[-1]) if errors else "provider failed",
                    )
                previous = route
                attempts += 1
                sub = request if not produced else continuation(request, produced)
                sub = sub.model_copy(update={"timeout": remaining})
                text_here = ""
                try:
                    async for event in route.stream(sub):
                        if isinstance(event, TokenEvent):
                            text_here += event.content
                            produced += event.content
                            yield event
                        elif isinstance(event, DoneEvent):
                            breaker.record_success()
                            usage = usage + event.response.usage
                            cost = _add_cost(cost, event.response.cost_usd)
                            yield DoneEvent(
                                response=LLMResponse(
                                    content=produced,
                                    provider=route.provider,
                                    model=route.model,
                                    usage=usage,
                                    cost_usd=cost,
                                    latency_ms=round((time.perf_counter() - started) * 1000, 3),
                                    attempts=attempts,
                                    finish_reason=event.response.finish_reason,
                                )
                            )
                            return
                        else:  # a wrapped router's switch or error: pass it on
                            yield event
                    raise ProviderUnavailable(
                        "the stream ended without its final event",
                        provider=route.provider,
                        model=route.model,
                    )
                except BadRequest as exc:
                    breaker.release()
                    yield _error_event(exc)
                    return
                except LLMError as exc:
                    breaker.record_failure()
                    errors.append(exc)
                    if text_here:
                        partial = estimate_usage(sub, text_here)
                        usage = usage + partial
                        cost = _add_cost(cost, cost_usd(route.provider, route.model, partial))
                    if produced:
                        break  # mid-answer: continue on the next provider
                    if not await self._backoff(attempt, exc, deadline):
                        break
                except BaseException:
                    breaker.release()
                    raise
        yield _error_event(AllProvidersFailed(errors))

    # ------------------------------------------------------------------ health

    async def provider_health(self) -> list[ProviderHealth]:
        """Each provider's health, checked for real at most once per ``health_ttl``."""
        now = self._clock()
        seen: dict[str, ChatModel] = {}
        for route in self.chain:
            seen.setdefault(route.provider, route)

        async def check(route: ChatModel) -> ProviderHealth:
            cached = self._health.get(route.provider)
            if cached is not None and now - cached[0] < self.limits.health_ttl:
                result = cached[1]
            else:
                result = await route.health()
                self._health[route.provider] = (now, result)
            breaker = self.breakers[route.provider]
            status = result.status
            if breaker.state is not BreakerState.CLOSED and status is HealthStatus.HEALTHY:
                status = HealthStatus.DEGRADED
            return result.model_copy(update={"breaker": breaker.state.value, "status": status})

        return list(await asyncio.gather(*(check(r) for r in seen.values())))

    async def health(self) -> ProviderHealth:
        checks = await self.provider_health()
        healthy = [c for c in checks if c.status is HealthStatus.HEALTHY]
        if len(healthy) == len(checks):
            status = HealthStatus.HEALTHY
        elif healthy or any(c.status is HealthStatus.DEGRADED for c in checks):
            status = HealthStatus.DEGRADED
        else:
            status = HealthStatus.DOWN
        latencies = [c.latency_ms for c in checks if c.latency_ms is not None]
        return ProviderHealth(
            provider="router",
            status=status,
            latency_ms=max(latencies) if latencies else None,
            detail=", ".join(f"{c.provider}: {c.status.value}" for c in checks),
        )

    async def aclose(self) -> None:
        for route in self.chain:
            await route.aclose()


def _add_cost(total: float | None, part: float | None) -> float | None:
    return None if total is None or part is None else total + part


def _breaker_open(route: ChatModel, breaker: CircuitBreaker) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"circuit open after {breaker.consecutive_failures} consecutive failures; "
        f"next probe in {breaker.retry_in():.1f} s",
        provider=route.provider,
        model=route.model,
    )


def _deadline_passed(errors: list[LLMError]) -> Timeout:
    last = f" (last error: {errors[-1]})" if errors else ""
    return Timeout(f"the call's deadline passed{last}")


def _error_event(error: LLMError) -> ErrorEvent:
    codes = {
        BadRequest: "bad_request",
        Timeout: "timeout",
        AllProvidersFailed: "all_providers_failed",
    }
    return ErrorEvent(code=codes.get(type(error), "provider_error"), message=str(error))
