"""The ASGI entry point for servers: ``uvicorn --factory nomosx.api.main:app_factory``."""

from __future__ import annotations

from fastapi import FastAPI

from nomosx.api.app import create_app
from nomosx.config import load_settings
from nomosx.observability.setup import configure


def app_factory() -> FastAPI:
    """Settings are read here, once, at the edge; logging and Sentry are set up here."""
    settings = load_settings()
    configure(settings)
    return create_app(settings)
