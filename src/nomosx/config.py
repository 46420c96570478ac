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
    query_concurrency: int = Field(
        4,
        ge=1,
        le=16,
        description="searches one remote provider runs at once (the question and its "
        "expanded queries); its rate limiter still spaces the requests",
    )


class RetrievalSettings(BaseModel):
    """How RANK finds and orders candidates; each stage can be switched off for measurement.

    Lexical (BM25) and dense (embedding) retrieval are fused by reciprocal rank fusion or a
    weighted sum of normalised scores; the reranker then reorders the top of the fusion.
    """

    lexical: bool = Field(True, description="BM25 retrieval and scoring")
    dense: bool = Field(True, description="embedding retrieval and scoring")
    fusion: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = Field(10, ge=1, description="reciprocal rank fusion constant")
    dense_weight: float = Field(
        0.4, ge=0.0, le=1.0, description="weight of the dense side in both fusions"
    )
    candidates: int = Field(100, ge=10, le=5000, description="hits each retriever returns")
    min_similarity: float = Field(
        0.4, ge=-1.0, le=1.0, description="cosine at which a source is related without terms"
    )
    rerank: bool = Field(
        False, description="rerank the top of the fusion (sentence level; slow when cold)"
    )
    rerank_top: int = Field(20, ge=1, le=200, description="sources the reranker reorders")
    rerank_weight: float = Field(
        0.3, ge=0.0, le=1.0, description="weight of the reranker's order against the fusion's"
    )
    embedder: Literal["local", "openai", "none"] = Field(
        "local", description="local: the MiniLM model shipped in a package"
    )
    embedding_model: str | None = Field(
        None, description="for embedder=openai; default text-embedding-3-small"
    )
    embedding_dim: int | None = Field(None, ge=8, le=4096, description="openai: dimensions")
    embedding_batch: int = Field(32, ge=1, le=2048)
    vector_store: Literal["qdrant", "faiss"] = Field(
        "qdrant",
        description="qdrant: a server (QDRANT_URL) or local mode; faiss: a local IVF index "
        "for large libraries without a server",
    )


class CompatibleProvider(BaseModel):
    """An OpenAI-compatible server (Ollama, vLLM, llama.cpp): a base URL and maybe a key."""

    base_url: str
    api_key: SecretStr | None = None


class LLMSettings(BaseModel):
    """The LLM gateway. The chain itself is ``NOMOSX_LLM_CHAIN`` (see ``Settings``)."""

    compatible: dict[str, CompatibleProvider] = Field(
        default_factory=dict,
        description="NOMOSX_LLM__COMPATIBLE__OLLAMA__BASE_URL=http://localhost:11434/v1",
    )
    openai_base_url: str | None = None
    anthropic_base_url: str | None = None
    gemini_base_url: str | None = None
    timeout: float = Field(60.0, gt=0, description="seconds for one attempt")
    deadline: float = Field(120.0, gt=0, description="seconds for one call, all attempts")
    attempts: int = Field(3, ge=1, le=10, description="attempts per provider")
    backoff_base: float = Field(0.5, ge=0)
    backoff_max: float = Field(8.0, ge=0)
    max_retry_after: float = Field(30.0, ge=0)
    breaker_threshold: int = Field(5, ge=1)
    breaker_cooldown: float = Field(30.0, ge=0)
    health_ttl: float = Field(10.0, ge=0)
    cache_entries: int = Field(1024, ge=0)
    read_concurrency: int = Field(4, ge=1, le=64)


