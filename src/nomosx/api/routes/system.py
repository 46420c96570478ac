"""Health for people and orchestrators, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from nomosx import __version__
from nomosx.api.deps import AppDep, JobsDep
from nomosx.api.schemas import Health, Liveness, Readiness
from nomosx.app import NomosX
from nomosx.cache.base import CacheStats
from nomosx.errors import CacheError, StoreError
from nomosx.jobs.base import JobQueue
from nomosx.models import utcnow

router = APIRouter(tags=["system"])

DB_TIMEOUT = 2.0
CACHE_STATS_TTL = 5.0  # the key count is a SCAN on Redis: not on every poll


async def _database(app: NomosX) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(DB_TIMEOUT):
            await app.db.ping()
            sources = await app.sources.count()
            briefs = await app.briefs.count()
    except (StoreError, TimeoutError) as exc:
        detail = str(exc) or "no answer within 2 s"
        return {"status": "unhealthy", "latency": None, "error": detail[:300]}
    return {
        "status": "healthy",
        "latency": round((time.perf_counter() - started) * 1000, 3),
        "sources": sources,
        "briefs": briefs,
    }


async def _cache(app: NomosX, state: Any) -> dict[str, Any]:
    if app.cache is None:
        return {"status": "disabled"}
    health = await app.cache.health()
    snapshot: tuple[float, CacheStats] | None = getattr(state, "cache_stats", None)
    if (
        snapshot is None
        or time.monotonic() - snapshot[0] > CACHE_STATS_TTL
        or health.status != "up"
    ):
        stats = await app.cache.stats()
        state.cache_stats = snapshot = (time.monotonic(), stats)
    stats = snapshot[1]
    status = {"up": "healthy", "degraded": "degraded", "down": "degraded"}[health.status]
    return {
        "status": status,
        "backend": health.backend,
        "latency": health.latency_ms,
        "keyCount": stats.keys,
        "memoryUsage": stats.memory_bytes,
        "hitRate": stats.hit_rate,
        **({"error": health.detail} if health.status != "up" and health.detail else {}),
    }


async def _llm(app: NomosX) -> dict[str, Any]:
    checks = await app.llm_health()
    names = {"healthy": "healthy", "degraded": "degraded", "down": "unhealthy"}
    return {
        c.provider: {
            "status": names[c.status.value],
            "latency": c.latency_ms,
            **({"breaker": c.breaker} if c.breaker else {}),
            **({"error": c.detail} if c.detail and c.status.value != "healthy" else {}),
        }
        for c in checks
    }


SOURCES_HEALTH_TTL = 30.0  # remote provider checks are real requests: reuse them


async def _sources(app: NomosX, state: Any, database: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "library": {"status": database["status"], "sources": database.get("sources")}
    }
    remote = {n: p for n, p in app.providers.items() if n != "library"}
    if not remote:
        return out
    cached: tuple[float, dict[str, Any]] | None = getattr(state, "sources_health", None)
    if cached is None or time.monotonic() - cached[0] > SOURCES_HEALTH_TTL:
        checks = await asyncio.gather(*(p.health() for p in remote.values()))
        result = {
            c.provider: {
                "status": c.status,
                "latency": c.latency_ms,
                **({"error": c.detail} if c.detail and c.status != "healthy" else {}),
            }
            for c in checks
        }
        state.sources_health = cached = (time.monotonic(), result)
    return {**out, **cached[1]}


async def _jobs(jobs: JobQueue) -> dict[str, Any]:
    """The queue: degraded when jobs wait and no worker is alive to take them."""
    try:
        counts = await jobs.counts()
    except CacheError as exc:  # the Redis queue is unreachable
        return {"status": "unhealthy", "error": str(exc)[:300]}
    return {
        "status": "degraded" if counts.workers == 0 and counts.pending else "healthy",
        "pending": counts.pending,
        "running": counts.running,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "oldestPendingSeconds": round(counts.oldest_pending_seconds, 3),
        "workers": counts.workers,
    }


@router.get(
    "/api/system/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "unhealthy: the database is unreachable"}},
    summary="Health of every service (200 healthy or degraded, 503 unhealthy)",
)
async def health(request: Request, app: AppDep, jobs: JobsDep) -> JSONResponse:
    started = time.perf_counter()
    database, cache, llm, job_counts = await asyncio.gather(
        _database(app), _cache(app, request.app.state), _llm(app), _jobs(jobs)
    )
    sources = await _sources(app, request.app.state, database)
    services: dict[str, Any] = {
        "database": database,
        "cache": cache,
        "llm": llm,
        "sourcesApis": sources,
        "jobs": job_counts,
    }
    if database["status"] == "unhealthy":
        status = "unhealthy"
    elif (
        cache["status"] == "degraded"
        or job_counts["status"] != "healthy"
        or any(p["status"] != "healthy" for p in llm.values())
        or any(p["status"] != "healthy" for n, p in sources.items() if n != "library")
    ):
        status = "degraded"
    else:
        status = "healthy"
    body = Health(
        status=status,
        timestamp=utcnow(),
        responseTime=round((time.perf_counter() - started) * 1000, 3),
        version=__version__,
        services=services,
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=503 if status == "unhealthy" else 200
    )


@router.get("/healthz", summary="Liveness: the process answers", response_model=Liveness)
async def healthz() -> Liveness:
    return Liveness(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the database answers and the library is loaded",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready"}},
)
async def readyz(app: AppDep) -> JSONResponse:
    database = await _database(app)
    ready = database["status"] == "healthy" and (
        database.get("sources", 0) > 0 or not app.settings.bundled_library
    )
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "database": database["status"]},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(app: AppDep, jobs: JobsDep) -> Response:
    registry = app.metrics
    if registry is None:
        return PlainTextResponse("", status_code=404)
    if app.cache is not None:
        await registry.cache.refresh(app.cache)
    with contextlib.suppress(CacheError):  # the queue is down: its gauges keep their value
        registry.set_queue(await jobs.counts())
    return Response(registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
