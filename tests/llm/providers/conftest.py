"""The fake vendor server, and adapters built on it that are closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from nomosx.llm.providers import ProviderConfig, SDKChatModel, Wire, make_model
from nomosx.testing.fake_llm import FakeLLMServer

WIRES: tuple[Wire, ...] = ("openai", "anthropic", "gemini")
API_KEY = "sk-nomosx-test-Zq8vT3kLmP0xW9"
MODEL = "fake-model"

MakeModel = Callable[..., SDKChatModel]


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(models=(MODEL,)) as fake:
        yield fake


def base_url(server: FakeLLMServer, wire: Wire) -> str:
    return server.openai_base_url if wire == "openai" else server.base_url


@pytest.fixture
async def make(server: FakeLLMServer) -> AsyncIterator[MakeModel]:
    """``make(wire, name=..., **config)``: an adapter on the fake server, closed afterwards."""
    made: list[SDKChatModel] = []

    def build(
        wire: Wire, *, name: str | None = None, model: str = MODEL, **kw: Any
    ) -> SDKChatModel:
        kw.setdefault("api_key", API_KEY)
        kw.setdefault("base_url", base_url(server, wire))
        config = ProviderConfig(name=name or wire, wire=wire, **kw)
        adapter = make_model(config, model)
        assert isinstance(adapter, SDKChatModel)
        made.append(adapter)
        return adapter

    yield build
    for adapter in made:
        await adapter.aclose()


@pytest.fixture(params=WIRES)
def wire(request: pytest.FixtureRequest) -> Wire:
    value: Wire = request.param
    return value
