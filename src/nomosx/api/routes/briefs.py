"""Briefs as background jobs: submit, follow (SSE, resumable), read, list."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse

from nomosx.api.auth import CurrentUser, owner_of
from nomosx.api.deps import AppDep, JobsDep, QuotaDep
from nomosx.api.errors import problem
from nomosx.api.schemas import (
    BriefAccepted,
    BriefCreate,
    BriefLinks,
    BriefList,
    BriefState,
    BriefSummaryOut,
    Problem,
)
from nomosx.api.sse import SSE_HEADERS, encode, leased, with_heartbeat
from nomosx.auth.models import User
from nomosx.errors import NotFoundError
from nomosx.jobs.base import BriefJobRequest, JobInfo, JobQueue
from nomosx.models import Brief, RunStatus
from nomosx.pipeline.orchestrator import validate_question
from nomosx.quota.service import Quota

router = APIRouter(prefix="/api/briefs", tags=["briefs"])

Format = Literal["json", "md", "html"]
_MEDIA = {"json": "application/json", "md": "text/markdown", "html": "text/html"}
HEARTBEAT_SECONDS = 15.0

EVENTS_DOC = """Server-sent events of the brief's job, each with an `id:`:

- `event: queued` / `data: {"briefId", "status"}`;
- `event: stage` / `data: {"stage", "status": "start"|"end", "counts", "durationMs"}` for
  each of scout, index, rank, read, analyse, guard, edit;
- `event: retry` / `data: {"attempt", "maxTries", "reason": "error"|"worker lost"|"worker
  stopped", "delaySeconds"?, "code"?, "message"?}` when a try failed or its worker died and
  the job runs again (ids keep increasing across tries and workers);
- last, `event: done` / `data: {"briefId", "status": "succeeded"}` (the brief is stored
  before it is sent), `event: error` / `data: {"code", "message"}`, or `event: cancelled` /
  `data: {"briefId", "status"}`.

Reconnect with the `Last-Event-ID` header (or `?lastEventId=`) to resume without losing
events. A brief finished by another process, or before a restart, gets a single `done`."""


def _links(brief_id: str, fmt: str = "json") -> BriefLinks:
    suffix = "" if fmt == "json" else f"?format={fmt}"
    return BriefLinks(
        self=f"/api/briefs/{brief_id}{suffix}", events=f"/api/briefs/{brief_id}/events"
    )


@router.post(
    "",
    status_code=202,
    response_model=BriefAccepted,
    responses={
        200: {"model": BriefAccepted, "description": "answered from the brief cache"},
        400: {"model": Problem},
        402: {"model": Problem, "description": "the daily LLM budget is spent"},
        422: {"model": Problem},
    },
    summary="Ask for a brief (runs as a job)",
)
async def create_brief(
    body: BriefCreate,
    app: AppDep,
    jobs: JobsDep,
    user: CurrentUser,
    quota: QuotaDep,
    response: Response,
    fresh: Annotated[bool, Query(description="ignore the brief cache")] = False,
) -> BriefAccepted:
    question = validate_question(body.question)
    owner = owner_of(user)
    if not fresh:
        cached = await app.cached_brief(question, body.sources, owner)
        if cached is not None:
            response.status_code = 200
            return BriefAccepted(
                id=cached.brief.id,
                status="succeeded",
                cached=True,
                links=_links(cached.brief.id, body.format),
            )
    if app.llm is not None:  # only language-model work spends the budget
        await quota.check_budget(user)
    brief_id = str(uuid.uuid4())
    info = await jobs.submit(
        BriefJobRequest(brief_id=brief_id, question=question, sources=body.sources, owner_id=owner)
    )
    return BriefAccepted(id=brief_id, status=info.status.value, links=_links(brief_id, body.format))


@router.get("", response_model=BriefList, summary="List briefs, newest first")
async def list_briefs(
    app: AppDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> BriefList:
    owner = owner_of(user)
    items = await app.list_briefs(limit=limit, offset=offset, owner=owner)
    return BriefList(
        items=[
            BriefSummaryOut(
                id=b.id,
                question=b.question,
                title=b.title,
                mode=b.mode,
                sources=b.sources,
                createdAt=b.created_at,
            )
            for b in items
        ],
        limit=limit,
        offset=offset,
        total=await app.briefs.count(owner=owner),
    )


def _wanted(fmt: str | None, accept: str | None) -> Format:
    if fmt in ("json", "md", "html"):
        return fmt  # type: ignore[return-value]
    accept = (accept or "").lower()
    if "text/html" in accept:
        return "html"
    if "text/markdown" in accept:
        return "md"
    return "json"


async def _stored(app: AppDep, brief_id: str, owner: str | None) -> Brief | None:
    try:
        return await app.briefs.get(brief_id, owner=owner)
    except NotFoundError:
        return None


@router.get(
    "/{brief_id}",
    response_model=BriefState,
    responses={
        200: {
            "content": {"text/markdown": {}, "text/html": {}},
            "description": "the brief's state; its result as JSON, Markdown or HTML",
        },
        404: {"model": Problem},
        409: {"model": Problem, "description": "Markdown or HTML asked before it is ready"},
    },
    summary="A brief: its state, and the result when it is ready",
)
async def get_brief(
    brief_id: str,
    app: AppDep,
    jobs: JobsDep,
    user: CurrentUser,
    fmt: Annotated[Format | None, Query(alias="format")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    wanted = _wanted(fmt, accept)
    owner = owner_of(user)
    brief = await _stored(app, brief_id, owner)
    if brief is not None:
        if wanted == "md":
            return PlainTextResponse(app.editor.render(brief, "md"), media_type=_MEDIA["md"])
        if wanted == "html":
            return HTMLResponse(app.editor.render(brief, "html"))
        return BriefState(
            id=brief.id,
            status="succeeded",
            question=brief.question,
            createdAt=brief.created_at,
            result=brief.model_dump(mode="json"),
        )
    state = await _state(app, jobs, brief_id, owner)
    if state is None:
        raise NotFoundError(f"no brief with id {brief_id!r}")
    if wanted != "json":
        return problem(409, "not_ready", f"the brief is not ready (status {state.status})")
    return state


async def _job(jobs: JobQueue, brief_id: str, owner: str | None) -> JobInfo | None:
    """The job of the brief, if it is the caller's."""
    info = await jobs.info(brief_id)
    return info if info is not None and info.owner_id == owner else None


