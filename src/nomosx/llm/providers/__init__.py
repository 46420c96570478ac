"""Provider adapters on the official SDKs: one adapter per wire API.

    ProviderConfig(name, wire, api_key, base_url, timeout)   a vendor endpoint
    make_model(config, model) -> ChatModel                   the adapter for its wire
        wire "openai"    -> OpenAIChatModel     (OpenAI, Ollama, vLLM, llama.cpp, ...)
        wire "anthropic" -> AnthropicChatModel
        wire "gemini"    -> GeminiChatModel

Adapters make exactly one HTTP request per call (SDK retries are off), raise only
``nomosx.errors.LLMError``s, and leave retries, fallback, caching and cost to the router.
"""

from __future__ import annotations

from nomosx.llm.base import ChatModel
from nomosx.llm.providers._base import SDKChatModel
from nomosx.llm.providers.anthropic import AnthropicChatModel
from nomosx.llm.providers.config import WIRES, ProviderConfig, Wire
from nomosx.llm.providers.gemini import GeminiChatModel
from nomosx.llm.providers.openai import OpenAIChatModel

_ADAPTERS: dict[Wire, type[SDKChatModel]] = {
    "openai": OpenAIChatModel,
    "anthropic": AnthropicChatModel,
    "gemini": GeminiChatModel,
}


def make_model(config: ProviderConfig, model: str) -> ChatModel:
    """The adapter that speaks ``config.wire``, for ``model`` at that provider."""
    return _ADAPTERS[config.wire](config, model)


__all__ = [
    "WIRES",
    "AnthropicChatModel",
    "GeminiChatModel",
    "OpenAIChatModel",
    "ProviderConfig",
    "SDKChatModel",
    "Wire",
    "make_model",
]
