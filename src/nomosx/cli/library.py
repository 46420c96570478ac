"""``nomosx ingest`` and ``nomosx sources``: the library."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nomosx.cli.common import (
    application,
    err,
    escape_markup,
    fail,
    file_progress,
    handle_errors,
    out,
    run_async,
)

if TYPE_CHECKING:
    from nomosx.app import SearchHit
    from nomosx.ingest.formats import Format
    from nomosx.ingest.loader import IngestReport


class InputFormat(StrEnum):
    jsonl = "jsonl"
    bibtex = "bibtex"
    ris = "ris"


sources_app = typer.Typer(help="Search the library.", no_args_is_help=True)

_SHOWN_ERRORS = 20


@handle_errors
def ingest(
    file: Annotated[
        Path, typer.Argument(help="JSONL (OpenAlex works or SciFact), BibTeX or RIS; .gz too.")
    ],
    fmt: Annotated[
        InputFormat | None, typer.Option("--format", "-f", help="Input format (default: detected).")
    ] = None,
) -> None:
    """Import sources from FILE into the library. Re-importing a file changes nothing."""
    if not file.exists():
        raise fail(f"{file} does not exist")
    if file.is_dir():
        raise fail(f"{file} is a directory; give a file")
    report = run_async(_ingest(file, None if fmt is None else fmt.value))
    for error in report.errors[:_SHOWN_ERRORS]:
        err.print(
            f"[yellow]skipped[/] {escape_markup(str(error))}", highlight=False, soft_wrap=True
        )
    if len(report.errors) > _SHOWN_ERRORS:
        err.print(f"[yellow]… and {len(report.errors) - _SHOWN_ERRORS:,} more skipped records")
    err.print(
        f"[green]✓[/] {file}: {report.records:,} records read, {report.inserted:,} new, "
        f"{report.updated:,} updated, {report.unchanged:,} unchanged, "
        f"{len(report.errors):,} skipped",
        highlight=False,
    )
    if report.errors and report.records == 0:
        raise typer.Exit(1)


async def _ingest(file: Path, fmt: Format | None) -> IngestReport:
    async with application() as app:
        with file_progress(f"importing {file.name}") as advance:
            return await app.ingest(file, fmt=fmt, on_progress=advance)


@sources_app.command("search")
@handle_errors
def search(
    query: Annotated[str, typer.Argument(help="Words to look for.")],
    limit: Annotated[
        int, typer.Option("--limit", "-l", min=1, max=500, help="Results to show.")
    ] = 20,
) -> None:
    """Search the library by relevance (BM25) to QUERY."""
    hits = run_async(_search(query, limit))
    if not hits:
        err.print(f"no source in the library matches {query!r}", highlight=False)
        raise typer.Exit(1)
    from rich.table import Table

    table = Table(show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("key")
    table.add_column("year")
    table.add_column("title", overflow="fold")
    for i, hit in enumerate(hits, start=1):
        table.add_row(
            str(i),
            f"{hit.score:.2f}",
            hit.source.key,
            str(hit.source.year or ""),
            hit.source.title,
        )
    out.print(table)


async def _search(query: str, limit: int) -> list[SearchHit]:
    async with application() as app:
        return await app.search(query, limit)
