"""Response bodies of the admin dashboard's JSON routes (``/api/admin/...``).

Kept apart from ``schemas.py`` because only the dashboard reads them; camelCase on the
wire like the rest of the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

CostGroup = Literal["day", "provider", "model", "agent"]


class CostRow(BaseModel):
    group: str = Field(description="the day (YYYY-MM-DD), provider, model or agent")
    calls: int
    tokensIn: int
    tokensOut: int
    costUsd: float | None = Field(description="null when a call of the group has no known price")


class CostReport(BaseModel):
    by: CostGroup
    days: int
    since: datetime = Field(description="start of the window (UTC midnight)")
    calls: int
    totalUsd: float = Field(description="what the calls of models with a known price cost")
    unpricedCalls: int = Field(description="calls of models whose price is unknown")
    unpricedGroups: int = Field(description="groups with a call of unknown price")
    items: list[CostRow] = Field(description="by day: every day of the window, oldest first")


class NamespaceCacheStats(BaseModel):
    namespace: str
    hits: int
    misses: int
    keys: int
    hitRate: float | None


class CacheReport(BaseModel):
    enabled: bool
    backend: str | None = None
    status: Literal["up", "degraded", "down"] | None = None
    hits: int = 0
    misses: int = 0
    hitRate: float | None = None
    evictions: int = 0
    expired: int = 0
    keys: int = 0
    memoryBytes: int | None = None
    detail: str | None = None
    namespaces: list[NamespaceCacheStats] = Field(default_factory=list)


class JobsReport(BaseModel):
    pending: int
    running: int
    failed: int
    succeeded: int
    cancelled: int
    oldestPendingSeconds: float
    workers: int | None = Field(description="live worker processes; null: the backend cannot tell")


class FailedRun(BaseModel):
    id: str
    briefId: str | None
    question: str
    ownerId: str | None
    error: str | None
    createdAt: datetime
    finishedAt: datetime | None


class DeadLetterOut(BaseModel):
    id: int
    briefId: str
    question: str
    ownerId: str | None
    attempts: int
    errorCode: str
    error: str
    createdAt: datetime


class ErrorsReport(BaseModel):
    failedRuns: list[FailedRun]
    deadLetters: list[DeadLetterOut]
