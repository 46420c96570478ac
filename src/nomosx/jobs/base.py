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
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class BriefJobRequest:
    brief_id: str
    question: str
    sources: int | None = None
    owner_id: str | None = None  # the user who asked; None: no user (CLI, single-user)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a job; ``id`` increases from 1 within the job (SSE ``id:``)."""

    id: int
    event: str  # "queued", "stage", "retry", "done", "error" or "cancelled"
    data: dict[str, Any]


@dataclass(slots=True)
class JobInfo:
    brief_id: str
    question: str
    status: JobStatus
    created_at: datetime = field(default_factory=utcnow)
    error: str | None = None
    error_code: str | None = None
    owner_id: str | None = None
    attempts: int = 0  # tries started so far


@dataclass(frozen=True, slots=True)
class QueueCounts:
    pending: int = 0
    running: int = 0
    failed: int = 0
    succeeded: int = 0
    cancelled: int = 0
    oldest_pending_seconds: float = 0.0  # age of the oldest job waiting for a worker
    workers: int | None = None  # live worker processes, where the backend knows


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

    async def cancel(self, brief_id: str) -> bool:
        """Cancel a pending or running job; ``False`` if it is unknown or already over."""
        ...

    async def counts(self) -> QueueCounts: ...
