from __future__ import annotations

from pathlib import Path

import pytest

from nomosx.config import Settings, load_settings, normalise_database_url
from nomosx.errors import ConfigError


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.database_url is None
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url.endswith("nomosx.db")
    assert not settings.llm_configured
    assert settings.pipeline.sources == 10


def test_conventional_names_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:pw@db:5432/nomosx")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    monkeypatch.setenv("NOMOSX_PIPELINE__SOURCES", "12")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://u:pw@db:5432/nomosx"
    assert settings.openai_api_key is not None
    assert settings.llm_configured
    assert settings.pipeline.sources == 12
    assert "sk-test-123" not in repr(settings)
    assert "pw" not in str(settings.public_dict())


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL must be a PostgreSQL URL"),
        ("REDIS_URL", "http://localhost", "REDIS_URL must start with redis://"),
        ("NOMOSX_PIPELINE__SOURCES", "0", "pipeline.sources"),
        ("NOMOSX_ENV", "production", "NOMOSX_ENV=production needs DATABASE_URL"),
        ("NOMOSX_PIPELINE__QUALITY_WEIGHT", "0.5", "must add up to 1"),
    ],
)
def test_invalid_settings_say_what_to_set(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_production_with_postgres_and_redis_is_accepted() -> None:
    settings = Settings(
        env="production",
        database_url="postgresql://nomosx@db/nomosx",
        redis_url="redis://cache:6379/0",
    )
    assert settings.env == "production"


def test_url_forms() -> None:
    assert normalise_database_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalise_database_url("postgresql+psycopg://a@b/c") == "postgresql+asyncpg://a@b/c"
    assert normalise_database_url("postgresql+asyncpg://a@b/c") == "postgresql+asyncpg://a@b/c"
