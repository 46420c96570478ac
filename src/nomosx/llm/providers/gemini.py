"""The Gemini Developer API wire, on the official ``google-genai`` SDK (async API).

- Retries are off: ``HttpOptions.retry_options=HttpRetryOptions(attempts=1)`` (one
  attempt, which also turns off the SDK's implicit aiohttp reconnects), and
  ``automatic_continuation=False`` on every call, since the SDK otherwise resends a
  request to resume a dropped or cut stream. Automatic function calling is disabled.
- The client is built with every setting passed in (``vertexai=False``, API key, base
  URL, ``api_version="v1beta"``), so no environment variable changes where it goes.
- The system prompt goes in ``system_instruction``; roles map ``assistant -> "model"``;
  consecutive turns of the same role are joined.
- JSON: ``response_mime_type="application/json"``, plus ``response_json_schema`` (plain
  JSON Schema, as given) for ``json_schema``.
- Usage: ``prompt_token_count`` (includes cached), ``candidates_token_count`` +
  ``thoughts_token_count`` as output, ``cached_content_token_count``.
- Closing a stream: the SDK nests several generators over the HTTP response, which it
  only closes when the innermost one is finalised. The adapter's own httpx2 response hook
  records the streamed response of each call, and the adapter closes it itself, so a
  consumer that stops early frees the connection at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextvars import ContextVar
from typing import Any

import httpx2
from google import genai
from google.genai import types as gtypes

from nomosx.errors import BadRequest, LLMError
from nomosx.llm.providers._base import PLACEHOLDER_KEY, Reply, SDKChatModel, split_system
from nomosx.llm.providers._errors import from_gemini, malformed_reply
from nomosx.llm.providers.config import ProviderConfig
from nomosx.llm.types import LLMRequest, TokenUsage

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/"
GEMINI_API_VERSION = "v1beta"

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}

# The streamed HTTP responses opened by the ``anext`` being awaited, per task.
_STREAMED: ContextVar[list[httpx2.Response] | None] = ContextVar(
    "nomosx_gemini_streamed", default=None
)


async def _record_response(response: httpx2.Response) -> None:
    """httpx2 response hook: hand the response to the stream that opened it."""
    sink = _STREAMED.get()
    if sink is not None:
        sink.append(response)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class GeminiChatModel(SDKChatModel):
    """A Gemini model behind the Gemini Developer API."""

    def __init__(self, config: ProviderConfig, model: str) -> None:
        super().__init__(config, model)
        self._client = genai.Client(
            vertexai=False,
            api_key=config.api_key or PLACEHOLDER_KEY,
            http_options=gtypes.HttpOptions(
                base_url=config.base_url or GEMINI_BASE_URL,
                api_version=GEMINI_API_VERSION,
                timeout=_ms(config.timeout),
                retry_options=gtypes.HttpRetryOptions(attempts=1),
                async_client_args={"event_hooks": {"response": [_record_response]}},
            ),
        )

    async def _complete(self, request: LLMRequest, seconds: float) -> Reply:
        contents, config = self._request(request, seconds)
        response = await self._client.aio.models.generate_content(
            model=self.model, contents=contents, config=config
        )
        if not response.candidates and not _blocked(response):
            raise malformed_reply(self._ctx, "no candidates in the response")
        return Reply(
            text=_text(response),
            usage=_usage(response.usage_metadata),
            finish_reason=_finish(response),
        )

    async def _stream(
        self, request: LLMRequest, seconds: float
    ) -> AsyncGenerator[str | Reply, None]:
        contents, config = self._request(request, seconds)
        opened: list[httpx2.Response] = []
        chunks: AsyncIterator[gtypes.GenerateContentResponse] | None = None
        finish_reason: str | None = None
        usage = TokenUsage()
        try:
            chunks = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            while True:
                token = _STREAMED.set(opened)
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                finally:
                    _STREAMED.reset(token)
                if chunk.usage_metadata is not None:
                    usage = _usage(chunk.usage_metadata)
                text = _text(chunk)
                if text:
                    yield text
                finish_reason = _finish(chunk) or finish_reason
        finally:
            for response in opened:
                await response.aclose()
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
        if finish_reason is not None:
            yield Reply(usage=usage, finish_reason=finish_reason)

    async def _ping(self, seconds: float) -> None:
        await self._client.aio.models.list(
            config=gtypes.ListModelsConfig(
                page_size=1, http_options=gtypes.HttpOptions(timeout=_ms(seconds))
            )
        )

    def _convert(self, exc: BaseException, timeout: float | None) -> LLMError:
        return from_gemini(exc, self._ctx, timeout)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aio.aclose()
            self._client.close()

    def _request(
        self, request: LLMRequest, seconds: float
    ) -> tuple[list[gtypes.Content], gtypes.GenerateContentConfig]:
        system, turns = split_system(request)
        contents = [
            gtypes.Content(
                role="model" if m.role == "assistant" else "user",
                parts=[gtypes.Part(text=m.content)],
            )
            for m in turns
        ]
        json_options: dict[str, Any] = {}
        wanted = request.response_format
        if wanted is not None and wanted.type != "text":
            json_options["response_mime_type"] = "application/json"
            if wanted.type == "json_schema":
                if wanted.json_schema is None:
                    raise BadRequest(
                        "response_format json_schema needs a json_schema",
                        provider=self.provider,
                        model=self.model,
                    )
                json_options["response_json_schema"] = wanted.json_schema
        config = gtypes.GenerateContentConfig(
            system_instruction=system,
            temperature=request.temperature,
            max_output_tokens=request.max_tokens,
            http_options=gtypes.HttpOptions(timeout=_ms(seconds)),
            automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
            automatic_continuation=False,
            **json_options,
        )
        return contents, config


def _text(response: gtypes.GenerateContentResponse) -> str:
    if not response.candidates:
        return ""
    content = response.candidates[0].content
    if content is None or not content.parts:
        return ""
    return "".join(part.text for part in content.parts if part.text and not part.thought)


def _blocked(response: gtypes.GenerateContentResponse) -> bool:
    feedback = response.prompt_feedback
    return feedback is not None and feedback.block_reason is not None


def _finish(response: gtypes.GenerateContentResponse) -> str | None:
    if not response.candidates:
        return "content_filter" if _blocked(response) else None
    reason = response.candidates[0].finish_reason
    if reason is None:
        return None
    name = str(getattr(reason, "value", reason))
    if name == "FINISH_REASON_UNSPECIFIED":
        return None
    return _FINISH_REASONS.get(name, name.lower())


def _usage(usage: gtypes.GenerateContentResponseUsageMetadata | None) -> TokenUsage:
    if usage is None:
        return TokenUsage()
    return TokenUsage(
        input_tokens=usage.prompt_token_count or 0,
        output_tokens=(usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
        cached_tokens=usage.cached_content_token_count or 0,
    )


__all__ = ["GEMINI_API_VERSION", "GEMINI_BASE_URL", "GeminiChatModel"]
