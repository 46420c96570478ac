"""Put back the process-wide observability state a test changed (structlog, the root
logger's level, uvicorn's loggers, the Sentry client, the secret registry)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import sentry_sdk

from nomosx.observability.logging import reset_logging
from nomosx.observability.secrets import clear_secrets

LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@contextlib.contextmanager
def restored_observability() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in LOGGERS
    }
    clear_secrets()
    try:
        yield
    finally:
        reset_logging()
        root.setLevel(level)
        for name, (handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.propagate = propagate
        client = sentry_sdk.get_client()
        if client.is_active():
            client.close(timeout=2.0)
        sentry_sdk.get_global_scope().set_client(None)
        clear_secrets()
