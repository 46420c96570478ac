"""``nomosx briefs``: the briefs written so far."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from nomosx.cli.brief import OutputFormat
from nomosx.cli.common import application, err, handle_errors, out, run_async

if TYPE_CHECKING:
    from nomosx.models import Brief
    from nomosx.store.repositories import BriefSummary

briefs_app = typer.Typer(help="List and show stored briefs.", no_args_is_help=True)


@briefs_app.command("list")
@handle_errors
def list_briefs(
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=1000)] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, max=1_000_000_000)] = 0,
) -> None:
    """List stored briefs, newest first."""
    rows = run_async(_list(limit, offset))
    if not rows:
        err.print('no brief yet: write one with nomosx brief "your question"')
        return
    from rich.table import Table

    table = Table()
    table.add_column("id")
    table.add_column("created")
    table.add_column("mode")
    table.add_column("sources", justify="right")
    table.add_column("question", overflow="fold")
    for row in rows:
        table.add_row(
            row.id[:8],
            row.created_at.strftime("%Y-%m-%d %H:%M"),
            row.mode,
            str(row.sources),
            row.question,
        )
    out.print(table)


@briefs_app.command("show")
@handle_errors
def show(
    brief_id: Annotated[str, typer.Argument(help="The brief's id (or its first 8 characters).")],
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.md,
) -> None:
    """Print a stored brief."""
    brief = run_async(_get(brief_id))
    from nomosx.pipeline.edit import BriefEditor

    typer.echo(BriefEditor().render(brief, fmt.value))


async def _list(limit: int, offset: int) -> list[BriefSummary]:
    async with application(load_library=False) as app:
        return await app.list_briefs(limit=limit, offset=offset)


async def _get(brief_id: str) -> Brief:
    async with application(load_library=False) as app:
        return await app.get_brief(brief_id)
