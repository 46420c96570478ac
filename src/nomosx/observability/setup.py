"""Observability at a process's edge: secrets registered, logging set up, Sentry on."""

from __future__ import annotations

from nomosx import __version__
from nomosx.config import Settings
from nomosx.observability.logging import setup_logging
from nomosx.observability.secrets import register_secrets, secrets_from_settings
from nomosx.observability.sentry import init_sentry


def configure(settings: Settings) -> bool:
    """Call once per server or worker process; returns whether Sentry is enabled."""
    register_secrets(secrets_from_settings(settings))
    setup_logging(json=settings.log_json_enabled, level=settings.log_level)
    return init_sentry(
        settings,
        release=settings.sentry_release or f"nomosx@{__version__}",
        traces_sample_rate=settings.sentry_traces_sample_rate,
    )
