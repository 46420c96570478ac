"""Request-scoped context: the request id and the fields bound to every log line.

The API middleware opens ``bind(request_id=new_request_id())`` around each request; the
fields live in context variables, so they follow the request into everything it awaits,
into tasks it starts (``asyncio.create_task`` copies the context) and into
``asyncio.to_thread`` calls, and the logging setup adds them to every line::

    with bind(request_id=new_request_id()):
        ...  # log lines here carry request_id
        with bind(run_id=run.id, agent="analyst"):
            ...  # these carry request_id, run_id and agent
        ...  # run_id and agent are gone again
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog

__all__ = ["bind", "bound_fields", "current_request_id", "new_request_id", "request_id"]

request_id: ContextVar[str | None] = ContextVar("nomosx_request_id", default=None)
"""The id of the request (or job) being served; ``None`` outside of one."""


def new_request_id() -> str:
    """A fresh request id: 32 hex characters (a uuid4)."""
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id.get()


def bound_fields() -> dict[str, Any]:
    """The fields bound in this context (what ``bind`` set, outermost first)."""
    return dict(structlog.contextvars.get_contextvars())


@contextmanager
def bind(**fields: Any) -> Iterator[dict[str, Any]]:
    """Bind ``fields`` to every log line written in this context until the block ends.

    Fields bound by an enclosing ``bind`` stay; a field bound again is shadowed and
    restored on exit. A ``request_id`` field also sets the ``request_id`` context
    variable. A field given as ``None`` is left out.
    """
    fields = {name: value for name, value in fields.items() if value is not None}
    tokens = structlog.contextvars.bind_contextvars(**fields)
    rid_token = request_id.set(str(fields["request_id"])) if "request_id" in fields else None
    try:
        yield bound_fields()
    finally:
        if rid_token is not None:
            request_id.reset(rid_token)
        structlog.contextvars.reset_contextvars(**tokens)