class CacheSettings(BaseModel):
    """The cache: Redis when ``REDIS_URL`` is set, else an SQLite file in the data dir."""

    enabled: bool = True
    ttl_emb: float = Field(30 * 24 * 3600.0, gt=0, description="embeddings, seconds")
    ttl_llm: float = Field(7 * 24 * 3600.0, gt=0, description="LLM responses, seconds")
    ttl_api: float = Field(24 * 3600.0, gt=0, description="external API responses, seconds")
    ttl_brief: float = Field(7 * 24 * 3600.0, gt=0, description="finished briefs, seconds")
    op_timeout: float = Field(0.25, gt=0, description="seconds before a Redis call is a miss")
    breaker_threshold: int = Field(3, ge=1)
    breaker_cooldown: float = Field(5.0, ge=0)
    lock_ttl: float = Field(30.0, gt=0, description="cross-process stampede lock, seconds")
    embedded_max_bytes: int = Field(512 * 1024 * 1024, ge=1024 * 1024)
    embedded_path: Path | None = None

    def ttls(self) -> dict[str, float]:
        return {
            "emb": self.ttl_emb,
            "llm": self.ttl_llm,
            "api": self.ttl_api,
            "brief": self.ttl_brief,
        }


class SourcesSettings(BaseModel):
    """Academic source providers (SCOUT). Base URLs are settings so that tests and
    mirrors can point elsewhere; rates are the providers' published limits."""

    mailto: str | None = Field(
        None, description="contact email for OpenAlex/Crossref polite pools and Unpaywall"
    )
    semantic_scholar_api_key: SecretStr | None = None
    openalex_url: str = "https://api.openalex.org"
    crossref_url: str = "https://api.crossref.org"
    semanticscholar_url: str = "https://api.semanticscholar.org"
    arxiv_url: str = "https://export.arxiv.org"
    unpaywall_url: str = "https://api.unpaywall.org"
    timeout: float = Field(15.0, gt=0, description="seconds per request")
    attempts: int = Field(3, ge=1, le=10)
    upsert: bool = Field(True, description="store sources found remotely in the library")
    unpaywall: bool = Field(True, description="open-access links from Unpaywall (needs mailto)")


class AuthSettings(BaseModel):
    """Who may call the API. Every ``/api/*`` route but health needs an API key
    (``nomosx users create NAME``), unless single-user mode is switched on for local use."""

    single_user: bool = Field(
        False,
        description="no API keys: every request acts as one local admin; refused unless the "
        "server listens on loopback only, and requests from other addresses get 403",
    )
    cookie_secure: bool = Field(
        False, description="mark the web app's key cookie Secure (set it behind HTTPS)"
    )


class LimitsSettings(BaseModel):
    """Per-user limits (defaults; each user can have their own: ``nomosx users limits``).
    Counted in Redis when ``REDIS_URL`` is set (shared by every API process), else in
    memory."""

    enabled: bool = True
    requests_per_minute: int = Field(120, ge=1, description="API requests per user per minute")
    concurrent_streams: int = Field(
        4, ge=1, description="open SSE streams per user (chat streams and brief events)"
    )
    daily_budget_usd: float | None = Field(
        5.0, ge=0, description="LLM spend per user per UTC day; unset: no budget"
    )
    stream_lease_seconds: float = Field(
        120.0, gt=1, description="a stream slot of a process that died frees itself after this"
    )


class JobsSettings(BaseModel):
    """Brief jobs: in the API process, or on ``nomosx worker`` processes through Redis."""

    backend: Literal["auto", "inprocess", "redis"] = Field(
        "auto", description="auto: redis (nomosx worker processes) when REDIS_URL is set"
    )
    queue: str = Field("nomosx:briefs", min_length=1, max_length=100)
    concurrency: int = Field(2, ge=1, le=64, description="briefs at once per process")
    job_timeout: float = Field(
        900.0,
        gt=0,
        description="seconds a brief may run; a dead worker's job is taken again by "
        "another worker after min(job_timeout, 30) + 5 seconds (its lease)",
    )
    max_tries: int = Field(3, ge=1, le=20, description="attempts before the dead-letter record")
    retry_delay: float = Field(5.0, ge=0, description="seconds before the 2nd try, doubling")
    api_worker: bool = Field(
        False,
        description="redis backend: the API process runs jobs too (one machine, no separate "
        "nomosx worker); off: only nomosx worker processes run them",
    )
    retain_events: float = Field(
        24 * 3600.0, gt=0, description="seconds a finished job's events stay readable"
    )


