"""The worker: takes brief jobs from the Redis queue and runs them (``nomosx worker``).

Run as many as wanted, on any machine that reaches the Redis server and the database.
Each job is held under a lease that the worker renews every second; a worker that dies
(even by SIGKILL) stops renewing, and once the lease runs out (``lease_seconds``) the
next worker to look takes the job again. Each renewal is also the worker's heartbeat
(counted in the queue's ``workers``) and the moment it learns that a job it runs was
cancelled, or was taken over because it had stalled for longer than the lease.

SIGTERM (or Ctrl-C) stops it gracefully: no new jobs; running ones get ``grace`` seconds
to finish, then go back to the queue for another worker (that try is not counted). A
second signal puts them back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from nomosx.config import JobsSettings, Settings
from nomosx.errors import ConfigError, NomosXError
from nomosx.jobs.base import BriefJobRequest
from nomosx.jobs.cancellation import raise_if_cancelled, uncancel
from nomosx.jobs.events import EventLog, encode_data, stage_data
from nomosx.jobs.keys import QueueKeys
from nomosx.jobs.redis_queue import WORKER_TTL_SECONDS, connect, redis_errors
from nomosx.jobs.retry import backoff, describe
from nomosx.jobs.runner import Runner, make_runner
from nomosx.jobs.scripts import Claim, Outcome, Scripts
from nomosx.observability.context import bind
from nomosx.pipeline.events import StageEvent
from nomosx.store.dead_letters import DeadLetterRepository

if TYPE_CHECKING:
    from nomosx.observability.metrics import Metrics

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # lease renewal, heartbeat and cancellation checks
MAX_LEASE = 30.0
LEASE_MARGIN = 5.0
REDIS_RETRY_SECONDS = 2.0  # between tries to reach Redis after a failure

Interrupt = Literal["cancel", "lost", "release"]


def lease_seconds(job_timeout: float) -> float:
    """How long a job stays held without renewal: how long a dead worker's job waits
    before another worker takes it. Renewals make it independent of the job's length; it
    is shorter than ``job_timeout`` + margin so that short jobs also recover fast."""
    return min(job_timeout, MAX_LEASE) + LEASE_MARGIN


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    request: BriefJobRequest
    attempt: int  # 1 for the first try
    lost: bool  # the previous try's worker died
    request_id: str | None  # of the API request that submitted it, for the logs

    @classmethod
    def from_claim(cls, claim: Claim) -> ClaimedJob:
        f = claim.fields
        return cls(
            request=BriefJobRequest(
                brief_id=claim.brief_id,
                question=f.get("question", ""),
                sources=int(f["sources"]) if f.get("sources") else None,
                owner_id=f.get("owner") or None,
            ),
            attempt=int(f.get("attempts", "1")),
            lost=f.get("lost") == "1",
            request_id=f.get("request") or None,
        )


@dataclass(frozen=True, slots=True)
class Settlement:
    """How a try ends, as the queue records it."""

    outcome: Outcome
    event: str
    data: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""
    error: str = ""
    defer: float = 0.0


class BriefWorker:
    def __init__(
        self,
        client: Redis,
        settings: JobsSettings,
        runner: Runner,
        dead_letters: DeadLetterRepository,
        *,
        concurrency: int | None = None,
        burst: bool = False,
        poll_interval: float = 0.5,
        grace: float = 30.0,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.runner = runner
        self.dead_letters = dead_letters
        self.keys = QueueKeys(settings.queue)
        self.scripts = Scripts(client, self.keys)
        self.concurrency = concurrency or settings.concurrency
        self.burst = burst  # stop once the queue is empty
        self.poll_interval = poll_interval
        self.grace = grace
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.token = uuid.uuid4().hex  # proves which leases are this worker's
        self.lease_ms = round(lease_seconds(settings.job_timeout) * 1000)
        self.retain = max(1, round(settings.retain_events))
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._interrupts: dict[str, Interrupt] = {}
        self._settling: set[str] = set()  # past the runner: no longer interruptible
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._ticking = True
        self._tick_wake = asyncio.Event()

    def stop(self, *, now: bool = False) -> None:
        """Take no more jobs; with ``now``, put the running ones back in the queue."""
        self._stopping.set()
        self._wake.set()
        if now:
            for brief_id in list(self._tasks):
                self._interrupt(brief_id, "release")

    async def run(self) -> None:
        """Take and run jobs until ``stop()`` (or, in burst mode, an empty queue)."""
        log.info("worker %s: %d at a time from %s", self.name, self.concurrency, self.keys.name)
        ticker = asyncio.create_task(self._tick_forever(), name="nomosx-worker-tick")
        try:
            await self._take_jobs()
            await self._drain()
        finally:
            for brief_id in list(self._tasks):
                self._interrupt(brief_id, "release")
            # the ticker goes on meanwhile: it renews the leases and repeats interruptions
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._ticking = False  # not cancelled: a cancellation may be lost (cancellation.py)
            self._tick_wake.set()
            await ticker
            with contextlib.suppress(RedisError, OSError):
                await self.client.zrem(self.keys.workers, self.name)
            log.info("worker %s stopped", self.name)

    async def _take_jobs(self) -> None:
        while not self._stopping.is_set():
            if len(self._tasks) < self.concurrency:
                claim = await self._claim()
                if claim is not None:
                    self._start(ClaimedJob.from_claim(claim))
                    continue
                if self.burst and not self._tasks and await self._queue_empty():
                    return
            await self._nap(self.poll_interval)

    async def _claim(self) -> Claim | None:
        try:
            return await self.scripts.claim(
                token=self.token, lease_ms=self.lease_ms, worker=self.name, retain=self.retain
            )
        except (RedisError, OSError) as exc:
            log.warning("worker %s: cannot take jobs: %s", self.name, exc)
            await self._nap(REDIS_RETRY_SECONDS)
            return None

    async def _queue_empty(self) -> bool:
        with contextlib.suppress(RedisError, OSError):
            return int(await self.client.zcard(self.keys.queue)) == 0
        return False

    async def _nap(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=self.grace)

    def _start(self, job: ClaimedJob) -> None:
        brief_id = job.request.brief_id
        task = asyncio.create_task(self._execute(job), name=f"nomosx-job-{brief_id}")
        self._tasks[brief_id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self._tasks.pop(brief_id, None)
            self._interrupts.pop(brief_id, None)
            self._wake.set()

        task.add_done_callback(forget)

    def _interrupt(self, brief_id: str, why: Interrupt) -> None:
        task = self._tasks.get(brief_id)
        if task is None or brief_id in self._settling:
            return
        self._interrupts.setdefault(brief_id, why)  # the first reason stands
        task.cancel()

    async def _tick_forever(self) -> None:
        while self._ticking:
            for brief_id, why in list(self._interrupts.items()):
                self._interrupt(brief_id, why)  # again, in case the last one was lost
            try:
                renewal = await self.scripts.renew(
                    token=self.token,
                    lease_ms=self.lease_ms,
                    worker=self.name,
                    worker_ttl_ms=round(WORKER_TTL_SECONDS * 1000),
                    ids=list(self._tasks),
                )
            except (RedisError, OSError) as exc:
                log.warning("worker %s: cannot renew its leases: %s", self.name, exc)
            else:
                for brief_id in renewal.lost:
                    log.warning("brief %s: lease lost to another worker; stopping", brief_id)
                    self._interrupt(brief_id, "lost")
                for brief_id in renewal.cancel:
                    self._interrupt(brief_id, "cancel")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK_SECONDS):
                    await self._tick_wake.wait()

    async def _execute(self, job: ClaimedJob) -> None:
        brief_id = job.request.brief_id
        with bind(request_id=job.request_id, brief_id=brief_id, attempt=job.attempt):
            settlement: Settlement | None
            try:
                settlement = await self._attempt(job)
            except asyncio.CancelledError:
                why = self._interrupts.get(brief_id)
                if why is None:
                    raise  # the worker itself is being torn down: the lease will run out
                uncancel()  # our own interruption, handled here
                settlement = _interrupted(brief_id, why)
            self._settling.add(brief_id)
            try:
                if settlement is not None:
                    await self._settle(brief_id, settlement)
            finally:
                self._settling.discard(brief_id)

    async def _attempt(self, job: ClaimedJob) -> Settlement:
        request = job.request
        events = EventLog(self.client, self.keys.events(request.brief_id))
        max_tries = self.settings.max_tries
        if job.lost:
            log.warning("brief %s: its worker was lost; try %d", request.brief_id, job.attempt)
            await self._emit(
                events,
                "retry",
                {"attempt": job.attempt, "maxTries": max_tries, "reason": "worker lost"},
            )
        if job.attempt > max_tries:
            message = f"its worker was lost on each of {max_tries} tries"
            await self._dead_letter(job, "WorkerLost", message)
            return _failed("WorkerLost", message)

        async def on_event(event: StageEvent) -> None:
            raise_if_cancelled()
            await self._emit(events, "stage", stage_data(event))

        try:
            async with asyncio.timeout(self.settings.job_timeout):
                stored = await self.runner(request, on_event)
        except Exception as exc:  # noqa: BLE001 - every failure is settled: retried or final
            return await self._failure(job, exc)
        return Settlement("succeeded", "done", {"briefId": stored, "status": "succeeded"})

    async def _failure(self, job: ClaimedJob, exc: Exception) -> Settlement:
        failure = describe(exc, job_timeout=self.settings.job_timeout)
        if not isinstance(exc, NomosXError | TimeoutError):
            log.error("brief %s crashed", job.request.brief_id, exc_info=exc)
        if failure.permanent:
            return _failed(failure.code, failure.message)
        if job.attempt < self.settings.max_tries:
            delay = backoff(self.settings.retry_delay, job.attempt)
            log.warning(
                "brief %s: try %d failed (%s); again in %g s",
                job.request.brief_id,
                job.attempt,
                failure.detail,
                delay,
            )
            data = {
                "attempt": job.attempt + 1,
                "maxTries": self.settings.max_tries,
                "reason": "error",
                "delaySeconds": delay,
                "code": failure.code,
                "message": failure.message,
            }
            return Settlement("retry", "retry", data, defer=delay)
        await self._dead_letter(job, failure.code, failure.detail)
        return _failed(failure.code, failure.message)

    async def _dead_letter(self, job: ClaimedJob, code: str, detail: str) -> None:
        request = job.request
        log.error(
            "brief %s failed for good after %d tries: %s", request.brief_id, job.attempt, detail
        )
        try:
            await self.dead_letters.add(
                brief_id=request.brief_id,
                question=request.question,
                owner_id=request.owner_id,
                attempts=job.attempt,
                error_code=code,
                error=detail,
            )
        except NomosXError:
            log.exception("brief %s: the dead letter could not be written", request.brief_id)

    async def _settle(self, brief_id: str, s: Settlement) -> None:
        try:
            held = await self.scripts.finish(
                brief_id,
                token=self.token,
                outcome=s.outcome,
                event=s.event,
                data=encode_data(s.data),
                retain=self.retain,
                error_code=s.error_code,
                error=s.error,
                defer_ms=round(s.defer * 1000),
            )
        except (RedisError, OSError) as exc:  # the lease runs out; the next try sees the brief
            log.error("brief %s: its end (%s) was not recorded: %s", brief_id, s.outcome, exc)
            return
        if not held:
            log.warning(
                "brief %s: another worker holds it now; %s not recorded", brief_id, s.outcome
            )

    async def _emit(self, events: EventLog, event: str, data: dict[str, Any]) -> None:
        """Progress events are best effort: a brief is not failed for want of one."""
        try:
            await events.append(event, data)
        except (RedisError, OSError) as exc:
            log.warning("%s: event %s lost: %s", events.key, event, exc)


def _failed(code: str, message: str) -> Settlement:
    return Settlement(
        "failed", "error", {"code": code, "message": message}, error_code=code, error=message
    )


def _interrupted(brief_id: str, why: Interrupt) -> Settlement | None:
    if why == "cancel":
        return Settlement("cancelled", "cancelled", {"briefId": brief_id, "status": "cancelled"})
    if why == "release":
        return Settlement("release", "retry", {"reason": "worker stopped", "delaySeconds": 0})
    return None  # lost: the worker that holds it now reports it


async def run_worker(
    settings: Settings,
    *,
    concurrency: int | None = None,
    burst: bool = False,
    grace: float = 30.0,
    metrics: Metrics | None = None,
) -> None:
    """One worker process: opens NomosX (and loads the bundled library into an empty
    store), then runs jobs until SIGTERM/SIGINT (graceful; a second one: at once)."""
    from nomosx.app import NomosX

    if settings.redis_url is None:
        raise ConfigError("nomosx worker needs REDIS_URL: it takes its jobs from Redis")
    if settings.jobs_backend != "redis":
        raise ConfigError(
            "NOMOSX_JOBS__BACKEND=inprocess: the API runs briefs itself, a worker would get "
            "none (unset it, or set it to redis)"
        )
    url = settings.redis_url
    app = await NomosX.open(settings, metrics=metrics)
    client = connect(url)
    try:
        with redis_errors(url):
            await client.ping()
        await app.ensure_library()
        worker = BriefWorker(
            client,
            settings.jobs,
            make_runner(app, metrics),
            DeadLetterRepository(app.db),
            concurrency=concurrency,
            burst=burst,
            grace=grace,
        )
        with _signals(worker):
            await worker.run()
    finally:
        await client.aclose()
        await app.close()


@contextlib.contextmanager
def _signals(worker: BriefWorker) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    received = 0

    def handle(sig: signal.Signals) -> None:
        nonlocal received
        received += 1
        log.info("worker %s: %s, %s", worker.name, sig.name, "stopping" if received == 1 else "now")
        worker.stop(now=received > 1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handle, sig)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
