"""Importing a file into the library: parse, validate, upsert in batches, report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nomosx.errors import RecordError
from nomosx.ingest.formats import Format, iter_records
from nomosx.ingest.records import Parsed
from nomosx.models import Source
from nomosx.store.repositories import SourceRepository, UpsertResult

BATCH = 500

# called with (bytes read so far, file size in bytes)
ProgressCallback = Callable[[int, int], None]


@dataclass(slots=True)
class IngestReport:
    path: Path
    records: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RecordError] = field(default_factory=list)

    def add(self, result: UpsertResult) -> None:
        self.inserted += result.inserted
        self.updated += result.updated
        self.unchanged += result.unchanged


async def ingest_file(
    path: Path,
    repo: SourceRepository,
    *,
    fmt: Format | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Import every good record of ``path``; malformed ones are reported, never fatal.

    Re-importing the same file changes nothing (records are upserted by key and
    unchanged ones are not written).
    """
    total = await asyncio.to_thread(_size, path)
    report = IngestReport(path=path)
    batch: list[Source] = []
    records = iter_records(path, fmt)
    while True:
        # parsing is CPU work on a file: keep it off the event loop, a batch at a time
        chunk = await asyncio.to_thread(_take, records, BATCH)
        if not chunk:
            break
        for parsed in chunk:
            if parsed.error is not None:
                report.errors.append(parsed.error)
            elif parsed.source is not None:
                report.records += 1
                batch.append(parsed.source)
        if len(batch) >= BATCH:
            report.add(await repo.upsert_many(batch))
            batch = []
        if on_progress is not None:
            on_progress(chunk[-1].position, total)
    if batch:
        report.add(await repo.upsert_many(batch))
    if on_progress is not None:
        on_progress(total, total)
    return report


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _take(records: Iterator[Parsed], n: int) -> list[Parsed]:
    out: list[Parsed] = []
    for parsed in records:
        out.append(parsed)
        if len(out) == n:
            break
    return out
