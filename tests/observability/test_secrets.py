"""The secret registry and redaction."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from nomosx.config import CompatibleProvider, LLMSettings, Settings
from nomosx.observability.secrets import (
    REDACTED,
    clear_secrets,
    is_secret_key,
    known_secrets,
    redact,
    redact_value,
    register_secrets,
    secrets_from_settings,
)


def test_registered_values_are_replaced_everywhere_in_a_string() -> None:
    register_secrets(["sk-secret-123", SecretStr("another-secret"), None, "  ", "abc"])
    assert known_secrets() >= {"sk-secret-123", "another-secret"}
    assert "abc" not in known_secrets()  # too short to redact by value
    text = "key sk-secret-123, again sk-secret-123 and another-secret; abc stays"
    assert redact(text) == f"key {REDACTED}, again {REDACTED} and {REDACTED}; abc stays"


def test_longer_secrets_win_over_their_prefixes() -> None:
    register_secrets(["secret-1", "secret-1-long-version"])
    assert redact("x secret-1-long-version y") == f"x {REDACTED} y"


def test_percent_encoded_forms_are_registered_too() -> None:
    register_secrets(["p@ss/word!"])
    assert redact("postgresql://app:p%40ss%2Fword%21@db/x") == "postgresql://db/x"
    assert redact("the password is p%40ss%2Fword%21") == f"the password is {REDACTED}"


def test_registering_again_is_harmless_and_clear_forgets() -> None:
    register_secrets(["sk-secret-123"])
    register_secrets(["sk-secret-123"])
    register_secrets([])
    assert known_secrets() == {"sk-secret-123"}
    clear_secrets()
    assert known_secrets() == frozenset()
    assert redact("sk-secret-123") == "sk-secret-123"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://nomosx:pw@db:5432/nomosx", "postgresql://db:5432/nomosx"),
        ("redis://:hunter2@cache:6379/0", "redis://cache:6379/0"),
        ("connect to https://user:pass@example.org/x now", "connect to https://example.org/x now"),
        ("postgresql://nomosx@db/x", "postgresql://nomosx@db/x"),
        ("http://host:8080/path", "http://host:8080/path"),
        ("GET /x?api_key=abc&page=2", f"GET /x?api_key={REDACTED}&page=2"),
        (
            "https://h/v1?key=AIza1&access_token=t",
            f"https://h/v1?key={REDACTED}&access_token={REDACTED}",
        ),
        ("token=abc", f"token={REDACTED}"),
        ("?keywords=cells&author=smith", "?keywords=cells&author=smith"),
        ("a = b", "a = b"),
    ],
)
def test_urls_lose_credentials_and_secret_parameters(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "OPENAI_API_KEY",
        "X-Api-Key",
        "apiKey",
        "apikey",
        "access_token",
        "refresh_tokens",
        "client_secret",
        "secrets",
        "password",
        "db_passwd",
        "pwd",
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "cookies",
        "dsn",
        "sentry_dsn",
        "credentials",
        "auth",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize(
    "name", ["keywords", "tokenizer", "author", "authors", "question", "event", "run_id", ""]
)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_key(name)


def test_redact_value_walks_containers_without_mutating_them() -> None:
    register_secrets(["sk-secret-123"])
    original = {
        "api_key": "zzz",
        "max_tokens": 512,
        "keys": 3,
        "cached": True,
        "password": None,
        "nested": {"token": {"a": 1}, "note": "uses sk-secret-123"},
        "items": ["sk-secret-123", ("sk-secret-123", 1), "x"],
        "obj": 1.5,
    }
    result = redact_value(original)
    assert result == {
        "api_key": REDACTED,
        "max_tokens": 512,
        "keys": 3,
        "cached": True,
        "password": None,
        "nested": {"token": REDACTED, "note": f"uses {REDACTED}"},
        "items": [REDACTED, (REDACTED, 1), "x"],
        "obj": 1.5,
    }
    assert original["api_key"] == "zzz"


def test_header_pairs_are_redacted_by_their_name() -> None:
    register_secrets(["sk-secret-123"])
    asgi_headers = [
        (b"authorization", b"Bearer abc"),
        (b"accept", b"*/*"),
        [b"x-api-key", b"k"],
        ("cookie", None),
    ]
    assert redact_value(asgi_headers) == [
        (b"authorization", REDACTED),
        (b"accept", b"*/*"),
        [b"x-api-key", REDACTED],
        ("cookie", None),
    ]
    serialised = [["b'cookie'", "b'session=1'"], ["b'host'", "b'x'"], ["sk-secret-123", "v"]]
    assert redact_value(serialised) == [
        ["b'cookie'", REDACTED],
        ["b'host'", "b'x'"],
        [REDACTED, REDACTED],
    ]
    assert redact_value(["the password reset", "page"]) == ["the password reset", "page"]


def test_redact_value_stops_at_a_deep_nesting() -> None:
    deep: object = "sk-secret-123"
    for _ in range(30):
        deep = [deep]
    register_secrets(["sk-secret-123"])
    redact_value(deep)  # no RecursionError; the innermost levels are left alone


def test_secrets_from_settings_finds_every_credential(tmp_path: object) -> None:
    settings = Settings(
        openai_api_key="sk-openai-1",
        anthropic_api_key="sk-ant-2",
        gemini_api_key="AIza-gemini-3",
        sentry_dsn="https://public:legacy-secret@o1.ingest.sentry.io/42",
        database_url="postgresql://nomosx:db%2Fpass@db:5432/nomosx",
        redis_url="redis://:redis-pass@cache:6379/0",
        qdrant_url="http://qd:qdrant-pass@qdrant:6333",
        llm=LLMSettings(
            compatible={
                "vllm": CompatibleProvider(base_url="http://vllm/v1", api_key=SecretStr("vk-4")),
                "ollama": CompatibleProvider(base_url="http://localhost:11434/v1"),
            }
        ),
    )
    found = secrets_from_settings(settings)
    for value in (
        "sk-openai-1",
        "sk-ant-2",
        "AIza-gemini-3",
        "https://public:legacy-secret@o1.ingest.sentry.io/42",
        "legacy-secret",
        "db%2Fpass",
        "db/pass",
        "redis-pass",
        "qdrant-pass",
        "vk-4",
    ):
        assert value in found
    assert len(found) == len(set(found))


def test_secrets_from_empty_settings() -> None:
    assert secrets_from_settings(Settings()) == []
    assert secrets_from_settings(Settings(database_url="sqlite:///x.db")) == []


def test_a_malformed_url_yields_no_secret() -> None:
    assert secrets_from_settings(Settings(qdrant_url="http://u:p@[::1")) == []
