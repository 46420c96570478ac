"""Shared assertions helpers for the ingest tests (a module, so tests can import it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nomosx.ingest import Parsed, iter_records
from nomosx.models import Source

Writer = Callable[[str, str | bytes], Path]


def read_all(path: Path) -> list[Parsed]:
    return list(iter_records(path))


def sources(parsed: list[Parsed]) -> list[Source]:
    return [p.source for p in parsed if p.source is not None]


def errors(parsed: list[Parsed]) -> list[str]:
    return [str(p.error) for p in parsed if p.error is not None]


def assert_positions(parsed: list[Parsed], path: Path) -> None:
    """Positions never go back, and the last one is the file's size on disk."""
    positions = [p.position for p in parsed]
    assert positions == sorted(positions)
    assert positions[-1] == path.stat().st_size
