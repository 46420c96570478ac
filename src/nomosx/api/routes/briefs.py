"""Briefs as background jobs: submit, follow (SSE, resumable), read, list."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse

from nomosx.api.deps import AppDep, JobsDep
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
from nomosx.api.sse import SSE_HEADERS, encode, with_heartbeat
from nomosx.errors import NotFoundError
from nomosx.jobs.base import BriefJobRequest, JobQueue
from nomosx.models import Brief, RunStatus
from nomosx.pipeline.orchestrator import validate_question

router = APIRouter(prefix="/api/briefs", tags=["briefs"])

Format = Literal["json", "md", "html"]
_MEDIA = {"json": "application/json", "md": "text/markdown", "html": "text/html"}
HEARTBEAT_SECONDS = 15.0

EVENTS_DOC = """Server-sent events of the brief's job, each with an `id:`:

- `event: queued` / `data: {"briefId", "status"}`;
- `event: stage` / `data: {"stage", "status": "start"|"end", "counts", "durationMs"}` for
  each of scout, index, rank, read, analyse, guard, edit;
- last, `event: done` / `data: {"briefId", "status": "succeeded"}` (the brief is stored
  before it is sent) or `event: error` / `data: {"code", "message"}`.

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
        422: {"model": Problem},
    },
    summary="Ask for a brief (runs as a job)",
)
async def create_brief(
    body: BriefCreate,
    app: AppDep,
    jobs: JobsDep,
    response: Response,
    fresh: Annotated[bool, Query(description="ignore the brief cache")] = False,
) -> BriefAccepted:
    question = validate_question(body.question)
    if not fresh:
        cached = await app.cached_brief(question, body.sources)
        if cached is not None:
            response.status_code = 200
            return BriefAccepted(
                id=cached.brief.id,
                status="succeeded",
                cached=True,
                links=_links(cached.brief.id, body.format),
            )
    brief_id = str(uuid.uuid4())
    info = await jobs.submit(
        BriefJobRequest(brief_id=brief_id, question=question, sources=body.sources)
    )
    return BriefAccepted(id=brief_id, status=info.status.value, links=_links(brief_id, body.format))


@router.get("", response_model=BriefList, summary="List briefs, newest first")
async def list_briefs(
    app: AppDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> BriefList:
    items = await app.list_briefs(limit=limit, offset=offset)
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
        total=await app.briefs.count(),
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


async def _stored(app: AppDep, brief_id: str) -> Brief | None:
    try:
        return await app.briefs.get(brief_id)
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
    fmt: Annotated[Format | None, Query(alias="format")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    wanted = _wanted(fmt, accept)
    brief = await _stored(app, brief_id)
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
    state = await _state(app, jobs, brief_id)
    if state is None:
        raise NotFoundError(f"no brief with id {brief_id!r}")
    if wanted != "json":
        return problem(409, "not_ready", f"the brief is not ready (status {state.status})")
    return state


async def _state(app: AppDep, jobs: JobQueue, brief_id: str) -> BriefState | None:
    info = await jobs.info(brief_id)
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
    run = await app.runs.for_brief(brief_id)
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
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id_query: Annotated[str | None, Query(alias="lastEventId")] = None,
) -> Response:
    after = _event_number(last_event_id or last_event_id_query)
    if await jobs.info(brief_id) is not None:
        return _stream(_job_frames(jobs, brief_id, after))
    brief = await _stored(app, brief_id)
    if brief is None:
        state = await _state(app, jobs, brief_id)
        if state is None:
            raise NotFoundError(f"no brief with id {brief_id!r}")
        error = state.error or {"code": "unknown", "message": "no live job for this brief"}
        return _stream(_single("error", error))
    return _stream(_single("done", {"briefId": brief.id, "status": "succeeded"}))


def _event_number(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _stream(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        with_heartbeat(frames, HEARTBEAT_SECONDS),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _job_frames(jobs: JobQueue, brief_id: str, after: int) -> AsyncIterator[bytes]:
    async for event in jobs.events(brief_id, after=after):
        yield encode(event.event, event.data, event_id=event.id)


async def _single(event: str, data: dict[str, Any]) -> AsyncIterator[bytes]:
    yield encode(event, data, event_id=1)
