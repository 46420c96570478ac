"""Settings, read once at the edge (CLI, API) and passed down as typed objects.

Environment variables use the ``NOMOSX_`` prefix (nested areas with ``__``, e.g.
``NOMOSX_PIPELINE__SOURCES=12``), plus the conventional names ``DATABASE_URL``,
``REDIS_URL``, ``QDRANT_URL``, ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``,
``GEMINI_API_KEY`` and ``SENTRY_DSN``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from nomosx.errors import ConfigError

_SQLITE_SCHEMES = ("sqlite://", "sqlite+aiosqlite://")
_POSTGRES_SCHEMES = (
    "postgres://",
    "postgresql://",
    "postgresql+asyncpg://",
    "postgresql+psycopg://",
)


def default_data_dir() -> Path:
    return platformdirs.user_data_path("nomosx", appauthor=False)


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def normalise_database_url(url: str) -> str:
    """Map the URL forms people write to the async drivers NomosX uses."""
    url = url.strip()
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


class PipelineSettings(BaseModel):
    """Knobs of the brief pipeline."""

    sources: int = Field(10, ge=1, le=50, description="sources cited in a brief")
    candidates: int = Field(100, ge=5, le=2000, description="sources SCOUT retrieves")
    min_relevance: float = Field(
        0.2, ge=0.0, le=1.0, description="relevance below this fraction of the best is dropped"
    )
    min_term_coverage: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description="share of the question's idf mass a source must match to be kept",
    )
    relevance_weight: float = Field(0.75, ge=0.0, le=1.0)
    quality_weight: float = Field(0.15, ge=0.0, le=1.0)
    novelty_weight: float = Field(0.10, ge=0.0, le=1.0)
    max_per_year: int = Field(4, ge=1, description="diversity: sources of one year at most")
    max_per_venue: int = Field(4, ge=1, description="diversity: sources of one venue at most")
    providers: list[str] = Field(default_factory=lambda: ["library"])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NOMOSX_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        None, validation_alias=_alias("DATABASE_URL", "NOMOSX_DATABASE_URL")
    )
    redis_url: str | None = Field(None, validation_alias=_alias("REDIS_URL", "NOMOSX_REDIS_URL"))
    qdrant_url: str | None = Field(None, validation_alias=_alias("QDRANT_URL", "NOMOSX_QDRANT_URL"))
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("OPENAI_API_KEY", "NOMOSX_OPENAI_API_KEY")
    )
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("ANTHROPIC_API_KEY", "NOMOSX_ANTHROPIC_API_KEY")
    )
    gemini_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("GEMINI_API_KEY", "NOMOSX_GEMINI_API_KEY")
    )
    sentry_dsn: SecretStr | None = Field(
        None, validation_alias=_alias("SENTRY_DSN", "NOMOSX_SENTRY_DSN")
    )
    bundled_library: bool = Field(
        True, description="load the bundled SciFact library into an empty store"
    )
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.strip().startswith(_SQLITE_SCHEMES + _POSTGRES_SCHEMES):
            raise ValueError(
                "DATABASE_URL must be a PostgreSQL URL (postgresql://user@host:5432/db) "
                "or a SQLite URL (sqlite:///path/to/file.db); unset it to use the "
                "embedded SQLite store"
            )
        return normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.env == "production":
            missing = []
            if not self.database_url or not self.database_url.startswith("postgresql"):
                missing.append("DATABASE_URL (a PostgreSQL URL)")
            if not self.redis_url:
                missing.append("REDIS_URL")
            if missing:
                raise ValueError(
                    "NOMOSX_ENV=production needs " + " and ".join(missing) + " to be set"
                )
        weights = (
            self.pipeline.relevance_weight
            + self.pipeline.quality_weight
            + self.pipeline.novelty_weight
        )
        if abs(weights - 1.0) > 1e-6:
            raise ValueError(
                "NOMOSX_PIPELINE__RELEVANCE_WEIGHT, __QUALITY_WEIGHT and __NOVELTY_WEIGHT "
                f"must add up to 1 (they add up to {weights:g})"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: ``DATABASE_URL`` or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'nomosx.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def llm_configured(self) -> bool:
        return any((self.openai_api_key, self.anthropic_api_key, self.gemini_api_key))

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to store with a brief's lineage: no secrets, no credentials."""
        return {
            "env": self.env,
            "database": self.resolved_database_url.split("://", 1)[0],
            "pipeline": self.pipeline.model_dump(),
        }


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once, turning validation errors into one clear ``ConfigError``."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{where}: {message}")
        raise ConfigError("invalid settings: " + "; ".join(lines)) from None
