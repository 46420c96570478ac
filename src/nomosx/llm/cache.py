"""Caching of LLM responses: the key, the interface, an in-memory implementation and the
wrapper that puts a cache in front of any ``ChatModel``.

Only deterministic calls (temperature 0) are cached, unless the caller opts in with
``CachePolicy.ALWAYS``. A hit is returned with ``cached=True`` and ``cost_usd=0.0``; the
cost it saved is recorded in the ledger.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from pydantic import ValidationError

from nomosx.cache.base import Cache, Namespace
from nomosx.cache.codec import decode_model, encode_model
from nomosx.llm.base import ChatModel
from nomosx.llm.ledger import CallLedger
from nomosx.llm.types import (
    CachePolicy,
    DoneEvent,
    LLMRequest,
    LLMResponse,
    ProviderHealth,
    StreamEvent,
    TokenEvent,
)
from nomosx.models import LLMCall

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_TTL = 7 * 24 * 3600.0  # LLM responses: 7 days


def cache_key(request: LLMRequest, target: str) -> str:
    """SHA-256 over a canonical JSON of everything that changes the answer."""
    payload = {
        "v": SCHEMA_VERSION,
        "target": target,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "response_format": (
            request.response_format.model_dump(mode="json") if request.response_format else None
        ),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def cacheable(request: LLMRequest) -> bool:
    if request.cache is CachePolicy.NEVER:
        return False
    return request.cache is CachePolicy.ALWAYS or request.deterministic


class ResponseCache(Protocol):
    async def get(self, key: str) -> LLMResponse | None: ...

    async def set(self, key: str, value: LLMResponse, ttl: float) -> None: ...


class MemoryResponseCache:
    """A bounded in-process LRU with per-entry expiry."""

    def __init__(self, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, LLMResponse]] = OrderedDict()
        self.hits = self.misses = 0

    async def get(self, key: str) -> LLMResponse | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    async def set(self, key: str, value: LLMResponse, ttl: float) -> None:
        self._entries[key] = (self._clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class CachedModel:
    """A ``ChatModel`` that answers repeated deterministic requests from a cache."""

    def __init__(
        self,
        inner: ChatModel,
        cache: ResponseCache,
        *,
        ledger: CallLedger | None = None,
        ttl: float = DEFAULT_TTL,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.ledger = ledger
        self.ttl = ttl

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def model(self) -> str:
        return self.inner.model

    def _key(self, request: LLMRequest) -> str:
        return cache_key(request, request.model or f"{self.inner.provider}:{self.inner.model}")

    async def _hit(self, request: LLMRequest, key: str) -> LLMResponse | None:
        stored = await self.cache.get(key)
        if stored is None:
            return None
        if self.ledger is not None:
            await self.ledger.record(
                LLMCall(
                    agent=request.agent,
                    run_id=request.run_id,
                    user_id=request.user_id,
                    provider=stored.provider,
                    model=stored.model,
                    tokens_in=stored.usage.input_tokens,
                    tokens_out=stored.usage.output_tokens,
                    tokens_cached=stored.usage.cached_tokens,
                    cost_usd=0.0,
                    saved_usd=stored.cost_usd,
                    latency_ms=0.0,
                    cached=True,
                    outcome="cache_hit",
                )
            )
        return stored.model_copy(update={"cached": True, "cost_usd": 0.0, "latency_ms": 0.0})

    async def complete(self, request: LLMRequest) -> LLMResponse:
        if not cacheable(request):
            return await self.inner.complete(request)
        key = self._key(request)
        hit = await self._hit(request, key)
        if hit is not None:
            return hit
        response = await self.inner.complete(request)
        await self.cache.set(key, response, self.ttl)
        return response

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        key = self._key(request) if cacheable(request) else None
        if key is not None:
            hit = await self._hit(request, key)
            if hit is not None:
                yield TokenEvent(content=hit.content)
                yield DoneEvent(response=hit)
                return
        async for event in self.inner.stream(request):
            if key is not None and isinstance(event, DoneEvent):
                await self.cache.set(key, event.response, self.ttl)
            yield event

    async def health(self) -> ProviderHealth:
        return await self.inner.health()

    async def aclose(self) -> None:
        await self.inner.aclose()


class SharedResponseCache:
    """The LLM gateway's ``ResponseCache`` on the shared cache (namespace ``llm``).

    The gateway builds the key (``nomosx.llm.cache.cache_key``: a SHA-256 over everything
    that changes the answer); it is stored as ``v{SCHEMA_VERSION}:{that key}``.
    """

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def get(self, key: str) -> LLMResponse | None:
        blob = await self.cache.get(Namespace.LLM, f"v{SCHEMA_VERSION}:{key}")
        if blob is None:
            return None
        try:
            return decode_model(blob, LLMResponse)
        except (ValueError, ValidationError):
            log.warning("dropping an unreadable cached LLM response")
            await self.cache.delete(Namespace.LLM, f"v{SCHEMA_VERSION}:{key}")
            return None

    async def set(self, key: str, value: LLMResponse, ttl: float) -> None:
        await self.cache.set(Namespace.LLM, f"v{SCHEMA_VERSION}:{key}", encode_model(value), ttl)
