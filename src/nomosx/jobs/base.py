"""The job interface: submit a brief, follow its events, read its state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from nomosx.models import utcnow


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


@dataclass(frozen=True, slots=True)
class BriefJobRequest:
    brief_id: str
    question: str
    sources: int | None = None


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a job; ``id`` increases from 1 within the job (SSE ``id:``)."""

    id: int
    event: str  # "queued", "stage", "done" or "error"
    data: dict[str, Any]


@dataclass(slots=True)
class JobInfo:
    brief_id: str
    question: str
    status: JobStatus
    created_at: datetime = field(default_factory=utcnow)
    error: str | None = None
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class QueueCounts:
    pending: int = 0
    running: int = 0
    failed: int = 0
    succeeded: int = 0


class JobQueue(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, request: BriefJobRequest) -> JobInfo:
        """Queue a brief; submitting the same ``brief_id`` again changes nothing."""
        ...

    async def info(self, brief_id: str) -> JobInfo | None: ...

    def events(self, brief_id: str, *, after: int = 0) -> AsyncIterator[JobEvent]:
        """The job's events with ``id > after``, then live ones until ``done``/``error``."""
        ...

    async def counts(self) -> QueueCounts: ...
