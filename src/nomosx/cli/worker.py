"""``nomosx worker``: run brief jobs from the Redis queue (as many workers as wanted)."""

from __future__ import annotations

from typing import Annotated

import typer

from nomosx.cli.common import err, handle_errors, run_async


@handle_errors
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Briefs at once (default: NOMOSX_JOBS__CONCURRENCY, 2)."),
    ] = None,
    burst: Annotated[bool, typer.Option("--burst", help="Stop once the queue is empty.")] = False,
    grace: Annotated[
        float,
        typer.Option(
            min=0, help="Seconds running briefs get to finish on SIGTERM before going back."
        ),
    ] = 30.0,
) -> None:
    """Run brief jobs submitted to the API (needs REDIS_URL and a shared DATABASE_URL).

    SIGTERM or Ctrl-C stops it gracefully; a second one at once (the briefs it was
    running go back to the queue for another worker)."""
    from nomosx.config import load_settings
    from nomosx.errors import ConfigError
    from nomosx.jobs.worker import run_worker
    from nomosx.observability.setup import configure

    settings = load_settings()
    if settings.redis_url is None:
        raise ConfigError(
            "nomosx worker takes its jobs from Redis: set REDIS_URL (the same as the API's)"
        )
    configure(settings)
    err.print(
        f"NomosX worker on queue {settings.jobs.queue!r} "
        f"({concurrency or settings.jobs.concurrency} at a time)",
        highlight=False,
    )
    run_async(run_worker(settings, concurrency=concurrency, burst=burst, grace=grace))
