"""The cost ledger and the wrapper that prices and records every attempt of a model."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol

from nomosx.errors import LLMError
from nomosx.llm.base import ChatModel
from nomosx.llm.pricing import cost_usd
from nomosx.llm.types import (
    DoneEvent,
    LLMRequest,
    LLMResponse,
    ProviderHealth,
    StreamEvent,
    TokenEvent,
    TokenUsage,
)
from nomosx.llm.usage import estimate_usage
from nomosx.models import LLMCall


class CallLedger(Protocol):
    """Where LLM calls are recorded (``LLMCallRepository`` in the store)."""

    async def record(self, call: LLMCall) -> None: ...


class MemoryLedger:
    """A ledger kept in a list (tests, benchmarks, the CLI without a store)."""

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []

    async def record(self, call: LLMCall) -> None:
        self.calls.append(call)


def outcome_of(error: LLMError) -> str:
    """``RateLimited`` → ``rate_limited``: the error class, as the ledger's outcome."""
    name = type(error).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class InstrumentedModel:
    """Wraps a provider adapter: prices each call and records it, success or failure."""

    def __init__(self, inner: ChatModel, ledger: CallLedger | None) -> None:
        self.inner = inner
        self.ledger = ledger

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def model(self) -> str:
        return self.inner.model

    def price(self, usage: TokenUsage) -> float | None:
        return cost_usd(self.inner.provider, self.inner.model, usage)

    async def _record(
        self,
        request: LLMRequest,
        *,
        usage: TokenUsage,
        cost: float | None,
        latency_ms: float,
        error: LLMError | None = None,
    ) -> None:
        if self.ledger is None:
            return
        await self.ledger.record(
            LLMCall(
                agent=request.agent,
                run_id=request.run_id,
                user_id=request.user_id,
                provider=self.inner.provider,
                model=self.inner.model,
                tokens_in=usage.input_tokens,
                tokens_out=usage.output_tokens,
                tokens_cached=usage.cached_tokens,
                cost_usd=cost,
                latency_ms=round(latency_ms, 3),
                outcome="ok" if error is None else outcome_of(error),
                error=None if error is None else str(error)[:500],
            )
        )

    async def complete(self, request: LLMRequest) -> LLMResponse:
        started = time.perf_counter()
        try:
            response = await self.inner.complete(request)
        except LLMError as exc:
            latency = (time.perf_counter() - started) * 1000
            await self._record(request, usage=TokenUsage(), cost=0.0, latency_ms=latency, error=exc)
            raise
        cost = self.price(response.usage)
        await self._record(request, usage=response.usage, cost=cost, latency_ms=response.latency_ms)
        return response.model_copy(update={"cost_usd": cost})

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        """Pass events through; on failure, record what was produced (usage estimated)."""
        started = time.perf_counter()
        produced: list[str] = []
        try:
            async for event in self.inner.stream(request):
                if isinstance(event, TokenEvent):
                    produced.append(event.content)
                elif isinstance(event, DoneEvent):
                    response = event.response
                    cost = self.price(response.usage)
                    latency = (time.perf_counter() - started) * 1000
                    await self._record(request, usage=response.usage, cost=cost, latency_ms=latency)
                    event = DoneEvent(
                        response=response.model_copy(
                            update={"cost_usd": cost, "latency_ms": round(latency, 3)}
                        )
                    )
                yield event
        except LLMError as exc:
            usage = estimate_usage(request, "".join(produced)) if produced else TokenUsage()
            latency = (time.perf_counter() - started) * 1000
            cost = self.price(usage) if produced else 0.0
            await self._record(request, usage=usage, cost=cost, latency_ms=latency, error=exc)
            raise

    async def health(self) -> ProviderHealth:
        return await self.inner.health()

    async def aclose(self) -> None:
        await self.inner.aclose()
