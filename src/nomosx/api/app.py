"""The FastAPI application: ``create_app(settings)``, served by ``nomosx serve``."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sentry_sdk
from fastapi import Depends, FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nomosx import __version__
from nomosx.api import errors
from nomosx.api.auth import current_user
from nomosx.api.routes import admin, briefs, chat, exports, system, users
from nomosx.api.schemas import Problem
from nomosx.app import NomosX
from nomosx.config import Settings
from nomosx.jobs.factory import build_job_queue
from nomosx.jobs.runner import make_runner
from nomosx.observability.context import bind, new_request_id
from nomosx.observability.metrics import Metrics
from nomosx.observability.sentry import tag_scope
from nomosx.quota.service import Quota
from nomosx.store.dead_letters import DeadLetterRepository
from nomosx.web import routes as web

MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")  # anything else is replaced: no log injection

DESCRIPTION = """NomosX answers research questions with decision briefs whose every claim cites
its source as `[SRC-n]`. Briefs run as background jobs (`POST /api/briefs`, then follow
`/api/briefs/{id}/events`); the LLM gateway is exposed as chat, streamed or not. Errors are
always `{"error": {"code", "message"}}`."""


SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no API key, or an unknown or revoked one"},
    403: {
        "model": Problem,
        "description": "the key lacks the role (or a remote caller in single-user mode)",
    },
    429: {"model": Problem, "description": "too many requests or open streams (Retry-After)"},
}


def create_app(settings: Settings, *, load_library: bool = True) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        nomosx = await NomosX.open(settings, metrics=metrics)
        quota = Quota.build(settings.limits, settings.redis_url, nomosx.ledger)
        try:
            if load_library:
                await nomosx.ensure_library()
            jobs = build_job_queue(
                settings,
                make_runner(nomosx, metrics),
                run_jobs=settings.jobs.api_worker,
                dead_letters=DeadLetterRepository(nomosx.db),
            )
            await jobs.start()
            api.state.nomosx = nomosx
            api.state.jobs = jobs
            api.state.quota = quota
            try:
                yield
            finally:
                await jobs.stop()
        finally:
            await quota.aclose()
            await nomosx.close()

    api = FastAPI(
        title="NomosX",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    api.state.metrics = metrics
    api.state.single_user = settings.auth.single_user
    errors.install(api)
    # every route of these routers needs a user
    signed_in: dict[str, Any] = {"dependencies": [Depends(current_user)], "responses": SIGNED_IN}
    api.include_router(chat.router, **signed_in)
    api.include_router(briefs.router, **signed_in)
    api.include_router(users.router, **signed_in)
    api.include_router(admin.router, **signed_in)
    api.include_router(exports.router, **signed_in)
    api.include_router(system.router)
    # the web app: HTML pages (not in the OpenAPI document) and their CSS and JavaScript
    api.include_router(web.router)
    api.mount("/static", web.static_files(), name="static")

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
                rate = scope.get("state", {}).get("rate")
                if rate is not None and "ratelimit-limit" not in headers:
                    headers.update(errors.rate_headers(rate.limit, rate.remaining, rate.reset))
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
