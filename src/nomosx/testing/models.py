"""Scriptable in-process chat models: test doubles that need no server.

``ScriptedModel`` answers each call with the next step of its script: an ``LLMResponse``
text, or an ``LLMError`` to raise (for a stream: after ``cut_after`` chunks).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from nomosx.errors import LLMError
from nomosx.llm.types import (
    DoneEvent,
    HealthStatus,
    LLMRequest,
    LLMResponse,
    ProviderHealth,
    StreamEvent,
    TokenEvent,
    TokenUsage,
)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    input_tokens: int = 10
    output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Raise:
    error: LLMError
    cut_after: int = 0  # streams: chunks sent before the error


Step = Answer | Raise


class ScriptedModel:
    def __init__(
        self,
        provider: str,
        model: str,
        script: Iterable[Step] = (),
        *,
        default: Step = Answer("ok"),
        healthy: bool = True,
    ) -> None:
        self._provider = provider
        self._model = model
        self.script: deque[Step] = deque(script)
        self.default = default
        self.healthy = healthy
        self.requests: list[LLMRequest] = []
        self.health_checks = 0
        self.closed = False

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model(self) -> str:
        return self._model

    def _next(self, request: LLMRequest) -> Step:
        self.requests.append(request)
        return self.script.popleft() if self.script else self.default

    def _error(self, step: Raise) -> LLMError:
        error = step.error
        error.provider = error.provider or self._provider
        error.model = error.model or self._model
        return error

    def _response(self, step: Answer) -> LLMResponse:
        words = len(step.text.split())
        return LLMResponse(
            content=step.text,
            provider=self._provider,
            model=self._model,
            usage=TokenUsage(
                input_tokens=step.input_tokens,
                output_tokens=step.output_tokens if step.output_tokens is not None else words,
            ),
            finish_reason="stop",
        )

    async def complete(self, request: LLMRequest) -> LLMResponse:
        step = self._next(request)
        if isinstance(step, Raise):
            raise self._error(step)
        return self._response(step)

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        step = self._next(request)
        if isinstance(step, Raise):
            text = "chunk " * step.cut_after
            for piece in text.split(" ")[: step.cut_after]:
                yield TokenEvent(content=piece + " ")
            raise self._error(step)
        for word in step.text.split(" "):
            yield TokenEvent(content=word if word == step.text.split(" ")[-1] else word + " ")
        yield DoneEvent(response=self._response(step))

    async def health(self) -> ProviderHealth:
        self.health_checks += 1
        status = HealthStatus.HEALTHY if self.healthy else HealthStatus.DOWN
        return ProviderHealth(provider=self._provider, status=status, latency_ms=1.0)

    async def aclose(self) -> None:
        self.closed = True
