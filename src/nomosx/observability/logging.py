"""Logging: structlog for NomosX's own events, with the standard library routed through it.

``setup_logging(json=True)`` (production) writes one JSON object per line on stderr::

    {"timestamp": "2025-01-01T12:00:00.000000Z", "level": "info", "logger":
     "nomosx.pipeline", "event": "brief done", "request_id": "3f2a…", "run_id": "r1"}

``setup_logging(json=False)`` writes the same events for people (structlog's console
renderer). Both carry the fields bound with ``nomosx.observability.context.bind`` and
both redact secrets (see ``nomosx.observability.secrets``). Library records (uvicorn,
SQLAlchemy, httpx, ``logging.getLogger(__name__)`` in NomosX modules) go through the same
processors, so they come out in the same format with the same fields.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from typing import Any, TextIO, cast

import structlog
from structlog.typing import (
    EventDict,
    ExceptionRenderer,
    ExcInfo,
    Processor,
    WrappedLogger,
)

from nomosx.observability.secrets import redact, redact_value

__all__ = ["get_logger", "redact_processor", "reset_logging", "setup_logging"]

_HANDLER_NAME = "nomosx-structlog"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record arrives (so that a stream
    swapped after set-up, as test capture does, still receives the lines)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.set_name(_HANDLER_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: secret-named fields and registered secret values redacted."""
    redacted: EventDict = redact_value(event_dict)
    return redacted


def _redact_rendered(_: WrappedLogger, __: str, rendered: Any) -> Any:
    """Last step: the rendered line itself, in case a value's ``repr`` showed a secret."""
    return redact(rendered) if isinstance(rendered, str) else rendered


class _EventDict(dict[str, Any]):
    """The event dict carried by a stdlib record; its ``str`` is the event text, which
    is what handlers other than ours (Sentry's logging integration) show as the message."""

    def __str__(self) -> str:
        return str(self.get("event", ""))


def _wrap_for_formatter(
    logger: WrappedLogger, name: str, event_dict: EventDict
) -> tuple[tuple[EventDict], dict[str, Any]]:
    """``ProcessorFormatter.wrap_for_formatter``, plus the exception handed to the stdlib
    record, so that ``log.exception(...)`` reaches Sentry as an exception event."""
    kwargs: dict[str, Any] = {"extra": {"_logger": logger, "_name": name}}
    exc_info = _exc_info(event_dict.get("exc_info"))
    if exc_info is not None:
        event_dict["exc_info"] = exc_info
        kwargs["exc_info"] = exc_info
    return (_EventDict(event_dict),), kwargs


def _exc_info(value: Any) -> ExcInfo | None:
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return cast(ExcInfo, value)
    if value is True:
        current = sys.exc_info()
        return cast(ExcInfo, current) if current[0] is not None else None
    return None


def _drop_formatter_attributes(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``ExtraAdder`` copies every non-standard record attribute, including the
    ``message`` and ``asctime`` another handler's formatter may have set already."""
    event_dict.pop("message", None)
    event_dict.pop("asctime", None)
    return event_dict


_FIRST_KEYS = ("timestamp", "level", "logger", "event")


def _standard_keys_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Put timestamp, level, logger and event at the start of a JSON line."""
    first = {key: event_dict.pop(key) for key in _FIRST_KEYS if key in event_dict}
    return {**first, **event_dict}


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(json: bool) -> list[Processor]:
    if json:
        return [
            structlog.processors.format_exc_info,
            redact_processor,
            _standard_keys_first,
            structlog.processors.JSONRenderer(),
        ]
    colors = bool(getattr(sys.stderr, "isatty", lambda: False)())
    formatter: ExceptionRenderer
    if importlib.util.find_spec("rich") is not None:
        # No local variables: they are where unredacted secrets would show.
        formatter = structlog.dev.RichTracebackFormatter(
            show_locals=False, color_system="truecolor" if colors else None
        )
    else:  # pragma: no cover - rich comes with typer
        formatter = structlog.dev.plain_traceback
    return [
        redact_processor,
        structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=formatter),
    ]


# HTTP clients log every request at INFO: one line per upstream call is noise at INFO
_CHATTY = ("httpx", "httpx2", "httpcore")


def setup_logging(*, json: bool, level: str = "INFO") -> None:
    """Configure structlog and the standard library's root logger; safe to call again
    (the handler is replaced, never duplicated)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r} (use DEBUG, INFO, WARNING or ERROR)")
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            redact_processor,
            _wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_formatter_attributes],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(json),
            _redact_rendered,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    _remove_handler(root)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _UVICORN_LOGGERS:
        # uvicorn installs its own handlers; send its records through ours instead.
        uvicorn_logger = logging.getLogger(name)
        if not uvicorn_logger.propagate and not uvicorn_logger.handlers:
            continue  # silenced on purpose (``--no-access-log``): leave it so
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)  # the root's level decides, as for the rest
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def reset_logging() -> None:
    """Undo ``setup_logging``: our handler removed, structlog back to its defaults."""
    _remove_handler(logging.getLogger())
    structlog.reset_defaults()


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger (``log.info("event", key=value)``)."""
    return structlog.stdlib.get_logger(name) if name else structlog.stdlib.get_logger()


def _remove_handler(root: logging.Logger) -> None:
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
            existing.close()
