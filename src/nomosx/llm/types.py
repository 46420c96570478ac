"""Requests, responses and stream events of the LLM gateway."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Model):
    role: Role
    content: str


class CachePolicy(StrEnum):
    AUTO = "auto"  # cache deterministic calls (temperature 0) only
    ALWAYS = "always"  # the caller opts in even at temperature > 0
    NEVER = "never"


class ResponseFormat(_Model):
    """Plain text, any JSON object, or JSON matching ``json_schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None
    name: str = "response"


class LLMRequest(_Model):
    messages: list[Message] = Field(min_length=1)
    model: str | None = None  # "provider:model"; None lets the router use its chain
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1, le=200_000)
    response_format: ResponseFormat | None = None
    agent: str = "default"  # who asks: "reader", "analyst", "chat", ... (for the cost ledger)
    run_id: str | None = None
    user_id: str | None = None  # who the call is made for (per-user budgets)
    cache: CachePolicy = CachePolicy.AUTO
    timeout: float | None = Field(None, gt=0, description="overall deadline in seconds")

    @property
    def system(self) -> str | None:
        """The system messages joined, for APIs that take the system prompt apart."""
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None

    @property
    def conversation(self) -> list[Message]:
        return [m for m in self.messages if m.role != "system"]

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0.0


class TokenUsage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class LLMResponse(_Model):
    content: str
    provider: str
    model: str
    usage: TokenUsage = TokenUsage()
    cost_usd: float | None = None  # None: the price of this model is unknown
    latency_ms: float = 0.0
    cached: bool = False
    attempts: int = 1
    finish_reason: str | None = None


class TokenEvent(_Model):
    type: Literal["token"] = "token"
    content: str


class ProviderSwitched(_Model):
    type: Literal["provider_switched"] = "provider_switched"
    from_provider: str
    from_model: str
    to_provider: str
    to_model: str
    reason: str


class DoneEvent(_Model):
    type: Literal["done"] = "done"
    response: LLMResponse


class ErrorEvent(_Model):
    type: Literal["error"] = "error"
    code: str
    message: str


StreamEvent = Annotated[
    TokenEvent | ProviderSwitched | DoneEvent | ErrorEvent, Field(discriminator="type")
]


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


class ProviderHealth(_Model):
    provider: str
    status: HealthStatus
    latency_ms: float | None = None
    detail: str | None = None
    breaker: str | None = None  # "closed", "open", "half_open" (set by the router)
