"""The interface every chat model implements: provider adapters and their wrappers alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from nomosx.llm.types import LLMRequest, LLMResponse, ProviderHealth, StreamEvent


class ChatModel(Protocol):
    """A model that answers ``LLMRequest``s.

    ``complete`` returns the whole answer. ``stream`` yields ``TokenEvent``s as text
    arrives and ends with one ``DoneEvent`` carrying the full response (usage included); an
    adapter raises an ``LLMError`` when it fails, and only a wrapper that can say so
    cleanly (the router) turns failures into an ``ErrorEvent``. Cancelling the iteration
    (``aclose()`` or task cancellation) must cancel the upstream request.
    """

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]: ...

    async def health(self) -> ProviderHealth: ...

    async def aclose(self) -> None: ...
