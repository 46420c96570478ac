"""The in-process job queue: briefs run as asyncio tasks of the API process.

Each job keeps its events in memory so that an SSE client can resume with
``Last-Event-ID``; finished jobs are forgotten after ``retain`` newer ones (their briefs
and runs stay in the store). A job that fails leaves a failed ``PipelineRun`` behind.
Cancelling a waiting job drops it when its turn comes; a running one has its task
cancelled (the runner marks its run failed).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nomosx.errors import NomosXError
from nomosx.jobs.base import (
    TERMINAL,
    BriefJobRequest,
    JobEvent,
    JobInfo,
    JobStatus,
    QueueCounts,
)
from nomosx.jobs.cancellation import raise_if_cancelled
from nomosx.jobs.events import stage_data
from nomosx.jobs.runner import Runner
from nomosx.models import utcnow
from nomosx.pipeline.events import StageEvent

__all__ = ["InProcessJobQueue", "Runner"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    request: BriefJobRequest
    info: JobInfo
    # the submitter's context (request id, bound log fields): the job runs inside it
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    events: list[JobEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None  # while it runs
    cancel_requested: bool = False

    def emit(self, event: str, data: dict[str, Any]) -> None:
        self.events.append(JobEvent(id=len(self.events) + 1, event=event, data=data))
        self.changed.set()
        self.changed = asyncio.Event()


class InProcessJobQueue:
    def __init__(self, runner: Runner, *, concurrency: int = 2, retain: int = 1000) -> None:
        self.runner = runner
        self.concurrency = concurrency
        self.retain = retain
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"nomosx-job-worker-{i}")
                for i in range(self.concurrency)
            ]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def submit(self, request: BriefJobRequest) -> JobInfo:
        existing = self._jobs.get(request.brief_id)
        if existing is not None:
            return existing.info
        job = _Job(
            request=request,
            info=JobInfo(
                brief_id=request.brief_id,
                question=request.question,
                status=JobStatus.PENDING,
                owner_id=request.owner_id,
            ),
        )
        self._jobs[request.brief_id] = job
        job.emit("queued", {"briefId": request.brief_id, "status": "pending"})
        await self._queue.put(job)
        self._forget_old()
        return job.info

    async def info(self, brief_id: str) -> JobInfo | None:
        job = self._jobs.get(brief_id)
        return None if job is None else job.info

    async def events(self, brief_id: str, *, after: int = 0) -> AsyncIterator[JobEvent]:
        job = self._jobs.get(brief_id)
        if job is None:
            return
        sent = after
        while True:
            for event in job.events[sent:]:
                sent = event.id
                yield event
            if job.info.status in TERMINAL and sent >= len(job.events):
                return
            await job.changed.wait()

    async def cancel(self, brief_id: str) -> bool:
        job = self._jobs.get(brief_id)
        if job is None or job.info.status in TERMINAL:
            return False
        if job.task is None:  # still waiting: its worker will skip it
            self._cancelled(job)
        elif not job.cancel_requested:
            job.cancel_requested = True
            job.task.cancel()
        return True

    async def counts(self) -> QueueCounts:
        tally = dict.fromkeys(JobStatus, 0)
        oldest = None
        for job in self._jobs.values():
            tally[job.info.status] += 1
            if job.info.status is JobStatus.PENDING and (
                oldest is None or job.info.created_at < oldest
            ):
                oldest = job.info.created_at
        return QueueCounts(
            pending=tally[JobStatus.PENDING],
            running=tally[JobStatus.RUNNING],
            failed=tally[JobStatus.FAILED],
            succeeded=tally[JobStatus.SUCCEEDED],
            cancelled=tally[JobStatus.CANCELLED],
            oldest_pending_seconds=(
                0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
            ),
            workers=1 if self._workers else 0,  # this process runs them
        )

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                if job.info.status is JobStatus.PENDING:  # else cancelled while waiting
                    job.task = asyncio.create_task(self._run(job), context=job.context)
                    await job.task
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the queue is stopping
                if job.info.status not in TERMINAL:
                    self._cancelled(job)  # cancelled before its first step
            finally:
                job.task = None
                self._queue.task_done()

    def _cancelled(self, job: _Job) -> None:
        job.info.status = JobStatus.CANCELLED
        job.emit("cancelled", {"briefId": job.request.brief_id, "status": "cancelled"})

    async def _run(self, job: _Job) -> None:
        job.info.status = JobStatus.RUNNING
        job.info.attempts += 1

        async def on_event(event: StageEvent) -> None:
            raise_if_cancelled()
            job.emit("stage", stage_data(event))

        try:
            brief_id = await self.runner(job.request, on_event)
        except asyncio.CancelledError:
            if not job.cancel_requested:
                raise  # the queue is stopping
            self._cancelled(job)
        except NomosXError as exc:
            job.info.status = JobStatus.FAILED
            job.info.error = str(exc)
            job.info.error_code = type(exc).__name__
            job.emit("error", {"code": type(exc).__name__, "message": str(exc)})
        except Exception as exc:  # a bug must fail its job, not the worker
            log.exception("brief job %s crashed", job.request.brief_id)
            job.info.status = JobStatus.FAILED
            job.info.error = "internal error"
            job.info.error_code = "InternalError"
            job.emit("error", {"code": "InternalError", "message": f"{type(exc).__name__}"})
        else:
            job.info.status = JobStatus.SUCCEEDED
            job.emit("done", {"briefId": brief_id, "status": "succeeded"})

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.info.status in TERMINAL]
        for key in finished[: max(0, len(finished) - self.retain)]:
            del self._jobs[key]
