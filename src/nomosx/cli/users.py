"""``nomosx users``: API users, their keys and their limits (run on the server's store)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

import typer

from nomosx.auth.models import ApiKey, Role, User, UserLimits
from nomosx.cli.common import err, handle_errors, out, run_async
from nomosx.store.users import UserRepository

T = TypeVar("T")

users_app = typer.Typer(
    help="API users: create them, show their keys once, set their limits.",
    no_args_is_help=True,
)


@asynccontextmanager
async def _users() -> AsyncIterator[UserRepository]:
    """The user table only: no library, no models loaded."""
    from nomosx.config import load_settings
    from nomosx.store.db import Database

    db = Database(load_settings().resolved_database_url)
    try:
        await db.migrate()
        yield UserRepository(db)
    finally:
        await db.dispose()


def _with_users(action: Callable[[UserRepository], Awaitable[T]]) -> T:
    async def go() -> T:
        async with _users() as users:
            return await action(users)

    return run_async(go())


def _print_key(user: User, key: str) -> None:
    err.print(
        f"API key of {user.name} ({user.role.value}); it is shown this once, only its hash "
        "is stored:",
        highlight=False,
    )
    typer.echo(key)  # alone on stdout: KEY=$(nomosx users create alice)


@users_app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Argument(help="1 to 64 letters, digits or . _ @ -")],
    admin: Annotated[bool, typer.Option("--admin", help="May manage users and see all")] = False,
) -> None:
    """Create a user and print their first API key (once)."""
    role = Role.ADMIN if admin else Role.USER
    user, key = _with_users(lambda users: users.create(name, role=role))
    _print_key(user, key)


@users_app.command("key")
@handle_errors
def add_key(name: Annotated[str, typer.Argument()]) -> None:
    """Print a new API key for the user (the old ones keep working until revoked)."""

    async def go(users: UserRepository) -> tuple[User, str]:
        key = await users.add_key(name)
        return await users.by_name(name), key

    user, key = _with_users(go)
    _print_key(user, key)


@users_app.command("revoke")
@handle_errors
def revoke(
    name: Annotated[str, typer.Argument()],
    prefix: Annotated[
        str | None, typer.Argument(help="The key's prefix (nx_…), as `keys` lists it; all if none")
    ] = None,
) -> None:
    """Revoke a user's API keys (all, or those with the prefix)."""
    count = _with_users(lambda users: users.revoke(name, prefix))
    err.print(f"revoked {count} key{'s' if count != 1 else ''} of {name}", highlight=False)


@users_app.command("keys")
@handle_errors
def keys(name: Annotated[str, typer.Argument()]) -> None:
    """List a user's keys (prefixes and dates; the keys themselves are not stored)."""
    rows: list[ApiKey] = _with_users(lambda users: users.keys(name))
    from rich.table import Table

    table = Table()
    for column in ("prefix", "created", "last used", "revoked"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.prefix + "…",
            f"{row.created_at:%Y-%m-%d %H:%M}",
            f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never",
            f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "",
        )
    out.print(table)


@users_app.command("list")
@handle_errors
def list_users() -> None:
    """List users, their role and their own limits (blank: the server's default)."""
    rows: list[User] = _with_users(lambda users: users.all())
    if not rows:
        err.print("no user yet: create one with nomosx users create NAME [--admin]")
        return
    from rich.table import Table

    table = Table()
    for column in ("name", "role", "requests/min", "streams", "budget $/day", "status"):
        table.add_column(column)
    for user in rows:
        limits = user.limits
        table.add_row(
            user.name,
            user.role.value,
            str(limits.requests_per_minute or ""),
            str(limits.concurrent_streams or ""),
            "" if limits.daily_budget_usd is None else f"{limits.daily_budget_usd:g}",
            "disabled" if user.disabled else "active",
        )
    out.print(table)


@users_app.command("limits")
@handle_errors
def limits(
    name: Annotated[str, typer.Argument()],
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Requests a minute")] = None,
    streams: Annotated[int | None, typer.Option(min=1, help="Open streams at once")] = None,
    budget: Annotated[float | None, typer.Option(min=0, help="LLM spend a day, USD")] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Back to the server's defaults first")
    ] = False,
) -> None:
    """Set a user's own limits (options not given are kept, or reset with --default)."""

    async def go(users: UserRepository) -> User:
        current = UserLimits() if default else (await users.by_name(name)).limits
        return await users.set_limits(
            name,
            UserLimits(
                requests_per_minute=rpm if rpm is not None else current.requests_per_minute,
                concurrent_streams=(streams if streams is not None else current.concurrent_streams),
                daily_budget_usd=budget if budget is not None else current.daily_budget_usd,
            ),
        )

    user = _with_users(go)
    shown = user.limits.model_dump(exclude_none=True) or "the server's defaults"
    err.print(f"limits of {user.name}: {shown}", highlight=False)


@users_app.command("disable")
@handle_errors
def disable(name: Annotated[str, typer.Argument()]) -> None:
    """Disable a user: their keys stop working at once (enable them again with enable)."""
    _with_users(lambda users: users.set_disabled(name, True))
    err.print(f"{name} is disabled", highlight=False)


@users_app.command("enable")
@handle_errors
def enable(name: Annotated[str, typer.Argument()]) -> None:
    """Enable a disabled user again."""
    _with_users(lambda users: users.set_disabled(name, False))
    err.print(f"{name} is enabled", highlight=False)
