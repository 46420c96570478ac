"""What a brief job does: run the pipeline for one request and store the brief.

One runner serves both queues (in the API process, and on ``nomosx worker`` processes).
It is safe to run again for the same brief: a job is retried when its worker died, and
the worker may have died after the brief was stored, so a brief that exists already is
not written twice; a run the dead attempt left "running" is marked failed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import sentry_sdk

from nomosx.errors import InputError, NomosXError, NoSourcesError
from nomosx.jobs.base import BriefJobRequest
from nomosx.jobs.cancellation import raise_if_cancelled
from nomosx.observability.context import bind
from nomosx.observability.sentry import job_scope
from nomosx.pipeline.events import StageEvent

if TYPE_CHECKING:
    from nomosx.app import NomosX
    from nomosx.observability.metrics import Metrics

log = logging.getLogger(__name__)

# runs one brief: (request, event handler) -> stored brief id
Runner = Callable[[BriefJobRequest, Callable[[StageEvent], Awaitable[None]]], Awaitable[str]]

LOST = "worker lost: the job was started again"
INTERRUPTED = "interrupted: the job was cancelled, timed out or its worker stopped"


def make_runner(app: NomosX, metrics: Metrics | None = None) -> Runner:
    """The job function for ``app``: stage durations go to ``metrics``, failures that are
    the service's (not the question's) to Sentry, tagged with the job."""

    async def run(
        request: BriefJobRequest, on_event: Callable[[StageEvent], Awaitable[None]]
    ) -> str:
        async def observe(event: StageEvent) -> None:
            raise_if_cancelled()
            if metrics is not None and event.status == "end" and event.duration_ms is not None:
                metrics.observe_stage(event.stage, event.duration_ms)
            await on_event(event)

        with (
            bind(brief_id=request.brief_id),
            job_scope(question=request.question, agent="pipeline", sources=request.sources),
        ):
            if await app.runs.abandon_running(request.brief_id, LOST):
                log.warning("brief %s: an earlier attempt died; running it again", request.brief_id)
            if await app.briefs.exists(request.brief_id):
                return request.brief_id  # stored by an attempt that died just after
            try:
                result = await app.brief(
                    request.question,
                    sources=request.sources,
                    on_event=observe,
                    fresh=True,
                    brief_id=request.brief_id,
                    owner_id=request.owner_id,
                )
            except asyncio.CancelledError:
                await _abandon(app, request.brief_id)
                raise
            except (InputError, NoSourcesError):
                raise  # the question's fault, not the service's: not reported
            except Exception:
                sentry_sdk.capture_exception()
                raise
        return result.brief.id

    return run


async def _abandon(app: NomosX, brief_id: str) -> None:
    """Mark the interrupted run failed now rather than leave it "running" until a retry
    (there may be none: a cancelled job, an API process shutting down)."""
    with contextlib.suppress(NomosXError, TimeoutError):
        async with asyncio.timeout(5):
            await app.runs.abandon_running(brief_id, INTERRUPTED)
