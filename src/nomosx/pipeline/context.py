"""Run-scoped context: the pipeline run in progress and who asked for it, for the ledger."""

from __future__ import annotations

from contextvars import ContextVar

current_run_id: ContextVar[str | None] = ContextVar("nomosx_run_id", default=None)
current_user_id: ContextVar[str | None] = ContextVar("nomosx_user_id", default=None)
