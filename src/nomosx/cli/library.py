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
    handle_errors,
    import_progress,
    out,
    run_async,
)

if TYPE_CHECKING:
    from nomosx.app import SearchHit
    from nomosx.ingest.formats import Format
    from nomosx.ingest.loader import IngestReport
    from nomosx.models import Source


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
        with import_progress(f"importing {file.name}", "embedding new sources") as (
            advance,
            embed,
        ):
            return await app.ingest(file, fmt=fmt, on_progress=advance, on_embed=embed)


@sources_app.command("search")
@handle_errors
def search(
    query: Annotated[str, typer.Argument(help="Words to look for.")],
    limit: Annotated[
        int, typer.Option("--limit", "-l", min=1, max=500, help="Results to show.")
    ] = 20,
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            "-p",
            help="Comma-separated: library, openalex, crossref, semanticscholar, arxiv.",
        ),
    ] = "library",
    year_from: Annotated[int | None, typer.Option("--from", help="Earliest year.")] = None,
    year_to: Annotated[int | None, typer.Option("--to", help="Latest year.")] = None,
    open_access: Annotated[
        bool | None, typer.Option("--open-access/--any-access", help="Only open access.")
    ] = None,
) -> None:
    """Search the library (BM25) or academic providers; what providers find is stored."""
    names = _provider_names(provider)
    if names == ["library"] and year_from is None and year_to is None and open_access is None:
        hits = run_async(_search(query, limit))
        rows = [(h.source, f"{h.score:.2f}") for h in hits]
    else:
        rows = [
            (s, "")
            for s in run_async(_remote(query, names, limit, year_from, year_to, open_access))
        ]
    if not rows:
        err.print(f"no source matches {query!r}", highlight=False)
        raise typer.Exit(1)
    _table(rows[:limit])


def _provider_names(value: str) -> list[str]:
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if not names:
        raise fail("--provider needs at least one name")
    return list(dict.fromkeys(names))


def _table(rows: list[tuple[Source, str]]) -> None:
    from rich.table import Table

    table = Table(show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("key")
    table.add_column("year")
    table.add_column("from")
    table.add_column("title", overflow="fold")
    for i, (source, score) in enumerate(rows, start=1):
        table.add_row(
            str(i),
            score,
            source.key,
            str(source.year or ""),
            ",".join(source.provider_ids) or source.provider,
            source.title,
        )
    out.print(table)


async def _search(query: str, limit: int) -> list[SearchHit]:
    async with application() as app:
        return await app.search(query, limit)


async def _remote(
    query: str,
    names: list[str],
    limit: int,
    year_from: int | None,
    year_to: int | None,
    open_access: bool | None,
) -> list[Source]:
    from nomosx.sources.base import SearchFilters

    filters = SearchFilters(year_from=year_from, year_to=year_to, open_access=open_access)
    async with application() as app:
        found, unique = await app.scout(query, names, limit=limit, filters=filters)
    for name, message in found.failures.items():
        err.print(f"[yellow]{name} failed:[/] {escape_markup(message)}", soft_wrap=True)
    return unique


@handle_errors
def scout(
    question: Annotated[str, typer.Argument(help="The research question.")],
    provider: Annotated[
        str | None,
        typer.Option("--provider", "-p", help="Comma-separated providers (default: settings)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, max=1000)] = 100,
) -> None:
    """Find sources for QUESTION with every provider at once and store them in the library."""
    run_async(_scout(question, provider, limit))


async def _scout(question: str, provider: str | None, limit: int) -> None:
    async with application() as app:
        names = _provider_names(provider) if provider else list(app.settings.pipeline.providers)
        found, unique = await app.scout(question, names, limit=limit)
    for name in names:
        if name in found.failures:
            err.print(f"[red]✗[/] {name}: {escape_markup(found.failures[name])}", soft_wrap=True)
        else:
            err.print(f"[green]✓[/] {name}: {found.found.get(name, 0)} sources", highlight=False)
    err.print(
        f"{len(unique)} unique sources after merging duplicates "
        f"({len(found.sources) - len(unique)} merged); stored in the library",
        highlight=False,
    )