async def _state(
    app: AppDep, jobs: JobQueue, brief_id: str, owner: str | None
) -> BriefState | None:
    info = await _job(jobs, brief_id, owner)
    if info is not None:
        error = (
            {"code": info.error_code or "error", "message": info.error or ""}
            if info.error
            else None
        )
        return BriefState(
            id=brief_id,
            status=info.status.value,
            question=info.question,
            createdAt=info.created_at,
            error=error,
        )
    run = await app.runs.for_brief(brief_id, owner=owner)
    if run is None:
        return None
    if run.status is RunStatus.RUNNING:  # started by a process that is gone or elsewhere
        return BriefState(
            id=brief_id, status="running", question=run.question, createdAt=run.created_at
        )
    return BriefState(
        id=brief_id,
        status="failed",
        question=run.question,
        createdAt=run.created_at,
        error={"code": "failed", "message": run.error or "the brief was not written"},
    )


@router.get(
    "/{brief_id}/events",
    summary="Follow a brief's job (SSE, resumable)",
    description=EVENTS_DOC,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        404: {"model": Problem},
    },
    response_class=StreamingResponse,
)
async def brief_events(
    brief_id: str,
    request: Request,
    app: AppDep,
    jobs: JobsDep,
    user: CurrentUser,
    quota: QuotaDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
) -> Response:
    after = _event_number(last_event_id or last_event_id_query)
    owner = owner_of(user)
    if await _job(jobs, brief_id, owner) is not None:
        return await _stream(_job_frames(jobs, brief_id, after), quota, user)
    brief = await _stored(app, brief_id, owner)
    if brief is None:
        state = await _state(app, jobs, brief_id, owner)
        if state is None:
            raise NotFoundError(f"no brief with id {brief_id!r}")
        error = state.error or {"code": "unknown", "message": "no live job for this brief"}
        return await _stream(_single("error", error), quota, user)
    done = {"briefId": brief.id, "status": "succeeded"}
    return await _stream(_single("done", done), quota, user)


@router.delete(
    "/{brief_id}",
    status_code=202,
    response_model=BriefState,
    responses={404: {"model": Problem}, 409: {"model": Problem, "description": "already over"}},
    summary="Cancel a brief's job (pending or running)",
)
async def cancel_brief(
    brief_id: str, app: AppDep, jobs: JobsDep, user: CurrentUser
) -> BriefState | JSONResponse:
    owner = owner_of(user)
    info = await _job(jobs, brief_id, owner)
    if info is None:
        if (
            await _stored(app, brief_id, owner) is None
            and await _state(app, jobs, brief_id, owner) is None
        ):
            raise NotFoundError(f"no brief with id {brief_id!r}")
        return problem(409, "not_running", "the brief is not queued or running")
    if not await jobs.cancel(brief_id):
        return problem(409, "not_running", f"the brief's job is already {info.status}")
    state = await _state(app, jobs, brief_id, owner)
    assert state is not None
    return state


def _event_number(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


async def _stream(frames: AsyncIterator[bytes], quota: Quota, user: User) -> StreamingResponse:
    """An SSE response holding one of the user's stream slots while it lasts."""
    return StreamingResponse(
        await leased(with_heartbeat(frames, HEARTBEAT_SECONDS), quota, user),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _job_frames(jobs: JobQueue, brief_id: str, after: int) -> AsyncIterator[bytes]:
    async for event in jobs.events(brief_id, after=after):
        yield encode(event.event, event.data, event_id=event.id)


async def _single(event: str, data: dict[str, Any]) -> AsyncIterator[bytes]:
    yield encode(event, data, event_id=1)
