"""``nomosx cache``: stats, invalidation and clearing of the cache."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from nomosx.cli.common import application, err, fail, handle_errors, out, run_async

if TYPE_CHECKING:
    from nomosx.app import NomosX
    from nomosx.cache.base import Cache, CacheStats

cache_app = typer.Typer(help="The cache: stats, invalidate, clear.", no_args_is_help=True)


class StatsFormat(StrEnum):
    table = "table"
    json = "json"
    prometheus = "prometheus"


class NamespaceName(StrEnum):
    emb = "emb"
    llm = "llm"
    api = "api"
    brief = "brief"


def _cache(app: NomosX) -> Cache:
    if app.cache is None:
        raise fail("the cache is disabled (NOMOSX_CACHE__ENABLED=false)")
    return app.cache


@cache_app.command("stats")
@handle_errors
def stats(
    fmt: Annotated[StatsFormat, typer.Option("--format", "-f")] = StatsFormat.table,
) -> None:
    """Hits, misses and hit rate per namespace, keys, evictions, memory."""
    if fmt is StatsFormat.prometheus:
        typer.echo(run_async(_prometheus()), nl=False)
        return
    snapshot = run_async(_stats())
    if fmt is StatsFormat.json:
        import json

        typer.echo(json.dumps(_as_dict(snapshot), indent=2))
        return
    from rich.table import Table

    table = Table(title=f"cache: {snapshot.backend} ({snapshot.status})")
    for column in ("namespace", "hits", "misses", "hit rate", "keys"):
        table.add_column(column, justify="left" if column == "namespace" else "right")
    for name, ns in sorted(snapshot.namespaces.items()):
        rate = "-" if ns.hit_rate is None else f"{ns.hit_rate:.1%}"
        table.add_row(name, f"{ns.hits:,}", f"{ns.misses:,}", rate, f"{ns.keys:,}")
    out.print(table)
    memory = "-" if snapshot.memory_bytes is None else f"{snapshot.memory_bytes / 1e6:.1f} MB"
    out.print(
        f"evictions {snapshot.evictions:,} · expired {snapshot.expired:,} · memory {memory}",
        highlight=False,
    )
    if snapshot.status == "down":
        raise fail(f"the cache is down: {snapshot.detail or 'no detail'}")


def _as_dict(snapshot: CacheStats) -> dict[str, object]:
    return {
        "backend": snapshot.backend,
        "status": snapshot.status,
        "hits": snapshot.hits,
        "misses": snapshot.misses,
        "hitRate": snapshot.hit_rate,
        "keys": snapshot.keys,
        "evictions": snapshot.evictions,
        "expired": snapshot.expired,
        "memoryBytes": snapshot.memory_bytes,
        "namespaces": {
            name: {"hits": ns.hits, "misses": ns.misses, "hitRate": ns.hit_rate, "keys": ns.keys}
            for name, ns in snapshot.namespaces.items()
        },
    }


async def _stats() -> CacheStats:
    async with application(load_library=False) as app:
        return await _cache(app).stats()


async def _prometheus() -> str:
    from nomosx.observability.metrics import Metrics

    metrics = Metrics()
    async with application(load_library=False) as app:
        await metrics.cache.refresh(_cache(app))
    return metrics.render().decode()


@cache_app.command("invalidate")
@handle_errors
def invalidate(
    namespace: Annotated[NamespaceName, typer.Argument(help="emb, llm, api or brief.")],
    pattern: Annotated[
        str, typer.Argument(help="A glob over the keys of the namespace (default: all).")
    ] = "*",
) -> None:
    """Remove the keys of NAMESPACE that match PATTERN."""
    removed = run_async(_invalidate(namespace.value, pattern))
    err.print(f"[green]✓[/] removed {removed:,} keys from {namespace.value}", highlight=False)


async def _invalidate(namespace: str, pattern: str) -> int:
    async with application(load_library=False) as app:
        return await _cache(app).invalidate(namespace, pattern)


@cache_app.command("clear")
@handle_errors
def clear(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove every NomosX key of every namespace, and reset the stats."""
    if not yes and not typer.confirm("Remove every cached value?", err=True):
        raise typer.Exit(1)
    removed = run_async(_clear())
    err.print(f"[green]✓[/] removed {removed:,} keys", highlight=False)


async def _clear() -> int:
    async with application(load_library=False) as app:
        return await _cache(app).clear()
