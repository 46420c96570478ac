"""The FastAPI application: ``create_app(settings)``, served by ``nomosx serve``."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import sentry_sdk
from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nomosx import __version__
from nomosx.api import errors
from nomosx.api.routes import briefs, chat, system
from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.errors import InputError, NoSourcesError
from nomosx.jobs.base import BriefJobRequest
from nomosx.jobs.inprocess import InProcessJobQueue, Runner
from nomosx.observability.context import bind, new_request_id
from nomosx.observability.metrics import Metrics
from nomosx.observability.sentry import job_scope, tag_scope
from nomosx.pipeline.events import StageEvent

MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # anything else is replaced: no log injection

DESCRIPTION = """NomosX answers research questions with decision briefs whose every claim cites
its source as `[SRC-n]`. Briefs run as background jobs (`POST /api/briefs`, then follow
`/api/briefs/{id}/events`); the LLM gateway is exposed as chat, streamed or not. Errors are
always `{"error": {"code", "message"}}`."""


def _job_runner(app: NomosX, metrics: Metrics) -> Runner:
    async def run(
        request: BriefJobRequest, on_event: Callable[[StageEvent], Awaitable[None]]
    ) -> str:
        async def observe(event: StageEvent) -> None:
            if event.status == "end" and event.duration_ms is not None:
                metrics.observe_stage(event.stage, event.duration_ms)
            await on_event(event)

        with (
            bind(brief_id=request.brief_id),
            job_scope(question=request.question, agent="pipeline", sources=request.sources),
        ):
            try:
                result = await app.brief(
                    request.question,
                    sources=request.sources,
                    on_event=observe,
                    fresh=True,
                    brief_id=request.brief_id,
                )
            except (InputError, NoSourcesError):
                raise  # the question's fault, not the service's: not reported
            except Exception:
                sentry_sdk.capture_exception()
                raise
        return result.brief.id

    return run


def create_app(settings: Settings, *, load_library: bool = True) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        nomosx = await NomosX.open(settings, metrics=metrics)
        try:
            if load_library:
                await nomosx.ensure_library()
            jobs = InProcessJobQueue(_job_runner(nomosx, metrics))
            await jobs.start()
            api.state.nomosx = nomosx
            api.state.jobs = jobs
            try:
                yield
            finally:
                await jobs.stop()
        finally:
            await nomosx.close()

    api = FastAPI(
        title="NomosX",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    api.state.metrics = metrics
    errors.install(api)
    api.include_router(chat.router)
    api.include_router(briefs.router)
    api.include_router(system.router)

    api.add_middleware(RequestObserver, metrics=metrics)
    api.add_middleware(errors.BodyLimit, max_bytes=MAX_BODY_BYTES)
    return api


class RequestObserver:
    """Pure ASGI middleware (no re-buffering of streamed bodies): a request id bound to
    the request's logs and echoed in ``X-Request-ID``, and the request counted and timed
    by route template (``/api/briefs/{brief_id}``, so labels stay bounded)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        rid = given if _REQUEST_ID.fullmatch(given) else new_request_id()
        started = time.perf_counter()
        status = 500
        observed = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, observed
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                observed = True
                self._observe(scope, status, started)
            await send(message)

        with bind(request_id=rid):
            if sentry_sdk.is_initialized():  # else the tag would land on a shared scope
                tag_scope(request_id=rid)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if not observed:
                    self._observe(scope, status, started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "GET")
        self.metrics.requests.labels(route, method, str(status)).inc()
        self.metrics.request_seconds.labels(route, method).observe(time.perf_counter() - started)