DEFAULT_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "gemini": "gemini-2.0-flash",
}


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
    qdrant_api_key: SecretStr | None = Field(
        None, validation_alias=_alias("QDRANT_API_KEY", "NOMOSX_QDRANT_API_KEY")
    )
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
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm_chain: str | None = Field(
        None,
        validation_alias=_alias("NOMOSX_LLM_CHAIN", "llm_chain"),
        description="comma-separated provider:model, tried in order",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    log_json: bool | None = Field(
        None, description="JSON log lines on stderr; default: on when NOMOSX_ENV=production"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    sentry_traces_sample_rate: float = Field(0.0, ge=0.0, le=1.0)
    sentry_release: str | None = Field(None, description="default: nomosx@<package version>")

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def log_json_enabled(self) -> bool:
        return self.log_json if self.log_json is not None else self.env == "production"

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
        self._check_chain()
        if self.jobs.backend == "redis" and not self.redis_url:
            raise ValueError("NOMOSX_JOBS__BACKEND=redis needs REDIS_URL to be set")
        if self.retrieval.embedder == "openai" and not self.openai_api_key:
            raise ValueError(
                "NOMOSX_RETRIEVAL__EMBEDDER=openai needs OPENAI_API_KEY to be set "
                "(or use the offline embedder: NOMOSX_RETRIEVAL__EMBEDDER=local)"
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

    def _check_chain(self) -> None:
        if not self.llm_chain:
            return
        from nomosx.llm.model_ref import parse_model_ref

        env_names = {
            "openai": "OPENAI_API_KEY",
            "anthropic": "ANTHROPIC_API_KEY",
            "gemini": "GEMINI_API_KEY",
        }
        for item in self.llm_chain.split(","):
            try:
                ref = parse_model_ref(item, self.llm_providers)
            except ConfigError as exc:
                raise ValueError(f"NOMOSX_LLM_CHAIN: {exc}") from None
            if ref.provider in env_names and not self.provider_key(ref.provider):
                raise ValueError(
                    f"NOMOSX_LLM_CHAIN uses {ref}: set {env_names[ref.provider]} "
                    "(or remove it from the chain)"
                )

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: ``DATABASE_URL`` or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'nomosx.db'}"

    @property
    def jobs_backend(self) -> Literal["inprocess", "redis"]:
        """Where brief jobs run: workers take them from Redis."""
        if self.jobs.backend == "auto":
            return "redis" if self.redis_url else "inprocess"
        return self.jobs.backend

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def llm_configured(self) -> bool:
        return bool(self.model_chain)

    def provider_key(self, provider: str) -> SecretStr | None:
        keys = {
            "openai": self.openai_api_key,
            "anthropic": self.anthropic_api_key,
            "gemini": self.gemini_api_key,
        }
        if provider in keys:
            return keys[provider]
        compatible = self.llm.compatible.get(provider)
        return compatible.api_key if compatible else None

    @property
    def llm_providers(self) -> list[str]:
        return [*DEFAULT_MODELS, *self.llm.compatible]

    @property
    def model_chain(self) -> list[tuple[str, str]]:
        """``(provider, model)`` pairs in fallback order: ``NOMOSX_LLM_CHAIN``, or by
        default one model per provider whose key is set."""
        if self.llm_chain:
            pairs = []
            for item in self.llm_chain.split(","):
                provider, _, model = item.strip().partition(":")
                pairs.append((provider.strip().lower(), model.strip()))
            return pairs
        return [(p, m) for p, m in DEFAULT_MODELS.items() if self.provider_key(p)]

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to store with a brief's lineage: no secrets, no credentials."""
        return {
            "env": self.env,
            "database": self.resolved_database_url.split("://", 1)[0],
            "pipeline": self.pipeline.model_dump(),
            "retrieval": self.retrieval.model_dump(),
            "llm_chain": [f"{p}:{m}" for p, m in self.model_chain],
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
