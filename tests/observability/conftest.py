"""Observability tests change process-wide state (structlog, the root logger, the Sentry
client, the secret registry); these fixtures put it back after every test."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sentry_sdk

from nomosx.observability.logging import reset_logging
from nomosx.observability.secrets import clear_secrets

_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _clean_observability() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    saved = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in _LOGGERS
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


LogReader = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def read_json_logs(capsys: pytest.CaptureFixture[str]) -> LogReader:
    """The JSON lines written to stderr since the last call, parsed."""

    def read() -> list[dict[str, Any]]:
        err = capsys.readouterr().err
        return [json.loads(line) for line in err.splitlines() if line.strip()]

    return read
