"""The one exception tree of NomosX.

    NomosXError
    ├── ConfigError            settings missing or unsafe; the message says what to set
    ├── StoreError             the database could not be reached or refused a write
    │   └── VectorStoreError   the vector store (Qdrant) failed or holds other vectors
    │       └── VectorStoreLocked  the local vector folder is held by another process
    ├── IngestError            an input file could not be read at all
    │   └── RecordError        one record of an input file is malformed (line number kept)
    ├── ProviderError          a remote dependency failed
    │   ├── LLMError           a language-model call failed (nomosx.llm)
    │   │   ├── ProviderUnavailable      5xx, connection refused or reset, malformed reply
    │   │   │   └── AuthenticationFailed 401/403: the key is wrong or lacks access
    │   │   ├── RateLimited              429; ``retry_after`` seconds when the provider said
    │   │   ├── Timeout                  no answer within the attempt's time limit
    │   │   ├── BadRequest               the caller's request is invalid: never retried,
    │   │   │                            never sent to a fallback provider
    │   │   └── AllProvidersFailed       every provider of the chain failed; ``errors``
    │   └── SourceError
    ├── CacheError
    ├── PipelineError          a stage could not produce its output
    │   ├── NoSourcesError     nothing in the library relates to the question
    │   └── GuardError         the brief failed its citation check and could not be repaired
    ├── InputError             the caller's input is invalid (empty question, bad option)
    ├── NotFoundError          an id that names nothing (or a brief of another user)
    └── AccessError            the caller may not do this (now)
        ├── Unauthenticated    no API key, or one that is unknown or revoked (401)
        ├── Forbidden          the key is valid but lacks the role (403)
        ├── QuotaExceeded      too many requests or streams; ``retry_after`` seconds (429)
        └── BudgetExceeded     the user's daily LLM budget is spent (402)

Errors of the libraries underneath are converted to these at the boundary, so callers
(CLI, API) only ever handle ``NomosXError``.
"""

from __future__ import annotations


class NomosXError(Exception):
    """Base of every error NomosX raises on purpose."""


class ConfigError(NomosXError):
    """A setting is missing, malformed or unsafe."""


class StoreError(NomosXError):
    """The database failed."""


class VectorStoreError(StoreError):
    """The vector store failed: unreachable, refused a request, or its collection holds
    vectors of another dimension."""


class VectorStoreLocked(VectorStoreError):
    """The local vector folder is held by another process (Qdrant local mode allows one)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"the vector folder {path} is in use by another NomosX process (a local vector"
            " store lets one process open a folder); stop that process, or set QDRANT_URL so"
            " that every process shares a Qdrant server"
        )
        self.path = path


class IngestError(NomosXError):
    """An input file as a whole could not be read."""


class RecordError(IngestError):
    """One record of an input file is malformed."""

    def __init__(self, message: str, *, line: int | None = None, source: str | None = None):
        self.line = line
        self.source = source
        where = ""
        if source is not None and line is not None:
            where = f"{source}:{line}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")
        self.reason = message


class ProviderError(NomosXError):
    """A remote provider failed."""


class LLMError(ProviderError):
    """A language-model call failed. ``provider`` and ``model`` say where, when known."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status


class ProviderUnavailable(LLMError):
    """The provider could not answer: a 5xx, a refused or reset connection, a broken reply."""


class AuthenticationFailed(ProviderUnavailable):
    """The provider refused the credentials (401/403)."""


class RateLimited(LLMError):
    """The provider asked to slow down (429)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = 429,
    ) -> None:
        super().__init__(message, provider=provider, model=model, status=status)
        self.retry_after = retry_after


class Timeout(LLMError):
    """The provider did not answer within the time allowed."""


class BadRequest(LLMError):
    """The request itself is invalid (the caller's fault): never retried or rerouted."""


class AllProvidersFailed(LLMError):
    """Every provider of the chain failed; ``errors`` holds each provider's last error."""

    def __init__(self, errors: list[LLMError]) -> None:
        detail = "; ".join(f"{e.provider or '?'}:{e.model or '?'}: {e}" for e in errors)
        super().__init__(f"every language-model provider failed ({detail or 'none configured'})")
        self.errors = errors


class SourceError(ProviderError):
    """An academic source provider failed."""


class CacheError(NomosXError):
    """The cache failed."""


class PipelineError(NomosXError):
    """A pipeline stage could not produce its output."""


class NoSourcesError(PipelineError):
    """Nothing in the searched sources relates to the question."""


class GuardError(PipelineError):
    """The brief failed its citation check and could not be repaired."""

    def __init__(self, message: str, report: object | None = None):
        super().__init__(message)
        self.report = report


class InputError(NomosXError):
    """The caller's input is invalid; the message says what is wrong."""


class NotFoundError(NomosXError):
    """An identifier that names nothing."""


class AccessError(NomosXError):
    """The caller may not do this, or not now."""


class Unauthenticated(AccessError):
    """No API key was sent, or the key is unknown, revoked or of a disabled user."""


class Forbidden(AccessError):
    """The key is valid but its user lacks the role the route needs."""


class QuotaExceeded(AccessError):
    """A per-user limit is reached: requests per minute or concurrent streams."""

    def __init__(
        self, message: str, *, retry_after: float, limit: int, remaining: int = 0, reset: float
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds until a request would be admitted
        self.limit = limit
        self.remaining = remaining
        self.reset = reset  # seconds until the window is whole again


class BudgetExceeded(AccessError):
    """The user's daily LLM spend reached their budget; ``retry_after``: until midnight UTC."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


__all__ = [
    "AccessError",
    "AllProvidersFailed",
    "AuthenticationFailed",
    "BadRequest",
    "BudgetExceeded",
    "CacheError",
    "ConfigError",
    "Forbidden",
    "GuardError",
    "IngestError",
    "InputError",
    "LLMError",
    "NoSourcesError",
    "NomosXError",
    "NotFoundError",
    "PipelineError",
    "ProviderError",
    "ProviderUnavailable",
    "QuotaExceeded",
    "RateLimited",
    "RecordError",
    "SourceError",
    "StoreError",
    "Timeout",
    "Unauthenticated",
    "VectorStoreError",
    "VectorStoreLocked",
]
