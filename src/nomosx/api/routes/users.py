"""``/api/me`` for everyone; users and their API keys for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from nomosx.api.auth import AdminUser, CurrentUser
from nomosx.api.deps import AppDep, QuotaDep
from nomosx.api.schemas import (
    ApiKeyOut,
    LimitsOut,
    Me,
    Problem,
    UserCreate,
    UserCreated,
    UserOut,
    UserUpdate,
)
from nomosx.auth.models import Role, User, UserLimits
from nomosx.quota.service import Quota

router = APIRouter(tags=["users"])

_ADMIN: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "needs the admin role"}
}
_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not JSON, or the name is taken"},
    422: {"model": Problem, "description": "invalid body (field paths in error.fields)"},
}


def _out(user: User, quota: Quota) -> UserOut:
    limits = quota.effective(user)
    return UserOut(
        id=user.id,
        name=user.name,
        role=user.role.value,
        disabled=user.disabled,
        createdAt=user.created_at,
        limits=LimitsOut(
            requestsPerMinute=limits.requests_per_minute,
            concurrentStreams=limits.concurrent_streams,
            dailyBudgetUsd=limits.daily_budget_usd,
        ),
    )


@router.get("/api/me", response_model=Me, summary="Who the key belongs to, limits and spend")
async def me(user: CurrentUser, quota: QuotaDep) -> Me:
    spent = await quota.budget.spent_today(user.id)
    return Me(
        **_out(user, quota).model_dump(),
        spentTodayUsd=round(spent, 6),
        openStreams=await quota.streams.open_count(user.id),
    )


@router.get("/api/admin/users", response_model=list[UserOut], responses=_ADMIN, summary="All users")
async def list_users(admin: AdminUser, app: AppDep, quota: QuotaDep) -> list[UserOut]:
    return [_out(u, quota) for u in await app.users.all()]


@router.post(
    "/api/admin/users",
    status_code=201,
    response_model=UserCreated,
    responses={**_ADMIN, **_BODY},
    summary="Create a user and their first API key",
)
async def create_user(
    body: UserCreate, admin: AdminUser, app: AppDep, quota: QuotaDep
) -> UserCreated:
    user, key = await app.users.create(body.name, role=Role.ADMIN if body.admin else Role.USER)
    return UserCreated(user=_out(user, quota), apiKey=key)


@router.patch(
    "/api/admin/users/{name}",
    response_model=UserOut,
    responses={**_ADMIN, **_BODY, 404: {"model": Problem}},
    summary="Change a user's role, limits, or disable them",
)
async def update_user(
    name: str, body: UserUpdate, admin: AdminUser, app: AppDep, quota: QuotaDep
) -> UserOut:
    user = await app.users.by_name(name)
    given = body.model_fields_set
    if given & {"requestsPerMinute", "concurrentStreams", "dailyBudgetUsd"}:
        current = user.limits
        limits = UserLimits(
            requests_per_minute=(
                body.requestsPerMinute
                if "requestsPerMinute" in given
                else current.requests_per_minute
            ),
            concurrent_streams=(
                body.concurrentStreams
                if "concurrentStreams" in given
                else current.concurrent_streams
            ),
            daily_budget_usd=(
                body.dailyBudgetUsd if "dailyBudgetUsd" in given else current.daily_budget_usd
            ),
        )
        user = await app.users.set_limits(name, limits)
    if body.role is not None:
        user = await app.users.set_role(name, Role(body.role))
    if body.disabled is not None:
        user = await app.users.set_disabled(name, body.disabled)
    return _out(user, quota)


@router.get(
    "/api/admin/users/{name}/keys",
    response_model=list[ApiKeyOut],
    responses={**_ADMIN, 404: {"model": Problem}},
    summary="A user's API keys (prefixes only)",
)
async def list_keys(name: str, admin: AdminUser, app: AppDep) -> list[ApiKeyOut]:
    return [
        ApiKeyOut(
            prefix=k.prefix,
            createdAt=k.created_at,
            lastUsedAt=k.last_used_at,
            revokedAt=k.revoked_at,
        )
        for k in await app.users.keys(name)
    ]


@router.post(
    "/api/admin/users/{name}/keys",
    status_code=201,
    response_model=UserCreated,
    responses={**_ADMIN, 404: {"model": Problem}},
    summary="Another API key for a user (rotation)",
)
async def add_key(name: str, admin: AdminUser, app: AppDep, quota: QuotaDep) -> UserCreated:
    key = await app.users.add_key(name)
    return UserCreated(user=_out(await app.users.by_name(name), quota), apiKey=key)


@router.delete(
    "/api/admin/users/{name}/keys/{prefix}",
    status_code=204,
    responses={**_ADMIN, 404: {"model": Problem}},
    summary="Revoke a user's keys starting with prefix",
)
async def revoke_key(name: str, prefix: str, admin: AdminUser, app: AppDep) -> Response:
    await app.users.revoke(name, prefix)
    return Response(status_code=204)
