"""``nomosx serve``: the HTTP API (and, later, the web app) on uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from nomosx.cli.common import err, fail, handle_errors


@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
    single_user: Annotated[
        bool,
        typer.Option(
            "--single-user",
            help="No API keys: every request from this machine acts as one local admin "
            "(loopback hosts only; also NOMOSX_AUTH__SINGLE_USER=true).",
        ),
    ] = False,
) -> None:
    """Serve the API and the web app: / to ask, /docs for the OpenAPI reference."""
    import uvicorn

    from nomosx.api.auth import is_loopback
    from nomosx.config import load_settings
    from nomosx.observability.logging import setup_logging

    if single_user:
        os.environ["NOMOSX_AUTH__SINGLE_USER"] = "true"  # read again by each worker process
    settings = load_settings()  # fail here, with one clear line, rather than in a worker
    if settings.auth.single_user and not is_loopback(host):
        raise fail(
            f"single-user mode needs no API key, so it only serves this machine: use "
            f"--host 127.0.0.1 (not {host}), or create users with 'nomosx users create'"
        )
    setup_logging(json=settings.log_json_enabled, level=settings.log_level)
    mode = " in single-user mode (no API keys)" if settings.auth.single_user else ""
    err.print(f"NomosX on http://{host}:{port}{mode} (API docs at /docs)", highlight=False)
    uvicorn.run(
        "nomosx.api.main:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=None,  # our logging (set up above) formats uvicorn's lines too
        proxy_headers=True,
    )
