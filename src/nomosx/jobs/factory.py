"""The job queue a process uses, chosen by the settings (``settings.jobs_backend``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nomosx.config import Settings
from nomosx.jobs.base import JobQueue
from nomosx.jobs.runner import Runner

if TYPE_CHECKING:
    from nomosx.store.dead_letters import DeadLetterRepository


def build_job_queue(
    settings: Settings,
    runner: Runner,
    *,
    run_jobs: bool = False,
    dead_letters: DeadLetterRepository | None = None,
) -> JobQueue:
    """In-process (the jobs run in this process, ``runner`` runs them), or on Redis.

    On Redis this process only submits jobs and reads them; ``nomosx worker`` processes run
    them. ``run_jobs=True`` runs a worker inside this process as well (one machine with
    Redis and no separate workers); it needs ``dead_letters``.
    """
    if settings.jobs_backend == "inprocess":
        from nomosx.jobs.inprocess import InProcessJobQueue

        return InProcessJobQueue(runner, concurrency=settings.jobs.concurrency)

    from nomosx.jobs.redis_queue import RedisJobQueue

    assert settings.redis_url is not None  # the settings refuse redis without it
    if not run_jobs:
        return RedisJobQueue(settings.redis_url, settings.jobs)
    if dead_letters is None:
        raise ValueError("a queue that runs jobs needs dead_letters")
    return RedisJobQueue.running_jobs(settings.redis_url, settings.jobs, runner, dead_letters)
