"""Who is calling: the API key (``Authorization: Bearer``, or the web app's cookie), and
the per-request checks that go with it (requests per minute).

Every ``/api/*`` router but the system one depends on ``current_user``, so a route added
later is protected without remembering to be. In single-user mode (explicitly enabled,
for local use) every request from this machine acts as one local admin, and requests from
anywhere else are refused.
"""

from __future__ import annotations

from typing import Annotated

import sentry_sdk
import structlog
from fastapi import Depends, Request

from nomosx.auth.models import LOCAL_USER, User
from nomosx.errors import Forbidden, Unauthenticated
from nomosx.quota.service import Quota
from nomosx.store.users import UserRepository

KEY_COOKIE = "nomosx_key"
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

NO_KEY = (
    "an API key is needed: send 'Authorization: Bearer <key>' (an admin creates users "
    "and keys with 'nomosx users create NAME')"
)


def is_loopback(host: str | None) -> bool:
    return host is not None and (host in LOOPBACK or host.startswith("127."))


def owner_of(user: User) -> str | None:
    """The owner id a user's briefs are stored under: the local user (single-user mode)
    shares the CLI's briefs, which have no owner."""
    return None if user.id == LOCAL_USER.id else user.id


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <API key>'")
        return value.strip()
    return request.cookies.get(KEY_COOKIE) or None


async def authenticate(request: Request) -> User:
    state = request.app.state
    if state.single_user:
        host = request.client.host if request.client else None
        if not is_loopback(host):
            raise Forbidden(
                "this server runs in single-user mode, which serves this machine only; "
                "ask its owner for an API key"
            )
        return LOCAL_USER
    token = _token(request)
    if not token:
        raise Unauthenticated(NO_KEY)
    users: UserRepository = state.nomosx.users
    user = await users.authenticate(token)
    if user is None:
        raise Unauthenticated("the API key is unknown or revoked, or its user is disabled")
    return user


async def current_user(request: Request) -> User:
    """The caller, authenticated once per request; counts the request against their
    per-minute limit (429 beyond it)."""
    user: User | None = getattr(request.state, "user", None)
    if user is not None:
        return user
    user = await authenticate(request)
    request.state.user = user
    structlog.contextvars.bind_contextvars(user_id=user.id)
    if sentry_sdk.is_initialized():
        sentry_sdk.set_user({"id": user.id, "username": user.name})
    quota: Quota = request.app.state.quota
    request.state.rate = await quota.admit(user)
    return user


async def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("this route needs the admin role")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(require_admin)]
