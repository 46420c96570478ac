"""Observability tests change process-wide state (structlog, the root logger, the Sentry
client, the secret registry); these fixtures put it back after every test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.observability.restore import restored_observability


@pytest.fixture(autouse=True)
def _clean_observability() -> Iterator[None]:
    with restored_observability():
        yield


LogReader = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def read_json_logs(capsys: pytest.CaptureFixture[str]) -> LogReader:
    """The JSON lines written to stderr since the last call, parsed."""

    def read() -> list[dict[str, Any]]:
        err = capsys.readouterr().err
        return [json.loads(line) for line in err.splitlines() if line.strip()]

    return read
