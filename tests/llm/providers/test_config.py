"""Provider objects."""

from __future__ import annotations

import dataclasses

import pytest

from nomosx.errors import ConfigError
from nomosx.llm.providers import ProviderConfig, make_model
from nomosx.llm.providers.openai import is_openai_proper


def test_an_openai_compatible_server_is_a_provider_object() -> None:
    config = ProviderConfig(name="ollama", wire="openai", base_url="http://localhost:11434/v1")
    assert config.api_key is None
    assert config.timeout == 60.0
    assert not is_openai_proper(config)


def test_the_key_stays_out_of_repr() -> None:
    config = ProviderConfig(name="openai", wire="openai", api_key="sk-abc-123-secret")
    assert "sk-abc-123-secret" not in repr(config)
    assert "sk-abc-123-secret" not in str(config)
    assert "name='openai'" in repr(config)


def test_config_is_frozen() -> None:
    config = ProviderConfig(name="openai", wire="openai")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timeout = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": " ", "wire": "openai"}, "needs a name"),
        ({"name": "x", "wire": "grpc"}, "unknown wire"),
        ({"name": "x", "wire": "openai", "timeout": 0}, "timeout"),
    ],
)
def test_invalid_configs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ProviderConfig(**kwargs)  # type: ignore[arg-type]


def test_a_model_name_is_required() -> None:
    with pytest.raises(ConfigError, match="model name"):
        make_model(ProviderConfig(name="openai", wire="openai"), "  ")


@pytest.mark.parametrize(("request_timeout", "expected"), [(None, 30.0), (5.0, 5.0), (120.0, 30.0)])
def test_attempt_timeout_is_capped_by_the_request(
    request_timeout: float | None, expected: float
) -> None:
    config = ProviderConfig(name="openai", wire="openai", timeout=30.0)
    assert config.attempt_timeout(request_timeout) == expected


@pytest.mark.parametrize(
    ("name", "base_url", "proper"),
    [
        ("openai", None, True),
        ("openai", "http://127.0.0.1:9/v1", True),
        ("azure", "https://eu.api.openai.com/v1", True),
        ("vllm", "http://gpu-box:8000/v1", False),
        ("lmstudio", "not a url", False),
    ],
)
def test_openai_proper_detection(name: str, base_url: str | None, proper: bool) -> None:
    assert is_openai_proper(ProviderConfig(name=name, wire="openai", base_url=base_url)) is proper
