"""Single-flight: concurrent callers asking for the same key share one computation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Task[T]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    async def run(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        """Run ``compute`` for ``key`` unless a call for it is under way: then share it.

        The computation runs in a task of its own, so cancelling one caller does not
        cancel it for the others; a failure is shared by every caller of that flight, and
        the next call after it computes afresh.
        """
        flight = self._flights.get(key)
        if flight is None:

            async def call() -> T:
                return await compute()

            flight = asyncio.ensure_future(call())
            self._flights[key] = flight

            def done(task: asyncio.Task[T]) -> None:
                self._flights.pop(key, None)
                if not task.cancelled():
                    task.exception()  # retrieved even when every caller went away

            flight.add_done_callback(done)
        return await asyncio.shield(flight)
