"""``nomosx brief``: ask a question, watch the stages, get the brief."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nomosx.cli.common import application, err, fail, handle_errors, run_async

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from nomosx.pipeline.events import StageEvent
    from nomosx.pipeline.orchestrator import BriefResult


class OutputFormat(StrEnum):
    md = "md"
    html = "html"
    json = "json"


_LABELS = {
    "scout": "Scout sources",
    "index": "Merge duplicates",
    "rank": "Rank by relevance",
    "read": "Read sources",
    "analyse": "Write the brief",
    "guard": "Check citations",
    "edit": "Render and store",
}


@handle_errors
def brief(
    question: Annotated[str, typer.Argument(help="The research question, in quotes.")],
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.md,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the brief to this file, not standard output."),
    ] = None,
    sources: Annotated[
        int | None,
        typer.Option("--sources", "-n", min=1, max=50, help="Sources to cite (default 10)."),
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Write a new brief even if this one is in the cache."),
    ] = False,
) -> None:
    """Write a cited decision brief answering QUESTION."""
    if out is not None and out.is_dir():
        raise fail(f"--out {out} is a directory; give a file name")
    started = time.perf_counter()
    result = run_async(_run(question, sources, fresh))
    elapsed = time.perf_counter() - started
    from nomosx.pipeline.edit import BriefEditor

    text = BriefEditor().render(result.brief, fmt.value)
    if out is None:
        typer.echo(text)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise fail(
                f"could not write {out}: {exc.strerror}; the brief is saved as "
                f"{result.brief.id} ('nomosx briefs show {result.brief.id[:8]}')"
            ) from None
        err.print(f"[green]✓[/] wrote {out}")
    err.print(_closing_line(result, elapsed), highlight=False, soft_wrap=True)


async def _run(question: str, sources: int | None, fresh: bool) -> BriefResult:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    async with application() as app:
        with Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            TextColumn("[dim]{task.fields[detail]}"),
            console=err,
            transient=False,
        ) as progress:
            display = _StageDisplay(progress)
            return await app.brief(question, sources=sources, on_event=display.handle, fresh=fresh)


class _StageDisplay:
    """One line per stage, added when the stage starts (a cached brief shows none)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    async def handle(self, event: StageEvent) -> None:
        if event.status == "start":
            label = _LABELS.get(event.stage, event.stage)
            self.tasks[event.stage] = self.progress.add_task(label, total=1, detail="")
            return
        task = self.tasks[event.stage]
        counts = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in event.counts.items())
        self.progress.update(
            task, completed=1, detail=f"{counts} · {event.duration_ms or 0:.0f} ms"
        )


def _closing_line(result: BriefResult, elapsed: float) -> str:
    brief = result.brief
    usage = result.run.usage
    cost = "unknown" if usage.cost_usd is None else f"${usage.cost_usd:.4f}"
    analyst = (
        "extractive analyst, no language model used"
        if brief.mode == "extractive"
        else brief.lineage.analyst
    )
    guard = "citations checked" if brief.guard.passed else "citation issues reported"
    if result.cached:
        return (
            f"{len(brief.sources)} sources · {elapsed:.2f} s · from the brief cache, cost $0 "
            f"(written {brief.created_at:%Y-%m-%d %H:%M} UTC; --fresh to rewrite) · "
            f"brief {brief.id[:8]}"
        )
    return (
        f"{len(brief.sources)} sources · {elapsed:.2f} s · cost {cost} ({analyst}) · "
        f"{guard} · brief {brief.id[:8]}"
    )
