"""Cancellation that survives Python 3.11's ``asyncio.wait_for``.

On Python 3.11, ``asyncio.wait_for`` (which redis-py awaits for every command it sends)
drops a cancellation that arrives as the awaited operation completes: the task runs on
as if it had never been cancelled, though ``Task.cancelling()`` still counts the request.
Against a local Redis that is most cancellations of a task busy with Redis. So code that
must stop when cancelled (a job being cancelled, timing out or given back by a stopping
worker; an event reader whose client left) checks at its safe points, and whoever
cancels a task repeats it until the task ends.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise the cancellation that an await lost on the way, if any."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def uncancel() -> None:
    """Forget every cancellation request of the current task (it handled them)."""
    task = asyncio.current_task()
    while task is not None and task.cancelling():
        task.uncancel()
