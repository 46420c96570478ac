"""What the admin dashboard shows, as JSON: LLM costs, cache, job queue, recent errors.

Every route needs the admin role (``AdminUser``); the dashboard page (``/admin``) fetches
them with the browser's key cookie and draws the charts itself.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from nomosx.api.admin_schemas import (
    CacheReport,
    CostGroup,
    CostReport,
    CostRow,
    DeadLetterOut,
    ErrorsReport,
    FailedRun,
    JobsReport,
    NamespaceCacheStats,
)
from nomosx.api.auth import AdminUser, require_admin
from nomosx.api.deps import AppDep, JobsDep
from nomosx.api.schemas import Problem
from nomosx.store.dead_letters import DeadLetterRepository
from nomosx.store.repositories import CostTotal

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={403: {"model": Problem, "description": "needs the admin role"}},
)

MAX_DAYS = 366


def _since(days: int, today: date) -> datetime:
    """UTC midnight ``days - 1`` days before today: a window of ``days`` calendar days."""
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)


def _row(total: CostTotal) -> CostRow:
    return CostRow(
        group=total.group,
        calls=total.calls,
        tokensIn=total.tokens_in,
        tokensOut=total.tokens_out,
        costUsd=total.cost_usd,
    )


def _every_day(rows: list[CostRow], first: date, days: int) -> list[CostRow]:
    """One row per day of the window, oldest first: days without calls are zero, so a
    chart's x axis is time, not just the days that had calls."""
    by_day = {r.group[:10]: r for r in rows}
    out = []
    for offset in range(days):
        day = (first + timedelta(days=offset)).isoformat()
        out.append(
            by_day.get(day) or CostRow(group=day, calls=0, tokensIn=0, tokensOut=0, costUsd=0.0)
        )
    return out


@router.get(
    "/costs",
    response_model=CostReport,
    responses={422: {"model": Problem, "description": "by or days out of range"}},
    summary="LLM cost over the last days, by day, provider, model or agent",
)
async def costs(
    admin: AdminUser,
    app: AppDep,
    by: Annotated[CostGroup, Query(description="how to group the calls")] = "day",
    days: Annotated[
        int, Query(ge=1, le=MAX_DAYS, description="calendar days, today included")
    ] = 30,
) -> CostReport:
    today = datetime.now(UTC).date()
    since = _since(days, today)
    rows = [_row(t) for t in await app.ledger.totals(by, since=since)]
    if by == "day":
        rows = _every_day(rows, since.date(), days)
    else:  # the costliest first; unknown costs last among equals
        rows.sort(key=lambda r: (-(r.costUsd or 0.0), -r.calls, r.group))
    # a group's cost is null as soon as one of its calls has no price; prices are known or
    # not per model, so the total is summed by model, the same whatever the grouping
    models = (
        rows if by == "model" else [_row(t) for t in await app.ledger.totals("model", since=since)]
    )
    return CostReport(
        by=by,
        days=days,
        since=since,
        calls=sum(r.calls for r in rows),
        totalUsd=round(sum(r.costUsd or 0.0 for r in models), 6),
        unpricedCalls=sum(r.calls for r in models if r.costUsd is None),
        unpricedGroups=sum(1 for r in rows if r.costUsd is None),
        items=rows,
    )


@router.get("/cache", response_model=CacheReport, summary="Cache hit rate, evictions, memory")
async def cache(admin: AdminUser, app: AppDep) -> CacheReport:
    if app.cache is None:
        return CacheReport(enabled=False)
    stats = await app.cache.stats()
    return CacheReport(
        enabled=True,
        backend=stats.backend,
        status=stats.status,
        hits=stats.hits,
        misses=stats.misses,
        hitRate=stats.hit_rate,
        evictions=stats.evictions,
        expired=stats.expired,
        keys=stats.keys,
        memoryBytes=stats.memory_bytes,
        detail=stats.detail,
        namespaces=[
            NamespaceCacheStats(
                namespace=n.namespace,
                hits=n.hits,
                misses=n.misses,
                keys=n.keys,
                hitRate=n.hit_rate,
            )
            for n in stats.namespaces.values()
        ],
    )


@router.get("/jobs", response_model=JobsReport, summary="The brief job queue")
async def jobs(admin: AdminUser, queue: JobsDep) -> JobsReport:
    counts = await queue.counts()
    return JobsReport(
        pending=counts.pending,
        running=counts.running,
        failed=counts.failed,
        succeeded=counts.succeeded,
        cancelled=counts.cancelled,
        oldestPendingSeconds=round(counts.oldest_pending_seconds, 3),
        workers=counts.workers,
    )


@router.get(
    "/errors",
    response_model=ErrorsReport,
    responses={422: {"model": Problem, "description": "limit out of range"}},
    summary="Recent failed runs and dead letters (jobs that failed every try), newest first",
)
async def errors(
    admin: AdminUser,
    app: AppDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ErrorsReport:
    runs = await app.runs.recent_failures(limit)
    letters = await DeadLetterRepository(app.db).recent(limit)
    failed = [
        FailedRun(
            id=r.id,
            briefId=r.brief_id,
            question=r.question,
            ownerId=r.owner_id,
            error=r.error,
            createdAt=r.created_at,
            finishedAt=r.finished_at,
        )
        for r in runs
    ]
    return ErrorsReport(
        failedRuns=failed,
        deadLetters=[
            DeadLetterOut(
                id=d.id,
                briefId=d.brief_id,
                question=d.question,
                ownerId=d.owner_id,
                attempts=d.attempts,
                errorCode=d.error_code,
                error=d.error,
                createdAt=d.created_at,
            )
            for d in letters
        ],
    )
