"""Fixtures for the ingest tests: input files are written into ``tmp_path`` by each test."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

Writer = Callable[[str, str | bytes], Path]


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    """Write ``content`` to ``tmp_path / name``; gzip-compressed when the name ends in .gz."""

    def _write(name: str, content: str | bytes) -> Path:
        data = content.encode("utf-8") if isinstance(content, str) else content
        if name.endswith(".gz"):
            data = gzip.compress(data)
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return _write
