"""What every command shares: consoles, error handling, the application's lifetime."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from nomosx.app import NomosX

out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Turn NomosX errors into one clear line on stderr and a non-zero exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        from nomosx.errors import NomosXError

        try:
            return func(*args, **kwargs)
        except NomosXError as exc:
            raise fail(escape_markup(str(exc))) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None

    return wrapper


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@asynccontextmanager
async def application(*, load_library: bool = True) -> AsyncIterator[NomosX]:
    """Open NomosX from the environment's settings, loading the bundled library if empty."""
    from nomosx.app import NomosX
    from nomosx.config import load_settings

    settings = load_settings()
    app = await NomosX.open(settings)
    try:
        if load_library and await app.library_is_empty():
            await _load_bundled(app)
        yield app
    finally:
        await app.close()


@contextmanager
def import_progress(
    reading: str, embedding: str
) -> Iterator[tuple[Callable[[int, int], None], Callable[[int, int], None]]]:
    """One live display with two bars: the bytes of a file read, then the sources embedded.
    Yields the two callbacks (done, total)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        read = progress.add_task(reading, total=None)
        embed = progress.add_task(embedding, total=None, visible=False)

        def on_read(done: int, total: int) -> None:
            progress.update(read, completed=done, total=total)

        def on_embed(done: int, total: int) -> None:
            progress.update(embed, completed=done, total=total, visible=True)

        yield on_read, on_embed


async def _load_bundled(app: NomosX) -> None:
    with import_progress(
        "loading the bundled library (SciFact, first run only)", "indexing its vectors"
    ) as (advance, embed):
        report = await app.ensure_library(on_progress=advance, on_embed=embed)
    if report is not None:
        err.print(f"[green]✓[/] bundled library loaded: {report.inserted:,} sources")
