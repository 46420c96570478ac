"""Run-scoped context: the id of the pipeline run in progress, for the cost ledger."""

from __future__ import annotations

from contextvars import ContextVar

current_run_id: ContextVar[str | None] = ContextVar("nomosx_run_id", default=None)
