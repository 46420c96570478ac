"""The Anthropic Messages wire, on the official ``anthropic`` SDK.

- The SDK's retries are off (``max_retries=0``) and its OpenTelemetry spans too.
- The system prompt goes in the native ``system`` field; consecutive turns of the same
  role are joined, since the API wants them alternating.
- ``max_tokens`` is required by the API: 1024 when the request sets none.
- No ``temperature``: the SDK's ``messages.create`` has no sampling parameters any more
  (the current models fix them), so ``request.temperature`` is not sent.
- JSON: ``json_schema`` uses structured outputs (``output_config.format``), with the
  schema passed through the SDK's ``transform_schema`` (it closes every object with
  ``additionalProperties: false`` and moves unsupported keywords into descriptions, as
  the SDK's own ``parse`` does). The API has no schema-less JSON mode, so ``json_object``
  is refused with a ``BadRequest`` before any request is sent.
- Usage: ``input_tokens`` here counts the whole prompt (uncached + cache writes + cache
  reads, as OpenAI and genai-prices count it); ``cached_tokens`` is the cache reads.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anthropic
from anthropic.types import Message as AnthropicMessage
from anthropic.types import MessageDeltaUsage, Usage

from nomosx.errors import BadRequest, LLMError
from nomosx.llm.providers._base import PLACEHOLDER_KEY, Reply, SDKChatModel, split_system
from nomosx.llm.providers._errors import from_anthropic, malformed_reply
from nomosx.llm.providers.config import ProviderConfig
from nomosx.llm.types import LLMRequest, TokenUsage

if TYPE_CHECKING:
    from anthropic.types import MessageParam, OutputConfigParam

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 1024

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}


class AnthropicChatModel(SDKChatModel):
    """A Claude model behind the Anthropic Messages API."""

    def __init__(self, config: ProviderConfig, model: str) -> None:
        super().__init__(config, model)
        self._client = anthropic.AsyncAnthropic(
            api_key=config.api_key or PLACEHOLDER_KEY,
            base_url=config.base_url or ANTHROPIC_BASE_URL,
            max_retries=0,
            timeout=config.timeout,
            open_telemetry=False,
        )

    async def _complete(self, request: LLMRequest, seconds: float) -> Reply:
        system, messages = self._messages(request)
        message = await self._client.messages.create(
            model=self.model,
            max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
            messages=messages,
            system=system if system is not None else anthropic.omit,
            output_config=self._output_config(request),
            timeout=seconds,
        )
        if not isinstance(message, AnthropicMessage) or not isinstance(message.content, list):
            raise malformed_reply(self._ctx, "no content in the message")
        text = "".join(block.text for block in message.content if block.type == "text")
        usage = _Counts().update(message.usage).usage()
        return Reply(text=text, usage=usage, finish_reason=_finish(message))

    async def _stream(
        self, request: LLMRequest, seconds: float
    ) -> AsyncGenerator[str | Reply, None]:
        system, messages = self._messages(request)
        stream = await self._client.messages.create(
            model=self.model,
            max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
            messages=messages,
            system=system if system is not None else anthropic.omit,
            output_config=self._output_config(request),
            stream=True,
            timeout=seconds,
        )
        counts = _Counts()
        stop_reason: str | None = None
        stopped = False
        async with stream:  # closes the HTTP response however the iteration ends
            async for event in stream:
                if event.type == "message_start":
                    counts.update(event.message.usage)
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        yield event.delta.text
                elif event.type == "message_delta":
                    stop_reason = event.delta.stop_reason
                    counts.update(event.usage)
                elif event.type == "message_stop":
                    stopped = True
        if stopped:
            finish = _FINISH_REASONS.get(stop_reason, stop_reason) if stop_reason else None
            yield Reply(usage=counts.usage(), finish_reason=finish)

    async def _ping(self, seconds: float) -> None:
        await self._client.models.list(limit=1, timeout=seconds)

    def _convert(self, exc: BaseException, timeout: float | None) -> LLMError:
        return from_anthropic(exc, self._ctx, timeout)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()

    def _messages(self, request: LLMRequest) -> tuple[str | None, list[MessageParam]]:
        system, turns = split_system(request)
        messages: list[MessageParam] = []
        for turn in turns:
            if turn.role == "assistant":
                messages.append({"role": "assistant", "content": turn.content})
            else:
                messages.append({"role": "user", "content": turn.content})
        return system, messages

    def _output_config(self, request: LLMRequest) -> OutputConfigParam | anthropic.Omit:
        wanted = request.response_format
        if wanted is None or wanted.type == "text":
            return anthropic.omit
        if wanted.type == "json_object" or wanted.json_schema is None:
            raise BadRequest(
                "Anthropic has no schema-less JSON mode: ask for response_format "
                "json_schema with a schema",
                provider=self.provider,
                model=self.model,
            )
        try:
            schema = anthropic.transform_schema(wanted.json_schema)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BadRequest(
                f"this JSON schema cannot be used for structured output: {exc}",
                provider=self.provider,
                model=self.model,
            ) from exc
        return {"format": {"type": "json_schema", "schema": schema}}


@dataclass
class _Counts:
    """Anthropic's token counts. Its ``input_tokens`` excludes cache reads and writes;
    ours includes them. ``message_delta`` counts are cumulative and may leave some out:
    a missing count keeps the value ``message_start`` gave."""

    uncached: int = 0
    cache_write: int = 0
    cache_read: int = 0
    output: int = 0

    def update(self, usage: Usage | MessageDeltaUsage) -> _Counts:
        if usage.input_tokens is not None:
            self.uncached = usage.input_tokens
        if usage.cache_creation_input_tokens is not None:
            self.cache_write = usage.cache_creation_input_tokens
        if usage.cache_read_input_tokens is not None:
            self.cache_read = usage.cache_read_input_tokens
        if usage.output_tokens is not None:
            self.output = usage.output_tokens
        return self

    def usage(self) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.uncached + self.cache_write + self.cache_read,
            output_tokens=self.output,
            cached_tokens=self.cache_read,
        )


def _finish(message: AnthropicMessage) -> str | None:
    reason = message.stop_reason
    return _FINISH_REASONS.get(reason, reason) if reason is not None else None


__all__ = ["ANTHROPIC_BASE_URL", "DEFAULT_MAX_TOKENS", "AnthropicChatModel"]
