from __future__ import annotations

import pytest

from nomosx.config import Settings, load_settings
from nomosx.errors import ConfigError
from nomosx.llm.model_ref import ModelRef, parse_model_ref

PROVIDERS = ("openai", "anthropic", "gemini", "ollama")


def test_parse_model_ref() -> None:
    assert parse_model_ref(" OpenAI:gpt-4o-mini ", PROVIDERS) == ModelRef("openai", "gpt-4o-mini")
    assert str(parse_model_ref("ollama:llama3.2:3b", PROVIDERS)) == "ollama:llama3.2:3b"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpt-4o-mini", "not a model reference"),
        ("openai:", "not a model reference"),
        ("antropic:claude", "did you mean 'anthropic'"),
        ("mistral:large", "unknown language-model provider 'mistral'"),
    ],
)
def test_bad_model_refs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model_ref(text, PROVIDERS)


def test_chain_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant")
    monkeypatch.setenv("NOMOSX_LLM__COMPATIBLE__OLLAMA__BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("NOMOSX_LLM_CHAIN", "anthropic:claude-3-5-haiku-latest, ollama:llama3.2")
    settings = load_settings()
    assert settings.model_chain == [
        ("anthropic", "claude-3-5-haiku-latest"),
        ("ollama", "llama3.2"),
    ]
    assert settings.llm_configured
    assert settings.public_dict()["llm_chain"] == [
        "anthropic:claude-3-5-haiku-latest",
        "ollama:llama3.2",
    ]


def test_default_chain_follows_the_keys_set() -> None:
    assert Settings().model_chain == []
    assert Settings(gemini_api_key="g", openai_api_key="o").model_chain == [
        ("openai", "gpt-4o-mini"),
        ("gemini", "gemini-2.0-flash"),
    ]


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ("openai:gpt-4o-mini", "set OPENAI_API_KEY"),
        ("antropic:claude", "did you mean 'anthropic'"),
    ],
)
def test_chain_errors_name_the_fix(
    monkeypatch: pytest.MonkeyPatch, chain: str, message: str
) -> None:
    monkeypatch.setenv("NOMOSX_LLM_CHAIN", chain)
    with pytest.raises(ConfigError, match=message):
        load_settings()
