"""The distributed job queue: jobs in Redis, run by ``nomosx worker`` processes.

An API process submits jobs and reads their state and events; workers (any number, on
any machine: see :mod:`nomosx.jobs.worker`) take them. Every API process can serve every
job, so a client may reconnect to another process and resume its events by id.

Guarantees, each kept by one script of :mod:`nomosx.jobs.scripts`:

- submitting a brief id twice changes nothing (the first job stands);
- a job is held by one worker at a time, under a lease the worker renews; when a worker
  dies its lease runs out and another worker runs the job again (the brief is stored
  once: see :mod:`nomosx.jobs.runner`);
- a failed try is retried after a growing delay, up to ``max_tries``; then the job fails
  and a dead letter is written;
- cancelling a waiting job ends it at once; a running one is stopped by its worker.

A job's state and events stay readable ``retain_events`` seconds after it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from nomosx.cache.redis import redact_url
from nomosx.config import JobsSettings
from nomosx.errors import CacheError
from nomosx.jobs.base import TERMINAL, BriefJobRequest, JobEvent, JobInfo, JobStatus, QueueCounts
from nomosx.jobs.cancellation import raise_if_cancelled
from nomosx.jobs.events import FINAL_EVENTS, EventLog, encode_data
from nomosx.jobs.keys import QueueKeys
from nomosx.jobs.scripts import Scripts
from nomosx.models import utcnow
from nomosx.observability.context import current_request_id

if TYPE_CHECKING:
    from nomosx.jobs.runner import Runner
    from nomosx.jobs.worker import BriefWorker
    from nomosx.store.dead_letters import DeadLetterRepository

log = logging.getLogger(__name__)

BLOCK_SECONDS = 5.0  # an event reader re-checks the job's state this often
WORKER_TTL_SECONDS = 15.0  # a worker without a heartbeat for this long is not counted


def connect(url: str) -> Redis:
    """A client for the queue: strings in and out, and an operation timeout longer than
    an event reader's blocking read."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=BLOCK_SECONDS + 10,
        socket_connect_timeout=5,
        client_name="nomosx-jobs",
    )


@contextlib.contextmanager
def redis_errors(url: str) -> Iterator[None]:
    """Redis failures as ``CacheError`` (the API answers 503), the URL without password."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise CacheError(f"the job queue at {redact_url(url)} failed: {exc}") from exc


class RedisJobQueue:
    """``JobQueue`` on Redis. It runs no jobs itself unless given an embedded ``worker``
    (started and stopped with it), for a single process that has no separate workers."""

    def __init__(
        self,
        url: str,
        settings: JobsSettings,
        *,
        worker: BriefWorker | None = None,
        client: Redis | None = None,
    ) -> None:
        self.url = url
        self.settings = settings
        self.keys = QueueKeys(settings.queue)
        self._owns_client = client is None
        self.client = client if client is not None else connect(url)
        self.scripts = Scripts(self.client, self.keys)
        self.retain = max(1, round(settings.retain_events))
        self.worker = worker
        self._worker_task: asyncio.Task[None] | None = None

    @classmethod
    def running_jobs(
        cls,
        url: str,
        settings: JobsSettings,
        runner: Runner,
        dead_letters: DeadLetterRepository,
    ) -> RedisJobQueue:
        """A queue whose process also runs jobs, with a worker on the queue's client."""
        from nomosx.jobs.worker import BriefWorker

        queue = cls(url, settings)
        queue.worker = BriefWorker(queue.client, settings, runner, dead_letters)
        return queue

    async def start(self) -> None:
        if self.worker is not None and self._worker_task is None:
            self._worker_task = asyncio.create_task(self.worker.run(), name="nomosx-job-worker")

    async def stop(self) -> None:
        if self.worker is not None and self._worker_task is not None:
            self.worker.stop()
            with contextlib.suppress(Exception):
                await self._worker_task
            self._worker_task = None
        if self._owns_client:
            await self.client.aclose()

    async def submit(self, request: BriefJobRequest) -> JobInfo:
        with redis_errors(self.url):
            await self.scripts.submit(
                request.brief_id,
                question=request.question,
                sources=request.sources,
                owner_id=request.owner_id,
                request_id=current_request_id(),
                created=utcnow().isoformat(),
                queued=encode_data({"briefId": request.brief_id, "status": "pending"}),
            )
            info = await self.info(request.brief_id)
        if info is None:  # expired between the two calls: only with a tiny retain_events
            raise CacheError(f"the job {request.brief_id} vanished from the queue")
        return info

    async def info(self, brief_id: str) -> JobInfo | None:
        with redis_errors(self.url):
            fields: Any = await self.client.hgetall(self.keys.job(brief_id))
        return job_info(brief_id, fields) if fields else None

    async def events(self, brief_id: str, *, after: int = 0) -> AsyncIterator[JobEvent]:
        stream = EventLog(self.client, self.keys.events(brief_id))
        sent = after
        while True:
            with redis_errors(self.url):
                status = await self.client.hget(self.keys.job(brief_id), "status")
                if status is None or status in TERMINAL:
                    # over (or unknown): its final event is in the stream already
                    batch = await stream.since(sent)
                else:
                    batch = await stream.wait(sent, block_ms=round(BLOCK_SECONDS * 1000))
            raise_if_cancelled()  # a reader that left (SSE client gone) stops here
            for event in batch:
                sent = event.id
                yield event
                if event.event in FINAL_EVENTS:
                    return
            if status is None or status in TERMINAL:
                return

    async def cancel(self, brief_id: str) -> bool:
        with redis_errors(self.url):
            result = await self.scripts.cancel(
                brief_id,
                data=encode_data({"briefId": brief_id, "status": "cancelled"}),
                retain=self.retain,
            )
        return result != 0

    async def counts(self) -> QueueCounts:
        with redis_errors(self.url):
            stats = await self.scripts.stats(worker_ttl_ms=round(WORKER_TTL_SECONDS * 1000))
        oldest = 0.0
        if stats.oldest_score_ms is not None:
            oldest = max(0.0, (stats.now_ms - stats.oldest_score_ms) / 1000)
        return QueueCounts(
            pending=stats.waiting + stats.stale,
            running=stats.running,
            failed=stats.failed,
            succeeded=stats.succeeded,
            cancelled=stats.cancelled,
            oldest_pending_seconds=oldest,
            workers=stats.workers,
        )


def job_info(brief_id: str, fields: dict[str, str]) -> JobInfo:
    """A job's hash as ``JobInfo``."""
    created = fields.get("created")
    extra: dict[str, Any] = {"created_at": datetime.fromisoformat(created)} if created else {}
    return JobInfo(
        brief_id=brief_id,
        question=fields.get("question", ""),
        status=JobStatus(fields.get("status", "pending")),
        error=fields.get("error") or None,
        error_code=fields.get("error_code") or None,
        owner_id=fields.get("owner") or None,
        attempts=int(fields.get("attempts", "0")),
        **extra,
    )
