"""Request and response bodies of the API (camelCase on the wire where it reads better)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_MESSAGES = 50
MAX_MESSAGE_CHARS = 20_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_In):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class ChatRequest(_In):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    model: str | None = Field(None, max_length=200, description="provider:model, one of the chain")
    max_tokens: int | None = Field(None, ge=1, le=16_384)


class Usage(BaseModel):
    inputTokens: int
    outputTokens: int
    cachedTokens: int


class ChatResponse(BaseModel):
    content: str
    provider: str
    model: str
    usage: Usage
    costUsd: float | None = Field(description="null when the model's price is unknown")
    latencyMs: float
    cached: bool
    attempts: int


class BriefCreate(_In):
    question: str = Field(min_length=3, max_length=1000)
    sources: int | None = Field(None, ge=1, le=50, description="sources to cite (default 10)")
    format: Literal["json", "md", "html"] = "json"


class BriefLinks(BaseModel):
    self: str
    events: str


class BriefAccepted(BaseModel):
    id: str
    status: Literal["pending", "running", "succeeded", "failed", "cancelled"]
    cached: bool = False
    links: BriefLinks


class BriefState(BaseModel):
    id: str
    status: Literal["pending", "running", "succeeded", "failed", "cancelled"]
    question: str
    createdAt: datetime | None = None
    error: dict[str, str] | None = None
    result: dict[str, Any] | None = Field(None, description="the Brief, when succeeded")


class BriefSummaryOut(BaseModel):
    id: str
    question: str
    title: str
    mode: str
    sources: int
    createdAt: datetime


class BriefList(BaseModel):
    items: list[BriefSummaryOut]
    limit: int
    offset: int
    total: int


class ServiceHealth(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["healthy", "degraded", "unhealthy", "disabled"]
    latency: float | None = Field(None, description="milliseconds")


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    responseTime: float = Field(description="milliseconds")
    version: str
    services: dict[str, Any]


class ProblemDetail(BaseModel):
    code: str
    message: str
    fields: list[dict[str, Any]] | None = None


class Problem(BaseModel):
    error: ProblemDetail


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    database: str


class LimitsOut(BaseModel):
    requestsPerMinute: int
    concurrentStreams: int
    dailyBudgetUsd: float | None = Field(description="null: no budget")


class UserOut(BaseModel):
    id: str
    name: str
    role: Literal["user", "admin"]
    disabled: bool
    createdAt: datetime
    limits: LimitsOut = Field(description="in effect: the user's own, else the server's")


class Me(UserOut):
    spentTodayUsd: float
    openStreams: int


class UserCreate(_In):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    admin: bool = False


class UserCreated(BaseModel):
    user: UserOut
    apiKey: str = Field(description="shown this once: only its hash is stored")


class UserUpdate(_In):
    """Fields left out are unchanged; a limit set to null falls back to the default."""

    role: Literal["user", "admin"] | None = None
    disabled: bool | None = None
    requestsPerMinute: int | None = Field(None, ge=1, le=1_000_000)
    concurrentStreams: int | None = Field(None, ge=1, le=10_000)
    dailyBudgetUsd: float | None = Field(None, ge=0, le=1_000_000)


class ApiKeyOut(BaseModel):
    prefix: str
    createdAt: datetime
    lastUsedAt: datetime | None
    revokedAt: datetime | None
