"""``nomosx serve``: the HTTP API (and, later, the web app) on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from nomosx.cli.common import err, handle_errors


@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the API: /docs for the OpenAPI reference, /api/system/health for health."""
    import uvicorn

    from nomosx.config import load_settings
    from nomosx.observability.logging import setup_logging

    settings = load_settings()  # fail here, with one clear line, rather than in a worker
    setup_logging(json=settings.log_json_enabled, level=settings.log_level)
    err.print(f"NomosX API on http://{host}:{port} (docs at /docs)", highlight=False)
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
