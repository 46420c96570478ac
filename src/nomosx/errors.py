"""The one exception tree of NomosX.

    NomosXError
    ├── ConfigError            settings missing or unsafe; the message says what to set
    ├── StoreError             the database could not be reached or refused a write
    ├── IngestError            an input file could not be read at all
    │   └── RecordError        one record of an input file is malformed (line number kept)
    ├── ProviderError          a remote dependency failed
    │   ├── LLMError
    │   └── SourceError
    ├── CacheError
    ├── PipelineError          a stage could not produce its output
    │   ├── NoSourcesError     nothing in the library relates to the question
    │   └── GuardError         the brief failed its citation check and could not be repaired
    ├── InputError             the caller's input is invalid (empty question, bad option)
    └── NotFoundError          an id that names nothing

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
    """A language-model provider failed."""


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


__all__ = [
    "CacheError",
    "ConfigError",
    "GuardError",
    "IngestError",
    "InputError",
    "LLMError",
    "NoSourcesError",
    "NomosXError",
    "NotFoundError",
    "PipelineError",
    "ProviderError",
    "RecordError",
    "SourceError",
    "StoreError",
]
