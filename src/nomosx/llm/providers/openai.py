"""The OpenAI chat-completions wire: OpenAI itself and every compatible server
(Ollama, vLLM, llama.cpp, ...), on the official ``openai`` SDK.

- The SDK's retries are off (``max_retries=0``): the router alone retries.
- The output limit is sent as ``max_completion_tokens`` to OpenAI proper (the SDK marks
  ``max_tokens`` deprecated there, and reasoning models refuse it) and as ``max_tokens``
  to compatible servers, which do not all know the newer name. "OpenAI proper" means the
  provider is named ``openai`` or its base URL is on ``openai.com``.
- JSON: ``response_format`` ``json_object``, or ``json_schema`` with ``strict: true``.
- Streams ask for ``stream_options.include_usage`` so the last chunk carries usage.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.completion_usage import CompletionUsage

from nomosx.errors import BadRequest, LLMError
from nomosx.llm.providers._base import PLACEHOLDER_KEY, Reply, SDKChatModel
from nomosx.llm.providers._errors import from_openai, malformed_reply
from nomosx.llm.providers.config import ProviderConfig
from nomosx.llm.types import LLMRequest, Message, TokenUsage

if TYPE_CHECKING:
    from openai.types.chat.completion_create_params import ResponseFormat

OPENAI_BASE_URL = "https://api.openai.com/v1"


def is_openai_proper(config: ProviderConfig) -> bool:
    """Whether the endpoint is OpenAI's own API rather than a compatible server."""
    if config.name == "openai" or config.base_url is None:
        return True
    host = urlsplit(config.base_url).hostname or ""
    return host == "openai.com" or host.endswith(".openai.com")


class OpenAIChatModel(SDKChatModel):
    """A model behind the OpenAI chat-completions API."""

    def __init__(self, config: ProviderConfig, model: str) -> None:
        super().__init__(config, model)
        self._proper = is_openai_proper(config)
        self._client = openai.AsyncOpenAI(
            api_key=config.api_key or PLACEHOLDER_KEY,
            base_url=config.base_url or OPENAI_BASE_URL,
            max_retries=0,
            timeout=config.timeout,
        )

    async def _complete(self, request: LLMRequest, seconds: float) -> Reply:
        limit = request.max_tokens
        completion = await self._client.chat.completions.create(
            model=self.model,
            messages=[_message(m) for m in request.messages],
            temperature=request.temperature,
            max_completion_tokens=limit if self._proper and limit else openai.omit,
            max_tokens=limit if not self._proper and limit else openai.omit,
            response_format=self._response_format(request),
            timeout=seconds,
        )
        if not isinstance(completion, ChatCompletion) or not completion.choices:
            raise malformed_reply(self._ctx, "no choices in the completion")
        choice = completion.choices[0]
        return Reply(
            text=choice.message.content or "",
            usage=_usage(completion.usage),
            finish_reason=choice.finish_reason,
        )

    async def _stream(
        self, request: LLMRequest, seconds: float
    ) -> AsyncGenerator[str | Reply, None]:
        limit = request.max_tokens
        stream = await self._client.chat.completions.create(
            model=self.model,
            messages=[_message(m) for m in request.messages],
            temperature=request.temperature,
            max_completion_tokens=limit if self._proper and limit else openai.omit,
            max_tokens=limit if not self._proper and limit else openai.omit,
            response_format=self._response_format(request),
            stream=True,
            stream_options={"include_usage": True},
            timeout=seconds,
        )
        finish_reason: str | None = None
        usage = TokenUsage()
        async with stream:  # closes the HTTP response however the iteration ends
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.delta is not None and choice.delta.content:
                        yield choice.delta.content
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        if finish_reason is not None:
            yield Reply(usage=usage, finish_reason=finish_reason)

    async def _ping(self, seconds: float) -> None:
        await self._client.models.list(timeout=seconds)

    def _convert(self, exc: BaseException, timeout: float | None) -> LLMError:
        return from_openai(exc, self._ctx, timeout)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()

    def _response_format(self, request: LLMRequest) -> ResponseFormat | openai.Omit:
        wanted = request.response_format
        if wanted is None or wanted.type == "text":
            return openai.omit
        if wanted.type == "json_object":
            return {"type": "json_object"}
        if wanted.json_schema is None:
            raise BadRequest(
                "response_format json_schema needs a json_schema",
                provider=self.provider,
                model=self.model,
            )
        return {
            "type": "json_schema",
            "json_schema": {"name": wanted.name, "schema": wanted.json_schema, "strict": True},
        }


def _message(message: Message) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _usage(usage: CompletionUsage | None) -> TokenUsage:
    """``prompt_tokens`` includes the cached ones; ``cached_tokens`` says how many."""
    if usage is None:
        return TokenUsage()
    details = usage.prompt_tokens_details
    return TokenUsage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


__all__ = ["OPENAI_BASE_URL", "OpenAIChatModel", "is_openai_proper"]
