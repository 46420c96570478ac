"""What the three adapters share: timing, the error boundary, stream assembly, health.

An adapter implements ``_complete`` (one request, one ``Reply``), ``_stream`` (text
deltas, then one ``Reply`` once the vendor said the answer is finished), ``_ping`` (a
cheap authenticated call), ``_convert`` (its SDK's exceptions) and ``aclose``. This class
turns that into the ``ChatModel`` protocol and guarantees that only ``LLMError``s leave
``complete``/``stream`` and that ``health`` never raises. It never retries, falls back,
caches or prices: the router does.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from time import perf_counter

from nomosx.errors import ConfigError, LLMError, RateLimited
from nomosx.llm.providers._errors import ErrorContext, malformed_reply
from nomosx.llm.providers.config import ProviderConfig
from nomosx.llm.types import (
    DoneEvent,
    HealthStatus,
    LLMRequest,
    LLMResponse,
    Message,
    ProviderHealth,
    StreamEvent,
    TokenEvent,
    TokenUsage,
)

HEALTH_TIMEOUT = 10.0  # seconds; a health check never waits longer than this
PLACEHOLDER_KEY = "not-needed"  # for local servers: the SDKs insist on some key


@dataclass(frozen=True, slots=True)
class Reply:
    """The end of an answer: the text (``complete`` only), usage and why it stopped."""

    text: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: str | None = None


def merge_turns(messages: list[Message]) -> list[Message]:
    """Join consecutive messages of the same role (APIs that want alternating turns)."""
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            joined = f"{merged[-1].content}\n\n{message.content}"
            merged[-1] = Message(role=message.role, content=joined)
        else:
            merged.append(message)
    return merged


def split_system(request: LLMRequest) -> tuple[str | None, list[Message]]:
    """The system prompt apart and the conversation with alternating turns.

    A request made of system messages only is sent as one user turn: the APIs that take
    the system prompt apart refuse an empty conversation.
    """
    system, turns = request.system, merge_turns(request.conversation)
    if not turns and system is not None:
        return None, [Message(role="user", content=system)]
    return system, turns


class SDKChatModel(ABC):
    """Base of the adapters on the official SDKs."""

    def __init__(self, config: ProviderConfig, model: str) -> None:
        if not model.strip():
            raise ConfigError(f"provider {config.name!r}: a model name is required")
        self._config = config
        self._model = model
        self._ctx = ErrorContext(provider=config.name, model=model, secret=config.api_key)
        self._closed = False

    @property
    def provider(self) -> str:
        return self._config.name

    @property
    def model(self) -> str:
        return self._model

    @property
    def config(self) -> ProviderConfig:
        return self._config

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, model={self.model!r})"

    # --- to implement ---------------------------------------------------------------------

    @abstractmethod
    async def _complete(self, request: LLMRequest, seconds: float) -> Reply: ...

    @abstractmethod
    def _stream(self, request: LLMRequest, seconds: float) -> AsyncGenerator[str | Reply, None]:
        """Text deltas, then one ``Reply`` (usage, finish reason) if the answer ended
        properly. Closing this iterator must close the HTTP response."""

    @abstractmethod
    async def _ping(self, seconds: float) -> None: ...

    @abstractmethod
    def _convert(self, exc: BaseException, timeout: float | None) -> LLMError: ...

    @abstractmethod
    async def aclose(self) -> None: ...

    # --- the ChatModel protocol -------------------------------------------------------

    async def complete(self, request: LLMRequest) -> LLMResponse:
        timeout = self._config.attempt_timeout(request.timeout)
        started = perf_counter()
        try:
            # The SDK's timeout bounds each network phase; this bounds the attempt.
            async with asyncio.timeout(timeout):
                reply = await self._complete(request, timeout)
        except LLMError:
            raise
        except Exception as exc:
            raise self._convert(exc, timeout) from exc
        return self._response(reply.text, reply, started)

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        return self._stream_events(request)

    async def _stream_events(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        timeout = self._config.attempt_timeout(request.timeout)
        started = perf_counter()
        parts: list[str] = []
        end: Reply | None = None
        upstream = self._stream(request, timeout)
        try:
            async for item in upstream:
                if isinstance(item, Reply):
                    end = item
                elif item:
                    parts.append(item)
                    yield TokenEvent(content=item)
        except LLMError:
            raise
        except Exception as exc:
            raise self._convert(exc, timeout) from exc
        finally:
            await upstream.aclose()
        if end is None:
            raise malformed_reply(self._ctx, "the stream ended before the answer was complete")
        yield DoneEvent(response=self._response("".join(parts), end, started))

    async def health(self) -> ProviderHealth:
        timeout = min(self._config.timeout, HEALTH_TIMEOUT)
        started = perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await self._ping(timeout)
        except Exception as exc:  # noqa: BLE001 - a health check reports, it never raises
            error = exc if isinstance(exc, LLMError) else self._convert(exc, timeout)
            degraded = isinstance(error, RateLimited)
            return ProviderHealth(
                provider=self.provider,
                status=HealthStatus.DEGRADED if degraded else HealthStatus.DOWN,
                latency_ms=_elapsed_ms(started) if degraded else None,
                detail=f"{type(error).__name__}: {error}"[:200],
            )
        return ProviderHealth(
            provider=self.provider, status=HealthStatus.HEALTHY, latency_ms=_elapsed_ms(started)
        )

    def _response(self, text: str, reply: Reply, started: float) -> LLMResponse:
        return LLMResponse(
            content=text,
            provider=self.provider,
            model=self.model,
            usage=reply.usage,
            latency_ms=_elapsed_ms(started),
            finish_reason=reply.finish_reason,
        )


def _elapsed_ms(started: float) -> float:
    return round((perf_counter() - started) * 1000.0, 3)


__all__ = ["HEALTH_TIMEOUT", "PLACEHOLDER_KEY", "Reply", "SDKChatModel", "merge_turns"]
