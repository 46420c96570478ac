"""A user of the API, their limits and their API keys (never the key itself)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from nomosx.models import utcnow


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class UserLimits(BaseModel):
    """A user's own limits; ``None`` takes the server's default (``NOMOSX_LIMITS__*``)."""

    model_config = ConfigDict(frozen=True)

    requests_per_minute: int | None = Field(None, ge=1)
    concurrent_streams: int | None = Field(None, ge=1)
    daily_budget_usd: float | None = Field(None, ge=0)


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: Role = Role.USER
    limits: UserLimits = Field(default_factory=UserLimits)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class ApiKey(BaseModel):
    """What is kept of a key: its public prefix (to tell keys apart) and dates."""

    model_config = ConfigDict(frozen=True)

    id: int
    user_id: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


LOCAL_USER = User(id="local", name="local", role=Role.ADMIN)
"""Who every request is in single-user mode (``NOMOSX_AUTH__SINGLE_USER``)."""
