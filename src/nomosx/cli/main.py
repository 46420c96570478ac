"""Entry point: ``nomosx`` and its command groups."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from nomosx import __version__
from nomosx.cli import brief, briefs, cache, evaluate, library, llm, serve, users, worker

app = typer.Typer(
    name="nomosx",
    help="NomosX: ask a research question, get a decision brief whose every claim is cited.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nomosx {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """NomosX command line."""


app.command("brief")(brief.brief)
app.command("ingest")(library.ingest)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("scout")(library.scout)
app.add_typer(library.sources_app, name="sources")
app.add_typer(briefs.briefs_app, name="briefs")
app.add_typer(llm.llm_app, name="llm")
app.add_typer(cache.cache_app, name="cache")
app.add_typer(evaluate.eval_app, name="eval")
app.add_typer(users.users_app, name="users")


def run() -> None:
    """Run the CLI. A bug surfaces as one line (and exit code 70), its traceback only on
    request with ``NOMOSX_DEBUG=1``; NomosX's own errors are handled per command."""
    try:
        app()
    except Exception as exc:  # the outermost edge: nothing escapes unreported
        if os.environ.get("NOMOSX_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc} "
            "(run again with NOMOSX_DEBUG=1 for the traceback, and please report it)",
            err=True,
        )
        raise SystemExit(70) from None
